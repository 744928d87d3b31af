//! runHuntingQuery over HTTPS: response shape, consistency with alerts_v2, errors.

use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig, directory};
use serde_json::{Value, json};

mod common;

async fn setup() -> (Emulator, reqwest::Client, String) {
    let (emu, c) = common::start(EmulatorConfig {
        alerts: 150,
        ..Default::default()
    })
    .await;
    let tok = token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    (emu, c, tok)
}

async fn token(emu: &Emulator, c: &reqwest::Client, id: &str, secret: &str) -> String {
    common::client_credentials(emu, c, DEMO_TENANT_ID, id, secret, "https://graph.microsoft.com/.default")
        .await
        .expect("a Graph token")
}

async fn hunt(emu: &Emulator, c: &reqwest::Client, tok: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{}/v1.0/security/runHuntingQuery", emu.base_url()))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn hunting_tables_agree_with_alerts() {
    let (emu, c, tok) = setup().await;
    let ds = emu.dataset();
    let (s, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo | count"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["schema"], json!([{"name": "Count", "type": "Int64"}]));
    assert_eq!(v["results"][0]["Count"], ds.alerts_v2.len());

    let evidence: usize = ds.alerts_v2.iter().map(|a| a["evidence"].as_array().unwrap().len()).sum();
    let (_, v) = hunt(
        &emu,
        &c,
        &tok,
        json!({"query": "AlertEvidence | summarize n = count()", "timespan": "P31D"}),
    )
    .await;
    assert_eq!(v["results"][0]["n"], evidence);

    // A device from an alert's evidence: its alerts by hunting equal its alerts by Graph.
    let dev = ds
        .alerts_v2
        .iter()
        .flat_map(|a| a["evidence"].as_array().unwrap())
        .find_map(|e| e["deviceDnsName"].as_str())
        .unwrap();
    let want: std::collections::BTreeSet<&str> = ds
        .alerts_v2
        .iter()
        .filter(|a| a["evidence"].as_array().unwrap().iter().any(|e| e["deviceDnsName"] == dev))
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let (_, v) = hunt(
        &emu,
        &c,
        &tok,
        json!({"Query": format!("AlertEvidence | where EntityType == 'Machine' and DeviceName =~ '{dev}' | distinct AlertId")}),
    )
    .await;
    let got: std::collections::BTreeSet<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["AlertId"].as_str().unwrap())
        .collect();
    assert_eq!(got, want);
    let (_, v) = hunt(
        &emu,
        &c,
        &tok,
        json!({"Query": format!("DeviceProcessEvents | where DeviceName == '{dev}' | take 1 | project DeviceName, Timestamp")}),
    )
    .await;
    assert_eq!(v["results"][0]["DeviceName"], dev);
    assert_eq!(v["schema"][1]["type"], "DateTime");

    // A join across tables.
    let (s, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo | where Severity == 'High' | join kind=inner (AlertEvidence | where EntityType == 'Ip') on AlertId | summarize dcount(RemoteIP)"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["results"][0]["dcount_RemoteIP"].as_i64().unwrap() >= 1);

    // A narrow Timespan hides older rows.
    let (_, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo | count", "Timespan": "PT1H"})).await;
    assert!(v["results"][0]["Count"].as_u64().unwrap() < ds.alerts_v2.len() as u64);
}

#[tokio::test]
async fn hunting_errors() {
    let (emu, c, tok) = setup().await;
    let (s, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo\n| where Severity =="})).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "BadRequest");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("line 2"), "{m}");
    let (s, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo | mv-expand AttackTechniques"})).await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("not supported"), "{v}");
    let (s, _) = hunt(&emu, &c, &tok, json!({"Timespan": "P1D"})).await;
    assert_eq!(s, 400);
    let (s, _) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo", "Timespan": "soon"})).await;
    assert_eq!(s, 400);
    let weak = token(&emu, &c, directory::NO_ROLES_CLIENT_ID, "no-roles-secret").await;
    let (s, v) = hunt(&emu, &c, &weak, json!({"Query": "AlertInfo | take 1"})).await;
    assert_eq!(s, 403);
    assert!(v["error"]["message"].as_str().unwrap().contains("ThreatHunting.Read.All"));
}
