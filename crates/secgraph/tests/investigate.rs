//! Beyond alerts, against the emulator: threat intelligence families with declared types and enrichment (one lookup
//! per indicator across tenants; a tenant without TI gets its alerts and a warning), the audit log search (resumed,
//! not started again, after an interruption; records once), identity health, sensors and response actions.

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use futures_util::StreamExt;
use secgraph::enrich::Enrichment;
use secgraph::{ConnectOptions, QueryProvider, Row};
use secgraph_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use std::sync::Arc;

async fn emulator(tenants: usize) -> (Emulator, secgraph::config::Settings) {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 60,
        tenants,
        alerts_per_tenant: Some(40),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    (emu, s)
}

async fn provider(s: &secgraph::config::Settings, options: ConnectOptions) -> QueryProvider {
    QueryProvider::connect(Some(s), &options).await.unwrap()
}

fn mssp(tenant: &str) -> ConnectOptions {
    ConnectOptions {
        instance: Some("MSSP".into()),
        tenant_id: Some(tenant.into()),
        ..Default::default()
    }
}

fn column_type(batches: &(arrow_schema::SchemaRef, Vec<RecordBatch>), name: &str) -> DataType {
    batches
        .0
        .field_with_name(name)
        .unwrap_or_else(|_| panic!("no column {name}"))
        .data_type()
        .clone()
}

#[tokio::test]
async fn threat_intelligence_families_have_declared_types() {
    let (_emu, s) = emulator(0).await;
    let p = provider(&s, ConnectOptions::default()).await;
    let run = |name: &'static str, params: Vec<(&'static str, &'static str)>| {
        let p = p.clone();
        async move {
            let params: Vec<(String, String)> = params.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let q = p.render_strict(name, &params).unwrap();
            p.record_batches(&q).await.unwrap_or_else(|e| panic!("{name}: {e}"))
        }
    };
    let rep = run("ThreatIntel.host_reputation", vec![("host", "update-check.example-c2.net")]).await;
    assert_eq!(rep.1.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert_eq!(column_type(&rep, "score"), DataType::Int64);
    let host = run("ThreatIntel.host", vec![("host", "203.0.113.27")]).await;
    assert!(matches!(column_type(&host, "firstSeenDateTime"), DataType::Timestamp(..)));
    let pdns = run("ThreatIntel.passive_dns", vec![("host", "update-check.example-c2.net")]).await;
    assert_eq!(pdns.1.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    let articles = run("ThreatIntel.articles", vec![("search", "203.0.113.77")]).await;
    assert_eq!(articles.1.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    assert!(matches!(column_type(&articles, "createdDateTime"), DataType::Timestamp(..)));
    let all = run("ThreatIntel.articles", vec![]).await;
    assert_eq!(all.1.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
    let ind = run("ThreatIntel.article_indicators", vec![("article_id", "a1b2c3d4")]).await;
    assert_eq!(ind.1.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    for (name, params) in [
        ("ThreatIntel.whois", vec![("host", "login-microsoftonline.example-phish.net")]),
        ("ThreatIntel.ssl_certificates", vec![("host", "update-check.example-c2.net")]),
        ("ThreatIntel.article", vec![("article_id", "b2c3d4e5")]),
        ("ThreatIntel.intel_profiles", vec![]),
        ("ThreatIntel.vulnerability", vec![("cve", "CVE-2024-21762")]),
        ("Identity.health_issues", vec![("status", "open")]),
        ("Identity.sensors", vec![]),
        ("Identity.accounts", vec![]),
    ] {
        let b = run(name, params).await;
        assert!(b.1.iter().map(RecordBatch::num_rows).sum::<usize>() >= 1, "{name}");
    }
    let sensors = run("Identity.sensors", vec![]).await;
    assert_eq!(column_type(&sensors, "openHealthIssuesCount"), DataType::Int64);
    // An unknown host is the service's 404, named.
    let q = p
        .render_strict("ThreatIntel.host", &[("host".into(), "never-seen.example".into())])
        .unwrap();
    let err = p.record_batches(&q).await.unwrap_err();
    assert_eq!(err.http_status(), Some(404), "{err}");
}

#[tokio::test]
async fn enrichment_looks_each_indicator_up_once_across_tenants_and_skips_a_tenant_without_ti() {
    let (emu, s) = emulator(3).await;
    let customers = emu.customers().to_vec();
    assert!(customers[0].threat_intel && !customers[1].threat_intel && customers[2].threat_intel);
    let enrich = Arc::new(Enrichment::new(None, 100_000));
    let q = |p: &QueryProvider| p.render("Alerts.list", &[("start".into(), "-31d".into())]).unwrap();
    let mut enriched: Vec<Vec<Value>> = Vec::new();
    for i in [0, 2] {
        let p = provider(&s, mssp(&customers[i].tenant_id))
            .await
            .with_enrichment(Some(enrich.clone()));
        let mut rows: Vec<Row> = Vec::new();
        p.run_rendered(&q(&p), &mut rows).await.unwrap();
        enriched.push(rows.iter().map(Row::to_value).collect());
    }
    let indicators = |rows: &[Value]| -> std::collections::BTreeSet<String> {
        rows.iter()
            .flat_map(|r| secgraph::enrich::indicators_of(r).into_iter().map(|(i, _)| i))
            .collect()
    };
    let (a, b) = (indicators(&enriched[0]), indicators(&enriched[1]));
    let shared: Vec<&String> = a.intersection(&b).collect();
    assert!(!shared.is_empty(), "the two tenants' alerts share indicators");
    let all: std::collections::BTreeSet<&String> = a.union(&b).collect();
    let statuses: std::collections::BTreeSet<String> = enriched.iter().flatten().map(|r| r["ti"]["status"].to_string()).collect();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        enrich.lookups(),
        all.len(),
        "one lookup per distinct indicator, whatever the tenant"
    );
    let reputation_calls: usize = all.iter().map(|i| emu.requests_with(&format!("/hosts/{i}/reputation"))).sum();
    let hashes = all.iter().filter(|i| i.len() == 64).count();
    assert_eq!(
        reputation_calls,
        all.len() - hashes,
        "the emulator saw one reputation request per host"
    );
    let row = enriched[0]
        .iter()
        .find(|r| r["ti"]["verdict"] == "malicious")
        .expect("a malicious indicator");
    assert_eq!(row["ti"]["status"], "ok");
    assert!(
        row["ti"]["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["classification"] == "malicious")
    );
    assert!(
        enriched[0].iter().any(|r| !r["ti"]["articles"].as_array().unwrap().is_empty()),
        "articles cite some"
    );

    // The tenant without a TI licence: every alert, unenriched, saying why.
    let p = provider(&s, mssp(&customers[1].tenant_id))
        .await
        .with_enrichment(Some(Arc::new(Enrichment::new(None, 100_000))));
    let mut rows: Vec<Row> = Vec::new();
    p.run_rendered(&q(&p), &mut rows).await.unwrap();
    assert_eq!(rows.len(), 40);
    let rows: Vec<Value> = rows.iter().map(Row::to_value).collect();
    assert!(
        rows.iter()
            .filter(|r| !secgraph::enrich::indicators_of(r).is_empty())
            .all(|r| r["ti"]["status"].as_str().unwrap().contains("no Threat Intelligence access"))
    );
}

#[tokio::test]
async fn an_interrupted_audit_search_is_resumed_not_started_again() {
    let (emu, s) = emulator(0).await;
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: this test binary's other tests do not read XDG_CACHE_HOME concurrently (the audit state lives there).
    unsafe { std::env::set_var("XDG_CACHE_HOME", cache.path()) };
    let p = provider(&s, ConnectOptions::default()).await;
    let params = vec![
        ("start".to_string(), "-40d".to_string()),
        ("operations".to_string(), "FileDownloaded,New-InboxRule".to_string()),
    ];
    let q = p.render_strict("AuditLog.search", &params).unwrap();
    assert!(q.describe().starts_with("POST /security/auditLog/queries"), "{}", q.describe());
    // First run: dropped as soon as the search has been created and its id kept (placed by the kept file, not by a
    // delay), while the run waits for the search to finish.
    let kept = || -> usize {
        std::fs::read_dir(cache.path().join("secgraph/auditlog"))
            .map(|d| {
                d.flatten()
                    .flat_map(|t| std::fs::read_dir(t.path()).into_iter().flatten().flatten())
                    .filter(|f| f.path().extension().is_some_and(|e| e == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    let mut pages = p.pages(&q).unwrap();
    let run = tokio::spawn(async move { pages.next().await.map(|r| r.map(|p| p.rows.len())) });
    while kept() == 0 {
        assert!(!run.is_finished(), "the run ended before creating its search");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled(), "dropped while waiting for the search");
    assert_eq!(emu.requests_to("/security/auditLog/queries"), 1, "one create");
    // The search completes on the service's clock; the rerun resumes it.
    emu.advance_clock(std::time::Duration::from_secs(10));
    let q = p.render_strict("AuditLog.search", &params).unwrap();
    let mut rows: Vec<Row> = Vec::new();
    let summary = p.run_rendered(&q, &mut rows).await.unwrap();
    assert_eq!(emu.requests_to("/security/auditLog/queries"), 1, "no second create");
    let values: Vec<Value> = rows.iter().map(Row::to_value).collect();
    let ids: std::collections::HashSet<&str> = values.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), values.len(), "each record once");
    assert!(values.iter().any(|r| r["operation"] == "New-InboxRule"));
    assert!(values.iter().filter(|r| r["operation"] == "FileDownloaded").count() >= 80);
    assert!(
        values
            .iter()
            .all(|r| r["operation"] == "New-InboxRule" || r["operation"] == "FileDownloaded")
    );
    assert!(summary.pages >= 2, "the records were paged");
    // Done: the kept id is gone, so the next run searches anew.
    assert_eq!(kept(), 0);
}

#[tokio::test]
async fn identity_actions_plan_then_change_the_account_and_report_what_is_already_so() {
    let (_emu, s) = emulator(0).await;
    let p = provider(&s, ConnectOptions::default()).await;
    let mut rows: Vec<Row> = Vec::new();
    p.exec("/security/identities/identityAccounts", &mut rows).await.unwrap();
    let account = rows[0].to_value();
    let name = account["displayName"].as_str().unwrap().to_string();
    let plan = secgraph::identity::plan(&p, &name, "disable", None).await.unwrap();
    assert_eq!(plan.identity_provider, "entraID");
    assert!(plan.already.is_none() && plan.request.contains("invokeAction"));
    let reply = secgraph::identity::invoke(&p, &plan).await.unwrap();
    assert_eq!(reply["action"], "disable");
    let now = p
        .get(&format!("/security/identities/identityAccounts/{}", plan.account))
        .await
        .unwrap();
    assert_eq!(now["isEnabled"], false);
    let again = secgraph::identity::plan(&p, &plan.account, "disable", None).await.unwrap();
    assert_eq!(again.already.as_deref(), Some("the account is already disabled"));
    let ad = secgraph::identity::plan(&p, &plan.account, "forcePasswordReset", None)
        .await
        .unwrap();
    assert_eq!(ad.identity_provider, "activeDirectory");
    let err = secgraph::identity::plan(&p, &plan.account, "forcePasswordReset", Some("entraID"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allows forcePasswordReset"), "{err}");
}
