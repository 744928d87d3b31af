//! Every way to sign in, completed with no human: the emulator plays Entra, a scripted prompt plays the user.

use secgraph::auth::{AuthType, SignInPrompt};
use secgraph::config::{ConfigSource, Settings};
use secgraph::output::Table;
use secgraph::{ConnectOptions, Error, QueryProvider};
use secgraph_emulator::directory::DEMO_ANALYST;
use secgraph_emulator::faults::FaultSpec;
use secgraph_emulator::{Emulator, EmulatorConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Fx {
    emu: Arc<Emulator>,
    dir: tempfile::TempDir,
}

impl Fx {
    async fn new(config: EmulatorConfig) -> Fx {
        let mut config = EmulatorConfig { alerts: 60, ..config };
        if config.device_code_interval == EmulatorConfig::default().device_code_interval {
            config.device_code_interval = Duration::from_secs(1);
        }
        let emu = Arc::new(Emulator::start(config).await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("msticpyconfig.yaml"), emu.msticpy_config()).unwrap();
        Fx { emu, dir }
    }
    fn settings(&self) -> Settings {
        Settings::load(&self.dir.path().join("msticpyconfig.yaml"), ConfigSource::Explicit).unwrap()
    }
    fn cache(&self) -> std::path::PathBuf {
        self.dir.path().join("cache").join("tokens.json")
    }
    fn options(&self, prompt: Arc<dyn SignInPrompt>, auth_type: AuthType) -> ConnectOptions {
        ConnectOptions {
            instance: Some("Delegated".into()),
            auth_type: Some(auth_type),
            prompt: Some(prompt),
            token_cache: Some(self.cache()),
            browser_timeout: Some(Duration::from_secs(20)),
            ..Default::default()
        }
    }
}

/// What a user does when shown a device code or a URL.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Approve,
    Decline,
    Ignore,
    /// Complete the browser flow but tamper with the state on the way back.
    TamperState,
}

#[derive(Debug)]
struct ScriptedUser {
    emu: Arc<Emulator>,
    act: Act,
    shown: AtomicUsize,
    last_message: Mutex<String>,
}

impl ScriptedUser {
    fn new(emu: &Arc<Emulator>, act: Act) -> Arc<ScriptedUser> {
        Arc::new(ScriptedUser {
            emu: emu.clone(),
            act,
            shown: AtomicUsize::new(0),
            last_message: Mutex::new(String::new()),
        })
    }
    fn count(&self) -> usize {
        self.shown.load(Ordering::SeqCst)
    }
}

fn client(emu: &Emulator) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_merge([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl SignInPrompt for ScriptedUser {
    fn device_code(&self, message: &str) {
        self.shown.fetch_add(1, Ordering::SeqCst);
        *self.last_message.lock().unwrap() = message.to_string();
        let code = message
            .split_whitespace()
            .skip_while(|w| *w != "code")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        match self.act {
            Act::Approve => {
                self.emu.approve_device_code(&code, DEMO_ANALYST, true).unwrap();
            }
            Act::Decline => {
                self.emu.approve_device_code(&code, DEMO_ANALYST, false).unwrap();
            }
            _ => {}
        }
    }

    fn open_browser(&self, url: &str) {
        self.shown.fetch_add(1, Ordering::SeqCst);
        let (url, act, emu) = (url.to_string(), self.act, self.emu.clone());
        tokio::spawn(async move {
            let c = client(&emu);
            let params: Vec<(String, String)> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
            let mut form = params.clone();
            form.push(("user".into(), DEMO_ANALYST.into()));
            form.push(("decision".into(), if act == Act::Decline { "decline" } else { "approve" }.into()));
            let authorize = url.split('?').next().unwrap().to_string();
            let r = c.post(&authorize).form(&form).send().await.unwrap();
            let mut back = r.headers().get("location").unwrap().to_str().unwrap().to_string();
            if act == Act::TamperState {
                back = back.replace("state=", "state=evil");
            }
            let _ = reqwest::Client::new().get(back).send().await;
        });
    }
}

#[tokio::test]
async fn device_code_sign_in_then_warm_cache_asks_nothing() {
    let fx = Fx::new(EmulatorConfig::default()).await;
    let user = ScriptedUser::new(&fx.emu, Act::Approve);
    let p = QueryProvider::connect(Some(&fx.settings()), &fx.options(user.clone(), AuthType::Device))
        .await
        .unwrap();
    assert_eq!(user.count(), 1);
    assert!(user.last_message.lock().unwrap().contains("/devicelogin"));
    assert_eq!(p.info().account.as_deref(), Some(DEMO_ANALYST));
    assert!(
        p.info().scopes.iter().any(|s| s == "SecurityAlert.Read.All"),
        "{:?}",
        p.info().scopes
    );
    let mut t = Table::new();
    p.run("Alerts.list", &[("start".into(), "-31d".into())], &mut t).await.unwrap();
    assert_eq!(t.len(), 60);

    // A second connect (a new process, in effect) signs in silently from the cache.
    let device_calls = fx.emu.requests_to("/oauth2/v2.0/devicecode");
    assert_eq!(device_calls, 1);
    let again = ScriptedUser::new(&fx.emu, Act::Ignore);
    let p2 = QueryProvider::connect(Some(&fx.settings()), &fx.options(again.clone(), AuthType::Device))
        .await
        .unwrap();
    assert_eq!(again.count(), 0, "no prompt with a warm cache");
    assert_eq!(
        fx.emu.requests_to("/oauth2/v2.0/devicecode"),
        device_calls,
        "no device-code request with a warm cache"
    );
    assert_eq!(
        fx.emu.requests_to("/oauth2/v2.0/authorize"),
        0,
        "no authorize request with a warm cache"
    );
    assert_eq!(p2.info().account.as_deref(), Some(DEMO_ANALYST));

    // The cache is owner-only in an owner-only folder, and holds no more than it should show.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fx.cache()), 0o600);
        assert_eq!(mode(fx.cache().parent().unwrap()), 0o700);
    }
    assert!(!format!("{p2:?}").contains("eyJ"), "no token in Debug output");

    // logout forgets the account: the next connect must prompt again.
    assert_eq!(secgraph::auth::TokenCache::at(fx.cache()).remove(Some(DEMO_ANALYST)).unwrap(), 1);
    let third = ScriptedUser::new(&fx.emu, Act::Approve);
    QueryProvider::connect(Some(&fx.settings()), &fx.options(third.clone(), AuthType::Device))
        .await
        .unwrap();
    assert_eq!(third.count(), 1);
}

#[tokio::test]
async fn device_code_declined_and_expired() {
    let fx = Fx::new(EmulatorConfig {
        device_code_lifetime: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let e = QueryProvider::connect(
        Some(&fx.settings()),
        &fx.options(ScriptedUser::new(&fx.emu, Act::Decline), AuthType::Device),
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Auth(a) if a.error == "authorization_declined"), "{e}");
    assert!(e.to_string().contains("declined"));
    let e = QueryProvider::connect(
        Some(&fx.settings()),
        &fx.options(ScriptedUser::new(&fx.emu, Act::Ignore), AuthType::Device),
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Auth(a) if a.error == "expired_token"), "{e}");
}

#[tokio::test]
async fn device_code_honours_slow_down() {
    // The first poll is told to slow down: the client must add five seconds before polling again.
    let fx = Fx::new(EmulatorConfig {
        faults: Some(FaultSpec::parse("token:slow-down@nth=1").unwrap()),
        ..Default::default()
    })
    .await;
    let user = ScriptedUser::new(&fx.emu, Act::Approve);
    let started = std::time::Instant::now();
    let p = QueryProvider::connect(Some(&fx.settings()), &fx.options(user.clone(), AuthType::Device))
        .await
        .unwrap();
    assert_eq!(p.info().account.as_deref(), Some(DEMO_ANALYST));
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "1 s interval, then 1 + 5 s after slow_down: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn browser_sign_in_approved_declined_and_state_mismatch() {
    let fx = Fx::new(EmulatorConfig::default()).await;
    let user = ScriptedUser::new(&fx.emu, Act::Approve);
    let p = QueryProvider::connect(Some(&fx.settings()), &fx.options(user.clone(), AuthType::Browser))
        .await
        .unwrap();
    assert_eq!(user.count(), 1);
    assert_eq!(p.info().account.as_deref(), Some(DEMO_ANALYST));
    std::fs::remove_file(fx.cache()).unwrap();

    let e = QueryProvider::connect(
        Some(&fx.settings()),
        &fx.options(ScriptedUser::new(&fx.emu, Act::Decline), AuthType::Browser),
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Auth(a) if a.error == "access_denied"), "{e}");
    assert!(e.to_string().contains("AADSTS65004"), "{e}");

    let e = QueryProvider::connect(
        Some(&fx.settings()),
        &fx.options(ScriptedUser::new(&fx.emu, Act::TamperState), AuthType::Browser),
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Auth(a) if a.error == "state_mismatch"), "{e}");
}

#[tokio::test]
async fn refresh_after_expiry_without_a_prompt_and_reprompt_after_reuse() {
    let fx = Fx::new(EmulatorConfig {
        token_lifetime: Some(Duration::from_secs(4)),
        ..Default::default()
    })
    .await;
    let user = ScriptedUser::new(&fx.emu, Act::Approve);
    let p = QueryProvider::connect(Some(&fx.settings()), &fx.options(user.clone(), AuthType::Device))
        .await
        .unwrap();
    let first_cache = std::fs::read(fx.cache()).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Past half its life the token is renewed with the refresh token: rows come back, no prompt.
    let mut t = Table::new();
    p.run("Alerts.list", &[("start".into(), "-31d".into())], &mut t).await.unwrap();
    assert_eq!((t.len(), user.count()), (60, 1));
    assert_ne!(
        std::fs::read(fx.cache()).unwrap(),
        first_cache,
        "the rotated refresh token was stored"
    );

    // Put the old (now rotated) refresh token back: using it fails, so the next connect prompts again.
    std::fs::write(fx.cache(), &first_cache).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = ScriptedUser::new(&fx.emu, Act::Approve);
    QueryProvider::connect(Some(&fx.settings()), &fx.options(again.clone(), AuthType::Device))
        .await
        .unwrap();
    assert_eq!(again.count(), 1, "a reused refresh token leads to a new sign-in");
}

#[tokio::test]
async fn certificate_sign_in_and_wrong_certificate() {
    let fx = Fx::new(EmulatorConfig::default()).await;
    let p = QueryProvider::connect(
        Some(&fx.settings()),
        &ConnectOptions {
            instance: Some("Certificate".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(p.info().auth, secgraph::connect::AuthMethod::Certificate);
    assert!(p.info().roles.iter().any(|r| r == "SecurityAlert.ReadWrite.All"));

    // A passphrase-protected copy of the same key, the passphrase from the environment.
    let key_pem = std::fs::read_to_string(fx.emu.client_key_path()).unwrap();
    let der = pkcs8_der(&key_pem);
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let enc = info.encrypt(pkcs8::rand_core::OsRng, b"correct horse").unwrap();
    let enc_pem = enc.to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF).unwrap();
    let enc_path = fx.dir.path().join("enc-key.pem");
    std::fs::write(&enc_path, enc_pem.as_bytes()).unwrap();
    let text = format!(
        "{}  MicrosoftGraph-Encrypted:\n    Args:\n      TenantId: {}\n      ClientId: {}\n      Certificate: '{}'\n      PrivateKey: '{}'\n      PrivateKeySecret: {{EnvironmentVar: SECGRAPH_TEST_KEY_PASS}}\n",
        fx.emu.msticpy_config(),
        secgraph_emulator::DEMO_TENANT_ID,
        secgraph_emulator::DEMO_CLIENT_ID,
        fx.emu.client_certificate_path().display(),
        enc_path.display()
    );
    let s = Settings::from_yaml(&text, "test").unwrap();
    // SAFETY: tests in this file do not read this variable concurrently.
    unsafe { std::env::set_var("SECGRAPH_TEST_KEY_PASS", "correct horse") };
    QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Encrypted".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    unsafe { std::env::set_var("SECGRAPH_TEST_KEY_PASS", "wrong") };
    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Encrypted".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("wrong passphrase"), "{e}");

    // A certificate the app does not know.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&other)
        .unwrap();
    let (cp, kp) = (fx.dir.path().join("other.pem"), fx.dir.path().join("other-key.pem"));
    std::fs::write(&cp, cert.pem()).unwrap();
    std::fs::write(&kp, other.serialize_pem()).unwrap();
    let text = fx
        .emu
        .msticpy_config()
        .replace(&fx.emu.client_certificate_path().display().to_string(), &cp.display().to_string())
        .replace(&fx.emu.client_key_path().display().to_string(), &kp.display().to_string());
    let s = Settings::from_yaml(&text, "test").unwrap();
    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Certificate".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, Error::Auth(a) if a.codes == vec![700027]), "{e}");
    assert!(!format!("{e:?}").contains("PRIVATE KEY"));
}

fn pkcs8_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

#[tokio::test]
async fn token_expiry_mid_query_renews_once_and_loses_nothing() {
    let fx = Fx::new(EmulatorConfig {
        page_size: Some(10),
        faults: Some(FaultSpec::parse("alerts_v2:expire-token@nth=3").unwrap()),
        ..Default::default()
    })
    .await;
    let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let mut rows = Vec::<serde_json::Value>::new();
    let summary = p.run("Alerts.list", &[("start".into(), "-31d".into())], &mut rows).await.unwrap();
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!((rows.len(), ids.len(), summary.pages), (60, 60, 6));

    // Two 401s in a row are an error, not a loop.
    let fx = Fx::new(EmulatorConfig {
        page_size: Some(10),
        faults: Some(FaultSpec::parse("alerts_v2:expire-token@first=2").unwrap()),
        ..Default::default()
    })
    .await;
    let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let e = p.run("Alerts.list", &[], &mut Table::new()).await.unwrap_err();
    assert!(matches!(&e, Error::Api(a) if a.status == 401), "{e}");
}

#[tokio::test]
async fn sixteen_processes_renewing_at_once_spend_the_refresh_token_once_and_prompt_no_one() {
    // A slow token endpoint and a token due for renewal: every "process" (its own credential, sharing the cache
    // file) wants to renew at once. One does; the others wait on the cache's refresh lock and use what it stored.
    let fx = Fx::new(EmulatorConfig {
        token_lifetime: Some(Duration::from_secs(4)),
        faults: Some(FaultSpec::parse("token:slow-first-byte(700)").unwrap()),
        ..Default::default()
    })
    .await;
    let user = ScriptedUser::new(&fx.emu, Act::Approve);
    QueryProvider::connect(Some(&fx.settings()), &fx.options(user.clone(), AuthType::Device))
        .await
        .unwrap();
    assert_eq!(user.count(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = fx.emu.requests_to("/oauth2/v2.0/token");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let settings = fx.settings();
            let options = fx.options(user.clone(), AuthType::Device);
            tokio::spawn(async move { QueryProvider::connect(Some(&settings), &options).await.map(|_| ()) })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(user.count(), 1, "nobody was asked to sign in again");
    assert_eq!(
        fx.emu.requests_to("/oauth2/v2.0/token") - before,
        1,
        "the refresh token was spent once"
    );
}
