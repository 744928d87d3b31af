//! Entra flows driven as a third-party client would: device code, browser (auth code + PKCE), refresh tokens,
//! certificate assertions, delegated tokens against Graph.

use base64::Engine;
use secgraph_emulator::directory::{DEMO_ANALYST, DEMO_READER};
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_TENANT_ID, Emulator, EmulatorConfig};
use serde_json::Value;
use sha2::Digest;
use std::collections::HashMap;
use std::time::Duration;

const GRAPH_SCOPES: &str = "https://graph.microsoft.com/SecurityAlert.Read.All https://graph.microsoft.com/SecurityIncident.Read.All offline_access openid profile";

mod common;

use common::start;

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

async fn post_token(emu: &Emulator, c: &reqwest::Client, form: &[(&str, &str)]) -> (u16, Value) {
    common::token_request(emu, c, DEMO_TENANT_ID, form).await
}

async fn device_start(emu: &Emulator, c: &reqwest::Client) -> Value {
    let r = c
        .post(format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/devicecode", emu.base_url()))
        .form(&[("client_id", DEMO_CLIENT_ID), ("scope", GRAPH_SCOPES)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn poll(emu: &Emulator, c: &reqwest::Client, device_code: &str) -> (u16, Value) {
    post_token(
        emu,
        c,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", DEMO_CLIENT_ID),
            ("device_code", device_code),
            ("client_info", "1"),
        ],
    )
    .await
}

fn claims(jwt: &str) -> Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn fast() -> EmulatorConfig {
    EmulatorConfig {
        alerts: 40,
        device_code_interval: Duration::from_secs(1),
        ..Default::default()
    }
}

#[tokio::test]
async fn device_code_approved_through_the_admin_endpoint() {
    let (emu, c) = start(fast()).await;
    let d = device_start(&emu, &c).await;
    assert_eq!(d["interval"], 1);
    assert_eq!(d["expires_in"], 900);
    assert!(d["message"].as_str().unwrap().contains(d["user_code"].as_str().unwrap()));
    assert_eq!(d["verification_uri"], format!("{}/devicelogin", emu.base_url()));
    let code = d["device_code"].as_str().unwrap();
    let (s, v) = poll(&emu, &c, code).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("authorization_pending")));
    assert_eq!(v["error_codes"][0], 70016);

    let r = c
        .post(format!("{}/_emulator/devicecode", emu.base_url()))
        .json(&serde_json::json!({"user_code": d["user_code"], "user": DEMO_ANALYST}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = poll(&emu, &c, code).await;
    assert_eq!(s, 200, "{v}");
    for k in ["access_token", "refresh_token", "id_token", "client_info", "scope"] {
        assert!(v[k].is_string(), "{k} missing: {v}");
    }
    let at = claims(v["access_token"].as_str().unwrap());
    assert_eq!(at["upn"], DEMO_ANALYST);
    assert_eq!(at["idtyp"], "user");
    assert_eq!(at["scp"], "SecurityAlert.Read.All SecurityIncident.Read.All");
    assert!(at.get("roles").is_none());
    let id = claims(v["id_token"].as_str().unwrap());
    assert_eq!(
        (id["preferred_username"].as_str(), id["aud"].as_str()),
        (Some(DEMO_ANALYST), Some(DEMO_CLIENT_ID))
    );
    let ci: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ci["utid"], DEMO_TENANT_ID);

    // Redeemed codes cannot be used again; unknown codes are bad_verification_code.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, v) = poll(&emu, &c, code).await;
    assert_eq!(v["error"], "bad_verification_code");
    let (_, v) = poll(&emu, &c, "nonsense").await;
    assert_eq!(v["error"], "bad_verification_code");

    // The delegated token works against Graph within the user's permissions.
    let r = c
        .get(format!("{}/v1.0/security/incidents", emu.base_url()))
        .bearer_auth(v_token(&emu, &c, DEMO_ANALYST).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/v1.0/security/incidents", emu.base_url()))
        .bearer_auth(v_token(&emu, &c, DEMO_READER).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the reader's own permissions do not cover incidents");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Missing scope permissions"));
    let r = c
        .get(format!("{}/v1.0/security/alerts_v2", emu.base_url()))
        .bearer_auth(v_token(&emu, &c, DEMO_READER).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A delegated Graph token for `user` via the device flow.
async fn v_token(emu: &Emulator, c: &reqwest::Client, user: &str) -> String {
    let d = device_start(emu, c).await;
    emu.approve_device_code(d["user_code"].as_str().unwrap(), user, true).unwrap();
    let (s, v) = poll(emu, c, d["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn device_code_declined_expired_and_slow_down() {
    let (emu, c) = start(EmulatorConfig {
        device_code_interval: Duration::from_secs(2),
        device_code_lifetime: Duration::from_secs(3),
        ..fast()
    })
    .await;
    let d = device_start(&emu, &c).await;
    let code = d["device_code"].as_str().unwrap();
    let (_, v) = poll(&emu, &c, code).await;
    assert_eq!(v["error"], "authorization_pending");
    let (_, v) = poll(&emu, &c, code).await;
    assert_eq!(v["error"], "slow_down", "polled faster than the interval");

    // Declined through the page a user would see.
    let d2 = device_start(&emu, &c).await;
    let page = c
        .get(format!("{}/devicelogin", emu.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"user_code\"") && page.contains(DEMO_ANALYST));
    let r = c
        .post(format!("{}/devicelogin", emu.base_url()))
        .form(&[
            ("user_code", d2["user_code"].as_str().unwrap()),
            ("user", DEMO_ANALYST),
            ("decision", "decline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, v) = poll(&emu, &c, d2["device_code"].as_str().unwrap()).await;
    assert_eq!(v["error"], "authorization_declined");

    let r = c
        .post(format!("{}/devicelogin", emu.base_url()))
        .form(&[("user_code", "WRONGCODE"), ("user", DEMO_ANALYST)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, v) = poll(&emu, &c, code).await;
    assert_eq!(v["error"], "expired_token");
    assert!(
        emu.approve_device_code(d["user_code"].as_str().unwrap(), DEMO_ANALYST, true)
            .is_err()
    );
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = format!("{}{}", uuid_like(), uuid_like());
    let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

fn uuid_like() -> String {
    format!(
        "{:032x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn location_params(r: &reqwest::Response) -> HashMap<String, String> {
    let loc = r.headers().get("location").expect("a redirect").to_str().unwrap();
    assert!(loc.starts_with("http://localhost:8400/"), "{loc}");
    url::Url::parse(loc).unwrap().query_pairs().into_owned().collect()
}

#[tokio::test]
async fn browser_flow_with_pkce() {
    let (emu, c) = start(fast()).await;
    let p = pkce();
    let redirect = "http://localhost:8400/";
    let authorize = format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/authorize", emu.base_url());
    let q = [
        ("client_id", DEMO_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", redirect),
        ("response_mode", "query"),
        ("scope", GRAPH_SCOPES),
        ("state", "st-123"),
        ("code_challenge", &p.challenge),
        ("code_challenge_method", "S256"),
        ("login_hint", DEMO_ANALYST),
    ];
    let page = c.get(&authorize).query(&q).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("selected") && html.contains("<form"));

    // The user accepts on the page.
    let mut form: Vec<(&str, &str)> = q.to_vec();
    form.extend([("user", DEMO_ANALYST), ("decision", "approve")]);
    let r = c.post(&authorize).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let got = location_params(&r);
    assert_eq!(got["state"], "st-123");
    let code = got["code"].clone();

    let redeem = |code: String, verifier: String, redirect: String| {
        let c = c.clone();
        let url = format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url());
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", DEMO_CLIENT_ID),
                    ("code", &code),
                    ("redirect_uri", &redirect),
                    ("code_verifier", &verifier),
                    ("scope", GRAPH_SCOPES),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = redeem(code.clone(), "wrong-verifier-wrong-verifier-wrong-verifier".into(), redirect.into()).await;
    assert_eq!(
        (s, v["error"].as_str(), v["error_codes"][0].as_u64()),
        (400, Some("invalid_grant"), Some(501481))
    );
    // A failed attempt consumed the code, as single-use codes are.
    let (_, v) = redeem(code, p.verifier.clone(), redirect.into()).await;
    assert_eq!(v["error_codes"][0], 54005);

    // A fresh code: redirect_uri must match, then it works once.
    let r = c.post(&authorize).form(&form).send().await.unwrap();
    let code = location_params(&r)["code"].clone();
    let (_, v) = redeem(code.clone(), p.verifier.clone(), "http://localhost:9999/".into()).await;
    assert_eq!(v["error_codes"][0], 500112);
    let r = c.post(&authorize).form(&form).send().await.unwrap();
    let code = location_params(&r)["code"].clone();
    let (s, v) = redeem(code.clone(), p.verifier.clone(), redirect.trim_end_matches('/').into()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["upn"], DEMO_ANALYST);
    let (_, v) = redeem(code, p.verifier.clone(), redirect.into()).await;
    assert_eq!(v["error_codes"][0], 54005);

    // Declined, missing PKCE: errors go back to the redirect URI with the state.
    let mut declined = q.to_vec();
    declined.extend([("user", DEMO_ANALYST), ("decision", "decline")]);
    let got = location_params(&c.post(&authorize).form(&declined).send().await.unwrap());
    assert_eq!((got["error"].as_str(), got["state"].as_str()), ("access_denied", "st-123"));
    let no_pkce: Vec<(&str, &str)> = q.iter().filter(|(k, _)| !k.starts_with("code_challenge")).cloned().collect();
    let got = location_params(&c.get(&authorize).query(&no_pkce).send().await.unwrap());
    assert_eq!(got["error"], "invalid_request");
    assert!(got["error_description"].contains("AADSTS9002325"));

    // A redirect URI that is not loopback is refused on a page, never redirected to.
    let mut evil = q.to_vec();
    evil[2] = ("redirect_uri", "https://evil.example/cb");
    let r = c.get(&authorize).query(&evil).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn auto_approve_completes_browser_and_device_flows_without_a_page() {
    let (emu, c) = start(EmulatorConfig {
        auto_approve: Some(DEMO_ANALYST.into()),
        ..fast()
    })
    .await;
    let p = pkce();
    let r = c
        .get(format!("{}/organizations/oauth2/v2.0/authorize", emu.base_url()))
        .query(&[
            ("client_id", DEMO_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:8400"),
            ("scope", GRAPH_SCOPES),
            ("state", "s"),
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location_params(&r).contains_key("code"));
    let d = device_start(&emu, &c).await;
    let (s, v) = poll(&emu, &c, d["device_code"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_can_be_revoked() {
    let (emu, c) = start(fast()).await;
    let d = device_start(&emu, &c).await;
    emu.approve_device_code(d["user_code"].as_str().unwrap(), DEMO_ANALYST, true)
        .unwrap();
    let (_, v) = poll(&emu, &c, d["device_code"].as_str().unwrap()).await;
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String, scope: &'static str| {
        let c = c.clone();
        let url = format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url());
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", DEMO_CLIENT_ID),
                    ("refresh_token", &rt),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = refresh(rt1.clone(), GRAPH_SCOPES).await;
    assert_eq!(s, 200, "{v}");
    let rt2 = v["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let (s, v) = refresh(rt1, GRAPH_SCOPES).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "a rotated refresh token cannot be reused"
    );
    // The same refresh token family can get a Key Vault token.
    let (s, v) = refresh(rt2, "https://vault.azure.net/.default offline_access").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["aud"], "https://vault.azure.net");
    let rt3 = v["refresh_token"].as_str().unwrap().to_string();
    let r: Value = c
        .post(format!("{}/_emulator/revoke", emu.base_url()))
        .json(&serde_json::json!({"user": DEMO_ANALYST}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["revoked"].as_u64().unwrap() >= 1);
    let (_, v) = refresh(rt3, GRAPH_SCOPES).await;
    assert_eq!(v["error_codes"][0], 50173);
    // Asking for a permission the app has no consent for.
    let d = device_start(&emu, &c).await;
    emu.approve_device_code(d["user_code"].as_str().unwrap(), DEMO_ANALYST, true)
        .unwrap();
    let (_, v) = poll(&emu, &c, d["device_code"].as_str().unwrap()).await;
    let (_, v) = refresh(
        v["refresh_token"].as_str().unwrap().into(),
        "https://graph.microsoft.com/Mail.Send offline_access",
    )
    .await;
    assert_eq!(v["error_codes"][0], 65001);
}

fn assertion(emu: &Emulator, key_pem: &[u8], cert_pem: &str, claims: Value, sha256: bool) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(cert_pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>())
        .unwrap();
    let mut h = jsonwebtoken::Header::new(if sha256 {
        jsonwebtoken::Algorithm::PS256
    } else {
        jsonwebtoken::Algorithm::RS256
    });
    if sha256 {
        h.x5t_s256 = Some(b64url(&sha2::Sha256::digest(&der)));
    } else {
        h.x5t = Some(b64url(&sha1::Sha1::digest(&der)));
    }
    let _ = emu;
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(key_pem).unwrap()).unwrap()
}

#[tokio::test]
async fn certificate_assertions_are_verified() {
    let (emu, c) = start(fast()).await;
    let cert = std::fs::read_to_string(emu.client_certificate_path()).unwrap();
    let key = std::fs::read(emu.client_key_path()).unwrap();
    let aud = format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url());
    let now = chrono::Utc::now().timestamp();
    let good =
        |jti: &str| serde_json::json!({"aud": aud, "iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID, "jti": jti, "nbf": now, "exp": now + 600});
    let scope = format!("{}/.default", emu.base_url());
    let send = |a: String| {
        let c = c.clone();
        let scope = scope.clone();
        let url = aud.clone();
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", DEMO_CLIENT_ID),
                    ("scope", &scope),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", &a),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = send(assertion(&emu, &key, &cert, good("j1"), false)).await;
    assert_eq!(s, 200, "RS256 + x5t: {v}");
    let (s, v) = send(assertion(&emu, &key, &cert, good("j2"), true)).await;
    assert_eq!(s, 200, "PS256 + x5t#S256: {v}");
    let (s, v) = send(assertion(&emu, &key, &cert, good("j1"), false)).await;
    assert_eq!((s, v["error_codes"][0].as_u64()), (401, Some(700025)), "replayed jti: {v}");

    // A certificate that is not registered on the app.
    let other_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let other = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&other_key)
        .unwrap();
    let (s, v) = send(assertion(
        &emu,
        other_key.serialize_pem().as_bytes(),
        &other.pem(),
        good("j3"),
        false,
    ))
    .await;
    assert_eq!(
        (s, v["error"].as_str(), v["error_codes"][0].as_u64()),
        (401, Some("invalid_client"), Some(700027))
    );
    // The registered certificate's thumbprint but another key's signature.
    let (_, v) = send(assertion(&emu, other_key.serialize_pem().as_bytes(), &cert, good("j4"), false)).await;
    assert_eq!(v["error_codes"][0], 700027);

    let mut wrong_aud = good("j5");
    wrong_aud["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token".into();
    let (_, v) = send(assertion(&emu, &key, &cert, wrong_aud, false)).await;
    assert_eq!(v["error_codes"][0], 700212);
    let mut wrong_iss = good("j6");
    wrong_iss["iss"] = "someone-else".into();
    let (_, v) = send(assertion(&emu, &key, &cert, wrong_iss, false)).await;
    assert_eq!(v["error_codes"][0], 700023);
    let mut expired = good("j7");
    expired["exp"] = (now - 3600).into();
    expired["nbf"] = (now - 4000).into();
    let (_, v) = send(assertion(&emu, &key, &cert, expired, false)).await;
    assert_eq!(v["error_codes"][0], 700024);
    let (_, v) = send("not.a.jwt".into()).await;
    assert_eq!(v["error_codes"][0], 50027);
}
