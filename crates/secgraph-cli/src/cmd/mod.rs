//! One module per subcommand, and what they share: the settings and connection options a command line asks for
//! ([`Env`]), the query store, and query parameters.

pub(crate) mod config;
pub(crate) mod config_init;
pub(crate) mod connect;
pub(crate) mod emulator;
pub(crate) mod export;
pub(crate) mod identity;
pub(crate) mod logout;
pub(crate) mod queries;
pub(crate) mod query;
pub(crate) mod rules;
pub(crate) mod secrets;
pub(crate) mod update;

use crate::UsageError;
use crate::cli::{AuthTypeArg, Cli};
use anyhow::Context;
use secgraph::auth::AuthType;
use secgraph::config::{SearchPaths, Settings};
use secgraph::{ConnectOptions, QueryProvider, Secret};
use std::path::PathBuf;
use std::sync::Arc;

/// The settings (found as msticpy finds them, or written by the embedded emulator) and the connection options the
/// command line gives.
pub(crate) struct Env {
    pub(crate) settings: Option<Settings>,
    pub(crate) options: ConnectOptions,
    /// The embedded emulator (`--emulator`), serving while the command runs.
    _emulator: Option<secgraph_emulator::Emulator>,
}

impl Env {
    pub(crate) async fn open(cli: &Cli) -> anyhow::Result<Env> {
        let (settings, emulator) = if cli.emulator {
            let emu = secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig::default())
                .await
                .context("starting the embedded emulator")?;
            let s = Settings::from_yaml(&emu.msticpy_config(), "embedded emulator settings")?;
            (Some(s), Some(emu))
        } else {
            (Settings::discover(&SearchPaths::from_env(cli.config.clone()))?, None)
        };
        let conn = &cli.conn;
        let options = ConnectOptions {
            instance: cli.instance.clone(),
            tenant_id: conn.tenant_id.clone(),
            client_id: conn.client_id.clone(),
            client_secret: conn.client_secret.clone().map(Secret::new),
            connection_string: conn.connection_string.clone().map(Secret::new),
            username: conn.username.clone(),
            delegated_auth: conn.delegated || conn.username.is_some(),
            auth_type: conn.auth_type.map(|a| match a {
                AuthTypeArg::Browser => AuthType::Browser,
                AuthTypeArg::Device => AuthType::Device,
                AuthTypeArg::Cli => AuthType::AzureCli,
            }),
            prompt: Some(Arc::new(crate::prompt::TerminalPrompt {
                interactive: !cli.no_prompt
                    && std::env::var_os("SECGRAPH_NO_PROMPT").is_none_or(|v| v.is_empty())
                    && (conn.auth_type.is_some()
                        || std::env::var("SECGRAPH_PROMPT").is_ok_and(|v| v == "always")
                        || std::io::IsTerminal::is_terminal(&std::io::stdin())),
            })),
            token_cache: conn.token_cache.clone(),
            paging_limits: Some({
                let d = secgraph::graph::PagingLimits::default();
                secgraph::graph::PagingLimits {
                    max_page_bytes: conn.max_page_mib.map_or(d.max_page_bytes, |m| m as usize * 1024 * 1024),
                    max_pages: conn.max_pages.map_or(d.max_pages, |n| n.min(usize::MAX as u64) as usize),
                }
            }),
            retry: conn.retries.map(secgraph::retry::RetryOptions::with_retries),
            requests_per_minute: conn.requests_per_minute.map(|n| (n, n.min(secgraph::graph::HUNTING_PER_MINUTE))),
            // `query --enrich ti`: one enrichment for every tenant of the run (one cache, one TI budget).
            enrich: matches!(&cli.command, crate::cli::Command::Query { enrich: Some(_), .. })
                .then(|| Arc::new(secgraph::enrich::Enrichment::shared_default())),
            ..Default::default()
        };
        Ok(Env {
            settings,
            options,
            _emulator: emulator,
        })
    }

    /// The settings, or the error saying where they were looked for.
    pub(crate) fn require_settings(&self, cli: &Cli) -> anyhow::Result<&Settings> {
        self.settings.as_ref().ok_or_else(|| {
            let searched = Settings::searched(&SearchPaths::from_env(cli.config.clone()));
            secgraph::Error::ConfigNotFound { searched }.into()
        })
    }

    /// Fails early when there is nothing to connect with: no settings, no connection string, no tenant and app.
    pub(crate) fn require_connection(&self, cli: &Cli) -> anyhow::Result<()> {
        let o = &self.options;
        if self.settings.is_none() && o.connection_string.is_none() && (o.tenant_id.is_none() || o.client_id.is_none()) {
            self.require_settings(cli)?;
        }
        Ok(())
    }

    /// Connects, with the built-in queries plus the settings' and `--queries` folders.
    pub(crate) async fn connect(&self, cli: &Cli) -> anyhow::Result<QueryProvider> {
        self.require_connection(cli)?;
        let store = query_store(self.settings.as_ref(), &cli.query_dirs)?;
        Ok(QueryProvider::connect(self.settings.as_ref(), &self.options)
            .await?
            .with_queries(store))
    }
}

/// The built-in queries plus the settings' QueryDefinitions folders (the library's own store) and --queries
/// folders; overrides and skipped files are reported.
pub(crate) fn query_store(settings: Option<&Settings>, extra: &[PathBuf]) -> anyhow::Result<secgraph::query::QueryStore> {
    let (mut store, mut files) = secgraph::query::QueryStore::with_settings(settings)?;
    for d in extra {
        files.extend(store.add_dir(d)?);
    }
    {
        for (file, outcome) in files {
            match outcome {
                secgraph::query::FileOutcome::Loaded { overridden } => {
                    for name in overridden {
                        eprintln!("note: {file} overrides query {name}");
                    }
                }
                secgraph::query::FileOutcome::Skipped(why) => eprintln!("note: skipped {file}: {why}"),
            }
        }
    }
    Ok(store)
}

/// Where user sign-ins are cached: the settings' (or --token-cache) location, else the default file.
pub(crate) fn token_cache_path(env: &Env) -> PathBuf {
    match secgraph::connect::EffectiveArgs::gather(env.settings.as_ref(), &env.options) {
        Ok(a) => a.token_cache_path(&env.options),
        Err(_) => env
            .options
            .token_cache
            .clone()
            .unwrap_or_else(secgraph::auth::TokenCache::default_path),
    }
}

/// `--start`, `--end` and `-p NAME=VALUE` as parameter values.
pub(crate) fn query_params(start: &Option<String>, end: &Option<String>, params: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut values = Vec::new();
    if let Some(s) = start {
        values.push(("start".to_string(), s.clone()));
    }
    if let Some(e) = end {
        values.push(("end".to_string(), e.clone()));
    }
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--param '{p}' is not NAME=VALUE")))?;
        values.push((k.trim().to_string(), v.to_string()));
    }
    Ok(values)
}
