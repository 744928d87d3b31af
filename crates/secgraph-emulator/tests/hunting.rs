//! runHuntingQuery over HTTPS: response shape, consistency with alerts_v2, errors.

use common::hunt;
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
    let (s, v) = hunt(
        &emu,
        &c,
        &tok,
        json!({"Query": "AlertInfo | make-series n = count() on Timestamp step 1h"}),
    )
    .await;
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

#[tokio::test]
async fn hunting_quotas_answer_429_naming_the_quota() {
    use secgraph_emulator::hunting::quota::HuntingQuota;
    let (emu, c) = common::start(EmulatorConfig {
        alerts: 150,
        hunting_quota: HuntingQuota {
            calls_per_minute: 3,
            max_result_bytes: 20_000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let tok = token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    // A result over the size limit is refused whole.
    let (s, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertEvidence"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("over the limit of 20000 bytes"),
        "{v}"
    );
    for _ in 0..2 {
        let (s, v) = hunt(&emu, &c, &tok, json!({"Query": "AlertInfo | take 1"})).await;
        assert_eq!(s, 200, "{v}");
    }
    // The fourth call within the minute: 429, how long to wait, and which quota.
    let r = c
        .post(format!("{}/v1.0/security/runHuntingQuery", emu.base_url()))
        .bearer_auth(&tok)
        .json(&json!({"Query": "AlertInfo | take 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "TooManyRequests");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("3 calls a minute per tenant"),
        "{v}"
    );
    // The quota is per tenant: the second tenant's app is not throttled.
    let other = common::client_credentials(
        &emu,
        &c,
        directory::SECOND_TENANT_ID,
        directory::SECOND_CLIENT_ID,
        "fabrikam-demo-secret",
        "https://graph.microsoft.com/.default",
    )
    .await
    .expect("a token for the second tenant");
    let (s, v) = hunt(&emu, &c, &other, json!({"Query": "AlertInfo | take 1"})).await;
    assert_eq!(s, 200, "{v}");
}
