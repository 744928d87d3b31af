//! The library's one error type. Every variant carries what a user needs to fix the problem (file, setting path,
//! HTTP status, AADSTS code, request-id) and never a secret.

use std::path::PathBuf;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Broad class of an error: what the caller can do about it (the CLI's exit code follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The local machine failed us: a cache file or folder could not be read, written or locked.
    Local,
}

/// A token request refused by Entra ID (or another sign-in that failed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthError {
    /// The HTTP status of the refusal (0 when no HTTP request was involved, as for the Azure CLI).
    pub status: u16,
    /// The OAuth `error` field, e.g. `invalid_client`.
    pub error: String,
    /// The first line of `error_description` (starts with the AADSTS code).
    pub description: String,
    /// The AADSTS codes (`error_codes`), e.g. `[7000215]` for an invalid client secret.
    pub codes: Vec<u64>,
    /// Entra's trace id, for a support request.
    pub trace_id: Option<String>,
    /// Entra's correlation id, for a support request.
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
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// Graph's `error.code` (may be empty: the service sometimes sends `""`).
    pub code: String,
    /// Graph's `error.message` (control characters removed, cut to 1,000 characters).
    pub message: String,
    /// `request-id`, for a support request.
    pub request_id: Option<String>,
    /// The `client-request-id` secgraph sent.
    pub client_request_id: Option<String>,
    /// The `innerError.date` Graph reported.
    pub date: Option<String>,
    /// The request's method and URL path (no query string, which may carry user data).
    pub request: String,
    /// How long the service asked to wait (`Retry-After`; clamped to a minute, except when the wait was too long to
    /// retry and this error says so), when it did.
    pub retry_after: Option<std::time::Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = if self.code.is_empty() { "(no code)" } else { &self.code };
        write!(
            f,
            "Graph answered HTTP {} {code} to {}: {}",
            self.status, self.request, self.message
        )?;
        if let (429, Some(w)) = (self.status, self.retry_after) {
            write!(f, " (Graph asks to retry in {} s)", w.as_secs())?;
        }
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

/// A boxed cause kept in an error's source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong, with what a user needs to fix it and never a secret. [`Error::kind`] says what
/// class of problem it is; the accessors pull out the facts a program acts on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No settings file was found where msticpy looks for one.
    #[error("no msticpyconfig.yaml found; looked in: {}. Pass --config PATH or set MSTICPYCONFIG", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    ConfigNotFound {
        /// The paths looked at, in order.
        searched: Vec<PathBuf>,
    },

    /// The settings file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// The settings (or a query file) are not valid YAML of the expected shape.
    #[error("{origin}: {message}")]
    ConfigParse {
        /// The file or text it came from.
        origin: String,
        /// What is wrong, with line and column (never the file's text).
        message: String,
    },

    /// One setting is wrong.
    #[error("{origin}: setting {setting}: {message}")]
    Setting {
        /// The file or source it came from.
        origin: String,
        /// The setting's path, e.g. `DataProviders.MicrosoftGraph.Args.TenantId`.
        setting: String,
        /// What is wrong with it.
        message: String,
    },

    /// The provider instance asked for does not exist (the message lists those that do).
    #[error("{message}")]
    Instance {
        /// What was asked and what exists.
        message: String,
    },

    /// Settings a connection needs are missing.
    #[error("connection settings for {instance} are incomplete: missing {}", .missing.join(", "))]
    MissingSettings {
        /// The instance (settings section).
        instance: String,
        /// The missing settings.
        missing: Vec<String>,
    },

    /// A setting refers to an environment variable that is unset or empty.
    #[error("setting {setting} refers to environment variable {var}, which is {state}")]
    EnvVar {
        /// The setting.
        setting: String,
        /// The variable.
        var: String,
        /// `unset` or `empty`.
        state: &'static str,
    },

    /// Something secgraph does not do (yet).
    #[error("{what} is not supported yet")]
    Unsupported {
        /// What.
        what: String,
    },

    /// A connection string is malformed (the message never quotes a value).
    #[error("invalid connection string: {message}")]
    ConnectionString {
        /// What is wrong.
        message: String,
    },

    /// Signing in failed.
    #[error("{0}")]
    Auth(Box<AuthError>),

    /// Graph answered with an error.
    #[error("{0}")]
    Api(Box<ApiError>),

    /// Key Vault answered with an error for a secret.
    #[error("Key Vault: {}secret {secret}: the vault answered HTTP {status} {code}: {message}", .setting.as_ref().map(|s| format!("{s}: ")).unwrap_or_default())]
    Vault {
        /// The setting that refers to the secret, when known.
        setting: Option<String>,
        /// `vault/name`.
        secret: String,
        /// The HTTP status.
        status: u16,
        /// Key Vault's error code (and inner code), e.g. `Forbidden/AccessDenied`.
        code: String,
        /// Key Vault's message (cleaned, capped).
        message: String,
    },

    /// A service could not be reached, or the connection failed.
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// Scheme, host and path (no query).
        url: String,
        /// What failed.
        message: String,
        /// The underlying error (its URL removed).
        #[source]
        source: Option<BoxError>,
    },

    /// A service answered something secgraph cannot use.
    #[error("unexpected reply from {url}: {message}")]
    Response {
        /// Scheme, host and path (no query).
        url: String,
        /// What was wrong with it.
        message: String,
    },

    /// Paging stopped before the end (a bad or repeated next link, the page cap).
    #[error("paging stopped: {message}")]
    Paging {
        /// Why, and how many rows were delivered.
        message: String,
    },

    /// A query or its parameters are wrong.
    #[error("{message}")]
    Query {
        /// What is wrong.
        message: String,
    },

    /// A time expression could not be read.
    #[error(
        "invalid time '{input}': {message}. Accepted: an ISO 8601 time (2024-05-01T00:00:00Z), 'now', a number of days (-7), or an offset such as -3d, -2h@h, +1d@d (units y mon w d h m s)"
    )]
    TimeExpr {
        /// The text given.
        input: String,
        /// What is wrong.
        message: String,
    },

    /// Writing results (a file, a dataset, a checkpoint) failed.
    #[error("cannot write results: {message}{}", .source.as_ref().map(|s| if message.is_empty() { s.to_string() } else { format!(": {s}") }).unwrap_or_default())]
    Output {
        /// What could not be done, and where (a path, a root URL without credentials).
        message: String,
        /// The cause (an I/O, Parquet, Arrow or object-store error), kept for `source()`.
        #[source]
        source: Option<BoxError>,
    },

    /// Another export is writing the same stream of the same tenant into the same root (one writer at a time).
    #[error(
        "another export is writing stream {stream} of tenant {tenant} into this root: its lock {lock} is held by {holder}. This run changed nothing; run it again when that one ends, or give each process its own tenants (shards)"
    )]
    Locked {
        /// The stream's name.
        stream: String,
        /// The tenant id.
        tenant: String,
        /// The lock file or object, as shown to people.
        lock: String,
        /// Who holds it (host, process id, since when), as far as known.
        holder: String,
    },

    /// An export checkpoint is unusable or does not match the dataset.
    #[error("export checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint, as shown to people.
        path: String,
        /// What is wrong, and what to do.
        message: String,
    },

    /// A local cache file or folder could not be used.
    #[error("{}: cannot {what}{}", .path.display(), .source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Cache {
        /// The file or folder.
        path: PathBuf,
        /// What could not be done, and why when there is no I/O error.
        what: String,
        /// The I/O error.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl Error {
    /// The class of problem.
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
            Error::Api(_) | Error::Vault { .. } | Error::Transport { .. } | Error::Response { .. } | Error::Paging { .. } => ErrorKind::Api,
            Error::Query { .. } | Error::TimeExpr { .. } => ErrorKind::Usage,
            Error::Output { .. } | Error::Locked { .. } | Error::Checkpoint { .. } => ErrorKind::Output,
            Error::Cache { .. } => ErrorKind::Local,
        }
    }

    /// The HTTP status a service answered with, when the error is a service's answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Api(a) => Some(a.status),
            Error::Auth(a) if a.status != 0 => Some(a.status),
            Error::Vault { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The id a support request needs: Graph's `request-id`, or Entra's correlation id.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(a) => a.request_id.as_deref(),
            Error::Auth(a) => a.correlation_id.as_deref().or(a.trace_id.as_deref()),
            _ => None,
        }
    }

    /// The AADSTS codes of a refused sign-in (empty otherwise).
    pub fn aadsts_codes(&self) -> &[u64] {
        match self {
            Error::Auth(a) => &a.codes,
            _ => &[],
        }
    }

    /// How long the service asked to wait before trying again, when it did (after secgraph's own retries ran out).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Api(a) => a.retry_after,
            _ => None,
        }
    }

    /// An output error with a message only.
    pub fn output(message: impl Into<String>) -> Error {
        Error::Output {
            message: message.into(),
            source: None,
        }
    }

    /// An output error that keeps its cause: `message` says what could not be done (and where), `source` why.
    pub fn output_from(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Output {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// [`Error::output_from`] with a cause already boxed.
    pub fn output_boxed(message: impl Into<String>, source: BoxError) -> Error {
        Error::Output {
            message: message.into(),
            source: Some(source),
        }
    }

    pub(crate) fn transport(url: &reqwest::Url, e: reqwest::Error) -> Error {
        // reqwest's Display includes the URL with its query; keep only scheme, host and path, and drop the URL from
        // the kept source too.
        let e = e.without_url();
        let mut chain = Vec::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
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
            source: Some(Box::new(e)),
        }
    }
}

/// The URL without query or fragment, for messages.
pub(crate) fn redact_url(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// Text from a server or a file made safe to show: control characters (ANSI escapes, CR/LF that could forge a line)
/// become spaces or are dropped, and the result is cut at `max` characters with a note of how much was left out.
pub fn clean(s: &str, max: usize) -> String {
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
