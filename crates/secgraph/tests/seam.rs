//! The library's public seam, used as an embedder would: every way to connect through the public API only,
//! queries as a `Send` stream of pages driven from `tokio::spawn`, sinks that stop early, and futures that are
//! `Send` (so they run in `tokio::spawn`, an axum handler or a Python binding's runtime).

use futures_util::StreamExt;
use secgraph::auth::{AuthType, SignInPrompt};
use secgraph::config::Settings;
use secgraph::output::{RowSink, Table};
use secgraph::{ConnectOptions, QueryProvider, Secret};
use secgraph_emulator::directory::DEMO_ANALYST;
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig};
use serde_json::Value;
use std::ops::ControlFlow;
use std::sync::Arc;

fn assert_send<T: Send>(_: &T) {}

/// A prompt for an embedder whose user signs in elsewhere (here the emulator approves on its own).
#[derive(Debug)]
struct Quiet;
impl SignInPrompt for Quiet {
    fn device_code(&self, _message: &str) {}
    fn open_browser(&self, _url: &str) {}
}

async fn emulator() -> (Emulator, Settings, tempfile::TempDir) {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 120,
        page_size: Some(25),
        auto_approve: Some(DEMO_ANALYST.into()),
        device_code_interval: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    (emu, s, tempfile::tempdir().unwrap())
}

#[tokio::test]
async fn every_way_to_connect_through_the_public_api() {
    let (emu, s, dir) = emulator().await;
    let azure_only = Settings::from_yaml(
        &format!(
            "Azure:\n  resource_manager_url: '{}'\n  ca_certificates: ['{}']\n",
            emu.base_url(),
            emu.ca_path().display()
        ),
        "azure.yaml",
    )
    .unwrap();
    let forms: Vec<(&str, Settings, ConnectOptions)> = vec![
        ("settings file", s.clone(), ConnectOptions::default()),
        (
            "named instance",
            s.clone(),
            ConnectOptions {
                instance: Some("Fabrikam".into()),
                ..Default::default()
            },
        ),
        (
            "keyword options",
            azure_only.clone(),
            ConnectOptions {
                tenant_id: Some(DEMO_TENANT_ID.into()),
                client_id: Some(DEMO_CLIENT_ID.into()),
                client_secret: Some(Secret::new(DEMO_CLIENT_SECRET)),
                ..Default::default()
            },
        ),
        (
            "connection string",
            azure_only.clone(),
            ConnectOptions {
                connection_string: Some(Secret::new(format!(
                    "tenant_id={DEMO_TENANT_ID};client_id={DEMO_CLIENT_ID};client_secret='{DEMO_CLIENT_SECRET}'"
                ))),
                ..Default::default()
            },
        ),
        (
            "client certificate",
            azure_only.clone(),
            ConnectOptions {
                tenant_id: Some(DEMO_TENANT_ID.into()),
                client_id: Some(DEMO_CLIENT_ID.into()),
                certificate: Some(emu.client_certificate_path().to_path_buf()),
                private_key: Some(emu.client_key_path().to_path_buf()),
                ..Default::default()
            },
        ),
        (
            "delegated, device code",
            s.clone(),
            ConnectOptions {
                instance: Some("Delegated".into()),
                auth_type: Some(AuthType::Device),
                prompt: Some(Arc::new(Quiet)),
                token_cache: Some(dir.path().join("tokens.json")),
                ..Default::default()
            },
        ),
    ];
    for (what, settings, options) in forms {
        let connecting = QueryProvider::connect(Some(&settings), &options);
        assert_send(&connecting);
        let p = connecting.await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let q = p.render("Incidents.list", &[]).unwrap();
        let n = tokio::spawn({
            let mut pages = p.pages(&q).unwrap();
            async move {
                let mut n = 0;
                while let Some(page) = pages.next().await {
                    n += page?.rows.len();
                }
                Ok::<_, secgraph::Error>(n)
            }
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(n > 0, "{what}");
    }
}

/// Stops after the first page it is given.
struct FirstPage(usize);
impl RowSink for FirstPage {
    fn page(&mut self, rows: Vec<secgraph::Row>) -> secgraph::Result<ControlFlow<()>> {
        self.0 += rows.len();
        Ok(ControlFlow::Break(()))
    }
}

#[tokio::test]
async fn pages_stream_from_a_spawned_task_and_a_sink_can_stop_early() {
    let (emu, s, _dir) = emulator().await;
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    let q = p.render("Alerts.list", &[("start".into(), "-31d".into())]).unwrap();

    // The push path and the pull path deliver the same rows.
    let mut pushed: Vec<Value> = Vec::new();
    let running = p.run_rendered(&q, &mut pushed);
    assert_send(&running);
    let summary = running.await.unwrap();
    assert_eq!((summary.rows, summary.pages), (120, 5));
    let pages = p.pages(&q).unwrap();
    let (rows, numbers) = tokio::spawn(async move {
        let mut rows: Vec<Value> = Vec::new();
        let mut numbers = Vec::new();
        let mut pages = pages;
        while let Some(page) = pages.next().await {
            let page = page.unwrap();
            numbers.push(page.number);
            rows.extend(page.rows.iter().map(secgraph::Row::to_value));
        }
        (rows, numbers)
    })
    .await
    .unwrap();
    assert_eq!(rows, pushed);
    assert_eq!(numbers, [1, 2, 3, 4, 5]);

    // A sink that breaks after one page: the run stops; at most the one page fetched ahead is wasted.
    let before = emu.requests_to("/security/alerts_v2");
    let mut first = FirstPage(0);
    let s = p.run_rendered(&q, &mut first).await.unwrap();
    assert_eq!((first.0, s.pages), (25, 1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let fetched = emu.requests_to("/security/alerts_v2") - before;
    assert!((1..=2).contains(&fetched), "{fetched} requests");

    // Dropping a stream stops the run; a row limit cuts the page that reaches it.
    let limited = secgraph::query::RenderedQuery {
        max_rows: Some(30),
        ..q.clone()
    };
    let before = emu.requests_to("/security/alerts_v2");
    let n: usize = p
        .pages(&limited)
        .unwrap()
        .map(|p| p.unwrap().rows.len())
        .fold(0, |a, b| async move { a + b })
        .await;
    assert_eq!(n, 30);
    // The limit also sets the page size ($top=30 where the service would send 25 a page): one request.
    assert_eq!(emu.requests_to("/security/alerts_v2") - before, 1);

    // Hunting is one page of the same stream type.
    let h = p.render("Hunting.run", &[("query".into(), "AlertInfo | take 3".into())]).unwrap();
    let pages: Vec<_> = p.pages(&h).unwrap().collect().await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().rows.len(), 3);

    // Every other public future is Send too.
    let mut t = Table::new();
    assert_send(&p.exec("/security/incidents", &mut t));
    assert_send(&p.hunt("AlertInfo | take 1", None, &mut t));
    let u = secgraph::graph::Update::default();
    assert_send(&p.update(secgraph::graph::Target::Alert, "x", &u));
}

#[tokio::test]
async fn without_a_prompt_a_needed_sign_in_fails_at_once() {
    let (_emu, s, dir) = emulator().await;
    let started = std::time::Instant::now();
    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Delegated".into()),
            auth_type: Some(AuthType::Browser),
            token_cache: Some(dir.path().join("tokens.json")),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(&e, secgraph::Error::Auth(a) if a.error == "interaction_required"), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "it did not wait for a browser"
    );
}

#[tokio::test]
async fn errors_keep_their_cause_and_expose_what_a_program_acts_on() {
    let (emu, s, _dir) = emulator().await;
    // A refused sign-in: status and AADSTS codes.
    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            client_secret: Some(Secret::new("wrong-secret")),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), secgraph::ErrorKind::Auth);
    assert_eq!(e.http_status(), Some(401));
    assert!(!e.aadsts_codes().is_empty(), "{e}");
    // A Graph error: status and request id.
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    let mut t = Table::new();
    let e = p.exec("/security/alerts_v2/no-such-alert", &mut t).await.unwrap_err();
    assert_eq!(e.http_status(), Some(404));
    assert!(e.request_id().is_some());
    // A network failure keeps its cause in the source chain. (A write is not retried, so the failure comes at once;
    // reads retry a dropped connection with backoff, tested in provider.rs.)
    drop(emu);
    let update = secgraph::graph::Update::from_text(secgraph::graph::Target::Alert, Some("resolved"), None, None, None, None, &[]).unwrap();
    let e = p.update(secgraph::graph::Target::Alert, "any-id", &update).await.unwrap_err();
    assert!(matches!(e, secgraph::Error::Transport { .. }), "{e}");
    assert!(std::error::Error::source(&e).is_some(), "{e:?}");
}

#[tokio::test]
async fn an_embedder_can_give_its_own_environment() {
    let (_emu, s, dir) = emulator().await;
    let mut env = secgraph::Environment::default();
    env.cache_home = Some(dir.path().join("caches"));
    let options = ConnectOptions {
        instance: Some("Delegated".into()),
        auth_type: Some(AuthType::Device),
        prompt: Some(Arc::new(Quiet)),
        environment: Some(env),
        ..Default::default()
    };
    QueryProvider::connect(Some(&s), &options).await.unwrap();
    assert!(dir.path().join("caches").join("secgraph").join("token_cache.json").exists());
}

#[tokio::test]
async fn key_vault_secrets_come_from_the_vault_at_its_own_origin() {
    let (emu, s, dir) = emulator().await;
    let options = ConnectOptions {
        instance: Some("KeyVault".into()),
        prompt: Some(Arc::new(Quiet)),
        token_cache: Some(dir.path().join("tokens.json")),
        ..Default::default()
    };
    QueryProvider::connect(Some(&s), &options).await.unwrap();
    let name = "/secrets/DataProviders-MicrosoftGraph-KeyVault-Args-ClientSecret";
    assert!(emu.requests_to(name) >= 1, "the vault was asked for the secret");
    assert_eq!(emu.requests_to(&format!("/kv/demo-vault{name}")), 0, "not through the path form");
}
