//! msticpy: `qry_prov.list_queries()` and `qry_prov.SecurityGraph.list_alerts(start=…, end=…)` — list the queries,
//! run one into a table, and stream another page by page from a spawned task.
//!
//! `cargo run -p secgraph --example run_queries`

mod common;

use futures_util::StreamExt;
use secgraph::config::{ConfigSource, Settings};
use secgraph::output::Table;
use secgraph::{ConnectOptions, QueryProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = common::start(false).await?;
    let settings = Settings::load(&demo.settings_path, ConfigSource::Explicit)?;
    let provider = QueryProvider::connect(Some(&settings), &ConnectOptions::default()).await?;
    for q in provider.queries().all().iter().filter(|q| q.family == "Alerts") {
        println!("{:<32} {}", q.full_name(), q.description.lines().next().unwrap_or(""));
    }
    let mut table = Table::new();
    let summary = provider
        .run(
            "Alerts.list",
            &[("start".into(), "-7d".into()), ("severity".into(), "high".into())],
            &mut table,
        )
        .await?;
    println!("{} high-severity alerts in the last week ({} pages)", summary.rows, summary.pages);

    let q = provider.render("Incidents.list", &[])?;
    let mut pages = provider.pages(&q)?;
    let per_page = tokio::spawn(async move {
        let mut sizes = Vec::new();
        while let Some(page) = pages.next().await {
            sizes.push(page?.rows.len());
        }
        Ok::<_, secgraph::Error>(sizes)
    })
    .await??;
    println!("incidents per page: {per_page:?}");
    Ok(())
}
