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
