//! The `secgraph` command: thin glue over the `secgraph` library and the emulator. The only place that prints,
//! reads the terminal or exits.

mod output;
mod prompt;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secgraph::auth::AuthType;
use secgraph::config::{SearchPaths, Settings};
use secgraph::{ConnectOptions, ErrorKind, QueryProvider, Secret};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes, documented in README.md.
mod exit {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SETTINGS: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const API: u8 = 5;
    pub const OUTPUT: u8 = 6;
    pub const LOCAL: u8 = 7;
    pub const CANCELLED: u8 = 130;
}

#[derive(Parser, Debug)]
#[command(
    name = "secgraph",
    version,
    about = "Query the Microsoft Graph Security API (msticpy-compatible), or run its local emulator."
)]
struct Cli {
    /// Settings file (default: $MSTICPYCONFIG, ./msticpyconfig.yaml, ~/.msticpy/msticpyconfig.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Named provider instance: uses DataProviders.MicrosoftGraph-<NAME>.
    #[arg(long, global = true, value_name = "NAME")]
    instance: Option<String>,
    /// Extra folder of query YAML files (repeatable); added after the settings' QueryDefinitions.
    #[arg(long = "queries", global = true, value_name = "DIR")]
    query_dirs: Vec<PathBuf>,
    /// Run against an in-process emulator with demo data (no tenant, no settings file needed).
    #[arg(long, global = true, conflicts_with = "config")]
    emulator: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Default)]
struct ConnArgs {
    /// Tenant id or domain (overrides the settings file).
    #[arg(long, global = true)]
    tenant_id: Option<String>,
    /// Application (client) id (overrides the settings file).
    #[arg(long, global = true)]
    client_id: Option<String>,
    /// Client secret (overrides the settings file). Prefer the environment variable: command lines are visible to
    /// other users of the machine.
    #[arg(long, global = true, env = "SECGRAPH_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// "tenant_id=...;client_id=...;client_secret=..." — replaces the settings file's provider section.
    #[arg(long, global = true, env = "SECGRAPH_CONNECTION_STRING", hide_env_values = true)]
    connection_string: Option<String>,
    /// Sign in as a user (the default when the settings name a UserName).
    #[arg(long, global = true)]
    delegated: bool,
    /// The user to sign in as (overrides the settings' UserName; implies --delegated).
    #[arg(long, global = true)]
    username: Option<String>,
    /// How a user signs in: in the system browser, or with a device code.
    #[arg(long, global = true, value_enum)]
    auth_type: Option<AuthTypeArg>,
    /// Token cache file for user sign-in (default: the settings' location, else ~/.cache/secgraph/token_cache.json).
    #[arg(long, global = true, value_name = "PATH")]
    token_cache: Option<PathBuf>,
    /// Largest page body read, in MiB (default 64; Graph's pages are a few MiB at most).
    #[arg(long, global = true, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_page_mib: Option<u32>,
    /// Most pages followed in one run (default 100000); paging stops with an error past it.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_pages: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum AuthTypeArg {
    Browser,
    Device,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// The file used (and why), each instance, how it signs in, and where each value comes from — never a value.
    Check {
        /// Also fetch Key Vault secrets to show whether they resolve (signs in to Key Vault).
        #[arg(long)]
        resolve: bool,
    },
    /// The named instances (DataProviders.MicrosoftGraph-<name>).
    Instances,
}

#[derive(Subcommand, Debug)]
enum SecretsCmd {
    /// Re-read every referenced secret from its vault into the cache; drop cached secrets no longer referenced.
    Refresh,
    /// Delete the secret cache.
    Clear,
}

#[derive(Subcommand, Debug)]
enum QueriesCmd {
    /// Description, parameters (types, defaults, aliases) and the request rendered with example values.
    Show { name: String },
}

#[derive(Subcommand, Debug)]
enum UpdateCmd {
    /// Change an item; values are checked against the documented enums before anything is sent.
    Update {
        id: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        classification: Option<String>,
        #[arg(long)]
        determination: Option<String>,
        /// Assignee (user principal name); an empty string unassigns.
        #[arg(long)]
        assigned_to: Option<String>,
        /// Replace the tags (incidents: customTags; legacy alerts: tags). Repeatable.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        comment: Option<String>,
        /// Show the requests without sending them.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: output::OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign in and report the tenant, app, account, cloud and granted roles or scopes (never the token).
    Connect,
    /// Inspect the settings: which file is used and why, the instances, and where each secret comes from.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// The Key Vault secret cache (KeyVault.UseKeyring: true).
    Secrets {
        #[command(subcommand)]
        action: SecretsCmd,
    },
    /// Forget cached user sign-ins: the configured account, or every account with --all.
    Logout {
        #[arg(long)]
        all: bool,
    },
    /// List the available queries (optionally only those whose name or description contains FILTER), or show one.
    #[command(args_conflicts_with_subcommands = true)]
    Queries {
        #[command(subcommand)]
        show: Option<QueriesCmd>,
        filter: Option<String>,
    },
    /// Update an alert (alerts_v2): status, classification, determination, assignee, comment.
    Alert {
        #[command(subcommand)]
        action: UpdateCmd,
    },
    /// Update an incident: status, classification, determination, assignee, tags, comment.
    Incident {
        #[command(subcommand)]
        action: UpdateCmd,
    },
    /// Update a legacy alert (the retired /security/alerts API).
    LegacyAlert {
        #[command(subcommand)]
        action: UpdateCmd,
    },
    /// Run a named query, e.g. `secgraph query Alerts.list --start -7d`.
    Query {
        /// Query name: Family.name, or the bare name when unique.
        name: String,
        /// Start of the time range: ISO time, 'now', or an offset like -7d, -2h@h.
        #[arg(long, allow_hyphen_values = true)]
        start: Option<String>,
        /// End of the time range.
        #[arg(long, allow_hyphen_values = true)]
        end: Option<String>,
        /// Any parameter, as name=value (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", allow_hyphen_values = true)]
        params: Vec<String>,
        /// Print the rendered request instead of running it.
        #[arg(long)]
        print: bool,
        #[command(flatten)]
        out: output::OutputArgs,
    },
    /// Run a raw OData path relative to the versioned Graph root, e.g. '/security/alerts_v2?$top=5'.
    Exec {
        path: String,
        #[command(flatten)]
        out: output::OutputArgs,
    },
    /// Run the emulator in the foreground until Ctrl-C.
    Emulator {
        /// Loopback address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// Number of alerts to seed.
        #[arg(long, default_value_t = 500)]
        alerts: usize,
        /// Seed for the demo data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write a msticpyconfig.yaml pointing at this emulator (its CA certificate is written beside it).
        #[arg(long, value_name = "PATH")]
        write_config: Option<PathBuf>,
        /// Page size when a request has no $top (capped by each endpoint's limit).
        #[arg(long)]
        page_size: Option<usize>,
        /// Fixed access-token lifetime in seconds (default: Entra's 60-90 minutes).
        #[arg(long)]
        token_lifetime: Option<u64>,
        /// Complete every device-code and browser sign-in as this seeded user (UPN), with no page visit.
        #[arg(long, value_name = "USER")]
        auto_approve: Option<String>,
        /// Tenants, users and apps from a YAML file instead of the demo directory (see docs/EMULATOR.md).
        #[arg(long, value_name = "FILE")]
        directory: Option<PathBuf>,
        /// Faults to inject, e.g. 'alerts_v2:429(2)@every=3;token:503@first=1' (see docs/EMULATOR.md).
        #[arg(long, value_name = "SPEC")]
        faults: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    init_logging(cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    let outcome = rt.block_on(async {
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Cancelled)),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            // Whatever a cause says, it is printed on one line without control characters.
            let text: String = format_error(&e).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            eprintln!("error: {text}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: u8) {
    // Dependencies stay at info at most: their trace output may include request details.
    let filter = match verbose {
        0 => "warn",
        1 => "info",
        2 => "info,secgraph=debug,secgraph_emulator=debug,secgraph_cli=debug",
        _ => "info,secgraph=trace,secgraph_emulator=trace,secgraph_cli=trace",
    };
    // Colour only on a terminal: a redirected log gets no escape codes.
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(se) = cause.downcast_ref::<secgraph::Error>() {
            return match se.kind() {
                ErrorKind::Usage => exit::USAGE,
                ErrorKind::Settings => exit::SETTINGS,
                ErrorKind::Auth => exit::AUTH,
                ErrorKind::Api => exit::API,
                ErrorKind::Output => exit::OUTPUT,
                ErrorKind::Local => exit::LOCAL,
                _ => exit::OTHER,
            };
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return exit::USAGE;
        }
        if cause.downcast_ref::<Cancelled>().is_some() {
            return exit::CANCELLED;
        }
    }
    exit::OTHER
}

fn format_error(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Ctrl-C during a command.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// A malformed command line that clap could not catch.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Emulator {
            bind,
            alerts,
            seed,
            write_config,
            page_size,
            token_lifetime,
            auto_approve,
            directory,
            faults,
        } => {
            let faults = match faults {
                None => None,
                Some(spec) => Some(secgraph_emulator::faults::FaultSpec::parse(spec).map_err(UsageError)?),
            };
            let directory = match directory {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    let base = path.parent().unwrap_or(std::path::Path::new("."));
                    let d = secgraph_emulator::directory::Directory::from_yaml(&text, base)
                        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
                    let v = secgraph_emulator::keyvault::vaults_from_yaml(&text, &d)
                        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
                    Some((d, v))
                }
            };
            let config = secgraph_emulator::EmulatorConfig {
                bind: *bind,
                alerts: *alerts,
                seed: *seed,
                token_lifetime: token_lifetime.map(std::time::Duration::from_secs),
                page_size: *page_size,
                state_dir: write_config.as_ref().map(|p| state_dir_for(p)),
                vaults: directory.as_ref().and_then(|(_, v)| v.clone()),
                directory: directory.map(|(d, _)| d),
                auto_approve: auto_approve.clone(),
                faults,
                ..Default::default()
            };
            return run_emulator(config, write_config.as_deref()).await;
        }
        Command::Queries { show, filter } => {
            let settings = if cli.emulator {
                None
            } else {
                Settings::discover(&SearchPaths::from_env(cli.config.clone())).ok().flatten()
            };
            let store = query_store(settings.as_ref(), &cli.query_dirs)?;
            match show {
                Some(QueriesCmd::Show { name }) => output::print_query(store.get(name)?)?,
                None => output::print_query_list(&store, filter.as_deref()),
            }
            return Ok(());
        }
        Command::Alert {
            action: UpdateCmd::Update { dry_run: true, .. },
        }
        | Command::Incident {
            action: UpdateCmd::Update { dry_run: true, .. },
        }
        | Command::LegacyAlert {
            action: UpdateCmd::Update { dry_run: true, .. },
        } => {
            let (target, id, update, _) = update_args(&cli.command).ok_or_else(|| UsageError("not an update".into()))?;
            for line in secgraph::describe_plan(target, id, &update)? {
                println!("{line}");
            }
            return Ok(());
        }
        _ => {}
    }

    // Everything else needs a connection: to the embedded emulator, or per the settings.
    let _emu;
    let settings = if cli.emulator {
        let emu = secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig::default())
            .await
            .context("starting the embedded emulator")?;
        let s = Settings::from_yaml(&emu.msticpy_config(), "embedded emulator settings")?;
        _emu = emu;
        Some(s)
    } else {
        Settings::discover(&SearchPaths::from_env(cli.config.clone()))?
    };
    let options = ConnectOptions {
        instance: cli.instance.clone(),
        tenant_id: cli.conn.tenant_id.clone(),
        client_id: cli.conn.client_id.clone(),
        client_secret: cli.conn.client_secret.clone().map(Secret::new),
        connection_string: cli.conn.connection_string.clone().map(Secret::new),
        username: cli.conn.username.clone(),
        delegated_auth: cli.conn.delegated || cli.conn.username.is_some(),
        auth_type: cli.conn.auth_type.map(|a| match a {
            AuthTypeArg::Browser => AuthType::Browser,
            AuthTypeArg::Device => AuthType::Device,
        }),
        prompt: Some(Arc::new(prompt::TerminalPrompt)),
        token_cache: cli.conn.token_cache.clone(),
        paging_limits: Some({
            let d = secgraph::graph::PagingLimits::default();
            secgraph::graph::PagingLimits {
                max_page_bytes: cli.conn.max_page_mib.map_or(d.max_page_bytes, |m| m as usize * 1024 * 1024),
                max_pages: cli.conn.max_pages.map_or(d.max_pages, |n| n.min(usize::MAX as u64) as usize),
            }
        }),
        ..Default::default()
    };
    if let Command::Logout { all } = &cli.command {
        return logout(settings.as_ref(), &options, *all);
    }
    match &cli.command {
        Command::Config { action } => return config_command(settings.as_ref(), &options, action, &cli).await,
        Command::Secrets { action } => {
            let s = settings
                .as_ref()
                .ok_or_else(|| UsageError("no settings file: the secret cache follows the settings' KeyVault references".into()))?;
            let cache = secgraph::keyvault::SecretCache::at(
                options
                    .secret_cache
                    .clone()
                    .unwrap_or_else(secgraph::keyvault::SecretCache::default_path),
            );
            match action {
                SecretsCmd::Clear => {
                    let had = cache.clear()?;
                    println!("{} {}", if had { "removed" } else { "no secret cache at" }, cache.path().display());
                }
                SecretsCmd::Refresh => {
                    let report = secgraph::connect::refresh_secrets(s, &options).await?;
                    let mut failed = 0;
                    for (name, r) in &report {
                        match r {
                            Ok(()) => println!("refreshed {name}"),
                            Err(e) => {
                                failed += 1;
                                println!("FAILED    {name}: {e}");
                            }
                        }
                    }
                    println!("{} secret(s) cached in {}", report.len() - failed, cache.path().display());
                    if failed > 0 {
                        // A failure to read secrets, not a malformed command: the settings' exit code.
                        return Err(secgraph::Error::Setting {
                            origin: "Key Vault".into(),
                            setting: "secrets refresh".into(),
                            message: format!("{failed} secret(s) could not be read"),
                        }
                        .into());
                    }
                }
            }
            return Ok(());
        }
        _ => {}
    }
    if settings.is_none() && options.connection_string.is_none() && (options.tenant_id.is_none() || options.client_id.is_none()) {
        let searched = Settings::searched(&SearchPaths::from_env(cli.config.clone()));
        return Err(secgraph::Error::ConfigNotFound { searched }.into());
    }

    let store = query_store(settings.as_ref(), &cli.query_dirs)?;
    if let Command::Query {
        name,
        start,
        end,
        params,
        print: true,
        ..
    } = &cli.command
    {
        let values = query_params(start, end, params)?;
        let q = store.get(name)?.render(&values, chrono::Utc::now())?;
        println!("{}", q.describe());
        return Ok(());
    }

    let provider = QueryProvider::connect(settings.as_ref(), &options).await?.with_queries(store);
    match &cli.command {
        Command::Connect => output::print_connection(provider.info()),
        Command::Query {
            name,
            start,
            end,
            params,
            out,
            ..
        } => {
            let values = query_params(start, end, params)?;
            let template = provider.queries().get(name)?.clone();
            let rendered = provider.render(name, &values)?;
            tracing::info!(query = %rendered.name, "running query");
            output::run_to_output(&provider, &rendered, out, &template.table_columns).await?;
        }
        Command::Exec { path, out } => {
            let q = secgraph::query::RenderedQuery {
                name: "exec".into(),
                language: secgraph::query::Language::OData,
                text: path.clone(),
                timespan: None,
                max_rows: None,
                match_evidence: None,
            };
            output::run_to_output(&provider, &q, out, &[]).await?;
        }
        Command::Alert { .. } | Command::Incident { .. } | Command::LegacyAlert { .. } => {
            let (target, id, update, out) = update_args(&cli.command).ok_or_else(|| UsageError("not an update".into()))?;
            let item = provider.update(target, id, &update).await?;
            output::print_item(&item, out)?;
        }
        Command::Emulator { .. } | Command::Queries { .. } | Command::Logout { .. } | Command::Config { .. } | Command::Secrets { .. } => {}
    }
    Ok(())
}

async fn config_command(settings: Option<&Settings>, options: &ConnectOptions, action: &ConfigCmd, cli: &Cli) -> anyhow::Result<()> {
    let Some(s) = settings else {
        let searched = Settings::searched(&SearchPaths::from_env(cli.config.clone()));
        return Err(secgraph::Error::ConfigNotFound { searched }.into());
    };
    match action {
        ConfigCmd::Instances => {
            if s.has_default_instance() {
                println!("(default)  MicrosoftGraph");
            }
            for i in s.instances() {
                println!("{i:<10} MicrosoftGraph-{i}");
            }
        }
        ConfigCmd::Check { resolve } => {
            println!("settings: {} ({})", s.origin(), s.source());
            let azure = s.azure()?;
            let cloud = match (&azure.resource_manager_url, &azure.cloud) {
                (Some(rm), _) => format!("custom, from {rm}"),
                (None, c) => c.clone().unwrap_or_else(|| "global".into()),
            };
            println!("cloud:    {cloud}");
            if !azure.ca_certificates.is_empty() {
                println!(
                    "extra CA: {}",
                    azure
                        .ca_certificates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let kv = s.keyvault()?;
            if let Some(kv) = &kv {
                println!(
                    "Key Vault: vault {}, sign-in {}, cache {}",
                    kv.vault_name.as_deref().unwrap_or("(none)"),
                    if kv.auth_methods.is_empty() {
                        "default chain".into()
                    } else {
                        kv.auth_methods.join(", ")
                    },
                    if kv.use_keyring { "on" } else { "off" }
                );
            }
            if let Some(p) = s.proxy()? {
                println!(
                    "proxy:    {} {}",
                    p.url,
                    if p.username.is_some() { "(with credentials)" } else { "" }
                );
            }
            let mut names: Vec<Option<String>> = if s.has_default_instance() { vec![None] } else { vec![] };
            names.extend(s.instances().into_iter().map(Some));
            let refs = secgraph::connect::vault_references(s).unwrap_or_default();
            for name in names {
                let one = ConnectOptions {
                    instance: name.clone(),
                    ..options.clone()
                };
                // The library's own view of the instance: the same arguments and sign-in method a connection uses.
                let args = secgraph::connect::EffectiveArgs::gather(Some(s), &one)?;
                let missing = args.missing();
                let auth = if missing.is_empty() {
                    args.sign_in_method().describe().to_string()
                } else {
                    format!("(incomplete: missing {})", missing.join(", "))
                };
                println!();
                println!("{}  — signs in with {auth}", args.source());
                for (key, path, r) in args.entries() {
                    let state = match r {
                        secgraph::config::SecretRef::Literal(_) => "ok".to_string(),
                        secgraph::config::SecretRef::EnvVar(v) => match std::env::var(v) {
                            Ok(x) if !x.is_empty() => "ok (set)".into(),
                            _ => "NOT SET".into(),
                        },
                        secgraph::config::SecretRef::KeyVault(_) => {
                            let target = refs
                                .iter()
                                .find(|(p, _)| p == path)
                                .map(|(_, t)| t.to_string())
                                .unwrap_or_else(|| "?".into());
                            if *resolve {
                                match secgraph::connect::resolve_one(s, &one, path).await {
                                    Ok(()) => format!("{target}: resolves"),
                                    Err(e) => format!("{target}: FAILS: {e}"),
                                }
                            } else {
                                format!("{target} (use --resolve to check)")
                            }
                        }
                    };
                    println!("  {key:<18} {:<38} {state}", r.describe());
                }
            }
        }
    }
    Ok(())
}

/// Removes cached sign-ins from the token cache the connection would use.
fn logout(settings: Option<&Settings>, options: &ConnectOptions, all: bool) -> anyhow::Result<()> {
    let args = secgraph::connect::EffectiveArgs::gather(settings, options).ok();
    let path = match &args {
        Some(a) => a.token_cache_path(options),
        None => options.token_cache.clone().unwrap_or_else(secgraph::auth::TokenCache::default_path),
    };
    let cache = secgraph::auth::TokenCache::at(&path);
    let user = if all {
        None
    } else {
        options
            .username
            .clone()
            .or_else(|| args.as_ref().and_then(|a| a.literal("username")))
    };
    if !all && user.is_none() {
        return Err(UsageError("no account to forget: configure UserName, pass --username, or use --all".into()).into());
    }
    let n = cache.remove(user.as_deref())?;
    println!("removed {n} cached sign-in(s) from {}", cache.path().display());
    Ok(())
}

/// The built-in queries plus the settings' QueryDefinitions folders and --queries folders; overrides are reported.
fn query_store(settings: Option<&Settings>, extra: &[PathBuf]) -> anyhow::Result<secgraph::query::QueryStore> {
    let mut store = secgraph::query::QueryStore::builtin()?;
    let mut dirs = match settings {
        Some(s) => s.query_folders()?,
        None => vec![],
    };
    dirs.extend(extra.iter().cloned());
    for d in dirs {
        for (file, overridden) in store.add_dir(&d)? {
            for name in overridden {
                eprintln!("note: {file} overrides query {name}");
            }
        }
    }
    Ok(store)
}

fn update_args(c: &Command) -> Option<(secgraph::graph::Target, &str, secgraph::graph::Update, &output::OutputArgs)> {
    use secgraph::graph::{Target, Update};
    let (target, action) = match c {
        Command::Alert { action } => (Target::Alert, action),
        Command::Incident { action } => (Target::Incident, action),
        Command::LegacyAlert { action } => (Target::LegacyAlert, action),
        _ => return None,
    };
    let UpdateCmd::Update {
        id,
        status,
        classification,
        determination,
        assigned_to,
        tags,
        comment,
        out,
        ..
    } = action;
    let u = Update {
        status: status.clone(),
        classification: classification.clone(),
        determination: determination.clone(),
        assigned_to: assigned_to.clone(),
        comment: comment.clone(),
        tags: tags.clone(),
    };
    Some((target, id.as_str(), u, out))
}

fn query_params(start: &Option<String>, end: &Option<String>, params: &[String]) -> anyhow::Result<Vec<(String, String)>> {
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

/// The emulator's state (its CA certificate) goes beside the written config, in `<config stem>-emulator/`.
fn state_dir_for(config: &std::path::Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "emulator".into());
    config
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
        .join(format!("{stem}-emulator"))
}

async fn run_emulator(config: secgraph_emulator::EmulatorConfig, write_config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let alerts = config.alerts;
    let mut config = config;
    if let Some(d) = &config.state_dir {
        // Absolute, so the written settings work from any directory.
        config.state_dir = Some(std::path::absolute(d).unwrap_or_else(|_| d.clone()));
    }
    let emu = secgraph_emulator::Emulator::start(config).await.context("starting the emulator")?;
    println!("secgraph emulator listening on {}", emu.base_url());
    println!("  CA certificate: {}", emu.ca_path().display());
    println!("  {alerts} alerts seeded over the last 30 days");
    if let Some(path) = write_config {
        std::fs::write(path, emu.msticpy_config()).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "  settings written to {} — try: MSTICPYCONFIG={} secgraph query Alerts.list",
            path.display(),
            path.display()
        );
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    emu.shutdown();
    println!("stopped");
    Ok(())
}
