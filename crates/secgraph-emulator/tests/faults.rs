//! Every fault kind, observed by a plain HTTP client.

use secgraph_emulator::faults::FaultSpec;
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig};
use serde_json::Value;
use std::time::{Duration, Instant};

mod common;

async fn start(spec: &str) -> (Emulator, reqwest::Client, String) {
    let faults = Some(FaultSpec::parse(spec).unwrap());
    let (emu, c) = common::start(EmulatorConfig {
        alerts: 60,
        page_size: Some(20),
        faults,
        ..Default::default()
    })
    .await;
    let tok = common::client_credentials(
        &emu,
        &c,
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap_or_default();
    (emu, c, tok)
}

async fn page(emu: &Emulator, c: &reqwest::Client, tok: &str, coll: &str) -> reqwest::Response {
    c.get(format!("{}/v1.0/security/{coll}", emu.base_url()))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn status_faults_with_and_without_retry_after() {
    let (emu, c, tok) = start("alerts_v2:429(2.5)@nth=1;incidents:503@first=1;alerts:504(3)@nth=1;secureScores:500@nth=1").await;
    let r = page(&emu, &c, &tok, "alerts_v2").await;
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "HTTPS with ALPN h2");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers().get("retry-after").unwrap(), "2.5");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "TooManyRequests");
    assert_eq!(page(&emu, &c, &tok, "alerts_v2").await.status(), 200, "nth=1 fires once");
    let r = page(&emu, &c, &tok, "incidents").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_none());
    let r = page(&emu, &c, &tok, "alerts").await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers().get("retry-after").map(|h| h.to_str().unwrap().to_string())
        ),
        (504, Some("3".into()))
    );
    assert_eq!(page(&emu, &c, &tok, "secureScores").await.status(), 500);
}

#[tokio::test]
async fn token_endpoint_faults_use_the_entra_shape() {
    let (_emu, _c, tok) = start("token:503(1)@first=1").await;
    assert!(tok.is_empty(), "the first token request failed");
}

#[tokio::test]
async fn reset_and_truncate_break_the_body() {
    let (emu, c, tok) = start("alerts_v2:reset@nth=1;incidents:truncate@nth=1").await;
    // Over HTTP/2 the stream is reset; over HTTP/1.1 the connection closes mid-body. Either way, no whole body.
    match c
        .get(format!("{}/v1.0/security/alerts_v2", emu.base_url()))
        .bearer_auth(&tok)
        .send()
        .await
    {
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
        Ok(r) => assert!(r.bytes().await.is_err(), "the connection dies mid-body"),
    }
    let r = page(&emu, &c, &tok, "incidents").await;
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err(), "a truncated JSON body");
    assert!(!body.is_empty());
}

#[tokio::test]
async fn slow_first_byte_and_slow_body() {
    let (emu, c, tok) = start("alerts_v2:slow-first-byte(300)@nth=1;incidents:slow-body(150ms)@nth=1").await;
    let t = Instant::now();
    assert_eq!(page(&emu, &c, &tok, "alerts_v2").await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    let r = page(&emu, &c, &tok, "incidents").await;
    let v: Value = r.json().await.unwrap();
    assert!(v["value"].is_array(), "a slow body is still a whole body");
    assert!(t.elapsed() >= Duration::from_millis(300), "three pauses of 150 ms");
}

#[tokio::test]
async fn expired_token_mid_paging() {
    let (emu, c, tok) = start("alerts_v2:expire-token@nth=2").await;
    let first: Value = page(&emu, &c, &tok, "alerts_v2").await.json().await.unwrap();
    let next = first["@odata.nextLink"].as_str().unwrap();
    let r = c.get(next).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        c.get(next).bearer_auth(&tok).send().await.unwrap().status(),
        200,
        "the same request works again"
    );
}

#[tokio::test]
async fn repeated_next_link_and_duplicated_item() {
    let (emu, c, tok) = start("alerts_v2:repeat-next-link@nth=2;incidents:duplicate-item@nth=1").await;
    let first: Value = page(&emu, &c, &tok, "alerts_v2").await.json().await.unwrap();
    let next = first["@odata.nextLink"].as_str().unwrap().to_string();
    let second: Value = c.get(&next).bearer_auth(&tok).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        second["@odata.nextLink"].as_str(),
        Some(next.as_str()),
        "the link points back at the page itself"
    );
    let v: Value = page(&emu, &c, &tok, "incidents").await.json().await.unwrap();
    let items = v["value"].as_array().unwrap();
    assert_eq!(items.first().unwrap()["id"], items.last().unwrap()["id"]);
}

#[tokio::test]
async fn slow_down_on_token_requests() {
    let (emu, c, tok) = start("token:slow-down@nth=2").await;
    assert!(!tok.is_empty(), "the first token request is honest");
    let r = c
        .post(format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "slow_down");
    assert!(v["error_description"].as_str().unwrap().starts_with("AADSTS70016"));
}
