//! The `secgraph` command: thin glue over the `secgraph` library and the emulator. The only place that prints,
//! reads the terminal or exits.

mod cli;
mod cmd;
mod mcp;
mod output;
mod prompt;
mod table;

use cli::{Cli, Command};
use secgraph::ErrorKind;
use std::process::ExitCode;

/// Exit codes, documented in README.md.
mod exit {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SETTINGS: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const API: u8 = 5;
    pub const OUTPUT: u8 = 6;
    pub const LOCAL: u8 = 7;
    pub const PARTIAL: u8 = 8;
    /// `rules plan` (and `apply` without --yes) when something would change.
    pub const PLAN_CHANGES: u8 = 2;
    pub const CANCELLED: u8 = 130;
}

/// `secgraph query Alerts.list --severity high`: a query's parameters are `-p name=value`, not options.
fn parameter_tip(e: &clap::Error) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "query") {
        return None;
    }
    let clap::error::ContextValue::String(arg) = e.get(clap::error::ContextKind::InvalidArg)? else {
        return None;
    };
    let name = arg.strip_prefix("--")?.split('=').next()?.replace('-', "_");
    let value = args
        .iter()
        .position(|a| a == arg)
        .and_then(|i| args.get(i + 1))
        .filter(|v| !v.starts_with('-'))
        .map_or("VALUE", String::as_str);
    Some(format!(
        "tip: a query's parameters are given with -p: -p {name}={value} (secgraph queries show NAME lists them)"
    ))
}

/// Whether an error (or a panic's message) is a write to a stdout whose reader has gone (`secgraph … | head`).
fn is_broken_pipe(text: &str) -> bool {
    text.contains("Broken pipe") || text.contains("os error 32")
}

/// A closed stdout ends the program quietly with exit 0, whatever was printing: the reader has what it wanted.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && is_broken_pipe(message) {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = match cli::parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if let Some(tip) = parameter_tip(&e) {
                eprintln!("\n{tip}");
            }
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    // The documentation test checks commands meant for a real tenant or storage account this far and no further.
    if std::env::var_os("SECGRAPH_DOCS_PARSE_ONLY").is_some_and(|v| v == "1") {
        return ExitCode::SUCCESS;
    }
    init_logging(cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    // An export handles its own signals: it abandons the run in hand at once (the next run rolls it back).
    let own_signals = matches!(cli.command, Command::Export(_));
    let outcome = rt.block_on(async {
        if own_signals {
            return run(cli).await;
        }
        tokio::select! {
            r = run(cli) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::Error::new(Cancelled)),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || is_broken_pipe(&c.to_string())
            }) =>
        {
            ExitCode::SUCCESS
        }
        // A plan with changes: exit 2 (as terraform plan -detailed-exitcode), the plan itself being the output.
        Err(e) if e.downcast_ref::<cmd::rules::PlanChanges>().is_some() => ExitCode::from(exit::PLAN_CHANGES),
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
        if cause.downcast_ref::<output::Partial>().is_some() {
            return exit::PARTIAL;
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
    // The library names its own settings; on the command line they are flags.
    parts
        .join(": ")
        .replace("PagingLimits::max_pages", "--max-pages N")
        .replace("PagingLimits::max_page_bytes", "--max-page-mib N")
}

/// Ctrl-C during a command.
#[derive(Debug)]
pub(crate) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// A malformed command line that clap could not catch.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Writes generated text to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(secgraph::Error::output_from("cannot write to stdout", e).into()),
        _ => Ok(()),
    }
}

/// Dispatches a parsed command line to its subcommand.
async fn run(cli: Cli) -> anyhow::Result<()> {
    // Commands that need no settings or connection.
    match &cli.command {
        Command::Emulator { .. } => return cmd::emulator::run(&cli.command, cli.conn.requests_per_minute, cli.tenants.as_deref()).await,
        Command::Completions { shell } => {
            // Query and instance names as the settings (if any) know them now.
            let settings = cmd::Env::open(&cli).await.ok().and_then(|e| e.settings);
            let queries = cmd::query_store(settings.as_ref(), &cli.query_dirs)
                .map(|s| s.all().iter().map(|q| q.full_name()).collect())
                .unwrap_or_default();
            let mut instances: Vec<String> = settings.as_ref().map(|s| s.instances()).unwrap_or_default();
            if settings.as_ref().is_some_and(|s| s.has_default_instance()) {
                instances.insert(0, "Default".into());
            }
            let mut c = cli::command_for_completions(queries, instances);
            // Into a buffer first: the generator panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut c, "secgraph", &mut script);
            return write_stdout(&script);
        }
        Command::HelpMarkdown => return write_stdout(cli::markdown().as_bytes()),
        Command::Config {
            action: cli::ConfigCmd::Init(args),
        } => return cmd::config_init::run(&cli, args),
        Command::Man => {
            let c = cli::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(c)
                .render(&mut page)
                .map_err(|e| secgraph::Error::output_from("cannot render the manual page", e))?;
            return write_stdout(&page);
        }
        Command::Queries { show, filter } => return cmd::queries::run(&cli, show.as_ref(), filter.as_deref()),
        Command::Rules {
            action: cli::RulesCmd::Check { dir },
        } => return cmd::rules::check(dir),
        Command::Rules {
            action: cli::RulesCmd::FromQuery { name, params, out },
        } => return cmd::rules::from_query(&cli, name, params, out.as_deref()),
        c if cmd::update::is_dry_run(c) => return cmd::update::dry_run(c),
        _ => {}
    }
    let env = cmd::Env::open(&cli).await?;
    match &cli.command {
        Command::Logout { all } => cmd::logout::run(&env, *all),
        Command::Config { action } => cmd::config::run(&env, action, &cli).await,
        Command::Secrets { action } => cmd::secrets::run(&env, action).await,
        Command::Connect => cmd::connect::run(&env, &cli).await,
        Command::Login => cmd::connect::login(&env, &cli).await,
        Command::Query { .. } => cmd::query::run(&env, &cli).await,
        Command::Exec { .. } => cmd::query::exec(&env, &cli).await,
        Command::Export(args) => cmd::export::run(&env, &cli, args).await,
        Command::Rules { action } => cmd::rules::run(&env, &cli, action).await,
        Command::Identity { action } => cmd::identity::run(&env, &cli, action).await,
        Command::Mcp(args) => mcp::run(&env, &cli, args).await,
        Command::Alert { .. } | Command::Incident { .. } | Command::LegacyAlert { .. } => cmd::update::run(&env, &cli).await,
        Command::Emulator { .. } | Command::Queries { .. } | Command::Completions { .. } | Command::Man | Command::HelpMarkdown => Ok(()),
    }
}
