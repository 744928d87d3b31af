//! Every built-in query against the emulator, checked against the seeded data; golden renderings; injection;
//! docs/QUERIES.md kept current.

use chrono::TimeZone;
use secgraph::config::{ConfigSource, Settings};
use secgraph::query::Language;
use secgraph::query::QueryStore;
use secgraph::{ConnectOptions, QueryProvider};
use secgraph_emulator::hunting::quota::HuntingQuota;
use secgraph_emulator::{Dataset, Emulator, EmulatorConfig};
use serde_json::Value;
use std::collections::BTreeSet;

struct Fx {
    emu: Emulator,
    p: QueryProvider,
    _dir: tempfile::TempDir,
}

async fn fx() -> Fx {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 400,
        page_size: Some(90),
        // These tests send more hunting queries a minute than the service allows (45); the quota's own test
        // keeps the real figure.
        hunting_quota: HuntingQuota {
            calls_per_minute: 10_000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let (p, dir) = connect(&emu, &ConnectOptions::default()).await;
    Fx { emu, p, _dir: dir }
}

/// A provider connected to `emu` through the settings file it writes (kept in the returned folder).
async fn connect(emu: &Emulator, opts: &ConnectOptions) -> (QueryProvider, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), emu.msticpy_config()).unwrap();
    let s = Settings::load(&dir.path().join("c.yaml"), ConfigSource::Explicit).unwrap();
    (QueryProvider::connect(Some(&s), opts).await.unwrap(), dir)
}

impl Fx {
    async fn rows(&self, name: &str, params: &[(&str, &str)]) -> Vec<Value> {
        let mut v: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !params.iter().any(|(k, _)| *k == "start") && self.p.queries().get(name).unwrap().parameter("start").is_some() {
            v.push(("start".into(), "-31d".into()));
        }
        let mut rows: Vec<Value> = Vec::new();
        self.p.run(name, &v, &mut rows).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        rows
    }
    async fn ids(&self, name: &str, params: &[(&str, &str)], key: &str) -> BTreeSet<String> {
        self.rows(name, params)
            .await
            .iter()
            .map(|r| r[key].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn ids_where(items: &[secgraph_emulator::data::Item], f: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    items
        .iter()
        .filter(|a| f(a))
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn any_in(v: &Value, coll: &str, f: impl Fn(&Value) -> bool) -> bool {
    v[coll].as_array().is_some_and(|a| a.iter().any(f))
}

fn evidence(a: &Value, f: impl Fn(&Value) -> bool) -> bool {
    any_in(a, "evidence", f)
}

/// Entities that actually occur in the data.
fn sample(ds: &Dataset) -> (String, String, String, String, String) {
    let legacy = ds
        .legacy_alerts
        .iter()
        .find(|a| {
            a["userStates"].as_array().is_some_and(|u| !u.is_empty())
                && a["hostStates"].as_array().is_some_and(|u| !u.is_empty())
                && a["fileStates"].as_array().is_some_and(|u| !u.is_empty())
        })
        .unwrap();
    (
        legacy["userStates"][0]["accountName"].as_str().unwrap().into(),
        legacy["userStates"][0]["userPrincipalName"].as_str().unwrap().into(),
        legacy["hostStates"][0]["netBiosName"].as_str().unwrap().into(),
        legacy["fileStates"][0]["fileHash"]["hashValue"].as_str().unwrap().into(),
        legacy["hostStates"][0]["privateIpAddress"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn legacy_built_ins_return_the_seeded_rows() {
    let f = fx().await;
    let ds = f.emu.dataset();
    let l = &ds.legacy_alerts;
    let (account, upn, host, hash, ip) = sample(&ds);
    assert_eq!(f.ids("SecurityGraphAlert.list_alerts", &[], "id").await, ids_where(l, |_| true));
    let one = l[7]["id"].as_str().unwrap();
    assert_eq!(
        f.ids("SecurityGraphAlert.get_alert", &[("alert_id", one)], "id").await,
        BTreeSet::from([one.to_string()])
    );
    let by_user = ids_where(l, |a| any_in(a, "userStates", |u| u["userPrincipalName"] == upn.as_str()));
    assert!(!by_user.is_empty());
    assert_eq!(
        f.ids("SecurityGraphAlert.list_alerts_for_user", &[("upn", &upn)], "id").await,
        by_user
    );
    let by_acct = ids_where(l, |a| any_in(a, "userStates", |u| u["accountName"] == account.as_str()));
    assert_eq!(
        f.ids("SecurityGraphAlert.list_alerts_for_user", &[("account_name", &account)], "id")
            .await,
        by_acct
    );
    let by_host = ids_where(l, |a| {
        any_in(a, "hostStates", |h| h["netBiosName"] == host.as_str() || h["fqdn"] == host.as_str())
    });
    assert_eq!(
        f.ids("SecurityGraphAlert.list_alerts_for_host", &[("host_name", &host)], "id")
            .await,
        by_host
    );
    let by_ip = ids_where(l, |a| {
        any_in(a, "hostStates", |h| {
            h["privateIpAddress"] == ip.as_str() || h["publicIpAddress"] == ip.as_str()
        }) || any_in(a, "networkConnections", |n| {
            n["sourceAddress"] == ip.as_str() || n["destinationAddress"] == ip.as_str()
        })
    });
    assert_eq!(
        f.ids("SecurityGraphAlert.list_alerts_for_ip", &[("ip_address", &ip)], "id").await,
        by_ip
    );
    let by_hash = ids_where(l, |a| any_in(a, "fileStates", |x| x["fileHash"]["hashValue"] == hash.as_str()));
    assert_eq!(
        f.ids("SecurityGraphAlert.list_alerts_for_file", &[("file_hash", &hash)], "id")
            .await,
        by_hash
    );
    let related: BTreeSet<String> = by_host.union(&by_user).cloned().collect();
    assert_eq!(
        f.ids(
            "SecurityGraphAlert.list_related_alerts",
            &[("host_name", &host), ("upn", &upn)],
            "id"
        )
        .await,
        related
    );
    // Empty optional parameters drop their clause rather than matching ''.
    assert_eq!(
        f.ids(
            "SecurityGraphAlert.list_alerts_for_file",
            &[("file_hash", &hash), ("file_name", "")],
            "id"
        )
        .await,
        by_hash
    );
}

#[tokio::test]
async fn alerts_incidents_and_scores_return_the_seeded_rows() {
    let f = fx().await;
    let ds = f.emu.dataset();
    let a = &ds.alerts_v2;
    assert_eq!(
        f.ids("Alerts.list", &[("severity", "high,medium"), ("status", "new")], "id").await,
        ids_where(a, |x| (x["severity"] == "high" || x["severity"] == "medium")
            && x["status"] == "new")
    );
    assert_eq!(
        f.ids("Alerts.list", &[("service_source", "microsoftSentinel")], "id").await,
        ids_where(a, |x| x["serviceSource"] == "microsoftSentinel")
    );
    let analyst = "ir-lead@contoso-demo.onmicrosoft.com";
    assert_eq!(
        f.ids("Alerts.list", &[("assigned_to", analyst)], "id").await,
        ids_where(a, |x| x["assignedTo"] == analyst)
    );
    assert_eq!(
        f.ids(
            "Alerts.list",
            &[("classification", "falsePositive"), ("determination", "notMalicious")],
            "id"
        )
        .await,
        ids_where(a, |x| x["classification"] == "falsePositive")
    );
    let one = a[3]["id"].as_str().unwrap();
    let got = f.rows("Alerts.get", &[("id", one)]).await;
    assert_eq!(got[0]["evidence"], a[3]["evidence"]);

    let i = &ds.incidents;
    assert_eq!(
        f.ids("Incidents.list", &[("status", "active,inProgress")], "id").await,
        ids_where(i, |x| x["status"] == "active" || x["status"] == "inProgress")
    );
    assert_eq!(
        f.ids("Incidents.list", &[("severity", "high")], "id").await,
        ids_where(i, |x| x["severity"] == "high")
    );
    let inc = i[2]["id"].as_str().unwrap();
    let got = f.rows("Incidents.get", &[("incident_id", inc)]).await;
    let got_alerts: BTreeSet<String> = got[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got_alerts, ids_where(a, |x| x["incidentId"] == inc));

    // Incidents naming an entity: filtered on the client over the incidents of the range, with their alerts.
    let host = a
        .iter()
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .find_map(|e| e["hostName"].as_str())
        .unwrap()
        .to_string();
    let want: BTreeSet<String> = i
        .iter()
        .filter(|inc| {
            a.iter()
                .any(|x| x["incidentId"] == inc["id"] && evidence(x, |e| e["hostName"] == host.as_str()))
        })
        .map(|inc| inc["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(f.ids("Incidents.list_for_entity", &[("host_name", &host)], "id").await, want);

    let latest = f.rows("SecureScore.latest", &[]).await;
    assert_eq!(latest, vec![ds.secure_scores[0].value().clone()]);
    assert_eq!(f.rows("SecureScore.history", &[("days", "5")]).await.len(), 5);
    assert_eq!(
        f.ids("SecureScore.control_profiles", &[("category", "Identity")], "id").await,
        ids_where(&ds.control_profiles, |c| c["controlCategory"] == "Identity")
    );
    assert_eq!(f.rows("SecureScore.control_profiles", &[]).await.len(), ds.control_profiles.len());
}

#[tokio::test]
async fn entity_pivots_on_alerts_v2_use_hunting_and_match_the_evidence() {
    let f = fx().await;
    let ds = f.emu.dataset();
    let a = &ds.alerts_v2;
    let dev = a
        .iter()
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .find_map(|e| e["hostName"].as_str())
        .unwrap()
        .to_string();
    let want = ids_where(a, |x| evidence(x, |e| e["hostName"] == dev.as_str()));
    assert_eq!(f.ids("Alerts.list_for_host", &[("host_name", &dev)], "AlertId").await, want);
    let upn = a
        .iter()
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .find_map(|e| e["userAccount"]["userPrincipalName"].as_str())
        .unwrap()
        .to_string();
    let want = ids_where(a, |x| evidence(x, |e| e["userAccount"]["userPrincipalName"] == upn.as_str()));
    assert_eq!(f.ids("Alerts.list_for_user", &[("user", &upn)], "AlertId").await, want);
    let ip = a
        .iter()
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .find_map(|e| e["ipAddress"].as_str())
        .unwrap()
        .to_string();
    let want = ids_where(a, |x| {
        evidence(x, |e| {
            e["ipAddress"] == ip.as_str() || e["ipInterfaces"].as_array().is_some_and(|v| v.iter().any(|i| i == ip.as_str()))
        })
    });
    assert_eq!(f.ids("Alerts.list_for_ip", &[("ip", &ip)], "AlertId").await, want);
    let sha = a
        .iter()
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .find_map(|e| e["fileDetails"]["sha256"].as_str())
        .unwrap()
        .to_string();
    let want = ids_where(a, |x| {
        evidence(x, |e| {
            e["fileDetails"]["sha256"] == sha.as_str() || e["imageFile"]["sha256"] == sha.as_str()
        })
    });
    assert_eq!(f.ids("Alerts.list_for_file", &[("file_hash", &sha)], "AlertId").await, want);
    let seed = a
        .iter()
        .find(|x| {
            evidence(x, |e| {
                e["mdeDeviceId"].is_string() && e["@odata.type"] == "#microsoft.graph.security.deviceEvidence"
            })
        })
        .unwrap();
    let seed_dev = seed["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| {
            e["mdeDeviceId"]
                .as_str()
                .filter(|_| e["@odata.type"] == "#microsoft.graph.security.deviceEvidence")
        })
        .unwrap();
    let want: BTreeSet<String> = ids_where(a, |x| {
        x["id"] != seed["id"]
            && evidence(x, |e| {
                e["@odata.type"] == "#microsoft.graph.security.deviceEvidence" && e["mdeDeviceId"] == seed_dev
            })
    });
    assert_eq!(
        f.ids("Alerts.list_related", &[("alert_id", seed["id"].as_str().unwrap())], "AlertId")
            .await,
        want
    );
}

#[tokio::test]
async fn hunting_built_ins() {
    let f = fx().await;
    let ds = f.emu.dataset();
    let count = f.rows("Hunting.run", &[("query", "AlertInfo | count"), ("start", "-31d")]).await;
    assert_eq!(count[0]["Count"], ds.alerts_v2.len());
    let rows = f.rows("Hunting.process_by_name", &[("file_name", "SVCHOST.EXE")]).await;
    assert!(
        !rows.is_empty()
            && rows
                .iter()
                .all(|r| r["FileName"].as_str().unwrap().eq_ignore_ascii_case("svchost.exe"))
    );
    let rows = f
        .rows("Hunting.process_by_command_line", &[("command_line", "encodedcommand")])
        .await;
    let powershell_alerts = ds
        .alerts_v2
        .iter()
        .filter(|a| {
            evidence(a, |e| {
                e["processCommandLine"].as_str().is_some_and(|c| c.contains("EncodedCommand"))
            })
        })
        .count();
    assert_eq!(rows.len(), powershell_alerts);
    let ip = ds
        .alerts_v2
        .iter()
        .filter(|a| evidence(a, |e| e["@odata.type"] == "#microsoft.graph.security.deviceEvidence"))
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .find_map(|e| e["ipAddress"].as_str())
        .unwrap();
    let rows = f.rows("Hunting.network_to_ip", &[("ip_address", ip)]).await;
    assert!(!rows.is_empty() && rows.iter().all(|r| r["RemoteIP"] == ip));
    assert!(
        f.rows("Hunting.network_to_domain", &[("domain", "example-nothing.invalid")])
            .await
            .is_empty()
    );
    let acct = ds.entities.users[0].account.clone();
    assert!(
        f.rows("Hunting.logons_for_account", &[("account_name", &acct.to_uppercase())])
            .await
            .iter()
            .all(|r| r["AccountName"].as_str().unwrap().eq_ignore_ascii_case(&acct))
    );
    let upn = &ds.entities.users[1].upn;
    assert!(
        f.rows("Hunting.identity_logons_for_account", &[("upn", upn)])
            .await
            .iter()
            .all(|r| r["AccountUpn"] == upn.as_str())
    );
    let ev = f
        .rows("Hunting.evidence_for_entity", &[("value", &ds.entities.files[0].sha256)])
        .await;
    assert!(ev.iter().all(|r| r["SHA256"] == ds.entities.files[0].sha256.as_str()));
}

#[tokio::test]
async fn hostile_values_cannot_change_a_query() {
    let f = fx().await;
    // OData: the same rows as a literal match of the whole value (none), not every alert.
    for v in ["x') or true or ('", "x' or '1' eq '1", "a'b"] {
        assert!(
            f.rows("SecurityGraphAlert.list_alerts_for_user", &[("account_name", v)])
                .await
                .is_empty(),
            "{v}"
        );
        assert!(f.rows("Alerts.list", &[("assigned_to", v)]).await.is_empty(), "{v}");
    }
    // A real account name with a quote works as a literal.
    let q =
        f.p.render(
            "SecurityGraphAlert.list_alerts_for_user",
            &[("account_name".into(), "o'brien".into())],
        )
        .unwrap();
    assert!(q.text.contains("u/accountName eq 'o''brien'"), "{}", q.text);
    // KQL: quotes and backslashes stay inside the string.
    for v in ["x\" or 1==1 or \"", "x' or true or '", "\\\" or true //"] {
        assert!(f.rows("Hunting.process_by_name", &[("file_name", v)]).await.is_empty(), "{v}");
        assert!(f.rows("Alerts.list_for_user", &[("user", v)]).await.is_empty(), "{v}");
    }
}

fn fixed_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

/// Example values for every required (or group) parameter, fixed so renderings are stable.
fn examples(q: &secgraph::query::QueryTemplate) -> Vec<(String, String)> {
    // The first member of an {or:…} group stands in for the group.
    let first_in_group = q
        .query
        .split("{or:")
        .nth(1)
        .and_then(|g| g.split([',', '}']).next())
        .map(str::trim)
        .unwrap_or("");
    let mut v = Vec::new();
    for p in &q.parameters {
        if !(p.required() || p.name == first_in_group) {
            continue;
        }
        let val = match p.kind {
            secgraph::query::ParamType::Int => "10",
            secgraph::query::ParamType::List => "high,low",
            _ => "example",
        };
        v.push((p.name.clone(), val.to_string()));
    }
    v
}

#[test]
fn golden_renderings_and_valid_odata() {
    let store = QueryStore::builtin().unwrap();
    let mut out = String::new();
    for q in store.all() {
        let r = q
            .render(&examples(q), fixed_now())
            .unwrap_or_else(|e| panic!("{}: {e}", q.full_name()));
        out.push_str(&format!("{}\n  {}\n", q.full_name(), r.describe()));
        if r.language == Language::Kql {
            secgraph_emulator::hunting::parse_query(&r.text).unwrap_or_else(|e| panic!("{}: invalid KQL: {e}\n{}", q.full_name(), r.text));
        }
        if r.language == Language::OData
            && let Some((_, query)) = r.text.split_once('?')
        {
            for pair in query.split("&$").map(|p| p.trim_start_matches('$')) {
                if let Some(filter) = pair.strip_prefix("filter=") {
                    secgraph_emulator::odata::parse_filter(filter)
                        .unwrap_or_else(|e| panic!("{}: invalid OData {filter}: {e}", q.full_name()));
                }
            }
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/queries.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &out).unwrap();
    }
    let golden = std::fs::read_to_string(&path).expect("tests/golden/queries.txt (run with UPDATE_GOLDEN=1 to create)");
    assert_eq!(out, golden, "rendered queries changed; review and run with UPDATE_GOLDEN=1");
}

#[test]
fn queries_doc_is_current() {
    let doc = secgraph::query::docs::markdown(&QueryStore::builtin().unwrap());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/QUERIES.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &doc).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == doc,
        "docs/QUERIES.md is stale: run `UPDATE_DOCS=1 cargo test -p secgraph --test queries`"
    );
    for q in QueryStore::builtin().unwrap().all() {
        assert!(doc.contains(&format!("### `{}`", q.full_name())));
    }
}

#[test]
fn user_query_folders_override_and_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.yaml"),
        "metadata: {version: 1, data_environments: [SecurityGraph], data_families: [Alerts]}\nsources:\n  list:\n    description: my list\n    args: {query: '/security/alerts_v2?$top=5'}\n  extra:\n    description: mine\n    args: {query: '/security/incidents'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other.yaml"),
        "metadata: {version: 1, data_environments: [MSSentinel], data_families: [X]}\nsources: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "metadata: {version: 1, data_environments: [SecurityGraph], data_families: [Y]}\nsources:\n  q:\n    args: {query: '{nope}'}\n",
    )
    .unwrap();
    let mut store = QueryStore::builtin().unwrap();
    let e = store.add_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("bad.yml") && e.contains("{nope}"), "{e}");
    std::fs::remove_file(dir.path().join("bad.yml")).unwrap();
    let report = store.add_dir(dir.path()).unwrap();
    let overridden: Vec<&String> = report
        .iter()
        .flat_map(|(_, o)| match o {
            secgraph::query::FileOutcome::Loaded { overridden } => overridden.iter().collect(),
            secgraph::query::FileOutcome::Skipped(_) => vec![],
        })
        .collect();
    assert_eq!(overridden, vec!["Alerts.list"]);
    assert_eq!(store.get("Alerts.list").unwrap().description, "my list");
    assert!(store.get("Alerts.extra").is_ok());
    let s = Settings::from_yaml(&format!("QueryDefinitions:\n  Custom:\n    - '{}'\n", dir.path().display()), "t").unwrap();
    assert_eq!(s.query_folders().unwrap(), vec![dir.path().to_path_buf()]);
    let _ = ConfigSource::Explicit;
}

#[test]
fn values_are_confined_to_their_literal_in_every_quoting_context() {
    let file = r#"
metadata:
  data_environments: [SecurityGraph]
  data_families: [Ctx]
defaults:
  parameters:
    v: {description: value, type: str}
sources:
  odata_single:
    description: d
    args: {query: "/security/alerts_v2?$filter=title eq '{v}' and severity eq 'high'"}
  odata_double:
    description: d
    args: {query: '/security/alerts_v2?$filter=title eq "{v}"'}
  kql_double:
    description: d
    args: {query: 'AlertInfo | where Title == "{v}" | take 5', language: kql}
  kql_verbatim:
    description: d
    args: {query: "AlertInfo | where Title == @'{v}' | take 5", language: kql}
  kql_verbatim_double:
    description: d
    args: {query: 'AlertInfo | where Title == @"{v}" | take 5', language: kql}
  kql_backticks:
    description: d
    args: {query: "AlertInfo | where Title == ```{v}``` | take 5", language: kql}
"#;
    let mut store = secgraph::query::QueryStore::default();
    store.add_file(file, "ctx.yaml").unwrap();
    let now = chrono::Utc::now();
    let hostile = [
        "x' or true or '",
        "x\" or 1==1 or \"",
        "a\\' or 1==1 //",
        "@'x' or ''=='",
        "tail\\",
        "multi ``` backticks",
        "ends with a backtick`",
        "line\nbreak",
        "plain words",
    ];
    for v in hostile {
        let render = |q: &str| store.get(q).unwrap().render(&[("v".into(), v.into())], now);
        // OData single quotes: one literal holding the whole value, and the rest of the filter intact.
        let r = render("Ctx.odata_single").unwrap();
        let filter = r.text.split_once("$filter=").unwrap().1;
        let parsed = format!("{:?}", secgraph_emulator::odata::parse_filter(filter).unwrap());
        assert!(parsed.contains(&format!("{v:?}")) && parsed.contains("\"high\""), "{v}: {parsed}");
        // OData double quotes cannot be escaped: a value holding a quote is refused, naming the parameter.
        match render("Ctx.odata_double") {
            Ok(r) => assert!(!v.contains(['"', '\'']) && r.text.contains(v), "{v}: {}", r.text),
            Err(e) => assert!(v.contains(['"', '\'']) && e.to_string().contains("'v'"), "{v}: {e}"),
        }
        // KQL in every string form: the query parses to one `where` whose literal is the whole value, or the
        // value is refused where that form cannot hold it.
        for q in ["Ctx.kql_double", "Ctx.kql_verbatim", "Ctx.kql_verbatim_double", "Ctx.kql_backticks"] {
            match render(q) {
                Ok(r) => {
                    let parsed = secgraph_emulator::hunting::parse_query(&r.text).unwrap_or_else(|e| panic!("{q} {v}: {e:?}\n{}", r.text));
                    let dbg = format!("{parsed:?}");
                    assert_eq!(parsed.stages.len(), 2, "{q} {v}: {dbg}");
                    assert!(dbg.contains(&format!("Str({v:?})")), "{q} {v}: {dbg}");
                }
                Err(e) => {
                    let refusable = (q.contains("verbatim") && v.contains('\n'))
                        || (q.contains("backticks") && (v.contains("```") || v.ends_with('`')));
                    assert!(refusable && e.to_string().contains("'v'"), "{q} {v}: {e}");
                }
            }
        }
    }
}

/// The hunting library (the `Hunt*` families): every query has ATT&CK tags, runs with its defaults and finds the
/// behaviour the emulator's stories seed — checked on a value each query is written to surface.
#[tokio::test]
async fn hunting_library_finds_what_the_stories_seed() {
    let f = fx().await;
    // Sixty queries in a row: lift the client's hunting budget (45 a minute, Graph's) for this local run.
    let opts = ConnectOptions {
        requests_per_minute: Some((10_000, 10_000)),
        ..Default::default()
    };
    let (p, _dir) = connect(&f.emu, &opts).await;
    let library: Vec<_> = p
        .queries()
        .all()
        .iter()
        .filter(|q| q.family.starts_with("Hunt") && q.family != "Hunting")
        .cloned()
        .collect();
    let families: BTreeSet<&str> = library.iter().map(|q| q.family.as_str()).collect();
    assert!(
        library.len() >= 40 && families.len() >= 7,
        "{} queries in {families:?}",
        library.len()
    );
    let technique = |t: &str| {
        let (id, sub) = t.split_once('.').unwrap_or((t, "000"));
        id.len() == 5 && id.starts_with('T') && id[1..].chars().all(|c| c.is_ascii_digit()) && sub.len() == 3
    };
    let mut found: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for q in &library {
        assert!(
            !q.tags.is_empty() && q.tags.iter().all(|t| technique(t)),
            "{}: tags {:?}",
            q.full_name(),
            q.tags
        );
        assert_eq!(q.language, Language::Kql, "{}", q.full_name());
        let mut rows: Vec<Value> = Vec::new();
        p.run(&q.full_name(), &[], &mut rows)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", q.full_name()));
        assert!(!rows.is_empty(), "{} returned no rows on the seeded data", q.full_name());
        found.insert(q.full_name(), rows);
    }
    let any = |name: &str, col: &str, want: &str| {
        let rows = &found[name];
        assert!(
            rows.iter().any(|r| r[col].as_str().is_some_and(|v| v.contains(want))),
            "{name}: no row with {col} containing {want:?}: {rows:?}"
        );
    };
    let all = |name: &str, f: &dyn Fn(&Value) -> bool| assert!(found[name].iter().all(f), "{name}: {:?}", found[name]);
    any(
        "HuntProcess.encoded_powershell",
        "Decoded",
        "DownloadString('http://203.0.113.77/stage2.ps1')",
    );
    any("HuntProcess.office_spawning_shell", "InitiatingProcessFileName", "WINWORD.EXE");
    all("HuntProcess.lolbin_download", &|r| {
        ["certutil.exe", "bitsadmin.exe", "curl.exe", "wget.exe"].contains(&r["FileName"].as_str().unwrap_or("").to_lowercase().as_str())
    });
    any("HuntProcess.scheduled_task_creation", "TaskName", "OneDrive Updater");
    all("HuntProcess.discovery_burst", &|r| r["Commands"].as_i64() >= Some(5));
    any("HuntNetwork.beaconing", "RemoteIP", "203.0.113.77");
    all("HuntNetwork.smb_fan_out", &|r| r["Targets"].as_i64() >= Some(10));
    any("HuntFile.mass_file_rename", "Extension", "locked");
    any("HuntFile.downloaded_then_executed", "FileName", "AnyDesk.exe");
    any(
        "HuntFile.unsigned_dll_side_loading",
        "InitiatingProcessFileName",
        "OneDriveUpdater.exe",
    );
    all("HuntFile.unsigned_dll_side_loading", &|r| r["FileName"] != "mscoree.dll");
    any("HuntPersistence.accessibility_debugger", "Program", "sethc.exe");
    any("HuntPersistence.uncommon_powershell_commands", "Command", "Invoke-Mimikatz");
    all("HuntPersistence.uncommon_powershell_commands", &|r| r["Command"] != "Out-Default");
    any("HuntCredential.password_spray", "IPAddress", "203.0.113.99");
    any("HuntCredential.brute_force_then_success", "RemoteIP", "203.0.113.66");
    any("HuntLogon.sign_ins_from_many_countries", "AccountUpn", "emma.schmidt@");
    any("HuntIdentity.sensitive_group_additions", "Group", "Domain Admins");
    any("HuntEmail.attachment_saved_on_device", "AttachmentName", "invoice_0423.docm");
    any("HuntEmail.lookalike_sender_domains", "SenderFromDomain", "c0ntoso");
    all("HuntEmail.clicked_through_warning", &|r| r["AccountUpn"].as_str().is_some());
    any("HuntCloud.inbox_forwarding_rules", "ForwardsTo", "drop@example-mailbox.net");
    any("HuntCloud.oauth_consent", "Permissions", "Mail.ReadWrite");
    any("HuntCloud.admin_role_assignments", "Role", "Global Administrator");
    // A threshold is a parameter: raised past what was seeded, the burst is no longer reported.
    let mut rows: Vec<Value> = Vec::new();
    p.run("HuntNetwork.smb_fan_out", &[("min_targets".into(), "15".into())], &mut rows)
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    // `secgraph queries T1003` finds queries by technique.
    assert!(library.iter().filter(|q| q.tags.iter().any(|t| t.starts_with("T1003"))).count() >= 3);
}

/// Advanced hunting's CPU quota: the emulator answers 429 with the rest of the 15-minute cycle to wait; the client
/// does not sleep through that silently but fails at once, saying which quota and how long.
#[tokio::test]
async fn hunting_cpu_quota_is_reported_not_slept_through() {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 100,
        hunting_quota: HuntingQuota {
            cpu_ms_per_cycle: 1,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let (p, _dir) = connect(&emu, &ConnectOptions::default()).await;
    let run = |q: &str| {
        let params = vec![("query".to_string(), q.to_string())];
        let p = &p;
        async move {
            let mut rows: Vec<Value> = Vec::new();
            p.run("Hunting.run", &params, &mut rows).await.map(|_| rows)
        }
    };
    assert_eq!(run("AlertInfo | take 2").await.unwrap().len(), 2);
    let started = std::time::Instant::now();
    let e = run("AlertInfo | take 2").await.expect_err("the cycle's CPU is used up");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "waited {:?}",
        started.elapsed()
    );
    let text = e.to_string();
    assert!(
        text.contains("429") && text.contains("CPU quota") && text.contains("Graph asks to retry in"),
        "{text}"
    );
    let wait = e.retry_after().expect("the wait is kept");
    assert!(
        wait > std::time::Duration::from_secs(60) && wait <= std::time::Duration::from_secs(900),
        "{wait:?}"
    );
}
