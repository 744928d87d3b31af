//! Key Vault secrets as the Azure SDKs use them: the 401 challenge, then bearer requests; errors as documented.

use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig, directory};
use serde_json::Value;

mod common;

async fn start() -> (Emulator, reqwest::Client) {
    common::start(EmulatorConfig {
        alerts: 10,
        ..Default::default()
    })
    .await
}

async fn kv_token(emu: &Emulator, c: &reqwest::Client, tenant: &str, client: &str, secret: &str) -> String {
    common::client_credentials(emu, c, tenant, client, secret, "https://vault.azure.net/.default")
        .await
        .expect("a Key Vault token")
}

async fn get(c: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.headers().clone(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn challenge_then_secret_with_versions() {
    let (emu, c) = start().await;
    let vault = emu.vault_url("demo-vault");
    let url = format!("{vault}/secrets/graph-client-secret?api-version=7.4");
    let (s, h, v) = get(&c, &url, None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "Unauthorized");
    let challenge = h.get("www-authenticate").unwrap().to_str().unwrap();
    assert_eq!(
        challenge,
        format!(
            "Bearer authorization=\"{}/{DEMO_TENANT_ID}\", resource=\"https://vault.azure.net\"",
            emu.base_url()
        )
    );

    let tok = kv_token(&emu, &c, DEMO_TENANT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let (s, _, v) = get(&c, &url, Some(&tok)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["value"], DEMO_CLIENT_SECRET);
    assert!(
        v["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{vault}/secrets/graph-client-secret/"))
    );
    assert_eq!(v["attributes"]["enabled"], true);
    // The Azure SDKs add a trailing slash.
    let (s, _, _) = get(&c, &format!("{vault}/secrets/graph-client-secret/?api-version=7.5"), Some(&tok)).await;
    assert_eq!(s, 200);

    // Versions: the latest by default, an older one by id.
    let (_, _, latest) = get(&c, &format!("{vault}/secrets/rotating-secret?api-version=7.4"), Some(&tok)).await;
    assert_eq!(latest["value"], "second-value");
    let (_, _, versions) = get(&c, &format!("{vault}/secrets/rotating-secret/versions?api-version=7.4"), Some(&tok)).await;
    let items = versions["value"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.get("value").is_none()));
    let first = items[0]["id"].as_str().unwrap().rsplit('/').next().unwrap();
    let (_, _, old) = get(&c, &format!("{vault}/secrets/rotating-secret/{first}?api-version=7.4"), Some(&tok)).await;
    assert_eq!(old["value"], "first-value");

    let (_, _, list) = get(&c, &format!("{vault}/secrets?api-version=7.4"), Some(&tok)).await;
    assert!(list["value"].as_array().unwrap().iter().all(|i| i.get("value").is_none()));
    assert!(list["value"].as_array().unwrap().len() >= 5);
}

#[tokio::test]
async fn documented_errors() {
    let (emu, c) = start().await;
    let tok = kv_token(&emu, &c, DEMO_TENANT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let vault = emu.vault_url("demo-vault");
    let cases = [
        (format!("{vault}/secrets/nope?api-version=7.4"), 404, "SecretNotFound"),
        (format!("{vault}/secrets/disabled-secret?api-version=7.4"), 403, "Forbidden"),
        (format!("{vault}/secrets/bad_name!?api-version=7.4"), 400, "BadParameter"),
        (format!("{vault}/secrets/graph-client-secret"), 400, "BadParameter"),
        (
            format!("{}/secrets/graph-client-secret?api-version=7.4", emu.vault_url("locked-vault")),
            403,
            "Forbidden",
        ),
        (
            format!("{}/secrets/graph-client-secret?api-version=7.4", emu.vault_url("fabrikam-vault")),
            401,
            "Unauthorized",
        ),
        (
            format!("{}/secrets/x?api-version=7.4", emu.vault_url("no-such-vault")),
            404,
            "VaultNotFound",
        ),
    ];
    for (url, status, code) in cases {
        let (s, _, v) = get(&c, &url, Some(&tok)).await;
        assert_eq!((s, v["error"]["code"].as_str()), (status, Some(code)), "{url}: {v}");
    }
    let (_, _, v) = get(
        &c,
        &format!("{}/secrets/graph-client-secret?api-version=7.4", emu.vault_url("locked-vault")),
        Some(&tok),
    )
    .await;
    assert_eq!(v["error"]["innererror"]["code"], "AccessDenied");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not have secrets get permission")
    );
    let (_, _, v) = get(&c, &format!("{vault}/secrets/disabled-secret?api-version=7.4"), Some(&tok)).await;
    assert!(!v.to_string().contains("you-should-not-see-this"));

    // A Graph token is not a Key Vault token.
    let graph: Value = c
        .post(format!("{}/{DEMO_TENANT_ID}/oauth2/v2.0/token", emu.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (s, h, _) = get(
        &c,
        &format!("{vault}/secrets/graph-client-secret?api-version=7.4"),
        graph["access_token"].as_str(),
    )
    .await;
    assert_eq!(s, 401);
    assert!(h.get("www-authenticate").is_some());

    // The second tenant's app reads its own vault.
    let fab = kv_token(
        &emu,
        &c,
        directory::SECOND_TENANT_ID,
        directory::SECOND_CLIENT_ID,
        "fabrikam-demo-secret",
    )
    .await;
    let (s, _, v) = get(
        &c,
        &format!("{}/secrets/graph-client-secret?api-version=7.4", emu.vault_url("fabrikam-vault")),
        Some(&fab),
    )
    .await;
    assert_eq!((s, v["value"].as_str()), (200, Some("fabrikam-demo-secret")));
}

#[tokio::test]
async fn each_vault_is_served_at_its_own_origin_and_under_the_path_form_too() {
    let (emu, c) = start().await;
    let vault = emu.vault_url("demo-vault");
    // A real vault URL has no path: `https://host[:port]`, ids `…/secrets/NAME/VERSION` (what SDK id parsers accept).
    let u = url::Url::parse(&vault).unwrap();
    assert_eq!((u.path(), u.host_str()), ("/", Some("127.0.0.1")));
    assert_ne!(u.port(), url::Url::parse(emu.base_url()).unwrap().port());
    let tok = kv_token(&emu, &c, DEMO_TENANT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET).await;
    let (s, _, v) = get(&c, &format!("{vault}/secrets/graph-client-secret?api-version=7.4"), Some(&tok)).await;
    assert_eq!(s, 200, "{v}");
    let id = url::Url::parse(v["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.origin(), u.origin());
    let segs: Vec<&str> = id.path_segments().unwrap().collect();
    assert_eq!((segs.len(), segs[0], segs[1]), (3, "secrets", "graph-client-secret"));
    // The private-endpoint style path form keeps working.
    let (s, _, v) = get(
        &c,
        &format!("{}/kv/demo-vault/secrets/graph-client-secret?api-version=7.4", emu.base_url()),
        Some(&tok),
    )
    .await;
    assert_eq!((s, v["value"].as_str()), (200, Some(DEMO_CLIENT_SECRET)));
    // The written settings name each vault's own URL.
    assert!(
        emu.msticpy_config().contains(&format!("    demo-vault: '{vault}/'")),
        "{}",
        emu.msticpy_config()
    );
}
