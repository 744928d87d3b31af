//! What clients written by others send and expect: ARM's metadata shapes by api-version, token requests without a
//! Content-Type, Entra's refusal of app-only sign-in at the multi-tenant authorities, 429 without Retry-After.

mod common;

use secgraph_emulator::faults::FaultSpec;
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, EmulatorConfig};
use serde_json::Value;

#[tokio::test]
async fn cloud_metadata_answers_the_shape_each_api_version_gets_from_arm() {
    let (emu, c) = common::start(EmulatorConfig::default()).await;
    let get = |v: &str| {
        let c = c.clone();
        let url = format!("{}/metadata/endpoints?api-version={v}", emu.base_url());
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // msticpy 3.x: resp.json()["authentication"]["loginEndpoint"] on `latest`.
    let (s, v) = get("latest").await;
    assert_eq!(s, 200);
    assert!(
        v["authentication"]["loginEndpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert!(get("2015-01-01").await.1.is_object());
    assert!(get("2018-01-01").await.1.is_object());
    // azure-cli and later readers get the list of clouds.
    assert!(get("2019-05-01").await.1.is_array());
    assert!(get("2022-09-01").await.1.is_array());
    let (s, v) = get("yesterday").await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("InvalidApiVersionParameter")));
}

#[tokio::test]
async fn a_form_without_content_type_is_read_and_json_is_refused() {
    let (emu, c) = common::start(EmulatorConfig::default()).await;
    let url = format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url());
    let form = format!(
        "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
    );
    // reqwest adds no Content-Type for a plain string body.
    let r = c.post(&url).body(form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.json::<Value>().await.unwrap()["access_token"].is_string());
    let r = c
        .post(&url)
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_codes"][0], 900144, "{v}");
}

#[tokio::test]
async fn app_only_sign_in_needs_a_tenant_as_entra_says() {
    let (emu, c) = common::start(EmulatorConfig::default()).await;
    for (authority, code) in [("common", 9001023), ("consumers", 9001023), ("organizations", 50059)] {
        let (s, v) = common::token_request(
            &emu,
            &c,
            authority,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")), "{authority}: {v}");
        assert_eq!(v["error_codes"][0], code, "{authority}: {v}");
    }
}

#[tokio::test]
async fn a_429_can_come_without_retry_after() {
    let (emu, c, token) = common::start_with_graph_token(EmulatorConfig {
        faults: Some(FaultSpec::parse("alerts_v2:429(none)@first=1").unwrap()),
        ..Default::default()
    })
    .await;
    let r = c
        .get(format!("{}/v1.0/security/alerts_v2?$top=1", emu.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn filtered_pages_resume_from_a_cursor_and_match_one_big_page() {
    let (emu, c, token) = common::start_with_graph_token(EmulatorConfig {
        alerts: 300,
        ..Default::default()
    })
    .await;
    let get = |url: String| {
        let (c, token) = (c.clone(), token.clone());
        async move { c.get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let ids = |v: &Value| -> Vec<String> {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let base = format!("{}/v1.0/security/alerts_v2", emu.base_url());
    let all = get(format!("{base}?$filter=severity eq 'high'&$top=1000&$count=true")).await;
    let want = ids(&all);
    assert_eq!(all["@odata.count"].as_u64(), Some(want.len() as u64));
    assert!(want.len() > 14, "enough high alerts for several pages");
    let mut got = Vec::new();
    let mut next = Some(format!("{base}?$filter=severity eq 'high'&$top=7&$count=true"));
    while let Some(url) = next.take() {
        let page = get(url).await;
        assert_eq!(page["@odata.count"].as_u64(), Some(want.len() as u64));
        got.extend(ids(&page));
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(got, want);
    // $skip counts hits, not items.
    let skipped = get(format!("{base}?$filter=severity eq 'high'&$top=5&$skip=3")).await;
    assert_eq!(ids(&skipped), want[3..8].to_vec());
}

/// An MSSP's customer tenants: each its own data (ids, counts, every alert's `tenantId` naming it), the same in every
/// run; a tenant that never consented answers AADSTS7000229, one without roles 403; each app in each tenant keeps
/// Graph's request rate, answered 429 with Retry-After beyond it.
#[tokio::test]
async fn customer_tenants_have_their_own_data_consent_and_rate() {
    use secgraph_emulator::directory::{Consent, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET};
    let config = || EmulatorConfig {
        alerts: 50,
        tenants: 12,
        alerts_per_tenant: Some(20),
        // One request a minute: a bucket that refills only after a minute, so no pause of this test refills it.
        requests_per_minute: Some(1),
        ..Default::default()
    };
    let (emu, c) = common::start(config()).await;
    let customers = emu.customers().to_vec();
    assert_eq!(customers.len(), 12);
    assert_eq!(customers[4].consent, Consent::RolesRemoved);
    assert_eq!(customers[9].consent, Consent::Missing);
    let csv = std::fs::read_to_string(emu.tenants_path().unwrap()).unwrap();
    assert!(csv.starts_with("tenant,name,tags\n") && csv.contains(&format!("{},Customer 0001,prod;eu", customers[0].tenant_id)));

    let graph = "https://graph.microsoft.com/.default";
    let mut seen = std::collections::HashSet::new();
    for (i, cust) in customers.iter().enumerate() {
        let tok = common::client_credentials(&emu, &c, &cust.tenant_id, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph).await;
        if cust.consent == Consent::Missing {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", MSSP_CLIENT_ID),
                ("client_secret", MSSP_CLIENT_SECRET),
                ("scope", graph),
            ];
            let (status, v) = common::token_request(&emu, &c, &cust.tenant_id, &form).await;
            assert_eq!(status, 400);
            assert_eq!(v["error_codes"][0], 7000229, "{v}");
            assert!(tok.is_none());
            continue;
        }
        let tok = tok.unwrap();
        let r = c
            .get(format!("{}/v1.0/security/alerts_v2?$top=100", emu.base_url()))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
        if cust.consent == Consent::RolesRemoved {
            assert_eq!(r.status().as_u16(), 403, "customer {i}");
            continue;
        }
        let v: Value = r.json().await.unwrap();
        let alerts = v["value"].as_array().unwrap();
        assert_eq!(alerts.len(), 20, "customer {i}");
        for a in alerts {
            assert_eq!(a["tenantId"], cust.tenant_id.as_str());
            assert!(seen.insert(a["id"].as_str().unwrap().to_string()), "an alert id in two tenants");
        }
    }
    // The same tenant's data in another emulator with the same seed.
    let (again, _) = common::start(config()).await;
    let a = emu.tenant_dataset(&customers[0].tenant_id);
    let b = again.tenant_dataset(&customers[0].tenant_id);
    assert_eq!(
        a.alerts_v2.iter().map(|x| x.id()).collect::<Vec<_>>(),
        b.alerts_v2.iter().map(|x| x.id()).collect::<Vec<_>>()
    );

    // Rate: one request a minute for one app in one tenant, which the read above used: the next is 429.
    let tok = common::client_credentials(&emu, &c, &customers[1].tenant_id, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph)
        .await
        .unwrap();
    let r = c
        .get(format!("{}/v1.0/security/incidents?$top=1", emu.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let secs: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "TooManyRequests");
    // Another tenant of the same app (its home, not read yet) has its own budget.
    let other = common::client_credentials(&emu, &c, DEMO_TENANT_ID, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph)
        .await
        .unwrap();
    let r = c
        .get(format!("{}/v1.0/security/incidents?$top=1", emu.base_url()))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Custom detection rules: the service's 400s for what it refuses (missing fields, a bad period, KQL that does not
/// parse, a query without ReportId or without an impacted asset's column), 403 for an app that may only read rules,
/// and run details that follow the schedule on the emulator's clock.
#[tokio::test]
async fn detection_rules_are_validated_as_the_service_does() {
    use secgraph_emulator::directory::{Consent, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET};
    let (emu, c) = common::start(EmulatorConfig {
        alerts: 20,
        tenants: 3,
        ..Default::default()
    })
    .await;
    let customers = emu.customers().to_vec();
    let graph = "https://graph.microsoft.com/.default";
    let tok = common::client_credentials(&emu, &c, &customers[0].tenant_id, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph)
        .await
        .unwrap();
    let url = format!("{}/v1.0/security/rules/detectionRules", emu.base_url());
    let rule = |query: &str, period: &str, asset: &str| {
        serde_json::json!({
            "displayName": "r", "isEnabled": true,
            "queryCondition": {"queryText": query},
            "schedule": {"period": period},
            "detectionAction": {"alertTemplate": {"title": "t", "severity": "low", "category": "Execution",
                "impactedAssets": [{"@odata.type": "#microsoft.graph.security.impactedDeviceAsset", "identifier": asset}]}}
        })
    };
    let post = |body: Value, tok: String| {
        let c = c.clone();
        let url = url.clone();
        async move {
            let r = c.post(&url).bearer_auth(tok).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let good = "DeviceLogonEvents | project Timestamp, ReportId, DeviceId";
    for (body, expected) in [
        (rule(good, "2H", "deviceId"), "Invalid schedule period '2H'"),
        (
            rule("DeviceLogonEvents | where", "1H", "deviceId"),
            "Query is invalid: Syntax error",
        ),
        (
            rule("DeviceLogonEvents | project Timestamp, DeviceId", "1H", "deviceId"),
            "'ReportId' column",
        ),
        (rule(good, "1H", "deviceName"), "impacted asset identifier 'deviceName'"),
        (serde_json::json!({"isEnabled": true}), "The field 'displayName' is required."),
    ] {
        let (status, v) = post(body, tok.clone()).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "BadRequest");
        assert!(v["error"]["message"].as_str().unwrap().contains(expected), "{expected}: {v}");
        assert!(v["error"]["innerError"]["request-id"].is_string());
    }
    let (status, created) = post(rule(good, "1H", "deviceId"), tok.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["createdBy"], "secgraph MSSP (multi-tenant)");
    assert_eq!(created["lastRunDetails"]["status"], Value::Null, "not run yet");
    emu.advance_clock(std::time::Duration::from_secs(2 * 3600 + 60));
    // (Tokens expire on the same clock.)
    let tok = common::client_credentials(&emu, &c, &customers[0].tenant_id, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph)
        .await
        .unwrap();
    let got: Value = c
        .get(format!("{url}/{}", created["id"].as_str().unwrap()))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["lastRunDetails"]["status"], "completed");
    assert!(got["lastRunDetails"]["lastRunDateTime"].as_str().unwrap() < got["schedule"]["nextRunDateTime"].as_str().unwrap());

    // Rules are per tenant; the third customer may read them but not write.
    let other = common::client_credentials(&emu, &c, &customers[1].tenant_id, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph)
        .await
        .unwrap();
    let list: Value = c.get(&url).bearer_auth(&other).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["value"].as_array().unwrap().len(), 0);
    assert_eq!(customers[2].consent, Consent::DetectionsReadOnly);
    let ro = common::client_credentials(&emu, &c, &customers[2].tenant_id, MSSP_CLIENT_ID, MSSP_CLIENT_SECRET, graph)
        .await
        .unwrap();
    assert_eq!(c.get(&url).bearer_auth(&ro).send().await.unwrap().status().as_u16(), 200);
    let (status, v) = post(rule(good, "1H", "deviceId"), ro).await;
    assert_eq!(status, 403);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("CustomDetection.ReadWrite.All"),
        "{v}"
    );
}
