//! `secgraph connect`: sign in and report tenant, app, cloud and granted permissions — never the token.

use super::Env;
use crate::cli::Cli;
use crate::output;

/// Connects and prints what was connected to.
pub(crate) async fn run(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let provider = env.connect(cli).await?;
    output::print_connection(provider.info());
    Ok(())
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
