//! Secret references in every form against the emulator's Key Vault; the secret cache; errors.

use secgraph::config::{ConfigSource, Settings};
use secgraph::{ConnectOptions, Error, QueryProvider};
use secgraph_emulator::directory::DEMO_ANALYST;
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_TENANT_ID, Emulator, EmulatorConfig};

struct Fx {
    emu: Emulator,
    dir: tempfile::TempDir,
}

async fn fx() -> Fx {
    // The vault is read as the demo analyst through the device-code flow, approved automatically.
    let emu = Emulator::start(EmulatorConfig {
        alerts: 20,
        auto_approve: Some(DEMO_ANALYST.into()),
        device_code_interval: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    Fx {
        emu,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Fx {
    /// Settings with the emulator's Azure section, a KeyVault section and one instance whose secret is `secret`.
    fn settings(&self, secret: &str, keyvault: &str) -> Settings {
        let base = self.emu.msticpy_config();
        let azure = &base[base.find("Azure:").unwrap()..base.find("KeyVault:").unwrap()];
        let text = format!(
            "{azure}{keyvault}DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: {DEMO_TENANT_ID}\n      ClientId: {DEMO_CLIENT_ID}\n      ClientSecret: {secret}\n  MicrosoftGraph-Tenant1:\n    Args:\n      TenantId: {DEMO_TENANT_ID}\n      ClientId: {DEMO_CLIENT_ID}\n      ClientSecret: {secret}\n"
        );
        let path = self.dir.path().join("msticpyconfig.yaml");
        std::fs::write(&path, text).unwrap();
        Settings::load(&path, ConfigSource::Explicit).unwrap()
    }
    fn options(&self) -> ConnectOptions {
        ConnectOptions {
            token_cache: Some(self.dir.path().join("tokens.json")),
            secret_cache: Some(self.dir.path().join("secrets").join("secrets.json")),
            prompt: Some(std::sync::Arc::new(Quiet)),
            ..Default::default()
        }
    }
}

const KV: &str = "KeyVault:\n  VaultName: demo-vault\n  TenantId: 8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b\n  AuthnType: devicecode\n";

#[tokio::test]
async fn every_reference_form_resolves() {
    let f = fx().await;
    for form in [
        "{KeyVault: }",
        "{KeyVault: default}",
        "{KeyVault: graph-client-secret}",
        "{KeyVault: graph_client_secret}",
        "{KeyVault: demo-vault/graph-client-secret}",
    ] {
        let s = f.settings(form, KV);
        let p = QueryProvider::connect(Some(&s), &f.options())
            .await
            .unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(p.info().tenant_id, DEMO_TENANT_ID, "{form}");
    }
    // Named instances get their own default name: DataProviders-MicrosoftGraph-Tenant1-Args-ClientSecret does not
    // exist in the vault, and the error says which secret was looked up and what the vault said.
    let s = f.settings("{KeyVault: }", KV);
    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Tenant1".into()),
            ..f.options()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("demo-vault/DataProviders-MicrosoftGraph-Tenant1-Args-ClientSecret") && e.contains("SecretNotFound"),
        "{e}"
    );
}

#[tokio::test]
async fn vault_errors_are_clear() {
    let f = fx().await;
    let cases = [
        ("{KeyVault: nope}", KV, "SecretNotFound"),
        ("{KeyVault: locked-vault/graph-client-secret}", KV, "Forbidden/AccessDenied"),
        ("{KeyVault: demo-vault/disabled-secret}", KV, "SecretDisabled"),
        ("{KeyVault: fabrikam-vault/graph-client-secret}", KV, "401 Unauthorized"),
        ("{KeyVault: graph-client-secret}", "", "needs a vault"),
        (
            "{KeyVault: x}",
            "KeyVault:\n  VaultName: demo-vault\n  AuthnType: carrier-pigeon\n",
            "unknown sign-in method 'carrier-pigeon'",
        ),
        (
            "{KeyVault: x}",
            "KeyVault:\n  VaultName: demo-vault\n  AuthnType: env\n",
            "no usable way to sign in",
        ),
        (
            "{KeyVault: x}",
            "KeyVault:\n  VaultName: bad_vault!\n  AuthnType: devicecode\n",
            "not a vault name",
        ),
    ];
    for (form, kv, want) in cases {
        let s = f.settings(form, kv);
        let e = match QueryProvider::connect(Some(&s), &f.options()).await {
            Err(e) => e,
            Ok(_) => panic!("{form} / {kv}: connected"),
        };
        let m = e.to_string();
        assert!(m.contains(want), "{form} / {kv}: {m}");
        assert!(!m.contains("you-should-not-see-this"));
        assert!(
            matches!(
                e.kind(),
                secgraph::ErrorKind::Settings | secgraph::ErrorKind::Auth | secgraph::ErrorKind::Api
            ),
            "{m}"
        );
    }
}

#[tokio::test]
async fn secret_cache_refresh_and_clear() {
    let f = fx().await;
    let kv = format!("{KV}  UseKeyring: true\n");
    let s = f.settings("{KeyVault: rotating-secret}", &kv);
    let opts = f.options();
    let cache = secgraph::keyvault::SecretCache::at(opts.secret_cache.clone().unwrap());
    // rotating-secret is not the app's secret: sign-in fails, but the secret was fetched and cached first.
    let e = QueryProvider::connect(Some(&s), &opts).await.unwrap_err();
    assert!(matches!(e, Error::Auth(_)), "{e}");
    assert_eq!(cache.names(), vec!["demo-vault/rotating-secret".to_string()]);
    let body = std::fs::read_to_string(cache.path()).unwrap();
    assert!(body.contains("second-value"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(cache.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(cache.path().parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    // Refresh re-reads what the settings reference now, and forgets what they no longer reference.
    let s = f.settings("{KeyVault: graph-client-secret}", &kv);
    let report = secgraph::connect::refresh_secrets(&s, &opts).await.unwrap();
    assert_eq!(report.len(), 1);
    assert!(report[0].1.is_ok(), "{report:?}");
    assert_eq!(cache.names(), vec!["demo-vault/graph-client-secret".to_string()]);
    // A cached secret serves the next connect without the vault.
    QueryProvider::connect(Some(&s), &opts).await.unwrap();
    assert!(cache.clear().unwrap());
    assert!(cache.names().is_empty());
    assert!(!cache.clear().unwrap());
}

/// The emulator approves sign-ins on its own; the user is shown nothing.
#[derive(Debug)]
struct Quiet;
impl secgraph::auth::SignInPrompt for Quiet {
    fn device_code(&self, _message: &str) {}
    fn open_browser(&self, _url: &str) {}
}

/// Key Vault reads follow the one retry policy: a throttled (429) or unavailable (503) vault is asked again, as Graph
/// is (here: 429 to the first request, the 401 challenge, 503 to the authenticated read, then the secret); with no
/// retries allowed, the first refusal is the error.
#[tokio::test]
async fn a_throttled_or_unavailable_vault_is_asked_again() {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 5,
        auto_approve: Some(DEMO_ANALYST.into()),
        device_code_interval: std::time::Duration::from_secs(1),
        faults: Some(secgraph_emulator::faults::FaultSpec::parse("kv:429(0.1)@first=1;kv:503(0.1)@nth=2").unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let f = Fx {
        emu,
        dir: tempfile::tempdir().unwrap(),
    };
    let s = f.settings("{KeyVault: graph-client-secret}", KV);
    let p = QueryProvider::connect(Some(&s), &f.options()).await.unwrap();
    assert_eq!(p.info().tenant_id, DEMO_TENANT_ID);
    let sent = f.emu.requests_to("/secrets/graph-client-secret");
    assert!(sent >= 4, "the refused requests were sent again: {sent} requests");

    let f2 = Fx {
        emu: Emulator::start(EmulatorConfig {
            alerts: 5,
            auto_approve: Some(DEMO_ANALYST.into()),
            device_code_interval: std::time::Duration::from_secs(1),
            faults: Some(secgraph_emulator::faults::FaultSpec::parse("kv:503(0.1)").unwrap()),
            ..Default::default()
        })
        .await
        .unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let s = f2.settings("{KeyVault: graph-client-secret}", KV);
    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            retry: Some(secgraph::retry::RetryOptions::with_retries(0)),
            ..f2.options()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.http_status(), Some(503), "{e}");
    assert_eq!(f2.emu.requests_to("/secrets/graph-client-secret"), 1, "sent once with no retries");
}
