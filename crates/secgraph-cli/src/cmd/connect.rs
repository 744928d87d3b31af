//! `secgraph connect`: sign in and report tenant, app, cloud and granted permissions — never the token.

use super::Env;
use crate::cli::Cli;
use crate::output;

/// Connects and prints what was connected to; across tenants (a tenants file, several instances), checks each.
pub(crate) async fn run(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    if let Some(targets) = super::query::fan_out_targets(env, cli)? {
        return check_tenants(env, &targets).await;
    }
    let provider = env.connect(cli).await?;
    output::print_connection(provider.info());
    Ok(())
}

/// Application roles that let secgraph read each kind of data, by what they read.
const READS: &[(&str, &[&str])] = &[
    ("alerts", &["SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"]),
    ("incidents", &["SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"]),
    ("hunting", &["ThreatHunting.Read.All"]),
];

/// One tenant checked: signed in (consent), roles granted, Graph reachable (one alert read).
struct Check {
    name: String,
    tenant: String,
    signed_in: Result<(), String>,
    can_read: Vec<&'static str>,
    graph: Result<(), String>,
}

/// Signs in to every tenant and reads one alert from each: a table of what works where. Exit 8 when some tenants
/// fail, the first failure's code when all do.
async fn check_tenants(env: &Env, targets: &[secgraph::fanout::Target]) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let providers = secgraph::fanout::connect_targets(env.settings.as_ref(), targets, &env.options).await;
    let probe = secgraph::query::RenderedQuery::raw("/security/alerts_v2?$top=1", false);
    let probe = &probe;
    let checks: Vec<(Check, Option<secgraph::Error>)> = futures_util::stream::iter(providers.into_iter().map(|(t, p)| async move {
        let name = t.label().to_string();
        let configured = t.tenant.as_ref().map(|e| e.tenant.clone()).unwrap_or_default();
        match p {
            Err(e) => (
                Check {
                    name,
                    tenant: configured,
                    signed_in: Err(e.to_string()),
                    can_read: vec![],
                    graph: Err("not tried".into()),
                },
                Some(e),
            ),
            Ok(p) => {
                let info = p.info();
                let tenant = info.directory_id.clone().unwrap_or_else(|| info.tenant_id.clone());
                let granted = |any: &[&str]| info.roles.iter().chain(&info.scopes).any(|r| any.contains(&r.as_str()));
                let can_read = READS.iter().filter(|(_, any)| granted(any)).map(|(what, _)| *what).collect();
                let mut rows: Vec<secgraph::Row> = Vec::new();
                let read = p.run_rendered(probe, &mut rows).await;
                let err = read.as_ref().err().map(|e| e.to_string());
                (
                    Check {
                        name,
                        tenant,
                        signed_in: Ok(()),
                        can_read,
                        graph: err.map_or(Ok(()), Err),
                    },
                    read.err(),
                )
            }
        }
    }))
    .buffered(secgraph::fanout::TENANTS_IN_FLIGHT)
    .collect()
    .await;
    let width = checks.iter().map(|(c, _)| c.name.chars().count()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:36}  {:9}  {:26}  graph", "name", "tenant", "sign-in", "roles");
    for (c, _) in &checks {
        let roles = if c.can_read.is_empty() {
            "none".to_string()
        } else {
            c.can_read.join(",")
        };
        let signed = if c.signed_in.is_ok() { "ok" } else { "FAILED" };
        let graph = match (&c.signed_in, &c.graph) {
            (Err(e), _) => e.clone(),
            (Ok(()), Ok(())) => "ok".to_string(),
            (Ok(()), Err(e)) => e.clone(),
        };
        println!("{:width$}  {:36}  {signed:9}  {roles:26}  {graph}", c.name, c.tenant);
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|(c, _)| c.signed_in.is_err() || c.graph.is_err())
        .map(|(c, _)| c.name.clone())
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let total = checks.len();
    if failed.len() == total
        && let Some(e) = checks.into_iter().find_map(|(_, e)| e)
    {
        return Err(anyhow::Error::new(e).context(format!("none of the {total} tenant(s) can be read; the first error")));
    }
    anyhow::bail!(output::Partial(format!(
        "{} of {total} tenant(s) cannot be read: {}",
        failed.len(),
        failed.join(", ")
    )))
}

/// `secgraph login`: signs in the way the settings say (as `Connect-MgGraph` or `az login` would) and says what was
/// kept: a user's tokens go to the token cache until `secgraph logout`; an app signs in afresh on every run.
pub(crate) async fn login(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let provider = env.connect(cli).await?;
    let info = provider.info();
    output::print_connection(info);
    match &info.account {
        Some(user) => {
            let cache = super::token_cache_path(env);
            eprintln!(
                "Signed in as {user}; the sign-in is kept in {} (readable by you only) for later commands. \
                 `secgraph logout` forgets it.",
                cache.display()
            );
        }
        None => eprintln!(
            "Signed in as the app {} (client credentials): nothing is kept; every command signs in with the \
             configured credential.",
            info.app_name.as_deref().unwrap_or(&info.client_id)
        ),
    }
    Ok(())
}
