//! The process environment secgraph reads, in one place: captured by [`Environment::from_env`], or given by an
//! embedder (so a web service or a test can run connections without touching the process's variables).
//!
//! Settings-file discovery has its own [`crate::config::SearchPaths::from_env`]; `{EnvironmentVar: NAME}` references
//! in the settings name their variables explicitly and are read when a connection resolves them.

use crate::secret::Secret;
use std::path::PathBuf;

/// What secgraph takes from the process environment.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Environment {
    /// `SSL_CERT_FILE`: one more CA bundle to trust (besides the platform's roots and `Azure.ca_certificates`).
    pub ssl_cert_file: Option<PathBuf>,
    /// `AZURE_TENANT_ID`, for the Key Vault `env` sign-in.
    pub azure_tenant_id: Option<String>,
    /// `AZURE_CLIENT_ID`, for the Key Vault `env` sign-in.
    pub azure_client_id: Option<String>,
    /// `AZURE_CLIENT_SECRET`, for the Key Vault `env` sign-in.
    pub azure_client_secret: Option<Secret>,
    /// `XDG_CACHE_HOME`, else `$HOME/.cache`: where the token and secret caches go by default.
    pub cache_home: Option<PathBuf>,
}

impl Environment {
    /// Reads the variables now. Empty values count as unset.
    pub fn from_env() -> Environment {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Environment {
            ssl_cert_file: path("SSL_CERT_FILE"),
            azure_tenant_id: var("AZURE_TENANT_ID"),
            azure_client_id: var("AZURE_CLIENT_ID"),
            azure_client_secret: var("AZURE_CLIENT_SECRET").map(Secret::new),
            cache_home: path("XDG_CACHE_HOME").or_else(|| path("HOME").map(|h| h.join(".cache"))),
        }
    }

    /// The folder secgraph's caches go in: `<cache home>/secgraph` (the temporary folder when there is no home).
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_home.clone().unwrap_or_else(std::env::temp_dir).join("secgraph")
    }
}
