//! `secgraph query NAME` (or `--print` to show the request) and `secgraph exec PATH`: results to a table, JSON,
//! JSON lines or CSV.

use super::{Env, query_params, query_store};
use crate::cli::{Cli, Command};
use crate::output;

/// Runs (or prints) a named query.
pub(crate) async fn run(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let Command::Query {
        name,
        start,
        end,
        params,
        print,
        out,
    } = &cli.command
    else {
        return Ok(());
    };
    let values = query_params(start, end, params)?;
    if *print {
        env.require_connection(cli)?;
        let store = query_store(env.settings.as_ref(), &cli.query_dirs)?;
        let q = store.get(name)?.render(&values, chrono::Utc::now())?;
        println!("{}", q.describe());
        return Ok(());
    }
    let provider = env.connect(cli).await?;
    let template = provider.queries().get(name)?.clone();
    let rendered = provider.render(name, &values)?;
    tracing::info!(query = %rendered.name, "running query");
    output::run_to_output(&provider, &rendered, out, &template.table_columns).await
}

/// Runs a raw OData path under the Graph root.
pub(crate) async fn exec(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let Command::Exec { path, out } = &cli.command else {
        return Ok(());
    };
    let provider = env.connect(cli).await?;
    let q = secgraph::query::RenderedQuery {
        name: "exec".into(),
        language: secgraph::query::Language::OData,
        text: path.clone(),
        timespan: None,
        max_rows: None,
        match_evidence: None,
    };
    output::run_to_output(&provider, &q, out, &[]).await
}
