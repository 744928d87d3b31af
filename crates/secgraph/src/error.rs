//! The library's one error type. Every variant carries what a user needs to fix the problem (file, setting path,
//! HTTP status, AADSTS code, request-id) and never a secret.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Broad class of an error, used by the CLI to choose its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller asked for something malformed (unknown query, bad parameter, bad time expression).
    Usage,
    /// The configuration file or connection settings are missing or wrong.
    Settings,
    /// Entra ID refused to issue a token.
    Auth,
    /// Graph (or the network on the way) failed the request.
    Api,
    /// Writing results failed.
    Output,
}

/// A token request refused by Entra ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub status: u16,
    /// The OAuth `error` field, e.g. `invalid_client`.
    pub error: String,
    /// The first line of `error_description` (starts with the AADSTS code).
    pub description: String,
    pub codes: Vec<u64>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sign-in failed ({}, HTTP {}): {}", self.error, self.status, self.description)?;
        if let Some(t) = &self.trace_id {
            write!(f, " [trace id {t}")?;
            if let Some(c) = &self.correlation_id {
                write!(f, ", correlation id {c}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// A Graph error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// Graph's `error.code` (may be empty: the service sometimes sends `""`).
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub date: Option<String>,
    /// The request's method and URL path (no query string, which may carry user data).
    pub request: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = if self.code.is_empty() { "(no code)" } else { &self.code };
        write!(
            f,
            "Graph answered HTTP {} {code} to {}: {}",
            self.status, self.request, self.message
        )?;
        if let Some(r) = &self.request_id {
            write!(f, " [request-id {r}")?;
            if let Some(d) = &self.date {
                write!(f, ", {d}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no msticpyconfig.yaml found; looked in: {}. Pass --config PATH or set MSTICPYCONFIG", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    ConfigNotFound { searched: Vec<PathBuf> },

    #[error("cannot read {}: {source}", .path.display())]
    ConfigRead { path: PathBuf, source: std::io::Error },

    #[error("{origin}: {message}")]
    ConfigParse { origin: String, message: String },

    #[error("{origin}: setting {setting}: {message}")]
    Setting { origin: String, setting: String, message: String },

    #[error("{message}")]
    Instance { message: String },

    #[error("connection settings for {instance} are incomplete: missing {}", .missing.join(", "))]
    MissingSettings { instance: String, missing: Vec<String> },

    #[error("setting {setting} refers to environment variable {var}, which is {state}")]
    EnvVar { setting: String, var: String, state: &'static str },

    #[error("{what} is not supported yet")]
    Unsupported { what: String },

    #[error("invalid connection string: {message}")]
    ConnectionString { message: String },

    #[error("{0}")]
    Auth(Box<AuthError>),

    #[error("{0}")]
    Api(Box<ApiError>),

    #[error("cannot reach {url}: {message}")]
    Transport { url: String, message: String },

    #[error("unexpected reply from {url}: {message}")]
    Response { url: String, message: String },

    #[error("paging stopped: {message}")]
    Paging { message: String },

    #[error("{message}")]
    Query { message: String },

    #[error(
        "invalid time '{input}': {message}. Accepted: an ISO 8601 time (2024-05-01T00:00:00Z), 'now', a number of days (-7), or an offset such as -3d, -2h@h, +1d@d (units y mon w d h m s)"
    )]
    TimeExpr { input: String, message: String },

    #[error("cannot write results: {0}")]
    Output(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ConfigNotFound { .. }
            | Error::ConfigRead { .. }
            | Error::ConfigParse { .. }
            | Error::Setting { .. }
            | Error::Instance { .. }
            | Error::MissingSettings { .. }
            | Error::EnvVar { .. }
            | Error::Unsupported { .. }
            | Error::ConnectionString { .. } => ErrorKind::Settings,
            Error::Auth(_) => ErrorKind::Auth,
            Error::Api(_) | Error::Transport { .. } | Error::Response { .. } | Error::Paging { .. } => ErrorKind::Api,
            Error::Query { .. } | Error::TimeExpr { .. } => ErrorKind::Usage,
            Error::Output(_) => ErrorKind::Output,
        }
    }

    pub(crate) fn transport(url: &reqwest::Url, e: &reqwest::Error) -> Error {
        // reqwest's Display includes the URL with its query; keep only scheme, host and path.
        let mut chain = Vec::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            chain.push(s.to_string());
            src = s.source();
        }
        let what = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        };
        let detail = clean(&chain.last().cloned().unwrap_or_default(), 300);
        Error::Transport {
            url: redact_url(url),
            message: if detail.is_empty() { what } else { format!("{what}: {detail}") },
        }
    }
}

/// The URL without query or fragment, for messages.
pub(crate) fn redact_url(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// Text from a server or a file made safe to show: control characters (ANSI escapes, CR/LF that could forge a line)
/// become spaces or are dropped, and the result is cut at `max` characters with a note of how much was left out.
pub(crate) fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 16);
    let mut chars = s.chars();
    for _ in 0..max {
        let Some(c) = chars.next() else { break };
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            // Unicode bidi overrides and isolates can reorder what a terminal shows.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    let rest = chars.count();
    if rest > 0 {
        out.push_str(&format!("… ({rest} more characters not shown)"));
    }
    out
}

/// Longest server message shown in an error.
pub(crate) const MAX_SHOWN_MESSAGE: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_control_characters_and_caps_length() {
        assert_eq!(clean("a\x1b[31mred\x1b[0m\r\nerror: forged", 100), "a[31mred[0m  error: forged");
        let long = "x".repeat(5000);
        let c = clean(&long, 10);
        assert!(c.starts_with("xxxxxxxxxx… (4990 more"), "{c}");
        assert_eq!(clean("ok \u{202e}txt", 100), "ok txt");
    }
}
