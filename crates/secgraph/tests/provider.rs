//! The client library against the emulator, in-process on an ephemeral loopback port, over HTTPS with its CA.

use secgraph::auth::StaticTokenCredential;
use secgraph::config::{ConfigSource, SearchPaths, Settings};
use secgraph::graph::GraphClient;
use secgraph::output::{RowSink, Table};
use secgraph::{ConnectOptions, Error, QueryProvider, Secret};
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig, directory};
use serde_json::Value;
use std::sync::Arc;

struct Fixture {
    emu: Emulator,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(config: EmulatorConfig) -> Fixture {
        let emu = Emulator::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("msticpyconfig.yaml"), emu.msticpy_config()).unwrap();
        Fixture { emu, dir }
    }
    fn settings(&self) -> Settings {
        Settings::load(&self.dir.path().join("msticpyconfig.yaml"), ConfigSource::Explicit).unwrap()
    }
    /// Settings with only the Azure section (cloud metadata URL and CA), as a user relying on options would have.
    fn azure_only(&self) -> Settings {
        Settings::from_yaml(
            &format!(
                "Azure:\n  resource_manager_url: '{}'\n  ca_certificates: ['{}']\n",
                self.emu.base_url(),
                self.emu.ca_path().display()
            ),
            "test",
        )
        .unwrap()
    }
}

/// Collects rows and checks no id appears twice.
#[derive(Default)]
struct Ids(Vec<String>);

impl RowSink for Ids {
    fn page(&mut self, rows: Vec<secgraph::Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        self.0.extend(rows.iter().map(|r| r.id().unwrap_or_default().to_string()));
        Ok(std::ops::ControlFlow::Continue(()))
    }
}

#[tokio::test]
async fn connects_from_file_default_and_named_instances() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let s = fx.settings();
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    assert_eq!(p.info().tenant_id, DEMO_TENANT_ID);
    assert_eq!(p.info().source, "DataProviders.MicrosoftGraph");
    assert_eq!(p.info().graph_root, format!("{}/v1.0/", fx.emu.base_url()));
    assert!(p.info().roles.iter().any(|r| r == "SecurityAlert.ReadWrite.All"));

    let p = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Fabrikam".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(p.info().tenant_id, directory::SECOND_TENANT_ID);
    assert_eq!(p.info().source, "DataProviders.MicrosoftGraph-Fabrikam");

    let e = QueryProvider::connect(
        Some(&s),
        &ConnectOptions {
            instance: Some("Nope".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("no instance 'Nope'") && m.contains("Fabrikam") && m.contains("NoRoles"),
        "{m}"
    );
}

#[tokio::test]
async fn no_default_instance_lists_the_named_ones() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let text = fx.emu.msticpy_config().replace("  MicrosoftGraph:\n", "  MicrosoftGraph-Main:\n");
    let s = Settings::from_yaml(&text, "test").unwrap();
    let e = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("choose an instance") && m.contains("Main") && m.contains("Fabrikam"),
        "{m}"
    );
}

#[tokio::test]
async fn connects_from_options_and_overrides_the_file() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let opts = ConnectOptions {
        tenant_id: Some(DEMO_TENANT_ID.into()),
        client_id: Some(DEMO_CLIENT_ID.into()),
        client_secret: Some(Secret::new(DEMO_CLIENT_SECRET)),
        ..Default::default()
    };
    let p = QueryProvider::connect(Some(&fx.azure_only()), &opts).await.unwrap();
    assert_eq!(p.info().source, "options");
    assert_eq!(p.info().client_id, DEMO_CLIENT_ID);

    // An option overrides the file: a wrong secret given as option fails even though the file's is right.
    let opts = ConnectOptions {
        client_secret: Some(Secret::new("not-the-secret")),
        ..Default::default()
    };
    assert!(matches!(
        QueryProvider::connect(Some(&fx.settings()), &opts).await,
        Err(Error::Auth(_))
    ));
}

#[tokio::test]
async fn connects_from_a_quoted_connection_string() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let cs = format!(" tenant_id = '{DEMO_TENANT_ID}' ; client_id=\"{DEMO_CLIENT_ID}\"; client_secret='{DEMO_CLIENT_SECRET}'");
    let p = QueryProvider::connect(
        Some(&fx.settings()),
        &ConnectOptions {
            connection_string: Some(Secret::new(cs)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(p.info().tenant_id, DEMO_TENANT_ID);
    assert_eq!(p.info().source, "connection string");

    let bad = ConnectOptions {
        connection_string: Some(Secret::new(format!("tenant_id={DEMO_TENANT_ID};client_id"))),
        ..Default::default()
    };
    let e = QueryProvider::connect(Some(&fx.settings()), &bad).await.unwrap_err();
    assert!(matches!(e, Error::ConnectionString { .. }), "{e}");
    assert!(e.to_string().contains("part 2 has no '='"), "{e}");
}

#[tokio::test]
async fn wrong_secret_gives_a_clear_aadsts_error_without_the_secret() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let opts = ConnectOptions {
        client_secret: Some(Secret::new("hunter2-wrong-secret")),
        ..Default::default()
    };
    let e = QueryProvider::connect(Some(&fx.settings()), &opts).await.unwrap_err();
    let Error::Auth(a) = &e else {
        panic!("expected an auth error, got {e}")
    };
    assert_eq!(a.status, 401);
    assert_eq!(a.error, "invalid_client");
    assert_eq!(a.codes, vec![7000215]);
    assert!(a.trace_id.is_some() && a.correlation_id.is_some());
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("AADSTS7000215"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(e.kind(), secgraph::ErrorKind::Auth);
}

#[tokio::test]
async fn missing_settings_are_named() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let s = Settings::from_yaml("DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientId: abc\n", "test").unwrap();
    let e = QueryProvider::connect(Some(&s), &ConnectOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("tenant_id (TenantId)") && e.contains("client_secret"), "{e}");
    let s = Settings::from_yaml("DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: t\n      ClientId: c\n      ClientSecret: {EnvironmentVar: SECGRAPH_TEST_SURELY_UNSET}\n", "test").unwrap();
    let e = QueryProvider::connect(Some(&s), &ConnectOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("SECGRAPH_TEST_SURELY_UNSET") && e.contains("not set") && e.contains("ClientSecret"),
        "{e}"
    );
    let s = Settings::from_yaml(
        "DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: t\n      ClientId: c\n      ClientSecret: {KeyVault: }\n",
        "test",
    )
    .unwrap();
    let e = QueryProvider::connect(Some(&s), &ConnectOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("KeyVault") && e.contains("needs a vault") && e.contains("ClientSecret"),
        "{e}"
    );
    drop(fx);
}

#[tokio::test]
async fn a_query_spanning_many_pages_returns_every_row_exactly_once() {
    let fx = Fixture::new(EmulatorConfig {
        alerts: 500,
        page_size: Some(40),
        ..Default::default()
    })
    .await;
    let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let mut ids = Ids::default();
    let summary = p.run("Alerts.list", &[("start".into(), "-31d".into())], &mut ids).await.unwrap();
    assert!(summary.pages >= 5, "{summary:?}");
    assert_eq!(summary.pages, 13);
    let seeded: Vec<String> = fx
        .emu
        .dataset()
        .alerts_v2
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.0, seeded);

    // A time range: exactly the seeded alerts created inside it.
    let ds = fx.emu.dataset();
    let from = ds.generated_at - chrono::Duration::days(7);
    let expected: Vec<&str> = ds
        .alerts_v2
        .iter()
        .filter(|a| chrono::DateTime::parse_from_rfc3339(a["createdDateTime"].as_str().unwrap()).unwrap() >= from)
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let mut ids = Ids::default();
    let start = secgraph::query::time_expr::odata_time(from);
    p.run("Alerts.list", &[("start".into(), start)], &mut ids).await.unwrap();
    assert_eq!(ids.0, expected);
    assert!(!expected.is_empty());
}

#[tokio::test]
async fn table_sink_flattens_like_json_normalize() {
    let fx = Fixture::new(EmulatorConfig {
        alerts: 30,
        ..Default::default()
    })
    .await;
    let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let mut t = Table::new();
    p.run("SecurityGraphAlert.list_alerts", &[("start".into(), "-31d".into())], &mut t)
        .await
        .unwrap();
    assert_eq!(t.len(), 30);
    assert!(t.column("vendorInformation.provider").is_some(), "{:?}", t.column_names());
    let us = t.column("userStates").unwrap();
    assert!((0..t.len()).any(|r| t.cell_text(r, us).starts_with("[{")));
}

#[tokio::test]
async fn invalid_filter_surfaces_the_service_400_with_request_id() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let e = p
        .exec("/security/alerts_v2?$filter=severity eq", &mut Table::new())
        .await
        .unwrap_err();
    let Error::Api(a) = &e else {
        panic!("expected an API error, got {e}")
    };
    assert_eq!(a.status, 400);
    assert_eq!(a.code, "BadRequest");
    assert!(a.message.contains("Invalid filter clause"), "{}", a.message);
    assert!(a.request_id.as_deref().is_some_and(|r| r.len() == 36), "{a:?}");
    assert!(e.to_string().contains("request-id"), "{e}");

    let e = p
        .run(
            "Alerts.list",
            &[("assigned_to".into(), "x') or true or ('".into())],
            &mut Table::new(),
        )
        .await;
    assert!(e.is_ok(), "a hostile value stays inside its literal: {e:?}");
}

#[tokio::test]
async fn expired_token_gets_401_invalid_authentication_token() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let expired = fx.emu.mint_app_token(DEMO_TENANT_ID, DEMO_CLIENT_ID, -120).unwrap();
    let http = secgraph::HttpOptions {
        ca_certificates: vec![fx.emu.ca_path().to_path_buf()],
        ..Default::default()
    }
    .build()
    .unwrap();
    let cred = Arc::new(StaticTokenCredential::new(Secret::new(expired.clone()), chrono::Utc::now()));
    let root = url::Url::parse(&format!("{}/", fx.emu.base_url())).unwrap();
    let g = GraphClient::new(http, &root, "v1.0", cred, "unused".into()).unwrap();
    let url = g.url_for("/security/alerts_v2").unwrap();
    let e = g.page_through(url, &mut Table::new()).await.unwrap_err();
    let Error::Api(a) = &e else {
        panic!("expected an API error, got {e}")
    };
    assert_eq!((a.status, a.code.as_str()), (401, "InvalidAuthenticationToken"));
    assert!(a.message.contains("expired"));
    assert!(
        !format!("{e} {e:?}").contains(&expired[expired.len() - 20..]),
        "the token never shows"
    );
}

#[tokio::test]
async fn app_without_roles_gets_403() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let p = QueryProvider::connect(
        Some(&fx.settings()),
        &ConnectOptions {
            instance: Some("NoRoles".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(p.info().roles.is_empty());
    let e = p.run("Incidents.list", &[], &mut Table::new()).await.unwrap_err();
    assert!(matches!(&e, Error::Api(a) if a.status == 403 && a.code == "Forbidden"), "{e}");
}

#[test]
fn discovery_follows_msticpy_order() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("cwd");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(cwd.as_path()).unwrap();
    std::fs::create_dir_all(home.join(".msticpy")).unwrap();
    let write = |p: &std::path::Path, tenant: &str| {
        std::fs::write(p, format!("DataProviders:\n  MicrosoftGraph:\n    Args: {{TenantId: {tenant}}}\n")).unwrap()
    };
    write(&home.join(".msticpy/msticpyconfig.yaml"), "home");
    let explicit = tmp.path().join("explicit.yaml");
    write(&explicit, "explicit");
    let env = tmp.path().join("env.yaml");
    write(&env, "env");
    let mut paths = SearchPaths {
        explicit: None,
        env_var: None,
        current_dir: Some(cwd.clone()),
        home: Some(home.clone()),
    };
    let tenant = |s: &Settings| match s.provider_args(None).unwrap().get("tenant_id").unwrap().1 {
        secgraph::config::SecretRef::Literal(v) => v.expose().to_string(),
        other => panic!("{other:?}"),
    };
    let s = Settings::discover(&paths).unwrap().unwrap();
    assert_eq!((tenant(&s), s.source().clone()), ("home".into(), ConfigSource::Home));
    write(&cwd.join("msticpyconfig.yaml"), "cwd");
    let s = Settings::discover(&paths).unwrap().unwrap();
    assert_eq!((tenant(&s), s.source().clone()), ("cwd".into(), ConfigSource::CurrentDir));
    paths.env_var = Some(env);
    assert_eq!(tenant(&Settings::discover(&paths).unwrap().unwrap()), "env");
    paths.explicit = Some(explicit);
    assert_eq!(tenant(&Settings::discover(&paths).unwrap().unwrap()), "explicit");
    paths.explicit = Some(tmp.path().join("missing.yaml"));
    assert!(matches!(Settings::discover(&paths), Err(Error::ConfigRead { .. })));
    let none = SearchPaths {
        explicit: None,
        env_var: None,
        current_dir: Some(tmp.path().join("nowhere")),
        home: None,
    };
    assert!(Settings::discover(&none).unwrap().is_none());
}

#[test]
fn legacy_section_and_arg_name_mapping() {
    let s = Settings::from_yaml(
        "SecurityGraphApp:\n  Args:\n    tenant_id: t\n    CLIENTID: c\n    client_secret: s\n    apiVersion: beta\n",
        "test",
    )
    .unwrap();
    let a = s.provider_args(None).unwrap();
    assert_eq!(a.section, "SecurityGraphApp");
    let names: Vec<&str> = a.values.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["tenant_id", "client_id", "client_secret", "api_version"]);
    assert!(!format!("{a:?}").contains("Literal(s)"));
}

#[test]
fn malformed_settings_get_clear_errors() {
    let cases = [
        ("DataProviders: [1, 2", "line"),
        ("- a\n- b\n", "mapping of sections"),
        ("DataProviders: 5\n", "DataProviders"),
        ("DataProviders:\n  MicrosoftGraph: [1]\n", "DataProviders.MicrosoftGraph"),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args: 3\n",
            "DataProviders.MicrosoftGraph.Args",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {Vault: x}\n",
            "unknown value form 'Vault'",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {EnvironmentVar: ''}\n",
            "EnvironmentVar needs",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: [a]\n",
            "found a list",
        ),
    ];
    for (text, want) in cases {
        let e = match Settings::from_yaml(text, "bad.yaml") {
            Err(e) => e,
            Ok(s) => s.provider_args(None).expect_err(text),
        };
        let m = e.to_string();
        assert!(m.contains(want), "{text:?}: {m}");
    }
    let s = Settings::from_yaml("Azure:\n  cloud: mars\n", "t").unwrap();
    let az = s.azure().unwrap();
    assert!(secgraph::config::Cloud::named(az.cloud.as_deref().unwrap()).is_err());
    // "Billion laughs": each level refers nine times to the previous one.
    let mut bomb = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..30 {
        let prev = format!("*l{}", i - 1);
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; 9].join(", ")));
    }
    let started = std::time::Instant::now();
    assert!(Settings::from_yaml(&bomb, "bomb.yaml").is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// The client against every fault the emulator injects on a paged read: each row exactly once, or a clear error.
#[tokio::test]
async fn paging_survives_faults_and_delivers_every_row_once() {
    use secgraph_emulator::faults::FaultSpec;
    let cases = [
        "alerts_v2:429(0.2)@nth=2",
        "alerts_v2:503@nth=3",
        "alerts_v2:504(0.1)@nth=2",
        "alerts_v2:reset@nth=2",
        "alerts_v2:truncate@nth=3",
        "alerts_v2:slow-body(30)@nth=2",
        "alerts_v2:expire-token@nth=2",
        "alerts_v2:duplicate-item@nth=2",
    ];
    for spec in cases {
        let fx = Fixture::new(EmulatorConfig {
            alerts: 50,
            page_size: Some(10),
            faults: Some(FaultSpec::parse(spec).unwrap()),
            ..Default::default()
        })
        .await;
        let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
            .await
            .unwrap();
        let mut ids = Ids::default();
        let summary = p
            .run("Alerts.list", &[("start".into(), "-31d".into())], &mut ids)
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        let unique: std::collections::HashSet<&String> = ids.0.iter().collect();
        assert_eq!((ids.0.len(), unique.len()), (50, 50), "{spec}");
        assert_eq!(summary.duplicates, usize::from(spec.contains("duplicate")), "{spec}");
        // Each fault that makes the client send the request again is counted once (what the progress line shows);
        // a renewed token and a slow body are not retries.
        let retried = ["429", "503", "504", "reset", "truncate"].iter().any(|k| spec.contains(k));
        assert_eq!(p.retries(), usize::from(retried), "{spec}");
    }
    // A next link that points back at a page already read stops the run instead of looping.
    let fx = Fixture::new(EmulatorConfig {
        alerts: 50,
        page_size: Some(10),
        faults: Some(FaultSpec::parse("alerts_v2:repeat-next-link@nth=2").unwrap()),
        ..Default::default()
    })
    .await;
    let p = QueryProvider::connect(Some(&fx.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let e = p
        .run("Alerts.list", &[("start".into(), "-31d".into())], &mut Ids::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Paging { .. }), "{e}");
    assert!(e.to_string().contains("repeated an @odata.nextLink"), "{e}");
    // Hunting rows have no ids: identical rows are data, not duplicates.
    let mut rows: Vec<Value> = Vec::new();
    p.hunt("AlertInfo | project Category | take 20", None, &mut rows).await.unwrap();
    assert_eq!(rows.len(), 20);
}

#[test]
fn debug_output_never_shows_secrets() {
    let s = Settings::from_yaml(
        "DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: t\n      ClientId: c\n      ClientSecret: hunter2-in-the-file\n",
        "t",
    )
    .unwrap();
    let args = s.provider_args(None).unwrap();
    let opts = ConnectOptions {
        client_secret: Some(Secret::new("hunter2-option")),
        connection_string: Some(Secret::new("client_secret=hunter2-cs")),
        ..Default::default()
    };
    let shown = format!(
        "{s:?} {args:?} {opts:?} {:?}",
        secgraph::config::parse_connection_string("tenant_id=t;client_secret=hunter2-parsed").unwrap()
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn an_unknown_auth_type_is_an_error_even_for_an_app_sign_in() {
    let fx = Fixture::new(EmulatorConfig::default()).await;
    let text = fx
        .emu
        .msticpy_config()
        .replacen("    Args:\n", "    Args:\n      auth_type: telepathy\n", 1);
    let s = Settings::from_yaml(&text, "t.yaml").unwrap();
    let e = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap_err();
    assert_eq!(e.kind(), secgraph::ErrorKind::Settings, "{e}");
    assert!(e.to_string().contains("telepathy") && e.to_string().contains("device"), "{e}");
}

/// An embedder calling only `QueryProvider::connect` gets the settings' `QueryDefinitions.Custom` queries, as the CLI
/// and the Python package do, and can see what became of each file.
#[tokio::test]
async fn connect_loads_the_settings_query_folders() {
    let f = Fixture::new(EmulatorConfig::default()).await;
    let custom = f.dir.path().join("custom");
    std::fs::create_dir_all(&custom).unwrap();
    std::fs::write(
        custom.join("mine.yaml"),
        "metadata: {version: 1, data_environments: [SecurityGraph], data_families: [Mine]}\nsources:\n  high_alerts:\n    description: my high alerts\n    args: {query: \"/security/alerts_v2?$filter=severity eq 'high'\"}\n",
    )
    .unwrap();
    let path = f.dir.path().join("msticpyconfig.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\nQueryDefinitions:\n  Custom:\n    - custom\n")).unwrap();
    let p = QueryProvider::connect(Some(&f.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(p.queries().get("Mine.high_alerts").unwrap().description, "my high alerts");
    assert!(
        p.query_files().iter().any(|(file, _)| file.contains("mine.yaml")),
        "{:?}",
        p.query_files()
    );
    let mut rows = Ids::default();
    p.run("Mine.high_alerts", &[], &mut rows).await.unwrap();
    assert!(!rows.0.is_empty());
}

/// The emulator's clock moves when a test says so: a token the client holds expires by it (Graph answers 401 and the
/// client renews once), and changes are stamped by it.
#[tokio::test]
async fn the_emulator_clock_moves_token_expiry_and_change_stamps() {
    let f = Fixture::new(EmulatorConfig::default()).await;
    let p = QueryProvider::connect(Some(&f.settings()), &ConnectOptions::default())
        .await
        .unwrap();
    let mut before = Ids::default();
    p.exec("/security/alerts_v2?$top=1000", &mut before).await.unwrap();
    let moved = f.emu.advance_clock(std::time::Duration::from_secs(3 * 3600));
    assert!(moved > chrono::Utc::now() + chrono::Duration::minutes(179));
    let mut after = Ids::default();
    p.exec("/security/alerts_v2?$top=1000", &mut after).await.unwrap();
    assert_eq!(
        after.0.len(),
        before.0.len(),
        "the client renewed the token the emulator's clock expired"
    );
    assert!(f.emu.requests_to("/oauth2/v2.0/token") >= 2, "a second token was asked for");
    let ca = reqwest::Certificate::from_pem(f.emu.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let r: Value = http
        .post(format!("{}/_emulator/churn", f.emu.base_url()))
        .json(&serde_json::json!({"new": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(r["at"].as_str().unwrap()).unwrap();
    assert!(
        at > chrono::Utc::now() + chrono::Duration::minutes(179),
        "stamped by the emulator's clock: {at}"
    );
    let r = http
        .post(format!("{}/_emulator/clock", f.emu.base_url()))
        .json(&serde_json::json!({"advance": "20m"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}
