//! [`QueryProvider`]: the facade a notebook, pipeline or the CLI uses — connect, list queries, run them into a sink.

use crate::batches::BatchBuilder;
use crate::config::Settings;
use crate::connect::{ConnectOptions, Connection, ConnectionInfo};
use crate::error::Result;
use crate::graph::{PageSummary, Pages};
use crate::graph::{Target, Update};
use crate::output::{BatchCollector, RowSink};
use crate::query::Language;
use crate::query::{QueryStore, RenderedQuery};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::Value;

/// A connected provider.
///
/// ```no_run
/// # async fn demo() -> secgraph::Result<()> {
/// use secgraph::{QueryProvider, ConnectOptions, config::{Settings, SearchPaths}, output::Table};
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
    query_files: Vec<(String, crate::query::FileOutcome)>,
    enrich: Option<std::sync::Arc<crate::enrich::Enrichment>>,
}

impl QueryProvider {
    /// Connects with msticpy's rules (see [`ConnectOptions`]) and loads the built-in queries plus the folders the
    /// settings name (`QueryDefinitions.Custom`); [`QueryProvider::query_files`] says what became of each file.
    pub async fn connect(settings: Option<&Settings>, options: &ConnectOptions) -> Result<QueryProvider> {
        let (queries, query_files) = QueryStore::with_settings(settings)?;
        let connection = Connection::open(settings, options).await?;
        Ok(QueryProvider {
            connection,
            queries,
            query_files,
            enrich: options.enrich.clone(),
        })
    }

    /// The same connection, its alert and incident queries enriched with threat intelligence by `enrich` (or not,
    /// with `None`); see [`crate::enrich`].
    pub fn with_enrichment(mut self, enrich: Option<std::sync::Arc<crate::enrich::Enrichment>>) -> QueryProvider {
        self.enrich = enrich;
        self
    }

    /// The settings' query files loaded by [`QueryProvider::connect`], each with what became of it (queries it
    /// overrode, or why it was skipped).
    pub fn query_files(&self) -> &[(String, crate::query::FileOutcome)] {
        &self.query_files
    }

    /// Replaces the query store (for example one with extra folders added).
    pub fn with_queries(mut self, queries: QueryStore) -> QueryProvider {
        self.queries = queries;
        self
    }

    /// The tenant this connection reads, as one key: its directory id, else the tenant as configured.
    fn tenant_key(&self) -> String {
        let info = &self.connection.info;
        info.directory_id.clone().unwrap_or_else(|| info.tenant_id.clone())
    }

    /// The signed-in Graph client (for the library's own surfaces: detection rules).
    pub(crate) fn graph(&self) -> &crate::graph::GraphClient {
        &self.connection.graph
    }

    /// What was connected to, as whom.
    pub fn info(&self) -> &ConnectionInfo {
        &self.connection.info
    }

    /// The queries this provider knows.
    pub fn queries(&self) -> &QueryStore {
        &self.queries
    }

    /// Renders a named query with parameter values (name or alias → text). Names the query does not declare are
    /// ignored with a warning, as msticpy does; see [`QueryProvider::render_strict`].
    pub fn render(&self, name: &str, params: &[(String, String)]) -> Result<RenderedQuery> {
        self.queries.get(name)?.render(params, chrono::Utc::now())
    }

    /// Renders a named query; a parameter name the query does not declare is an error.
    pub fn render_strict(&self, name: &str, params: &[(String, String)]) -> Result<RenderedQuery> {
        self.queries.get(name)?.render_strict(params, chrono::Utc::now())
    }

    /// Runs a named query, pushing every row of every page into `sink`.
    pub async fn run(&self, name: &str, params: &[(String, String)], sink: &mut dyn RowSink) -> Result<PageSummary> {
        let q = self.render(name, params)?;
        self.run_rendered(&q, sink).await
    }

    /// Sends a rendered query (OData as paged GETs, KQL to advanced hunting), pushing its rows into `sink`.
    pub async fn run_rendered(&self, q: &RenderedQuery, sink: &mut dyn RowSink) -> Result<PageSummary> {
        self.pages(q)?.into_sink(sink).await
    }

    /// The pages of a rendered query, as a `Send + 'static` stream (see [`Pages`]): OData follows every next link
    /// (lazily), KQL is one page from advanced hunting. The query's `max_rows` and evidence match are applied.
    ///
    /// A query that wants at most N rows (`max_rows`, `--limit`) and filters nothing locally asks for pages of at
    /// most N ([`crate::graph::with_page_size`]). Pages are fetched up to two ahead of the consumer when a Tokio runtime
    /// is running ([`Pages::prefetch`]).
    pub fn pages(&self, q: &RenderedQuery) -> Result<Pages> {
        let graph = self.connection.graph.clone();
        let mut pages = match q.language {
            Language::OData => {
                let text = match q.max_rows {
                    Some(n) if q.match_evidence.is_none() => crate::graph::with_page_size(&q.text, n),
                    _ => q.text.clone(),
                };
                graph.pages(graph.url_for(&text)?)
            }
            Language::Kql => {
                let (text, timespan) = (q.text.clone(), q.timespan.clone());
                Pages::new(futures_util::stream::once(async move {
                    graph.hunt_page(&text, timespan.as_deref()).await
                }))
            }
            Language::AuditLog => crate::audit::search_pages(graph, q.text.clone(), self.tenant_key()),
        };
        if let Some(value) = q.match_evidence.clone() {
            pages = pages.filter_rows(move |r| crate::query::evidence_names(r, &value));
        }
        let enrichable = matches!(crate::batches::schema::collection(&q.text), Some("alerts_v2" | "incidents"));
        if let (Some(e), Language::OData, true) = (&self.enrich, q.language, enrichable) {
            pages = e.pages(self.connection.graph.clone(), self.tenant_key(), pages);
        }
        if let Some(max) = q.max_rows {
            pages = pages.limit_rows(max);
        }
        // Outermost, so that a row limit stops the fetching itself: at most two pages beyond what the consumer takes.
        if q.language == Language::OData && tokio::runtime::Handle::try_current().is_ok() {
            // Two ahead, measured: with one, the fetching task often waits on the consumer and stops reading its
            // connection, and 100k alerts to JSON lines took 2.4 s instead of 1.7 s (docs/PERFORMANCE.md).
            pages = pages.prefetch(2);
        }
        Ok(pages)
    }

    /// The typed-batch builder for a rendered query's results: the entity's documented columns for a Graph security
    /// collection, none for other paths and for hunting (whose reply declares its own).
    pub fn batch_builder(q: &RenderedQuery) -> BatchBuilder {
        match q.language {
            Language::OData => BatchBuilder::for_path(&q.text),
            Language::Kql => BatchBuilder::new(&[]),
            Language::AuditLog => BatchBuilder::for_path("/security/auditLog/queries/-/records"),
        }
    }

    /// Runs a rendered query into typed Arrow batches in memory: the final schema and one batch per page, all under
    /// it (an empty result still has the query's columns).
    pub async fn record_batches(&self, q: &RenderedQuery) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let mut sink = BatchCollector::new(Self::batch_builder(q));
        self.run_rendered(q, &mut sink).await?;
        sink.into_batches()
    }

    /// How many Graph requests this provider (and its clones) has sent again so far: throttled or overloaded
    /// replies, dropped connections, replies cut short. For progress displays.
    pub fn retries(&self) -> usize {
        self.connection.graph.retries()
    }

    /// The service's time now, from its replies' `Date` headers (`None` before the first reply).
    pub fn server_now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.connection.graph.server_now()
    }

    /// How long this connection's requests have waited for Graph's request budgets so far (see
    /// [`crate::graph::GraphClient::budget_waited`]).
    pub fn budget_waited(&self) -> std::time::Duration {
        self.connection.graph.budget_waited()
    }

    /// Runs KQL with an optional hunting Timespan (`P7D`, `start/end`, …).
    pub async fn hunt(&self, kql: &str, timespan: Option<&str>, sink: &mut dyn RowSink) -> Result<PageSummary> {
        self.connection.graph.hunt(kql, timespan, sink).await
    }

    /// Applies an update: validates it, then PATCHes and/or POSTs a comment. Returns the updated item as the service
    /// sent it (legacy alerts answer 204, so they are read back). Legacy updates read the alert first, because the
    /// service requires its `vendorInformation`.
    pub async fn update(&self, target: Target, id: &str, update: &Update) -> Result<Value> {
        let plan = update.plan(target)?;
        let g = &self.connection.graph;
        let url = g.url_for(&target.path(id))?;
        if let Some(mut body) = plan.patch {
            if target == Target::LegacyAlert {
                let current = g.send_json(reqwest::Method::GET, &url, None).await?;
                body.insert(
                    "vendorInformation".into(),
                    current.get("vendorInformation").cloned().unwrap_or(Value::Null),
                );
            }
            g.send_json(reqwest::Method::PATCH, &url, Some(&Value::Object(body))).await?;
        }
        if let Some(c) = plan.comment {
            let curl = g.url_for(&format!("{}/comments", target.path(id)))?;
            g.send_json(reqwest::Method::POST, &curl, Some(&c)).await?;
        }
        g.send_json(reqwest::Method::GET, &url, None).await
    }

    /// The requests an update would make, for `--dry-run`.
    pub fn plan_update(&self, target: Target, id: &str, update: &Update) -> Result<Vec<String>> {
        describe_plan(target, id, update)
    }

    /// Reads one entity (e.g. `/security/alerts_v2/{id}`, `/security/incidents/{id}?$expand=alerts`): a GET of a
    /// path relative to the versioned Graph root, retried as every read is.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let g = &self.connection.graph;
        g.send_json(reqwest::Method::GET, &g.url_for(path)?, None).await
    }

    /// Runs a raw OData path relative to the versioned Graph root, every page (`$top`, if any, is the page size);
    /// see [`RenderedQuery::raw`] for a path whose `$top` caps the rows, as a person means it.
    pub async fn exec(&self, path: &str, sink: &mut dyn RowSink) -> Result<PageSummary> {
        let url = self.connection.graph.url_for(path)?;
        self.connection.graph.page_through(url, sink).await
    }
}

/// The requests an update makes, as text (no connection needed).
pub fn describe_plan(target: Target, id: &str, update: &Update) -> Result<Vec<String>> {
    let plan = update.plan(target)?;
    let mut out = Vec::new();
    if let Some(mut body) = plan.patch {
        if target == Target::LegacyAlert {
            body.insert("vendorInformation".into(), Value::String("<read from the alert>".into()));
        }
        out.push(format!("PATCH {} {}", target.path(id), Value::Object(body)));
    }
    if let Some(c) = plan.comment {
        out.push(format!("POST {}/comments {c}", target.path(id)));
    }
    Ok(out)
}
