//! Detection rules through the library against the emulator: a plan's update is not made when someone edited the
//! rule after the plan (concurrent edits are reported, never overwritten); a pulled rule plans as unchanged.

use secgraph::rules::{self, Action, Outcome};
use secgraph::{ConnectOptions, QueryProvider};
use secgraph_emulator::{Emulator, EmulatorConfig};
use serde_json::json;

const RULE: &str = "key: failed-logons
name: Failed logons
period: 1H
query: |
  DeviceLogonEvents
  | where ActionType == \"LogonFailed\"
  | project Timestamp, ReportId, DeviceId
alert:
  title: Failed logon
  severity: low
  category: CredentialAccess
  impactedAssets:
    - {type: device, identifier: deviceId}
";

/// An emulator of 30 alerts, its settings, and a connection to its first tenant.
async fn emulator() -> (Emulator, secgraph::config::Settings, QueryProvider) {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    (emu, s, p)
}

#[tokio::test]
async fn an_edit_made_after_the_plan_is_a_conflict_not_overwritten() {
    let (emu, s, p) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), RULE).unwrap();
    let local = rules::load(dir.path()).unwrap();

    let plan = rules::plan::plan(&local, &rules::plan::list(&p).await.unwrap(), false).unwrap();
    assert_eq!(plan[0].action, Action::Create);
    let done = rules::plan::apply(&p, plan).await.unwrap();
    assert_eq!(done[0].outcome, Outcome::Done);
    let id = done[0].id.clone().unwrap();

    // The folder changes the severity; the plan sees the rule as it is now.
    std::fs::write(dir.path().join("r.yaml"), RULE.replace("severity: low", "severity: medium")).unwrap();
    let local = rules::load(dir.path()).unwrap();
    let plan = rules::plan::plan(&local, &rules::plan::list(&p).await.unwrap(), false).unwrap();
    assert_eq!(plan[0].action, Action::Update);
    // Meanwhile someone edits it in the portal (a later modification time on the emulator's clock).
    emu.advance_clock(std::time::Duration::from_secs(5));
    let c = secgraph::Connection::open(Some(&s), &ConnectOptions::default()).await.unwrap();
    let url = c.graph.url_for(&format!("/security/rules/detectionRules/{id}")).unwrap();
    c.graph
        .send_json(reqwest::Method::PATCH, &url, Some(&json!({"displayName": "Failed logons (tuned)"})))
        .await
        .unwrap();
    let applied = rules::plan::apply(&p, plan).await.unwrap();
    match &applied[0].outcome {
        Outcome::Conflict(why) => assert!(why.contains("changed on the service since the plan"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let now = rules::plan::get(&p, &id).await.unwrap();
    assert_eq!(now.rule.name, "Failed logons (tuned)", "the portal's edit stands");
    assert_eq!(now.rule.alert.severity, "low", "the stale update was not made");

    // Planned again, the update goes through (and restores the name too).
    let plan = rules::plan::plan(&local, &rules::plan::list(&p).await.unwrap(), false).unwrap();
    let fields: Vec<&str> = plan[0].fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["name", "alert.severity"]);
    assert_eq!(rules::plan::apply(&p, plan).await.unwrap()[0].outcome, Outcome::Done);
    let plan = rules::plan::plan(&local, &rules::plan::list(&p).await.unwrap(), false).unwrap();
    assert_eq!(plan[0].action, Action::Unchanged);
}

/// A rule applied through the API runs on the emulator's clock and raises alerts the same API reads back: each
/// matching row once, with the rule's title, severity and detector, and the impacted device as evidence.
#[tokio::test]
async fn an_applied_rule_raises_alerts_that_read_back() {
    let (emu, _, p) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), RULE.replace("period: 1H", "period: 24H")).unwrap();
    let local = rules::load(dir.path()).unwrap();
    let plan = rules::plan::plan(&local, &rules::plan::list(&p).await.unwrap(), false).unwrap();
    let applied = rules::plan::apply(&p, plan).await.unwrap();
    let rule = rules::plan::get(&p, applied[0].id.as_deref().unwrap()).await.unwrap();
    // (Seeded alerts may come from custom detections too: the rule's own carry its detector id.)
    let detector = rule_detector(&p, applied[0].id.as_deref().unwrap()).await;
    let custom = |rows: &[secgraph::Row]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(secgraph::Row::to_value)
            .filter(|a| a["detectionSource"] == "customDetection" && a["detectorId"] == detector.as_str())
            .collect()
    };
    let mut before: Vec<secgraph::Row> = Vec::new();
    p.exec("/security/alerts_v2", &mut before).await.unwrap();
    assert!(custom(&before).is_empty(), "the rule has not run yet");

    emu.advance_clock(std::time::Duration::from_secs(24 * 3600 + 60));
    let mut after: Vec<secgraph::Row> = Vec::new();
    p.exec("/security/alerts_v2", &mut after).await.unwrap();
    let raised = custom(&after);
    assert!(!raised.is_empty(), "a day later the rule has run and alerted");
    for a in &raised {
        assert_eq!(a["title"], "Failed logon");
        assert_eq!(a["severity"], "low");
        assert_eq!(a["evidence"][0]["@odata.type"], "#microsoft.graph.security.deviceEvidence");
        assert!(a["evidence"][0]["mdeDeviceId"].is_string());
    }
    let mut again: Vec<secgraph::Row> = Vec::new();
    p.exec("/security/alerts_v2", &mut again).await.unwrap();
    assert_eq!(
        custom(&again).len(),
        raised.len(),
        "a row raises one alert, however often alerts are read"
    );
    let run = rules::plan::get(&p, &rule.id).await.unwrap();
    assert_eq!(run.last_run_status.as_deref(), Some("completed"));
}

async fn rule_detector(p: &QueryProvider, id: &str) -> String {
    p.get(&format!("/security/rules/detectionRules/{id}")).await.unwrap()["detectorId"]
        .as_str()
        .unwrap()
        .to_string()
}
