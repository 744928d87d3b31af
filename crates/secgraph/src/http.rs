//! The one place HTTP clients are built: TLS roots (platform roots plus configured extra CAs and `SSL_CERT_FILE`),
//! timeouts and the user agent, applied to every client the library creates.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Longest silence tolerated while a reply arrives (the whole-request timeout bounds the total).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings every HTTP client of the library shares.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Extra PEM files of CA certificates to trust besides the platform's roots.
    pub ca_certificates: Vec<PathBuf>,
    /// Whole-request timeout; default 60 s.
    pub timeout: Option<Duration>,
    /// An HTTPS proxy for every request.
    pub proxy: Option<crate::config::ProxySettings>,
    /// One more CA bundle to trust, usually `SSL_CERT_FILE` (see [`crate::Environment`]).
    pub ssl_cert_file: Option<PathBuf>,
}

impl HttpOptions {
    /// Builds the client.
    pub fn build(&self) -> Result<reqwest::Client> {
        let mut files = self.ca_certificates.clone();
        files.extend(self.ssl_cert_file.clone());
        let mut extra = Vec::new();
        for f in &files {
            let bad = |message: String| Error::Setting {
                origin: "settings".into(),
                setting: "Azure.ca_certificates".into(),
                message,
            };
            let pem = crate::local_file::read(f, crate::local_file::MAX_PEM_FILE_BYTES)
                .map_err(|e| bad(format!("cannot read CA file {}: {e}", f.display())))?;
            use rustls::pki_types::pem::PemObject;
            let found = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("{} holds no usable PEM certificate: {e}", f.display())))?;
            if found.is_empty() {
                return Err(bad(format!("{} holds no PEM certificate", f.display())));
            }
            extra.extend(found);
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Setting {
                origin: "settings".into(),
                setting: "HTTP client".into(),
                message: format!("cannot set up TLS: {e}"),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier(extra)?)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("secgraph/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout.unwrap_or(Duration::from_secs(60)))
            .read_timeout(self.timeout.unwrap_or(Duration::from_secs(60)).min(IDLE_TIMEOUT))
            .connect_timeout(Duration::from_secs(15))
            // Redirects are never followed by the client: the callers decide (same-origin Graph reads only), so a
            // credential can never be re-sent to another host.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .tls_backend_preconfigured(tls);
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

/// The process's one crypto provider (aws-lc-rs, as reqwest's).
fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<std::sync::Arc<rustls::crypto::CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// How many verifiers this process has built (each one read the system's CA roots).
static VERIFIERS_BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The certificate verifier for the platform's roots plus `extra` CAs. Building one reads every system CA, so each
/// distinct set of extra CAs gets one verifier per process, made when a client first needs it and shared by every
/// later client (clients themselves are not shared: their connections belong to one async runtime).
fn verifier(
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<std::sync::Arc<dyn rustls::client::danger::ServerCertVerifier>> {
    type Cached = (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        std::sync::Arc<rustls_platform_verifier::Verifier>,
    );
    static VERIFIERS: std::sync::Mutex<Vec<Cached>> = std::sync::Mutex::new(Vec::new());
    let mut cache = VERIFIERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, v)) = cache.iter().find(|(k, _)| *k == extra) {
        return Ok(v.clone());
    }
    let provider = crypto_provider();
    let built = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider)
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra.clone(), provider)
    }
    .map_err(|e| Error::Setting {
        origin: "settings".into(),
        setting: "Azure.ca_certificates".into(),
        message: format!("cannot set up certificate verification: {e}"),
    })?;
    let v = std::sync::Arc::new(built);
    cache.push((extra, v.clone()));
    VERIFIERS_BUILT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tracing::debug!(verifiers = cache.len(), "CA roots loaded");
    Ok(v)
}

/// Largest reply body read from a token endpoint (Entra's replies are a few KiB).
pub(crate) const MAX_TOKEN_REPLY_BYTES: usize = 1024 * 1024;
/// Largest error body read (the rest is not read; the message is taken from what was read, if it parses).
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;
/// Longest single wait honoured from `Retry-After` (a longer one is clamped).
pub(crate) const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The connection failed or the body was cut short.
    Transport(reqwest::Error),
    /// The body is larger than the cap (announced by `Content-Length`, or found while reading).
    TooLarge { limit: usize },
}

/// Reads a reply body, stopping once it exceeds `limit` bytes (announced by `Content-Length` or found while reading),
/// so an oversized or endless body never grows memory past the cap.
pub(crate) async fn read_body(mut resp: reqwest::Response, limit: usize) -> std::result::Result<bytes::Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    // Sized once when the length is announced: a 4 MB page grown by doubling would be copied about twice over.
    let announced = resp.content_length().map_or(0, |n| n as usize);
    let mut buf = bytes::BytesMut::with_capacity(announced.clamp(8 * 1024, limit.max(8 * 1024)));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Reads a small JSON reply (token-sized, at most [`MAX_TOKEN_REPLY_BYTES`]); `what` names it in errors.
pub(crate) async fn read_small_json(resp: reqwest::Response, url: &Url, what: &str) -> Result<serde_json::Value> {
    let failed = |message: String| Error::Response {
        url: crate::error::redact_url(url),
        message,
    };
    let body = read_body(resp, MAX_TOKEN_REPLY_BYTES).await.map_err(|e| {
        failed(match e {
            BodyError::TooLarge { limit } => format!("{what} larger than {limit} bytes"),
            BodyError::Transport(e) => format!("{what} cut short: {e}"),
        })
    })?;
    serde_json::from_slice(&body).map_err(|e| failed(format!("{what} is not JSON: {e}")))
}

/// Reads at most `limit` bytes of an error body; what lies beyond is dropped unread (an error body is only
/// shown in part anyway).
pub(crate) async fn read_error_body(mut resp: reqwest::Response) -> bytes::Bytes {
    let mut buf = bytes::BytesMut::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    buf.freeze()
}

/// `Retry-After` as seconds (any non-negative number, clamped to [`MAX_RETRY_WAIT`]) or an HTTP date.
pub(crate) fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_unclamped(h).map(|d| d.min(MAX_RETRY_WAIT))
}

/// `Retry-After` as asked (seconds, at most a day, or an HTTP date), not clamped.
pub(crate) fn retry_after_unclamped(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_milliseconds()
        .clamp(0, 86_400_000) as u64;
    Some(Duration::from_millis(ms))
}

/// The redirect target of a 3xx reply, resolved against the request URL, for messages and same-origin checks.
pub(crate) fn redirect_target(url: &Url, headers: &reqwest::header::HeaderMap) -> Option<Url> {
    let loc = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    url.join(loc).ok()
}

/// The error for a redirect that a credential-carrying request does not follow.
pub(crate) fn redirect_refused(url: &Url, status: u16, target: Option<&Url>, what: &str) -> Error {
    let to = target
        .map(|t| t.origin().ascii_serialization())
        .unwrap_or_else(|| "an unreadable Location".into());
    Error::Response {
        url: crate::error::redact_url(url),
        message: format!("answered HTTP {status}, a redirect to {to}; {what}"),
    }
}

/// The first string value of `"key": "…"` in a JSON text that could not be parsed whole (cut at the read cap);
/// only for error messages. Reads at most the first 64 KiB.
pub(crate) fn sniff_json_string(body: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let needle = format!("\"{key}\"");
    let at = text.find(&needle)? + needle.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            c => out.push(c),
        }
        if out.len() > 2048 {
            return Some(out);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_roots_are_loaded_once_per_set_of_extra_cas() {
        let ca = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            params.self_signed(&key).unwrap().der().clone()
        };
        let (one, two) = (ca("one.test"), ca("two.test"));
        let a = verifier(vec![one.clone()]).unwrap();
        let b = verifier(vec![one]).unwrap();
        assert!(
            std::sync::Arc::ptr_eq(&a, &b),
            "the same extra CAs share one verifier (roots read once)"
        );
        let c = verifier(vec![two]).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&a, &c), "other extra CAs get their own");
        // Clients built from the same options reuse it.
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["three.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(&pem, cert.pem()).unwrap();
        let opts = HttpOptions {
            ca_certificates: vec![pem],
            ..Default::default()
        };
        let before = VERIFIERS_BUILT.load(std::sync::atomic::Ordering::SeqCst);
        opts.build().unwrap();
        opts.build().unwrap();
        assert_eq!(VERIFIERS_BUILT.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    }

    fn headers(v: &str) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_is_clamped_and_never_panics() {
        assert_eq!(retry_after(&headers("1e20")), Some(MAX_RETRY_WAIT));
        assert_eq!(retry_after(&headers("1e30")), Some(MAX_RETRY_WAIT));
        assert_eq!(retry_after(&headers("9223372036854775807")), Some(MAX_RETRY_WAIT));
        assert_eq!(retry_after(&headers("2.5")), Some(Duration::from_millis(2500)));
        assert_eq!(retry_after(&headers("-1")), None);
        assert_eq!(retry_after(&headers("NaN")), None);
        assert_eq!(retry_after(&headers("inf")), None);
        // An HTTP date far in the future waits at most the cap; one in the past not at all.
        assert_eq!(retry_after(&headers("Fri, 31 Dec 9999 23:59:59 GMT")), Some(MAX_RETRY_WAIT));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO));
    }

    #[test]
    fn json_strings_are_found_in_a_cut_body() {
        let body = br#"{"error":{"code":"TooBig","message":"aaaaaaaaaaaaaaaaaaaa"#;
        assert_eq!(sniff_json_string(body, "code").as_deref(), Some("TooBig"));
        assert!(sniff_json_string(body, "message").unwrap().starts_with("aaaa"));
        assert_eq!(sniff_json_string(body, "nothing"), None);
    }
}
