//! `secgraph rules`: detection rules as code across tenants, against the in-process emulator (an MSSP app and four
//! customers; the third may read rules but not write them).

use secgraph::ConnectOptions;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_secgraph");

struct Setup {
    _rt: tokio::runtime::Runtime,
    emu: secgraph_emulator::Emulator,
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    /// The customers' tenant ids, in order.
    tenants: Vec<String>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let emu = rt
        .block_on(secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig {
            alerts: 40,
            tenants: 4,
            alerts_per_tenant: Some(30),
            state_dir: Some(dir.path().join("state")),
            ..Default::default()
        }))
        .unwrap();
    let cfg = dir.path().join("e.yaml");
    std::fs::write(&cfg, emu.msticpy_config()).unwrap();
    let tenants = emu.customers().iter().map(|c| c.tenant_id.clone()).collect();
    Setup {
        _rt: rt,
        emu,
        dir,
        cfg,
        tenants,
    }
}

impl Setup {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN).arg("--config").arg(&self.cfg).args(args).output().unwrap()
    }

    /// `--instance MSSP --tenant A,B,…` then `args`.
    fn on(&self, tenants: &[usize], args: &[&str]) -> Output {
        let ids: Vec<&str> = tenants.iter().map(|i| self.tenants[*i].as_str()).collect();
        let mut all = vec!["--instance", "MSSP", "--tenant"];
        let joined = ids.join(",");
        all.push(&joined);
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// A raw Graph request as customer `i`, through the library's own client.
    fn graph(&self, i: usize, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let settings = secgraph::config::Settings::from_yaml(&self.emu.msticpy_config(), "e.yaml").unwrap();
        let options = ConnectOptions {
            instance: Some("MSSP".into()),
            tenant_id: Some(self.tenants[i].clone()),
            ..Default::default()
        };
        self._rt.block_on(async {
            let c = secgraph::Connection::open(Some(&settings), &options).await.unwrap();
            let url = c.graph.url_for(path).unwrap();
            c.graph.send_json(method, &url, body.as_ref()).await.unwrap()
        })
    }

    fn rules_of(&self, i: usize) -> Vec<Value> {
        self.graph(i, reqwest::Method::GET, "/security/rules/detectionRules", None)["value"]
            .as_array()
            .cloned()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

/// Five rules: two made from the hunting library, a device, a user and a mailbox rule written by hand.
fn five_rules(s: &Setup) -> std::path::PathBuf {
    let dir = s.dir.path().join("rules");
    std::fs::create_dir_all(&dir).unwrap();
    for q in ["HuntProcess.encoded_powershell", "HuntCredential.lsass_access"] {
        let out = s.run(&["rules", "from-query", q, "--out", dir.join(format!("{q}.yaml")).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    write(
        &dir,
        "logons.yaml",
        "rules:
  - key: failed-logons
    name: Failed logons
    period: 1H
    query: |
      DeviceLogonEvents
      | where ActionType == \"LogonFailed\"
      | project Timestamp, ReportId, DeviceId, DeviceName, AccountName
    alert:
      title: Failed logon
      severity: low
      category: CredentialAccess
      techniques: [T1110]
      impactedAssets:
        - {type: device, identifier: deviceId}
  - key: local-admin-logon
    name: Local admin logon
    period: 3H
    query: |
      DeviceLogonEvents
      | where IsLocalAdmin == true
      | project Timestamp, ReportId, DeviceId, AccountSid, AccountName
    alert:
      title: Local admin signed in
      severity: medium
      category: PrivilegeEscalation
      impactedAssets:
        - {type: user, identifier: accountSid}
    tags: [identity]
",
    );
    write(
        &dir,
        "phish.yaml",
        "key: phish-delivered
name: Phish delivered to an inbox
period: 0
query: |
  EmailEvents
  | where ThreatTypes has \"Phish\" and DeliveryLocation == \"Inbox/folder\"
  | project Timestamp, ReportId, RecipientEmailAddress, SenderFromAddress, Subject
alert:
  title: Phish in an inbox
  description: A message Defender calls phish reached an inbox.
  severity: high
  category: InitialAccess
  techniques: [T1566.001]
  recommendedActions: Purge the message and reset the recipient's sessions.
  impactedAssets:
    - {type: mailbox, identifier: recipientEmailAddress}
",
    );
    dir
}

fn plan_json(out: &Output) -> Vec<Value> {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn apply_is_idempotent_drift_shows_and_is_restored_and_prune_deletes_only_when_asked() {
    let s = setup();
    let dir = five_rules(&s);
    let dir_s = dir.to_str().unwrap();
    let three = [0usize, 1, 3];

    let out = s.on(&three, &["rules", "plan", dir_s, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "changes → exit 2: {}", text(&out.stderr));
    let plan = plan_json(&out);
    assert_eq!(plan.len(), 15);
    assert!(plan.iter().all(|c| c["action"] == "create"), "{plan:?}");

    let out = s.on(&three, &["rules", "apply", dir_s, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for i in three {
        let rules = s.rules_of(i);
        assert_eq!(rules.len(), 5, "tenant {i}");
        assert!(rules.iter().all(|r| {
            r["queryCondition"]["queryText"]
                .as_str()
                .unwrap()
                .starts_with("// secgraph-rule: key=")
        }));
    }
    assert!(s.rules_of(2).is_empty(), "a tenant not named is not touched");

    // Applying again changes nothing.
    // (Run details move with the clock; what a write changes is lastModifiedDateTime.)
    let modified = || -> Vec<(Value, Value)> {
        three
            .iter()
            .flat_map(|i| s.rules_of(*i))
            .map(|r| (r["id"].clone(), r["lastModifiedDateTime"].clone()))
            .collect()
    };
    let before = modified();
    let out = s.on(&three, &["rules", "apply", dir_s, "--yes", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        plan_json(&out)
            .iter()
            .all(|c| c["action"] == "unchanged" && c["outcome"] == "skipped")
    );
    assert_eq!(before, modified(), "a second apply sends no write");

    // A rule edited in one tenant through the API: drift in that tenant and rule only.
    let target = s.rules_of(1).into_iter().find(|r| r["displayName"] == "Failed logons").unwrap();
    let id = target["id"].as_str().unwrap();
    s.graph(
        1,
        reqwest::Method::PATCH,
        &format!("/security/rules/detectionRules/{id}"),
        Some(json!({"detectionAction": {"alertTemplate": {"severity": "high"}}})),
    );
    let out = s.on(&three, &["rules", "plan", dir_s, "-o", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let changed: Vec<Value> = plan_json(&out).into_iter().filter(|c| c["action"] != "unchanged").collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["TenantId"], s.tenants[1].as_str());
    assert_eq!(changed[0]["key"], "failed-logons");
    assert_eq!(changed[0]["action"], "update");
    assert_eq!(
        changed[0]["fields"],
        json!([{"field": "alert.severity", "remote": "high", "local": "low"}])
    );
    let readable = s.on(&three, &["rules", "plan", dir_s]);
    assert!(
        text(&readable.stdout).contains("alert.severity: \"high\" → \"low\""),
        "{}",
        text(&readable.stdout)
    );

    let out = s.on(&three, &["rules", "apply", dir_s, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = s.on(&three, &["rules", "plan", dir_s]);
    assert_eq!(out.status.code(), Some(0), "restored: {}", text(&out.stdout));

    // A rule removed from the folder: kept without --prune, deleted with it.
    std::fs::remove_file(dir.join("phish.yaml")).unwrap();
    let out = s.on(&three, &["rules", "plan", dir_s, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "kept rules are no change: {}", text(&out.stderr));
    assert_eq!(plan_json(&out).iter().filter(|c| c["action"] == "kept").count(), 3);
    let out = s.on(&three, &["rules", "apply", dir_s, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(three.iter().all(|i| s.rules_of(*i).len() == 5), "nothing deleted without --prune");
    let out = s.on(&three, &["rules", "plan", dir_s, "--prune", "-o", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        plan_json(&out)
            .iter()
            .filter(|c| c["action"] == "delete" && c["key"] == "phish-delivered")
            .count(),
        3
    );
    let out = s.on(&three, &["rules", "apply", dir_s, "--prune"]);
    assert_eq!(out.status.code(), Some(2), "a dry run without --yes");
    assert!(three.iter().all(|i| s.rules_of(*i).len() == 5), "a dry run deletes nothing");
    let out = s.on(&three, &["rules", "apply", dir_s, "--prune", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for i in three {
        let rules = s.rules_of(i);
        assert_eq!(rules.len(), 4);
        assert!(rules.iter().all(|r| r["displayName"] != "Phish delivered to an inbox"));
    }
}

#[test]
fn a_tenant_without_the_write_role_fails_by_name_while_the_others_are_applied() {
    let s = setup();
    let dir = five_rules(&s);
    let out = s.on(&[0, 1, 2, 3], &["rules", "apply", dir.to_str().unwrap(), "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("Customer 0003") && stderr.contains("CustomDetection.ReadWrite.All"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 4 tenants failed: Customer 0003"), "{stderr}");
    for i in [0, 1, 3] {
        assert_eq!(s.rules_of(i).len(), 5, "tenant {i} applied");
    }
    assert!(s.rules_of(2).is_empty());
    // Reading is allowed there: list shows every tenant.
    let out = s.on(&[0, 1, 2, 3], &["rules", "list", "-o", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 15);
}

#[test]
fn pull_then_plan_shows_no_change_and_adopt_takes_on_portal_rules() {
    let s = setup();
    let dir = five_rules(&s);
    let out = s.on(&[0], &["rules", "apply", dir.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A rule made in the portal: not secgraph's.
    s.graph(
        0,
        reqwest::Method::POST,
        "/security/rules/detectionRules",
        Some(json!({
            "displayName": "Portal rule", "isEnabled": true,
            "queryCondition": {"queryText": "DeviceLogonEvents | project Timestamp, ReportId, DeviceId"},
            "schedule": {"period": "24H"},
            "detectionAction": {"alertTemplate": {"title": "t", "severity": "low", "category": "Execution",
                "impactedAssets": [{"@odata.type": "#microsoft.graph.security.impactedDeviceAsset", "identifier": "deviceId"}]}}
        })),
    );
    let pulled = s.dir.path().join("pulled");
    let out = s.on(&[0], &["rules", "pull", pulled.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("1 rule(s) made elsewhere"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_dir(&pulled).unwrap().count(), 5);
    let out = s.on(&[0], &["rules", "plan", pulled.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let plan = plan_json(&out);
    assert_eq!(plan.iter().filter(|c| c["action"] == "unchanged").count(), 5);
    assert_eq!(
        plan.iter().filter(|c| c["action"] == "unmanaged").count(),
        1,
        "the portal's rule is shown, never touched"
    );

    let out = s.on(&[0], &["rules", "pull", pulled.to_str().unwrap(), "--adopt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(pulled.join("portal-rule.yaml").exists());
    let out = s.on(&[0], &["rules", "plan", pulled.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn invalid_rule_files_are_refused_locally_with_file_line_and_field() {
    let s = setup();
    let dir = s.dir.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "a.yaml",
        "key: sev
name: Bad severity
period: 2H
query: |
  DeviceLogonEvents | project Timestamp, ReportId, DeviceId
alert:
  title: t
  severity: critical
  category: Execution
  impactedAssets:
    - {type: device, identifier: deviceId}
",
    );
    write(
        &dir,
        "b.yaml",
        "key: kql
name: Bad KQL
period: 1H
query: |
  DeviceLogonEvents
  | where ActionType ==
alert:
  title: t
  severity: low
  category: Execution
  impactedAssets:
    - {type: device, identifier: deviceId}
",
    );
    write(
        &dir,
        "c.yaml",
        "key: cols
name: Missing columns
period: 1H
query: |
  DeviceLogonEvents | project Timestamp, DeviceName
alert:
  title: t
  severity: low
  category: Execution
  impactedAssets:
    - {type: user, identifier: accountUpn}
",
    );
    write(
        &dir,
        "d.yaml",
        "key: typo\nname: x\nperiod: 1H\nquery: T\nalert: {title: t, severity: low, category: c, impactedAssets: []}\nenabeld: true\n",
    );
    let out = s.on(&[0], &["rules", "plan", dir.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for expected in [
        "a.yaml:3: period: '2H' is not a period",
        "a.yaml:8: alert.severity: 'critical' is not a severity",
        "b.yaml:6: query: the KQL does not parse",
        "c.yaml:4: query: the query does not return the ReportId column",
        "c.yaml:4: query: the query does not return the AccountUpn column",
        "d.yaml:6: unknown field `enabeld`, expected one of key, name, enabled",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
    assert_eq!(s.emu.requests_with("/security/rules"), 0, "nothing was sent");
    let out = s.run(&["rules", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("a.yaml:8: alert.severity"));
    // The service refuses what the local checks would have: a query without ReportId, sent raw.
    let out = s.run(&[
        "--instance",
        "MSSP",
        "--tenant",
        &s.tenants[0],
        "rules",
        "from-query",
        "HuntCloud.mass_download",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("aggregates ('summarize')"), "{}", text(&out.stderr));
}
