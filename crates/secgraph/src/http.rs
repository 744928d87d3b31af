//! The one place HTTP clients are built: TLS roots (platform roots plus configured extra CAs and `SSL_CERT_FILE`),
//! timeouts and the user agent, applied to every client the library creates.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Settings every HTTP client of the library shares.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Extra PEM files of CA certificates to trust besides the platform's roots.
    pub ca_certificates: Vec<PathBuf>,
    /// Whole-request timeout; default 60 s.
    pub timeout: Option<Duration>,
    /// An HTTPS proxy for every request.
    pub proxy: Option<crate::settings::ProxySettings>,
}

impl HttpOptions {
    /// Builds the client. `SSL_CERT_FILE`, when set, is trusted as well.
    pub fn build(&self) -> Result<reqwest::Client> {
        let mut files = self.ca_certificates.clone();
        if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
            files.push(PathBuf::from(f));
        }
        let mut certs = Vec::new();
        for f in &files {
            let pem = std::fs::read(f).map_err(|e| Error::Setting {
                origin: "settings".into(),
                setting: "Azure.ca_certificates".into(),
                message: format!("cannot read CA file {}: {e}", f.display()),
            })?;
            let found = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Setting {
                origin: "settings".into(),
                setting: "Azure.ca_certificates".into(),
                message: format!("{} holds no usable PEM certificate: {e}", f.display()),
            })?;
            if found.is_empty() {
                return Err(Error::Setting {
                    origin: "settings".into(),
                    setting: "Azure.ca_certificates".into(),
                    message: format!("{} holds no PEM certificate", f.display()),
                });
            }
            certs.extend(found);
        }
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("secgraph/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout.unwrap_or(Duration::from_secs(60)))
            .connect_timeout(Duration::from_secs(15))
            .https_only(true);
        if !certs.is_empty() {
            b = b.tls_certs_merge(certs);
        }
        if let Some(p) = &self.proxy {
            let err = |m: String| Error::Setting {
                origin: "settings".into(),
                setting: "msticpy.Proxies.https".into(),
                message: m,
            };
            let mut proxy = reqwest::Proxy::https(&p.url).map_err(|e| err(format!("'{}' is not a usable proxy: {e}", p.url)))?;
            if let Some(u) = &p.username {
                proxy = proxy.basic_auth(u, p.password.as_ref().map(|s| s.expose()).unwrap_or(""));
            }
            b = b.proxy(proxy);
        }
        b.build().map_err(|e| Error::Setting {
            origin: "settings".into(),
            setting: "HTTP client".into(),
            message: format!("cannot build the HTTPS client: {e}"),
        })
    }
}
