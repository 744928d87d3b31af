//! Drives the emulator over HTTPS exactly as a third-party client would: plain reqwest, the emulator's CA trusted.

use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig, directory};
use serde_json::Value;

mod common;

use common::{start, token_request as token_reply};

async fn app_token(emu: &Emulator, c: &reqwest::Client, client_id: &str, secret: &str) -> String {
    let scope = format!("{}/.default", emu.base_url());
    common::client_credentials(emu, c, DEMO_TENANT_ID, client_id, secret, &scope)
        .await
        .expect("an app token")
}

async fn get(emu: &Emulator, c: &reqwest::Client, token: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = c.get(format!("{}{path}", emu.base_url())).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn token_endpoint_issues_tokens_and_documented_errors() {
    let (emu, c) = start(EmulatorConfig::default()).await;
    let scope = format!("{}/.default", emu.base_url());
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
        ("scope", scope.as_str()),
    ];
    let (s, v) = token_reply(&emu, &c, DEMO_TENANT_ID, &ok).await;
    assert_eq!(s, 200);
    assert_eq!(v["token_type"], "Bearer");
    let exp = v["expires_in"].as_i64().unwrap();
    assert!((3600..=5400).contains(&exp), "{exp}");
    assert_eq!(v["access_token"].as_str().unwrap().split('.').count(), 3);
    // Graph's public resource URI works too, and the tenant may be named by domain.
    let (s, _) = token_reply(
        &emu,
        &c,
        directory::DEMO_TENANT_DOMAIN,
        &[ok[0], ok[1], ok[2], ("scope", "https://graph.microsoft.com/.default")],
    )
    .await;
    assert_eq!(s, 200);

    // (tenant, form, HTTP status, error, AADSTS code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        ("no-such-tenant", ok.to_vec(), 400, "invalid_request", 90002),
        (
            DEMO_TENANT_ID,
            vec![ok[0], ("client_id", "11111111-1111-1111-1111-111111111111"), ok[2], ok[3]],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            DEMO_TENANT_ID,
            vec![ok[0], ok[1], ("client_secret", "wrong"), ok[3]],
            401,
            "invalid_client",
            7000215,
        ),
        (DEMO_TENANT_ID, vec![ok[0], ok[1], ok[3]], 401, "invalid_client", 7000218),
        (
            DEMO_TENANT_ID,
            vec![ok[0], ok[1], ok[2], ("scope", "User.Read")],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            DEMO_TENANT_ID,
            vec![ok[0], ok[1], ok[2], ("scope", "https://unknown.example/.default")],
            400,
            "invalid_resource",
            500011,
        ),
        (DEMO_TENANT_ID, vec![ok[0], ok[1], ok[2]], 400, "invalid_request", 900144),
        (
            DEMO_TENANT_ID,
            vec![("grant_type", "password"), ok[1], ok[2], ok[3]],
            400,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for (tenant, form, status, error, code) in cases {
        let (s, v) = token_reply(&emu, &c, tenant, &form).await;
        assert_eq!(s, status, "{error}: {v}");
        assert_eq!(v["error"], error, "{v}");
        assert_eq!(v["error_codes"][0].as_u64(), Some(code), "{v}");
        let d = v["error_description"].as_str().unwrap();
        assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
        assert!(d.contains("Trace ID: ") && d.contains("Correlation ID: "), "{d}");
        assert!(v["trace_id"].is_string() && v["correlation_id"].is_string() && v["timestamp"].is_string());
        assert!(!d.contains("wrong"), "the description never echoes the secret: {d}");
    }
}

#[tokio::test]
async fn discovery_and_cloud_metadata() {
    let (emu, c) = start(EmulatorConfig::default()).await;
    let v: Value = c
        .get(format!("{}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["token_endpoint"],
        format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url())
    );
    assert!(
        v["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "private_key_jwt")
    );
    let keys: Value = c.get(v["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(keys["keys"][0]["kty"], "RSA");
    let list: Value = c
        .get(format!("{}/metadata/endpoints?api-version=2022-09-01", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["authentication"]["loginEndpoint"], format!("{}/", emu.base_url()));
    assert_eq!(list[0]["microsoftGraphResourceId"], format!("{}/", emu.base_url()));
    let one: Value = c
        .get(format!("{}/metadata/endpoints?api-version=2015-01-01", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one.is_object());
    let r = c.get(format!("{}/metadata/endpoints", emu.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn graph_refuses_missing_expired_forged_and_unauthorised_tokens() {
    let (emu, c) = start(EmulatorConfig::default()).await;
    let (s, h, v) = get(&emu, &c, "", "/v1.0/security/alerts_v2").await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(v["error"]["message"], "Access token is empty.");
    assert_eq!(
        v["error"]["innerError"]["request-id"].as_str(),
        h.get("request-id").and_then(|x| x.to_str().ok())
    );

    let expired = emu.mint_app_token(DEMO_TENANT_ID, DEMO_CLIENT_ID, -60).unwrap();
    let (s, _, v) = get(&emu, &c, &expired, "/v1.0/security/alerts_v2").await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"), "{v}");

    let good = app_token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_sig = "AAAA".repeat(64);
    parts[2] = &forged_sig;
    let (s, _, v) = get(&emu, &c, &parts.join("."), "/v1.0/security/alerts_v2").await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")));
    let (s, _, _) = get(&emu, &c, "not-a-jwt", "/v1.0/security/alerts_v2").await;
    assert_eq!(s, 401);

    let weak = app_token(&emu, &c, directory::NO_ROLES_CLIENT_ID, "no-roles-secret").await;
    let (s, _, v) = get(&emu, &c, &weak, "/v1.0/security/incidents").await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], "Forbidden");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Missing application roles. API required roles: SecurityIncident.Read.All")
    );
}

#[tokio::test]
async fn paging_returns_every_item_once_with_absolute_next_links() {
    let (emu, c) = start(EmulatorConfig {
        alerts: 230,
        ..Default::default()
    })
    .await;
    let tok = app_token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let mut url = format!("{}/v1.0/security/alerts_v2?$top=50&$count=true", emu.base_url());
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let r = c.get(&url).bearer_auth(&tok).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        if pages == 0 {
            assert_eq!(v["@odata.count"], 230);
        }
        pages += 1;
        ids.extend(v["value"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()));
        match v["@odata.nextLink"].as_str() {
            Some(n) => {
                assert!(n.starts_with(&format!("{}/v1.0/security/alerts_v2?", emu.base_url())), "{n}");
                assert!(n.contains("$skiptoken="), "{n}");
                url = n.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (230, 230));
    let seeded: Vec<String> = emu
        .dataset()
        .alerts_v2
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, seeded);
}

#[tokio::test]
async fn odata_options_are_enforced_like_the_real_service() {
    let (emu, c) = start(EmulatorConfig {
        alerts: 120,
        ..Default::default()
    })
    .await;
    let tok = app_token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let ds = emu.dataset();

    // A filter on a supported property returns exactly the matching items.
    let (s, _, v) = get(
        &emu,
        &c,
        &tok,
        "/v1.0/security/alerts_v2?$filter=severity%20eq%20'high'%20and%20status%20ne%20'resolved'",
    )
    .await;
    assert_eq!(s, 200);
    let want = ds
        .alerts_v2
        .iter()
        .filter(|a| a["severity"] == "high" && a["status"] != "resolved")
        .count();
    assert_eq!(v["value"].as_array().unwrap().len(), want);

    // Unsupported property, unknown property, malformed filter: 400 BadRequest naming the problem.
    for (q, needle) in [
        ("$filter=title%20eq%20'x'", "not supported"),
        ("$filter=colour%20eq%20'x'", "Could not find a property named 'colour'"),
        ("$filter=evidence/any(e:%20e/verdict%20eq%20'malicious')", "not supported"),
        ("$filter=severity%20eq", "Invalid filter clause"),
        ("$top=abc", "non-negative integer"),
        ("$top=2001", "limit of '2000'"),
        ("$orderby=title", "not supported"),
        ("$select=title", "not supported"),
        ("$expand=evidence", "navigation property"),
        ("$frob=1", "not supported"),
        ("$top=1&$top=2", "more than once"),
    ] {
        let (s, h, v) = get(&emu, &c, &tok, &format!("/v1.0/security/alerts_v2?{q}")).await;
        assert_eq!(s, 400, "{q}: {v}");
        assert_eq!(v["error"]["code"], "BadRequest", "{q}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{q}: {v}");
        assert!(h.get("request-id").is_some());
    }

    // Incidents: $top over 50 is refused with an empty error code, as the real service does.
    let (s, _, v) = get(&emu, &c, &tok, "/v1.0/security/incidents?$top=51").await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The limit of '50' for Top query has been exceeded")
    );

    // $expand=alerts embeds an incident's alerts.
    let inc = &ds.incidents[0];
    let (s, _, v) = get(
        &emu,
        &c,
        &tok,
        &format!("/v1.0/security/incidents/{}?$expand=alerts", inc["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, 200);
    let alerts = v["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a["incidentId"] == inc["id"]));

    // Legacy: $select, $orderby on any property, and the $skip limit.
    let (s, _, v) = get(
        &emu,
        &c,
        &tok,
        "/v1.0/security/alerts?$select=id,title&$top=3&$orderby=title%20desc",
    )
    .await;
    assert_eq!(s, 200);
    let rows = v["value"].as_array().unwrap();
    assert_eq!(rows[0].as_object().unwrap().len(), 2);
    assert!(rows[0]["title"].as_str() >= rows[1]["title"].as_str());
    let (s, _, _) = get(&emu, &c, &tok, "/v1.0/security/alerts?$skip=501").await;
    assert_eq!(s, 400);
    let (s, _, v) = get(
        &emu,
        &c,
        &tok,
        "/v1.0/security/alerts?$filter=userStates/any(u:%20u/accountName%20eq%20'alex.walker')",
    )
    .await;
    assert_eq!(s, 200);
    let want = ds
        .legacy_alerts
        .iter()
        .filter(|a| {
            a["userStates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["accountName"] == "alex.walker")
        })
        .count();
    assert_eq!(v["value"].as_array().unwrap().len(), want);
    assert!(want > 0);

    // $orderby createdDateTime desc on v2.
    let (s, _, v) = get(&emu, &c, &tok, "/v1.0/security/alerts_v2?$orderby=createdDateTime%20desc&$top=5").await;
    assert_eq!(s, 200);
    let times: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["createdDateTime"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Unknown ids and versions.
    let (s, _, v) = get(&emu, &c, &tok, "/v1.0/security/alerts_v2/nope").await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("NotFound")));
    let (s, _, _) = get(&emu, &c, &tok, "/v2.0/security/alerts_v2").await;
    assert_eq!(s, 400);
    // beta accepts options without '$'.
    let (s, _, v) = get(&emu, &c, &tok, "/beta/security/alerts_v2?top=2").await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    let e = Emulator::start(EmulatorConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
}

#[test]
fn dataset_is_deterministic_and_consistent() {
    let now = chrono::Utc::now();
    let a = secgraph_emulator::Dataset::generate(7, 300, now);
    let b = secgraph_emulator::Dataset::generate(7, 300, now);
    assert_eq!(a.alerts_v2, b.alerts_v2);
    assert_eq!(a.alerts_v2.len(), 300);
    assert_eq!(a.legacy_alerts.len(), 300);
    let oldest = (now - chrono::Duration::days(30)).to_rfc3339();
    for (v2, legacy) in a.alerts_v2.iter().zip(&a.legacy_alerts) {
        assert!(a.incidents.iter().any(|i| i["id"] == v2["incidentId"]));
        assert_eq!(v2["title"], legacy["title"]);
        assert_eq!(v2["createdDateTime"], legacy["createdDateTime"]);
        assert!(v2["createdDateTime"].as_str().unwrap() > oldest.as_str());
        assert!(!v2["evidence"].as_array().unwrap().is_empty());
    }
    let kinds: std::collections::BTreeSet<&str> = a
        .alerts_v2
        .iter()
        .flat_map(|x| x["evidence"].as_array().unwrap())
        .filter_map(|e| e["@odata.type"].as_str())
        .collect();
    assert!(kinds.len() >= 6, "{kinds:?}");
}

async fn send(c: &reqwest::Client, method: reqwest::Method, url: String, token: &str, body: Value, prefer: bool) -> (u16, Value) {
    let mut r = c.request(method, url).bearer_auth(token).json(&body);
    if prefer {
        r = r.header("Prefer", "return=representation");
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn updates_and_comments_are_validated_and_visible() {
    let (emu, c) = start(EmulatorConfig {
        alerts: 30,
        ..Default::default()
    })
    .await;
    let tok = app_token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let ds = emu.dataset();
    let alert = ds.alerts_v2[0]["id"].as_str().unwrap().to_string();
    let url = format!("{}/v1.0/security/alerts_v2/{alert}", emu.base_url());
    let (s, v) = send(
        &c,
        reqwest::Method::PATCH,
        url.clone(),
        &tok,
        serde_json::json!({"status": "resolved", "classification": "TruePositive", "determination": "malware", "assignedTo": "me@contoso"}),
        false,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["classification"].as_str()),
        (Some("resolved"), Some("truePositive"))
    );
    assert!(v["lastUpdateDateTime"].as_str().unwrap() > ds.alerts_v2[0]["lastUpdateDateTime"].as_str().unwrap());
    assert!(v["resolvedDateTime"].is_string());
    let (_, _, again) = get(&emu, &c, &tok, &format!("/v1.0/security/alerts_v2/{alert}")).await;
    assert_eq!(again["assignedTo"], "me@contoso");
    let (_, _, found) = get(&emu, &c, &tok, "/v1.0/security/alerts_v2?$filter=assignedTo%20eq%20'me@contoso'").await;
    assert_eq!(found["value"].as_array().unwrap().len(), 1);

    for (body, needle) in [
        (serde_json::json!({"status": "closed"}), "Requested value 'closed'"),
        (serde_json::json!({"title": "x"}), "Property 'title'"),
        (serde_json::json!({}), "no property"),
    ] {
        let (s, v) = send(&c, reqwest::Method::PATCH, url.clone(), &tok, body, false).await;
        assert_eq!(s, 400);
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{v}");
    }
    let (s, v) = send(
        &c,
        reqwest::Method::POST,
        format!("{url}/comments"),
        &tok,
        serde_json::json!({"@odata.type": "microsoft.graph.security.alertComment", "comment": "looked at it"}),
        false,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().unwrap().last().unwrap()["comment"], "looked at it");
    assert_eq!(
        v["value"].as_array().unwrap().last().unwrap()["createdByDisplayName"],
        "secgraph demo"
    );

    let inc = ds.incidents[0]["id"].as_str().unwrap();
    let (s, v) = send(
        &c,
        reqwest::Method::PATCH,
        format!("{}/v1.0/security/incidents/{inc}", emu.base_url()),
        &tok,
        serde_json::json!({"status": "Active", "customTags": ["Demo"]}),
        false,
    )
    .await;
    assert_eq!(
        (s, v["customTags"][0].as_str(), v["status"].as_str()),
        (200, Some("Demo"), Some("active"))
    );

    // Legacy PATCH needs vendorInformation; 204, or 200 with Prefer: return=representation.
    let legacy = &ds.legacy_alerts[0];
    let lurl = format!("{}/v1.0/security/alerts/{}", emu.base_url(), legacy["id"].as_str().unwrap());
    let (s, v) = send(
        &c,
        reqwest::Method::PATCH,
        lurl.clone(),
        &tok,
        serde_json::json!({"status": "resolved"}),
        false,
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("vendorInformation"));
    let vi = legacy["vendorInformation"].clone();
    let (s, _) = send(
        &c,
        reqwest::Method::PATCH,
        lurl.clone(),
        &tok,
        serde_json::json!({"status": "resolved", "vendorInformation": vi}),
        false,
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = send(
        &c,
        reqwest::Method::PATCH,
        lurl,
        &tok,
        serde_json::json!({"feedback": "falsePositive", "vendorInformation": vi}),
        true,
    )
    .await;
    assert_eq!(
        (s, v["feedback"].as_str(), v["status"].as_str()),
        (200, Some("falsePositive"), Some("resolved"))
    );

    // Writing needs a ReadWrite role.
    let weak = app_token(&emu, &c, directory::NO_ROLES_CLIENT_ID, "no-roles-secret").await;
    let (s, _) = send(&c, reqwest::Method::PATCH, url, &weak, serde_json::json!({"status": "new"}), false).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn secure_scores_and_control_profiles() {
    let (emu, c) = start(EmulatorConfig {
        alerts: 5,
        ..Default::default()
    })
    .await;
    let tok = app_token(&emu, &c, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let (s, _, v) = get(&emu, &c, &tok, "/v1.0/security/secureScores?$top=1").await;
    assert_eq!(s, 200);
    let latest = &v["value"][0];
    assert!(latest["currentScore"].as_f64().unwrap() <= latest["maxScore"].as_f64().unwrap());
    assert!(v["@odata.nextLink"].is_string());
    let (_, _, all) = get(&emu, &c, &tok, "/v1.0/security/secureScores").await;
    assert_eq!(all["value"].as_array().unwrap().len(), 30);
    assert!(
        all["value"][0]["createdDateTime"].as_str() > all["value"][1]["createdDateTime"].as_str(),
        "newest first"
    );
    let (_, _, p) = get(
        &emu,
        &c,
        &tok,
        "/v1.0/security/secureScoreControlProfiles?$filter=controlCategory%20eq%20'Identity'",
    )
    .await;
    assert_eq!(p["value"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn http1_keep_alive_and_http2_both_served() {
    let (emu, _) = start(EmulatorConfig {
        alerts: 5,
        ..Default::default()
    })
    .await;
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    let h1 = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .http1_only()
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = h1
            .get(format!("{}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration", emu.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!((r.version(), r.status().as_u16()), (reqwest::Version::HTTP_11, 200));
    }
    let h2 = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let r = h2
        .get(format!("{}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration", emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // Oversized bodies are refused.
    let big = "x".repeat(2 * 1024 * 1024);
    let r = h2
        .post(format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}
