//! The client against a hostile or careless server (loopback HTTPS, see `common`): credentials never leave their
//! host, nothing panics on server-sent numbers, every body and every paging run is bounded, faults are retried.

mod common;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::{any, get, post};
use common::{Pki, Server, json};
use secgraph::auth::{ClientSecretCredential, StaticTokenCredential, TokenCredential, TokenRequestOptions};
use secgraph::graph::{GraphClient, PagingLimits};
use secgraph::output::Table;
use secgraph::query::QueryStore;
use secgraph::{Error, ErrorKind, Secret};
use serde_json::json as j;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use url::Url;

const TOKEN: &str = "eyJ.secret-bearer-token.sig";

fn graph(pki: &Pki, server: &Server, timeout: Option<Duration>) -> GraphClient {
    let cred = StaticTokenCredential::new(Secret::new(TOKEN), chrono::Utc::now() + chrono::Duration::hours(1));
    GraphClient::new(
        pki.client(timeout),
        &Url::parse(&server.base()).unwrap(),
        "v1.0",
        Arc::new(cred),
        "https://graph.microsoft.com/.default".into(),
    )
    .unwrap()
}

/// A server that answers every request with an empty page: the "other host" a token must never reach.
async fn other(pki: &Pki) -> Server {
    pki.serve(Router::new().fallback(any(|| async { json(200, &j!({"value": [{"id": "foreign"}]}), &[]) })))
        .await
}

fn never_saw_token(s: &Server) {
    let seen = s.seen();
    assert!(
        seen.iter().all(|r| r.authorization.is_none() && !r.body.contains("s3cr3t")),
        "the other host received a credential: {seen:?}"
    );
}

#[tokio::test]
async fn scheme_relative_paths_never_carry_the_token_to_another_host() {
    let pki = Pki::new();
    let other = other(&pki).await;
    let g_srv = pki
        .serve(Router::new().fallback(any(|| async { json(200, &j!({"value": []}), &[]) })))
        .await;
    let g = graph(&pki, &g_srv, None);
    let host = format!("127.0.0.1:{}", other.addr.port());
    let hostile = [
        format!("\\\\{host}\\x"),
        format!("\\/{host}/x"),
        format!("/\\\\{host}\\x"),
        format!("/security/%2F%2F{host}/x"),
        format!("/security/..%2f..%2f{host}"),
        format!("/security/%5c%5c{host}"),
        format!("//{host}/x"),
        format!("https://{host}/x"),
        "/security/alerts_v2\r\nHost: evil".to_string(),
    ];
    for path in &hostile {
        match g.url_for(path) {
            Err(e) => assert_eq!(e.kind(), ErrorKind::Usage, "{path}: {e}"),
            // `//host/x` is taken as a path under the Graph root; it must stay on the Graph host.
            Ok(u) => assert_eq!(u.origin(), Url::parse(&g_srv.base()).unwrap().origin(), "{path} → {u}"),
        }
    }
    let e = g.url_for(&hostile[0]).unwrap_err().to_string();
    assert!(e.contains("backslashes"), "{e}");

    // A template's `path` parameter goes through the same check.
    let store = QueryStore::builtin().unwrap();
    for q in ["Alerts.list", "SecurityGraphAlert.list_alerts"] {
        let Ok(t) = store.get(q) else { continue };
        if t.parameter("path").is_none() {
            continue;
        }
        let r = t
            .render(
                &[("path".into(), hostile[0].clone()), ("start".into(), "-1d".into())],
                chrono::Utc::now(),
            )
            .unwrap();
        assert!(g.url_for(&r.text).is_err(), "{q} rendered {}", r.text);
    }

    // A URL built anywhere else is checked again where the token is attached.
    let foreign = Url::parse(&format!("{}/v1.0/security/alerts_v2", other.base())).unwrap();
    let e = g.send_json(reqwest::Method::GET, &foreign, None).await.unwrap_err();
    assert!(e.to_string().contains("refusing to send the Graph token"), "{e}");
    let mut t = Table::default();
    assert!(g.page_through(foreign, &mut t).await.is_err());
    assert!(other.seen().is_empty(), "{:?}", other.seen());
}

#[tokio::test]
async fn graph_redirects_to_another_origin_are_errors_and_same_origin_ones_are_followed() {
    let pki = Pki::new();
    let other = other(&pki).await;
    let target = format!("{}/v1.0/security/alerts_v2", other.base());
    let g_srv = pki
        .serve(
            Router::new()
                .route(
                    "/v1.0/away",
                    get(move || {
                        let t = target.clone();
                        async move { Response::builder().status(307).header("location", t).body(Body::empty()).unwrap() }
                    }),
                )
                .route(
                    "/v1.0/here",
                    any(|| async {
                        Response::builder()
                            .status(302)
                            .header("location", "/v1.0/there")
                            .body(Body::empty())
                            .unwrap()
                    }),
                )
                .route(
                    "/v1.0/there",
                    get(|| async { json(200, &j!({"value": [{"id": "a"}, {"id": "b"}]}), &[]) }),
                ),
        )
        .await;
    let g = graph(&pki, &g_srv, None);
    let mut t = Table::default();
    let e = g.page_through(g.url_for("/away").unwrap(), &mut t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Api);
    assert!(e.to_string().contains("redirect"), "{e}");
    assert!(other.seen().is_empty(), "followed a cross-origin redirect: {:?}", other.seen());
    assert!(t.is_empty());

    let mut t = Table::default();
    let s = g.page_through(g.url_for("/here").unwrap(), &mut t).await.unwrap();
    assert_eq!(s.rows, 2);
    // Writes never follow a redirect, even on the same host.
    let e = g
        .send_json(
            reqwest::Method::PATCH,
            &g.url_for("/here").unwrap(),
            Some(&j!({"status": "resolved"})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redirect"), "{e}");
}

#[tokio::test]
async fn the_token_endpoint_follows_no_redirect_and_the_secret_stays_home() {
    let pki = Pki::new();
    let other = pki
        .serve(Router::new().fallback(any(|| async {
            json(
                200,
                &j!({"access_token": "foreign", "expires_in": 3600, "token_type": "Bearer"}),
                &[],
            )
        })))
        .await;
    let to = format!("{}/t/oauth2/v2.0/token", other.base());
    let same = "/t/oauth2/v2.0/token2".to_string();
    let srv = pki
        .serve(
            Router::new()
                .route(
                    "/t/oauth2/v2.0/token",
                    post(move || {
                        let to = to.clone();
                        async move { Response::builder().status(307).header("location", to).body(Body::empty()).unwrap() }
                    }),
                )
                .route(
                    "/u/oauth2/v2.0/token",
                    post(move || {
                        let to = same.clone();
                        async move { Response::builder().status(308).header("location", to).body(Body::empty()).unwrap() }
                    }),
                ),
        )
        .await;
    let authority = Url::parse(&format!("{}/", srv.base())).unwrap();
    for tenant in ["t", "u"] {
        let cred = ClientSecretCredential::new(pki.client(None), &authority, tenant, "c", Secret::new("s3cr3t")).unwrap();
        let e = cred.get_token(&["s/.default"], TokenRequestOptions::default()).await.unwrap_err();
        assert!(e.to_string().contains("never follow redirects"), "{e}");
        assert!(!e.to_string().contains("s3cr3t"));
    }
    never_saw_token(&other);
    assert!(other.seen().is_empty(), "the token request was re-posted: {:?}", other.seen());
    // Exactly one POST per credential reached the real endpoint: the same-origin 308 was not followed either.
    assert_eq!(srv.seen().len(), 2);
}

#[tokio::test]
async fn huge_token_lifetimes_are_clamped_not_a_panic() {
    let pki = Pki::new();
    let replies = [
        j!(9223372036854775807i64),
        j!(1e17),
        j!(1e13),
        j!("1e300"),
        j!(-5),
        j!(18446744073709551615u64),
    ];
    for exp in replies {
        let body = j!({"access_token": "tok", "expires_in": exp, "token_type": "Bearer"});
        let srv = pki
            .serve(Router::new().route(
                "/t/oauth2/v2.0/token",
                post(move || {
                    let b = body.clone();
                    async move { json(200, &b, &[]) }
                }),
            ))
            .await;
        let authority = Url::parse(&format!("{}/", srv.base())).unwrap();
        let cred = ClientSecretCredential::new(pki.client(None), &authority, "t", "c", Secret::new("s3cr3t")).unwrap();
        match cred.get_token(&["s/.default"], TokenRequestOptions::default()).await {
            Ok(t) => assert!(
                t.expires_on <= chrono::Utc::now() + chrono::Duration::days(8),
                "{exp}: {}",
                t.expires_on
            ),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Api, "{exp}: {e}"),
        }
    }
}

#[tokio::test]
async fn token_requests_are_retried_after_throttling_and_server_errors() {
    let pki = Pki::new();
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let srv = pki
        .serve(Router::new().route(
            "/t/oauth2/v2.0/token",
            post(move || {
                let c = c.clone();
                async move {
                    match c.fetch_add(1, Ordering::SeqCst) {
                        0 => json(503, &j!({"error": "temporarily_unavailable"}), &[("retry-after", "0")]),
                        1 => json(429, &j!({"error": "throttled"}), &[("retry-after", "0.1")]),
                        _ => json(200, &j!({"access_token": "tok", "expires_in": 3600}), &[]),
                    }
                }
            }),
        ))
        .await;
    let authority = Url::parse(&format!("{}/", srv.base())).unwrap();
    let cred = ClientSecretCredential::new(pki.client(None), &authority, "t", "c", Secret::new("s3cr3t")).unwrap();
    let t = cred.get_token(&["s/.default"], TokenRequestOptions::default()).await.unwrap();
    assert_eq!(t.token.expose(), "tok");
    assert_eq!(n.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_transient_500_on_a_read_is_retried_but_a_persistent_one_is_reported() {
    let pki = Pki::new();
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let srv = pki
        .serve(
            Router::new()
                .route(
                    "/v1.0/flaky",
                    get(move || {
                        let c = c.clone();
                        async move {
                            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                                json(
                                    500,
                                    &j!({"error": {"code": "UnknownError", "message": "transient"}}),
                                    &[("retry-after", "0")],
                                )
                            } else {
                                json(200, &j!({"value": [{"id": "1"}]}), &[])
                            }
                        }
                    }),
                )
                .route(
                    "/v1.0/broken",
                    get(|| async {
                        json(
                            500,
                            &j!({"error": {"code": "UnknownError", "message": "down"}}),
                            &[("retry-after", "0")],
                        )
                    }),
                ),
        )
        .await;
    let g = graph(&pki, &srv, None);
    let mut t = Table::default();
    assert_eq!(g.page_through(g.url_for("/flaky").unwrap(), &mut t).await.unwrap().rows, 1);
    assert_eq!(n.load(Ordering::SeqCst), 2);
    let e = g.page_through(g.url_for("/broken").unwrap(), &mut t).await.unwrap_err();
    assert!(matches!(&e, Error::Api(a) if a.status == 500), "{e}");
    let broken = srv.seen().iter().filter(|s| s.path == "/v1.0/broken").count();
    assert_eq!(broken, 3, "a persistent 500 is tried a bounded number of times");
}

#[tokio::test]
async fn server_error_text_is_stripped_of_control_characters_and_capped() {
    let pki = Pki::new();
    let huge = "A".repeat(50 * 1024 * 1024);
    let srv = pki
        .serve(
            Router::new()
                .route(
                    "/v1.0/ansi",
                    get(|| async {
                        json(
                            400,
                            &j!({"error": {"code": "BadRequest", "message": "bad \u{1b}[31mred\u{1b}[0m\r\nerror: forged line\u{7}",
                                "innerError": {"request-id": "req-123\r\nX", "date": "2026-12-03T00:00:00"}}}),
                            &[],
                        )
                    }),
                )
                .route(
                    "/v1.0/huge",
                    get(move || {
                        let body = format!(r#"{{"error":{{"code":"TooChatty","message":"{huge}"}}}}"#);
                        async move {
                            Response::builder()
                                .status(400)
                                .header("request-id", "req-456")
                                .body(Body::from(body))
                                .unwrap()
                        }
                    }),
                ),
        )
        .await;
    let g = graph(&pki, &srv, None);
    let mut t = Table::default();
    let e = g.page_through(g.url_for("/ansi").unwrap(), &mut t).await.unwrap_err().to_string();
    assert!(!e.chars().any(char::is_control), "{e:?}");
    assert!(e.contains("BadRequest") && e.contains("req-123"), "{e}");
    let e = g.page_through(g.url_for("/huge").unwrap(), &mut t).await.unwrap_err().to_string();
    assert!(e.len() < 2000, "{} characters shown", e.len());
    assert!(e.contains("TooChatty") && e.contains("req-456"), "{e}");
}

#[tokio::test]
async fn oversized_and_endless_page_bodies_stop_at_the_cap() {
    let pki = Pki::new();
    let srv = pki
        .serve(
            Router::new()
                .route(
                    "/v1.0/big",
                    get(|| async { json(200, &j!({"value": ["x".repeat(3 * 1024 * 1024)]}), &[]) }),
                )
                .route(
                    "/v1.0/endless",
                    get(|| async {
                        let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
                        let head =
                            futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"value\":[")) });
                        let tail = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
                        use futures_util::StreamExt;
                        Response::builder()
                            .status(200)
                            .header("content-type", "application/json")
                            .body(Body::from_stream(head.chain(tail)))
                            .unwrap()
                    }),
                ),
        )
        .await;
    let g = graph(&pki, &srv, None).with_limits(PagingLimits {
        max_page_bytes: 1024 * 1024,
        ..Default::default()
    });
    for path in ["/big", "/endless"] {
        let mut t = Table::default();
        let e = g.page_through(g.url_for(path).unwrap(), &mut t).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Api);
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{path}: {e}");
    }
}

#[tokio::test]
async fn endless_distinct_next_links_stop_at_the_page_cap() {
    let pki = Pki::new();
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b = base.clone();
    let srv = pki
        .serve(Router::new().route(
            "/v1.0/pages",
            get(move |req: Request| {
                let b = b.clone();
                async move {
                    let n: u64 = req
                        .uri()
                        .query()
                        .and_then(|q| q.strip_prefix("n="))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let next = format!("{}/v1.0/pages?n={}", b.get().unwrap(), n + 1);
                    json(200, &j!({"value": [{"id": format!("r{n}")}], "@odata.nextLink": next}), &[])
                }
            }),
        ))
        .await;
    base.set(srv.base()).unwrap();
    let g = graph(&pki, &srv, None).with_limits(PagingLimits {
        max_pages: 25,
        ..Default::default()
    });
    let mut t = Table::default();
    let e = g.page_through(g.url_for("/pages").unwrap(), &mut t).await.unwrap_err();
    assert!(matches!(e, Error::Paging { .. }), "{e}");
    assert!(
        e.to_string().contains("25 pages") && e.to_string().contains("25 rows were delivered"),
        "{e}"
    );
    assert_eq!(t.len(), 25);
    assert_eq!(srv.seen().len(), 25);
}

#[tokio::test]
async fn a_slowloris_body_fails_at_the_timeout_without_retries() {
    let pki = Pki::new();
    let srv = pki
        .serve(Router::new().route(
            "/v1.0/slow",
            get(|| async {
                use futures_util::StreamExt;
                let drip = futures_util::stream::unfold((), |_| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b" ")), ()))
                });
                let head = futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"value\":[")) });
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from_stream(head.chain(drip)))
                    .unwrap()
            }),
        ))
        .await;
    let g = graph(&pki, &srv, Some(Duration::from_secs(2)));
    let mut t = Table::default();
    let e = g.page_through(g.url_for("/slow").unwrap(), &mut t).await.unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert_eq!(srv.seen().len(), 1, "a timed-out request is not sent again");
}

#[tokio::test]
async fn an_oversized_token_reply_is_refused() {
    let pki = Pki::new();
    let srv = pki
        .serve(Router::new().route(
            "/t/oauth2/v2.0/token",
            post(|| async { json(200, &j!({"access_token": "x".repeat(2 * 1024 * 1024), "expires_in": 3600}), &[]) }),
        ))
        .await;
    let authority = Url::parse(&format!("{}/", srv.base())).unwrap();
    let cred = ClientSecretCredential::new(pki.client(None), &authority, "t", "c", Secret::new("s3cr3t")).unwrap();
    let e = cred.get_token(&["s/.default"], TokenRequestOptions::default()).await.unwrap_err();
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
}

#[tokio::test]
async fn a_connection_reset_by_the_token_endpoint_is_retried() {
    use secgraph_emulator::{Emulator, EmulatorConfig, faults::FaultSpec};
    let emu = Emulator::start(EmulatorConfig {
        faults: Some(FaultSpec::parse("token:reset@first=1;token:503@nth=2").unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emu.yaml").unwrap();
    let p = secgraph::QueryProvider::connect(Some(&s), &secgraph::ConnectOptions::default())
        .await
        .unwrap();
    assert!(!p.info().roles.is_empty());
    // The reset and the 503 were faults in front of the handler; the handler answered at least once.
    assert!(emu.requests_to("/oauth2/v2.0/token") >= 1);
}

/// A hunting result of exactly the service's row limit is almost surely cut short, and nothing in the rows says so:
/// the user is warned, with the way out.
#[tokio::test]
async fn a_hunting_result_at_the_row_limit_is_reported() {
    let pki = Pki::new();
    let rows: Vec<serde_json::Value> = (0..secgraph::graph::HUNTING_ROW_LIMIT).map(|i| j!({"n": i})).collect();
    let reply = j!({"schema": [{"name": "n", "type": "Int64"}], "results": rows});
    let srv = pki
        .serve(Router::new().route(
            "/v1.0/security/runHuntingQuery",
            post(move || {
                let reply = reply.clone();
                async move { json(200, &reply, &[]) }
            }),
        ))
        .await;
    let g = graph(&pki, &srv, None);
    let log = common::SharedBuf::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let page = g.hunt_page("T", None).await.unwrap();
    assert_eq!(page.rows.len(), secgraph::graph::HUNTING_ROW_LIMIT);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("row limit") && text.contains("narrow the time range"), "{text}");
}
