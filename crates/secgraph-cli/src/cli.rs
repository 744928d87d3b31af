//! The command line: clap's types for every subcommand and flag. Behaviour lives in `cmd/`.

use crate::output;
use clap::builder::PossibleValuesParser;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "secgraph",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SECGRAPH_GIT_HASH"), ")"),
    about = "Query the Microsoft Graph Security API (msticpy-compatible), or run its local emulator."
)]
pub(crate) struct Cli {
    /// Settings file (default: $MSTICPYCONFIG, ./msticpyconfig.yaml, ~/.msticpy/msticpyconfig.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Named provider instance: uses DataProviders.MicrosoftGraph-<NAME>. Several, comma-separated, run a query
    /// against each (rows carry TenantId and Instance).
    #[arg(long, global = true, value_name = "NAME", help_heading = "Tenants")]
    pub(crate) instance: Option<String>,
    /// Every configured instance (MicrosoftGraph and MicrosoftGraph-*): a query runs against each concurrently (rows
    /// carry TenantId and Instance), an export exports each. Accepted before or after the subcommand.
    #[arg(long, global = true, help_heading = "Tenants", conflicts_with = "instance")]
    pub(crate) all_instances: bool,
    /// A tenants file (CSV or YAML: tenant, name, tags, …): the instance's credential signs in to each tenant and a
    /// query runs against each (an instance's Args.Tenants names one in the settings). See docs/TENANTS.md. For
    /// `secgraph emulator`: a number, the customer tenants to add.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Tenants")]
    pub(crate) tenants: Option<String>,
    /// Only the tenants file's tenants with one of these tags (comma-separated).
    #[arg(long, global = true, value_name = "TAG", value_delimiter = ',', help_heading = "Tenants")]
    pub(crate) tenant_tag: Vec<String>,
    /// Only these tenants of the tenants file, by id or domain (comma-separated).
    #[arg(long = "tenant", global = true, value_name = "ID", value_delimiter = ',', help_heading = "Tenants")]
    pub(crate) only_tenants: Vec<String>,
    /// Across tenants, any tenant that fails fails the run (its error's exit code) instead of a partial result
    /// (exit 8).
    #[arg(long, global = true, help_heading = "Tenants")]
    pub(crate) strict_tenants: bool,
    /// Extra folder of query YAML files (repeatable); added after the settings' QueryDefinitions.
    #[arg(long = "queries", global = true, value_name = "DIR")]
    pub(crate) query_dirs: Vec<PathBuf>,
    /// Run against an in-process emulator with demo data (no tenant, no settings file needed).
    #[arg(long, global = true, conflicts_with = "config")]
    pub(crate) emulator: bool,
    /// Never wait for a person: a sign-in that needs one fails at once (exit 4). Also SECGRAPH_NO_PROMPT=1; the
    /// default when stdin is not a terminal, unless --auth-type asks for a user sign-in or SECGRAPH_PROMPT=always
    /// says someone watches the output (a device code in a CI log, say).
    #[arg(long, global = true)]
    pub(crate) no_prompt: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Sign-in")]
pub(crate) struct ConnArgs {
    /// Tenant id or domain (overrides the settings file).
    #[arg(long, global = true)]
    pub(crate) tenant_id: Option<String>,
    /// Application (client) id (overrides the settings file).
    #[arg(long, global = true)]
    pub(crate) client_id: Option<String>,
    /// Client secret (overrides the settings file). Prefer the environment variable: command lines are visible to
    /// other users of the machine.
    #[arg(long, global = true, env = "SECGRAPH_CLIENT_SECRET", hide_env_values = true)]
    pub(crate) client_secret: Option<String>,
    /// "tenant_id=...;client_id=...;client_secret=..." — replaces the settings file's provider section.
    #[arg(long, global = true, env = "SECGRAPH_CONNECTION_STRING", hide_env_values = true)]
    pub(crate) connection_string: Option<String>,
    /// Sign in as a user (the default when the settings name a UserName).
    #[arg(long, global = true)]
    pub(crate) delegated: bool,
    /// The user to sign in as (overrides the settings' UserName; implies --delegated).
    #[arg(long, global = true)]
    pub(crate) username: Option<String>,
    /// How to sign in: a user in the system browser or with a device code, or the Azure CLI's account (`cli`:
    /// `az account get-access-token`, no app registration needed).
    #[arg(long, global = true, value_enum)]
    pub(crate) auth_type: Option<AuthTypeArg>,
    /// Token cache file for user sign-in (default: the settings' location, else ~/.cache/secgraph/token_cache.json).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) token_cache: Option<PathBuf>,
    /// Largest page body read, in MiB (default 64; Graph's pages are a few MiB at most).
    #[arg(long, global = true, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) max_page_mib: Option<u32>,
    /// Requests a minute this run may send to a tenant (default Graph's budget: 150 for alerts and incidents; advanced
    /// hunting keeps 45 unless this is lower). Waits for the budget longer than a second are logged (-v).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) requests_per_minute: Option<u32>,
    /// Most times a failed request (throttled, unavailable, dropped) is sent again (default: the settings'
    /// SecGraph.Retries, else 4 for reads and writes, 3 for sign-ins); 0 sends each request once.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub(crate) retries: Option<u32>,
    /// Most pages followed in one run (default 100000); paging stops with an error past it.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_pages: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum AuthTypeArg {
    /// A user, in the system browser (authorization code + PKCE).
    Browser,
    /// A user, with a code entered on another device.
    Device,
    /// The Azure CLI's signed-in account.
    Cli,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCmd {
    /// The file used (and why), each instance, how it signs in, and where each value comes from — never a value.
    Check {
        /// Also fetch Key Vault secrets to show whether they resolve (signs in to Key Vault).
        #[arg(long)]
        resolve: bool,
    },
    /// The named instances (DataProviders.MicrosoftGraph-<name>).
    Instances,
    /// Write a provider section to a msticpyconfig.yaml, by asking (on a terminal) or from flags (--tenant-id,
    /// --client-id, and how the secret is kept); never echoes a secret.
    Init(InitArgs),
}

#[derive(Args, Debug)]
pub(crate) struct InitArgs {
    /// The file to write (default: --config, else $MSTICPYCONFIG, else ./msticpyconfig.yaml).
    #[arg(long, value_name = "FILE")]
    pub(crate) path: Option<PathBuf>,
    /// Write DataProviders.MicrosoftGraph-<NAME> (default: the default instance, MicrosoftGraph).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Keep the client secret in this environment variable (written as {EnvironmentVar: VAR}).
    #[arg(long, value_name = "VAR", help_heading = "Client secret")]
    pub(crate) secret_env: Option<String>,
    /// Keep the client secret in Key Vault: VAULT/NAME, NAME, or nothing for the default name (written as
    /// {KeyVault: ...}; --vault-name sets the KeyVault section's vault).
    #[arg(long, value_name = "VAULT/NAME", num_args = 0..=1, default_missing_value = "", help_heading = "Client secret")]
    pub(crate) secret_keyvault: Option<String>,
    /// The vault for the KeyVault section (with --secret-keyvault when the file has none).
    #[arg(long, value_name = "VAULT", help_heading = "Client secret")]
    pub(crate) vault_name: Option<String>,
    /// Write the client secret into the file itself, read from standard input (never echoed; the file is made
    /// readable by you only).
    #[arg(long, help_heading = "Client secret")]
    pub(crate) secret_stdin: bool,
    /// Replace an existing file's section (the old file is kept as FILE.bak).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum SecretsCmd {
    /// Re-read every referenced secret from its vault into the cache; drop cached secrets no longer referenced.
    Refresh,
    /// Delete the secret cache.
    Clear,
}

#[derive(Subcommand, Debug)]
pub(crate) enum QueriesCmd {
    /// Description, parameters (types, defaults, aliases) and the request rendered with example values.
    Show { name: String },
}

/// Examples shown at the end of each subcommand's help.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "query",
        "secgraph query Alerts.list --start -7d -p severity=high,medium
  secgraph query Incidents.list --start -30d -o csv --out incidents.csv
  secgraph query Alerts.list --start -90d --split-by 1d --parallel 4 -o parquet --out alerts.parquet
  secgraph query Alerts.list --all-instances --start -1d --query '{tenant: TenantId, id: id, title: title}'
  secgraph query Hunting.run -p query='DeviceProcessEvents | take 10' --start -1d",
    ),
    (
        "queries",
        "secgraph queries
  secgraph queries hunting
  secgraph queries show Alerts.list
  secgraph --queries ~/msticpy/data/queries/m365d queries M365D",
    ),
    ("exec", "secgraph exec '/security/alerts_v2?$top=5' -o json"),
    (
        "alert update",
        "secgraph alert update ID --status resolved --classification truePositive --determination malware --comment 'contained'
  secgraph alert update ID --assigned-to soc@contoso.com --dry-run",
    ),
    (
        "incident update",
        "secgraph incident update 1042 --status resolved --classification falsePositive --determination notMalicious
  secgraph incident update 1042 --tag phishing --tag vip",
    ),
    (
        "legacy-alert update",
        "secgraph legacy-alert update ID --status resolved --classification truePositive",
    ),
    (
        "export",
        "secgraph export --root ./lake --all-instances
  secgraph export --root ./lake --stream alerts_v2 --follow 5m
  secgraph export --root ./lake --compact",
    ),
    (
        "rules",
        "secgraph rules list --all-instances
  secgraph rules pull ./rules
  secgraph rules from-query HuntProcess.encoded_powershell --out rules/encoded-powershell.yaml
  secgraph rules plan ./rules --all-instances
  secgraph rules apply ./rules --all-instances --yes",
    ),
    (
        "identity action",
        "secgraph identity action 'Alex Walker' --disable
  secgraph identity action 'Alex Walker' --disable --yes
  secgraph identity action S-1-5-21-1004336348-1177238915-682003330-1100 --force-password-reset --yes",
    ),
    (
        "mcp",
        "secgraph mcp                                   # stdio: the command an MCP client starts
  secgraph --instance MSSP mcp --allow-writes
  secgraph mcp --listen 127.0.0.1:8765            # streamable HTTP at http://127.0.0.1:8765/mcp",
    ),
    (
        "connect",
        "secgraph connect\n  secgraph --instance Fabrikam connect\n  secgraph --emulator connect",
    ),
    (
        "config",
        "secgraph config check\n  secgraph config check --resolve\n  secgraph config instances\n  secgraph config init",
    ),
    (
        "config init",
        "secgraph config init
  secgraph config init --tenant-id contoso.onmicrosoft.com --client-id 5d2f1c3b-... --secret-env MSGRAPH_SECRET
  secgraph config init --name Fabrikam --tenant-id ... --client-id ... --secret-keyvault my-vault/graph-secret
  printf '%s' \"$SECRET\" | secgraph config init --tenant-id ... --client-id ... --secret-stdin
  secgraph config init --tenant-id ... --client-id ... --username analyst@contoso.com",
    ),
    (
        "emulator",
        "secgraph emulator --write-config emulator.yaml
  secgraph emulator --alerts 100000 --churn 'new=50/s,update=20/s' --write-config e.yaml
  secgraph emulator --faults 'alerts_v2:429(2)@every=3' --as-of 2026-06-01T00:00:00Z --write-config e.yaml",
    ),
    (
        "completions",
        "secgraph completions bash > ~/.local/share/bash-completion/completions/secgraph",
    ),
];

/// The command line as clap sees it: the derived definitions, plus what derive cannot say — each subcommand's
/// examples, and the allowed values of `update`'s options, which differ between alerts, incidents and legacy
/// alerts (shown in help, completed by the shell scripts, and checked, in any case).
pub(crate) fn command() -> clap::Command {
    use secgraph::graph::{AlertStatus, Classification, Determination, Feedback, IncidentStatus, LegacyAlertStatus};
    let mut c = Cli::command();
    for (path, text) in EXAMPLES {
        let help = format!("Examples:\n  {text}");
        c = match path.split_once(' ') {
            None => c.mut_subcommand(*path, |s| s.after_help(help)),
            Some((outer, inner)) => c.mut_subcommand(outer, |s| s.mut_subcommand(inner, |s| s.after_help(help))),
        };
    }
    fn vocab(
        statuses: &'static [&'static str],
        classes: Vec<&'static str>,
        determinations: Option<&'static [&'static str]>,
    ) -> impl FnOnce(clap::Command) -> clap::Command {
        move |u| {
            let u = u
                .mut_arg("status", |a| a.value_parser(PossibleValuesParser::new(statuses)).ignore_case(true))
                .mut_arg("classification", |a| {
                    a.value_parser(PossibleValuesParser::new(classes)).ignore_case(true)
                });
            match determinations {
                Some(d) => u.mut_arg("determination", |a| a.value_parser(PossibleValuesParser::new(d)).ignore_case(true)),
                None => u,
            }
        }
    }
    // A legacy alert's classification is its feedback; the alerts_v2 names are accepted too.
    let mut feedback: Vec<&'static str> = Feedback::VALUES.to_vec();
    feedback.extend(Classification::VALUES.iter().filter(|c| !Feedback::VALUES.contains(c)));
    c.mut_subcommand("alert", |s| {
        s.mut_subcommand(
            "update",
            vocab(AlertStatus::VALUES, Classification::VALUES.to_vec(), Some(Determination::VALUES)),
        )
    })
    .mut_subcommand("incident", |s| {
        s.mut_subcommand(
            "update",
            vocab(IncidentStatus::VALUES, Classification::VALUES.to_vec(), Some(Determination::VALUES)),
        )
    })
    .mut_subcommand("legacy-alert", |s| {
        s.mut_subcommand("update", vocab(LegacyAlertStatus::VALUES, feedback, None))
    })
}

/// docs/CLI.md: every command's help (with its examples), generated from these definitions. A test keeps the file
/// in step (`UPDATE_DOCS=1 cargo test -p secgraph-cli --test golden` rewrites it).
pub(crate) fn markdown() -> String {
    fn walk(c: &mut clap::Command, path: &str, out: &mut String) {
        let help = c.render_long_help().to_string();
        out.push_str(&format!("## `{path}`\n\n```text\n{}\n```\n\n", help.trim_end()));
        let names: Vec<String> = c
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
            .map(|s| s.get_name().to_string())
            .collect();
        for name in names {
            if let Some(sub) = c.find_subcommand_mut(&name) {
                walk(sub, &format!("{path} {name}"), out);
            }
        }
    }
    let mut c = command().term_width(110);
    c.build();
    let mut out = String::from(
        "# The `secgraph` command line\n\nGenerated from the command's own definitions (`secgraph help-markdown`); a test \
         fails when this file and the binary disagree.\n\n",
    );
    walk(&mut c, "secgraph", &mut out);
    out
}

/// [`command`] with the names a shell should complete: query names (`query NAME`, `queries show NAME`) and
/// instance names (`--instance`), as known when the completion script is generated.
pub(crate) fn command_for_completions(queries: Vec<String>, instances: Vec<String>) -> clap::Command {
    let mut c = command();
    if !instances.is_empty() {
        c = c.mut_arg("instance", |a| a.value_parser(PossibleValuesParser::new(instances)));
    }
    if queries.is_empty() {
        return c;
    }
    let names = PossibleValuesParser::new(queries);
    c.mut_subcommand("query", |q| q.mut_arg("name", |a| a.value_parser(names.clone())))
        .mut_subcommand("queries", |q| {
            q.mut_subcommand("show", |s| s.mut_arg("name", |a| a.value_parser(names)))
        })
}

/// Parses the process's arguments with [`command`].
pub(crate) fn parse() -> Result<Cli, clap::Error> {
    let matches = command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

#[derive(Subcommand, Debug)]
pub(crate) enum IdentityCmd {
    /// Disable or enable an account, force a password reset, revoke its sessions, require it to sign in again, or
    /// mark it compromised. Shows the request without --yes; an account already in the state asked for is said so
    /// and nothing is sent.
    Action {
        /// The identity account: its id, security identifier (SID or cloud id) or display name.
        account: String,
        #[command(flatten)]
        what: IdentityActionArgs,
        /// The identity provider to act through (default: the first of the account's identities that allows it).
        #[arg(long, value_parser = ["entraID", "activeDirectory", "okta"])]
        provider: Option<String>,
        /// Send the request (without it: a dry run).
        #[arg(long)]
        yes: bool,
        /// Print the plan or the service's reply as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct IdentityActionArgs {
    /// Disable the account.
    #[arg(long)]
    pub(crate) disable: bool,
    /// Enable the account.
    #[arg(long)]
    pub(crate) enable: bool,
    /// Force a password reset (Active Directory).
    #[arg(long)]
    pub(crate) force_password_reset: bool,
    /// Revoke all of the account's sessions (Entra ID, Okta).
    #[arg(long)]
    pub(crate) revoke_sessions: bool,
    /// Require the user to sign in again (Entra ID).
    #[arg(long)]
    pub(crate) require_sign_in_again: bool,
    /// Mark the user as compromised (Entra ID).
    #[arg(long)]
    pub(crate) mark_compromised: bool,
}

impl IdentityActionArgs {
    /// The action, as the service names it.
    pub(crate) fn action(&self) -> &'static str {
        if self.disable {
            "disable"
        } else if self.enable {
            "enable"
        } else if self.force_password_reset {
            "forcePasswordReset"
        } else if self.revoke_sessions {
            "revokeAllSessions"
        } else if self.require_sign_in_again {
            "requireUserToSignInAgain"
        } else {
            "markUserAsCompromised"
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct McpArgs {
    /// Serve streamable HTTP at this loopback address (e.g. 127.0.0.1:8765; the endpoint is /mcp) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Offer the write tools (update_alert, update_incident, add_comment); each sends only when called again with
    /// the confirm token its plan returned.
    #[arg(long)]
    pub(crate) allow_writes: bool,
    /// Rows a result holds at most by default (a call may ask for up to 1000).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) max_rows: u64,
}

/// How `rules` prints what it found.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum RulesFormat {
    /// A table (list), or a readable plan with diffs.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCmd {
    /// Each tenant's rules, with their key, schedule and last run.
    List {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
    /// One rule (by id), as its file would hold it (YAML), or as the service sent it with -o json.
    Get {
        /// The rule's id in the tenant.
        id: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
    /// Write each tenant's managed rules as files: DIR/KEY.yaml (one tenant) or DIR/TENANT/KEY.yaml (several).
    Pull {
        /// The folder to write into (created if needed).
        dir: PathBuf,
        /// Also take on rules made elsewhere (no key line): give each a key from its name, written into the rule
        /// (an update on the service), then pull it.
        #[arg(long)]
        adopt: bool,
    },
    /// Check a folder of rule files without connecting: fields, periods, severities, the KQL and its columns.
    Check {
        /// A rule file, or a folder of them.
        dir: PathBuf,
    },
    /// What applying DIR would change in each tenant, field by field. Exit 0: nothing; 2: something would change
    /// (as terraform plan -detailed-exitcode); 8: some tenants failed.
    Plan {
        /// A rule file, or a folder of them.
        dir: PathBuf,
        /// Rules secgraph manages whose key is no longer in DIR are deleted (without it they are kept).
        #[arg(long)]
        prune: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
    /// Make each tenant's rules DIR's: the plan, carried out with --yes (without it nothing is sent). A rule edited
    /// on the service since the plan is not overwritten (reported as a conflict).
    Apply {
        /// A rule file, or a folder of them.
        dir: PathBuf,
        /// Rules secgraph manages whose key is no longer in DIR are deleted.
        #[arg(long)]
        prune: bool,
        /// Carry out the plan (without it: a dry run, exit 2 when something would change).
        #[arg(long)]
        yes: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = RulesFormat::Table)]
        format: RulesFormat,
    },
    /// A rule file from a hunting-library query (its ATT&CK tags as techniques, the columns a detection needs
    /// added), or the reason it cannot be a detection.
    FromQuery {
        /// The query: Family.name, or the bare name when unique.
        name: String,
        /// A query parameter, as name=value (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", allow_hyphen_values = true)]
        params: Vec<String>,
        /// Write the file here (default: stdout).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum UpdateCmd {
    /// Change an item; values are checked against the documented enums before anything is sent.
    Update {
        /// The item's id.
        id: String,
        /// New status (the values differ between alerts, incidents and legacy alerts; any case).
        #[arg(long)]
        status: Option<String>,
        /// New classification (a legacy alert's feedback).
        #[arg(long)]
        classification: Option<String>,
        /// New determination (alerts and incidents).
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
pub(crate) enum Command {
    /// Sign in and report the tenant, app, account, cloud and granted roles or scopes (never the token).
    Connect,
    /// Sign in the way the settings say and keep a user's sign-in for later commands (as Connect-MgGraph or az
    /// login). On a machine without a browser, --auth-type device.
    Login,
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
        #[arg(long, allow_hyphen_values = true, help_heading = "Time range")]
        start: Option<String>,
        /// End of the time range.
        #[arg(long, allow_hyphen_values = true, help_heading = "Time range")]
        end: Option<String>,
        /// Any parameter, as name=value (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", allow_hyphen_values = true)]
        params: Vec<String>,
        /// Print the rendered request instead of running it.
        #[arg(long)]
        print: bool,
        /// A -p name the query does not declare is an error (by default it is ignored with a warning, as msticpy
        /// ignores it).
        #[arg(long)]
        strict: bool,
        /// Enrich alert and incident rows: `ti` adds threat intelligence for every IP address, URL host and file hash
        /// in their evidence (columns ti.verdict, ti.indicators, ti.articles, ti.status), each indicator looked up
        /// once for all tenants and cached for a day; a tenant without TI access is warned about, never failed.
        #[arg(long, value_name = "WHAT", value_parser = ["ti"])]
        enrich: Option<String>,
        /// Run the time range as slices of this length (e.g. 1d, 6h, 30m), in time order, none lost or repeated.
        #[arg(long, value_name = "DURATION", help_heading = "Time range")]
        split_by: Option<String>,
        /// Slices run at once with --split-by (each tenant's request budget is respected whatever this is).
        #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Time range")]
        parallel: u16,
        #[command(flatten)]
        out: output::OutputArgs,
    },
    /// Keep a Parquet dataset of every alert and incident version up to date (incremental, resumable, sharded).
    Export(ExportArgs),
    /// Serve the provider to AI assistants as Model Context Protocol tools (stdio, or streamable HTTP on loopback):
    /// read-only unless --allow-writes, results capped and attributed, no secret ever in a result (docs/MCP.md).
    Mcp(McpArgs),
    /// Defender for Identity response actions on an account (dry run unless --yes).
    Identity {
        #[command(subcommand)]
        action: IdentityCmd,
    },
    /// Custom detection rules as code: list, get, pull to files, plan and apply a folder across tenants, make one
    /// from a hunting query (docs/RULES.md).
    Rules {
        #[command(subcommand)]
        action: RulesCmd,
    },
    /// Print a shell completion script: `secgraph completions bash > /etc/bash_completion.d/secgraph`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `secgraph man > secgraph.1 && man ./secgraph.1`.
    Man,
    /// Print docs/CLI.md (every command's help, as Markdown).
    #[command(hide = true)]
    HelpMarkdown,
    /// Run a raw OData path relative to the versioned Graph root, e.g. '/security/alerts_v2?$top=5' (five alerts:
    /// a $top you write caps the rows, in one request; --all reads every page, $top then being the page size).
    Exec {
        path: String,
        /// Every page: a $top in the path is the page size, not a row cap.
        #[arg(long)]
        all: bool,
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
        /// Change the data while serving, e.g. 'new=50/s,update=20/s' (seeded; see docs/EMULATOR.md).
        #[arg(long, value_name = "SPEC")]
        churn: Option<String>,
        /// End the seeded data's 30 days at this time (ISO 8601) instead of now: the same seed then gives the same
        /// data on every run.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        /// Advanced hunting's calls a minute per tenant (default: the service's 45).
        #[arg(long, value_name = "N", default_value_t = 45)]
        hunting_per_minute: u32,
        /// When a page carries @odata.nextLink: always, never (full pages and no next link, as alerts_v2 has been
        /// seen to answer), or when-filtered.
        #[arg(long, value_name = "WHEN", default_value = "always")]
        next_links: secgraph_emulator::NextLinks,
        /// The largest $skip accepted (HTTP 400 with the service's message past it).
        #[arg(long, value_name = "N")]
        max_skip: Option<usize>,
        /// The largest $top accepted, below each endpoint's own.
        #[arg(long, value_name = "N")]
        max_top: Option<usize>,
        /// A changed alert or incident becomes visible only this long after its lastUpdateDateTime (e.g. 15m), as
        /// items reach Graph after they change. POST /_emulator/clock {"advance": "20m"} moves the emulator's clock.
        #[arg(long, value_name = "DURATION")]
        ingestion_lag: Option<String>,
        /// Alerts seeded in each tenant other than the first (default: as many as --alerts).
        #[arg(long, value_name = "N")]
        alerts_per_tenant: Option<usize>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// The dataset root: ROOT/stream=<stream>/tenant=<id>/date=<day>/part-*.parquet, checkpoints in ROOT/_checkpoints.
    /// A folder, or object storage: az://container/path, s3://bucket/path, gs://bucket/path (credentials from the
    /// AZURE_*, AWS_*, GOOGLE_* variables or --storage-option).
    #[arg(long, value_name = "DIR|URL")]
    pub(crate) root: String,
    /// An object-storage setting, KEY=VALUE (object_store's keys, e.g. azure_storage_account_name,
    /// azure_storage_endpoint, aws_region, allow_http=true); repeatable.
    #[arg(long = "storage-option", value_name = "KEY=VALUE")]
    pub(crate) storage_options: Vec<String>,
    /// Streams to export (comma-separated): alerts_v2, incidents, auditlog (the unified audit log, each record once by
    /// id), and hunting:Family.name for an advanced-hunting query whose rows have a Timestamp (e.g.
    /// hunting:HuntProcess.encoded_powershell), kept by Timestamp.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["alerts_v2".to_string(), "incidents".to_string()])]
    pub(crate) stream: Vec<String>,
    /// This process's shard, K/N: only tenants whose id hashes to K (of N) are exported.
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<String>,
    /// Page size asked for ($top; incidents at most 50).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub(crate) page_size: u32,
    /// How far before a run's start the next watermark stays (changes during a run are read again next time).
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub(crate) overlap: String,
    /// Where a tenant's first run starts: versions updated since TIME (e.g. -90d, 2026-01-01); default everything.
    /// Later runs continue from their checkpoint.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub(crate) since: Option<String>,
    /// Keep running: export again every DURATION (e.g. 10m) until Ctrl-C or SIGTERM, which stop at once (the run in
    /// hand is abandoned; the next run rolls back what it had not committed) with exit 0.
    #[arg(long, value_name = "DURATION")]
    pub(crate) follow: Option<String>,
    /// Also write the run summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,
    /// When a tenant's checkpoint is missing but its data is there: rebuild the checkpoint from the data files
    /// (the newest stored version, minus the overlap, becomes the watermark) and go on.
    #[arg(long, conflicts_with = "force")]
    pub(crate) rebuild_checkpoint: bool,
    /// When a tenant's checkpoint is missing but its data is there: export from the start anyway (versions already
    /// stored are stored again).
    #[arg(long)]
    pub(crate) force: bool,
    /// Instead of exporting, write the latest version of each id to ROOT/current/stream=…/tenant=…/part-0.parquet.
    #[arg(long)]
    pub(crate) compact: bool,
}
