//! `secgraph queries [FILTER]` and `secgraph queries show NAME`: the queries a connection would know.

use crate::cli::{Cli, QueriesCmd};
use crate::output;
use secgraph::config::{SearchPaths, Settings};

/// Lists the queries, or shows one.
pub(crate) fn run(cli: &Cli, show: Option<&QueriesCmd>, filter: Option<&str>) -> anyhow::Result<()> {
    let settings = if cli.emulator {
        None
    } else {
        Settings::discover(&SearchPaths::from_env(cli.config.clone())).ok().flatten()
    };
    let store = super::query_store(settings.as_ref(), &cli.query_dirs)?;
    match show {
        Some(QueriesCmd::Show { name }) => output::print_query(store.get(name)?)?,
        None => output::print_query_list(&store, filter),
    }
    Ok(())
}
