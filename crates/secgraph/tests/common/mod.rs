//! A hostile HTTPS server for hardening tests: loopback only, its own CA, any axum router. Each server records the
//! requests it received (method, path, `Authorization` header, body) so a test can prove a credential never
//! reached it.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// A CA and a server certificate for 127.0.0.1 and localhost, shared by every server of one test.
pub struct Pki {
    pub ca_path: PathBuf,
    cert_pem: String,
    key_pem: String,
    _dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let cert = params.signed_by(&key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).unwrap();
        Pki {
            ca_path,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            _dir: dir,
        }
    }

    /// An HTTP client of the library that trusts this CA, with the given whole-request timeout.
    pub fn client(&self, timeout: Option<std::time::Duration>) -> reqwest::Client {
        secgraph::HttpOptions {
            ca_certificates: vec![self.ca_path.clone()],
            timeout,
            ..Default::default()
        }
        .build()
        .unwrap()
    }

    /// Starts `router` on an ephemeral loopback port; every request is recorded first.
    pub async fn serve(&self, router: Router) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let router = router.layer(axum::middleware::from_fn(move |req: Request, next: axum::middleware::Next| {
            let log = log.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
                log.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                    authorization: parts.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                });
                next.run(Request::from_parts(parts, Body::from(bytes))).await
            }
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(self.cert_pem.clone().into_bytes(), self.key_pem.clone().into_bytes())
            .await
            .unwrap();
        let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
        tokio::spawn(async move {
            let _ = server.serve(router.into_make_service()).await;
        });
        Server { addr, seen }
    }
}

/// A running hostile server.
pub struct Server {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A JSON response with a status and extra headers.
pub fn json(status: u16, body: &serde_json::Value, headers: &[(&str, &str)]) -> Response {
    let mut b = Response::builder().status(status).header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// Output written into a shared buffer, for tests that read what was logged or written.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
