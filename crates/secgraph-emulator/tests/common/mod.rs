//! Helpers shared by the emulator's HTTP tests: a client that trusts the emulator's CA, and token requests.
#![allow(dead_code)] // each test file uses its own subset

use secgraph_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

/// A reqwest client trusting only the emulator's CA; redirects are not followed (the tests read them).
pub fn client(emu: &Emulator) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().expect("CA file").as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub async fn start(config: EmulatorConfig) -> (Emulator, reqwest::Client) {
    let emu = Emulator::start(config).await.expect("emulator starts");
    let c = client(&emu);
    (emu, c)
}

/// POSTs a token request form to `tenant`'s token endpoint; returns the status and the JSON reply.
pub async fn token_request(emu: &Emulator, c: &reqwest::Client, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = c
        .post(format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url()))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON reply"))
}

/// An app-only token for `scope` (e.g. `https://graph.microsoft.com/.default`); `None` when refused.
pub async fn client_credentials(
    emu: &Emulator,
    c: &reqwest::Client,
    tenant: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Option<String> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ];
    let (_, v) = token_request(emu, c, tenant, &form).await;
    v["access_token"].as_str().map(str::to_string)
}

/// Starts the emulator and gets the demo app's Graph token (app-only).
pub async fn start_with_graph_token(config: EmulatorConfig) -> (Emulator, reqwest::Client, String) {
    let (emu, c) = start(config).await;
    let token = client_credentials(
        &emu,
        &c,
        secgraph_emulator::DEMO_TENANT_ID,
        secgraph_emulator::DEMO_CLIENT_ID,
        secgraph_emulator::DEMO_CLIENT_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .expect("the demo app's Graph token");
    (emu, c, token)
}

/// `POST /v1.0/security/runHuntingQuery` with `body`: the status and the JSON reply.
pub async fn hunt(emu: &Emulator, c: &reqwest::Client, tok: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{}/v1.0/security/runHuntingQuery", emu.base_url()))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}
