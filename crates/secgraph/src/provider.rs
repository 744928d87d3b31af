//! [`QueryProvider`]: the facade a notebook, pipeline or the CLI uses — connect, list queries, run them into a sink.

use crate::connect::{ConnectOptions, Connection, ConnectionInfo};
use crate::error::Result;
use crate::graph::PageSummary;
use crate::query::{QueryStore, RenderedQuery};
use crate::settings::Settings;
use crate::sink::RowSink;

/// A connected provider.
///
/// ```no_run
/// # async fn demo() -> secgraph::Result<()> {
/// use secgraph::{QueryProvider, ConnectOptions, settings::{Settings, SearchPaths}, sink::Table};
/// let settings = Settings::discover(&SearchPaths::from_env(None))?;
/// let provider = QueryProvider::connect(settings.as_ref(), &ConnectOptions::default()).await?;
/// let mut table = Table::new();
/// provider.run("Alerts.list", &[("start".into(), "-7d".into())], &mut table).await?;
/// println!("{} alerts", table.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct QueryProvider {
    connection: Connection,
    queries: QueryStore,
}

impl QueryProvider {
    /// Connects with msticpy's rules (see [`ConnectOptions`]) and loads the built-in queries plus the folders the
    /// settings name.
    pub async fn connect(settings: Option<&Settings>, options: &ConnectOptions) -> Result<QueryProvider> {
        let queries = QueryStore::builtin()?;
        let connection = Connection::open(settings, options).await?;
        Ok(QueryProvider { connection, queries })
    }

    /// Replaces the query store (for example one with extra folders added).
    pub fn with_queries(mut self, queries: QueryStore) -> QueryProvider {
        self.queries = queries;
        self
    }

    pub fn info(&self) -> &ConnectionInfo {
        &self.connection.info
    }

    pub fn queries(&self) -> &QueryStore {
        &self.queries
    }

    /// Renders a named query with parameter values (name or alias → text).
    pub fn render(&self, name: &str, params: &[(String, String)]) -> Result<RenderedQuery> {
        self.queries.get(name)?.render(params, chrono::Utc::now())
    }

    /// Runs a named query, pushing every row of every page into `sink`.
    pub async fn run(&self, name: &str, params: &[(String, String)], sink: &mut dyn RowSink) -> Result<PageSummary> {
        let q = self.render(name, params)?;
        self.exec(&q.text, sink).await
    }

    /// Runs a raw OData path relative to the versioned Graph root (e.g. `/security/alerts_v2?$top=5`).
    pub async fn exec(&self, path: &str, sink: &mut dyn RowSink) -> Result<PageSummary> {
        let url = self.connection.graph.url_for(path)?;
        self.connection.graph.page_through(url, sink).await
    }
}
