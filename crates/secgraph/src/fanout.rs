//! One query across several tenants ([`fan_out`]) or across time slices ([`QueryProvider::run_split`]).
//!
//! **Fan-out**: each tenant runs on its own connection, concurrently; its requests count against its own budget
//! (see [`crate::graph::SECURITY_PER_MINUTE`]). Every row gets `TenantId` and `Instance` properties. A tenant that
//! fails (at connect or mid-run) is reported with its error while the others' rows are kept: the result is partial
//! ([`FanOutSummary::is_partial`]).
//!
//! **Split**: a time-ranged named query runs as consecutive slices `[s, e]` whose ends meet without overlap (each
//! slice ends 100 ns — Graph's time resolution — before the next begins), at most `parallel` at a time; rows come out
//! in slice order, and an item seen in an earlier slice is not delivered again.

use crate::error::{Error, Result};
use crate::graph::{Page, PageSummary, Pages};
use crate::output::RowSink;
use crate::provider::QueryProvider;
use crate::query::RenderedQuery;
use crate::row::Row;
use crate::tenants::{TenantEntry, TenantFilter, TenantsFile};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use std::collections::HashSet;

/// Tenants read at once by a fan-out, and signed in to at once (each tenant keeps its own request budget).
pub const TENANTS_IN_FLIGHT: usize = 16;

/// One tenant a multi-tenant run reads: an instance of the settings, and — when a tenants file is in play — one
/// tenant of that file, signed in to with the instance's credential (and the entry's overrides).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Target {
    /// The instance (`Default` for the unnamed `MicrosoftGraph` section).
    pub instance: String,
    /// The tenants file's entry, if any.
    pub tenant: Option<TenantEntry>,
}

impl Target {
    /// The instance `name` on its own.
    pub fn instance(name: &str) -> Target {
        Target {
            instance: name.to_string(),
            tenant: None,
        }
    }

    /// How reports name it: the tenant's name from the tenants file, else the instance.
    pub fn label(&self) -> &str {
        self.tenant.as_ref().map_or(self.instance.as_str(), |t| t.name.as_str())
    }

    /// `options` with this target's instance and the tenant entry's overrides (tenant, app, certificate, cloud).
    pub fn connect_options(&self, options: &crate::ConnectOptions) -> crate::ConnectOptions {
        let mut o = options.clone();
        o.instance = Some(self.instance.clone()).filter(|n| !n.is_empty());
        if let Some(t) = &self.tenant {
            o.tenant_id = Some(t.tenant.clone());
            if let Some(c) = &t.client_id {
                o.client_id = Some(c.clone());
            }
            if let Some(c) = &t.certificate {
                o.certificate = Some(c.clone());
                o.private_key = t.private_key.clone();
            }
            if let Some(c) = &t.cloud {
                o.cloud = Some(c.clone());
            }
        }
        o
    }
}

/// The targets of a run over `instances` (`Default` or an empty name: the unnamed instance): each instance once,
/// or each tenant of its tenants file that `filter` admits — the file given here (`tenants`), else the instance's
/// `Args.Tenants`. A filter without any tenants file, or one that admits no tenant, is an error.
pub fn targets(
    settings: Option<&crate::config::Settings>,
    instances: &[String],
    tenants: Option<&TenantsFile>,
    filter: &TenantFilter,
) -> Result<Vec<Target>> {
    let mut out = Vec::new();
    let mut any_file = false;
    for instance in instances {
        let own;
        let file = match tenants {
            Some(f) => Some(f),
            None => {
                let name = Some(instance.as_str()).filter(|n| !n.is_empty() && *n != "Default");
                own = match settings.map(|s| s.tenants_file(name)).transpose()?.flatten() {
                    Some(path) => Some(TenantsFile::load(&path)?),
                    None => None,
                };
                own.as_ref()
            }
        };
        match file {
            None => out.push(Target::instance(instance)),
            Some(f) => {
                any_file = true;
                let chosen = f.select(filter);
                if chosen.is_empty() {
                    return Err(Error::Setting {
                        origin: f.path.display().to_string(),
                        setting: "Tenants".into(),
                        message: format!(
                            "no tenant matches{}{} (the file lists {})",
                            if filter.tags.is_empty() {
                                String::new()
                            } else {
                                format!(" tags {}", filter.tags.join(","))
                            },
                            if filter.tenants.is_empty() {
                                String::new()
                            } else {
                                format!(" tenants {}", filter.tenants.join(","))
                            },
                            f.entries.len()
                        ),
                    });
                }
                out.extend(chosen.into_iter().map(|t| Target {
                    instance: instance.clone(),
                    tenant: Some(t),
                }));
            }
        }
    }
    if !any_file && (!filter.tags.is_empty() || !filter.tenants.is_empty()) {
        return Err(Error::Setting {
            origin: "options".into(),
            setting: "Tenants".into(),
            message: "choosing tenants by tag or id needs a tenants file (--tenants FILE, tenants=, or the instance's Args.Tenants)".into(),
        });
    }
    Ok(out)
}

/// Signs in to each target, [`TENANTS_IN_FLIGHT`] at once, in the order given; a failed sign-in is kept as its
/// error (that tenant's failure, never the run's).
pub async fn connect_targets(
    settings: Option<&crate::config::Settings>,
    targets: &[Target],
    options: &crate::ConnectOptions,
) -> Vec<(Target, Result<QueryProvider>)> {
    futures_util::stream::iter(targets.iter().cloned().map(|t| async move {
        let p = QueryProvider::connect(settings, &t.connect_options(options)).await;
        (t, p)
    }))
    .buffered(TENANTS_IN_FLIGHT)
    .collect()
    .await
}

/// How one tenant of a fan-out went.
#[derive(Debug)]
#[non_exhaustive]
pub struct TenantOutcome {
    /// The instance name (`MicrosoftGraph-<name>`; `Default` for the unnamed one).
    pub instance: String,
    /// How the run names the tenant: its name in the tenants file, else the instance.
    pub name: String,
    /// The tenant's directory id (from its token), else the tenant as configured (the tenants file's, when sign-in
    /// failed); `None` when sign-in to an instance failed.
    pub tenant_id: Option<String>,
    /// Its rows and pages, or why it failed.
    pub result: Result<PageSummary>,
    /// Requests sent again (throttled, unavailable, dropped).
    pub retries: usize,
    /// Time spent waiting for the tenant's request budget.
    pub budget_waited: std::time::Duration,
}

/// One tenant's line of a run across tenants: what the CLI writes with `--summary` (the fields in this order are
/// its columns) and the Python package returns as `df.attrs["secgraph_status"]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct TenantStatus {
    /// The tenant's directory id, else as configured; `None` when sign-in to an instance failed.
    pub tenant: Option<String>,
    /// Its name in the tenants file, else the instance.
    pub name: String,
    /// The instance it was read through.
    pub instance: String,
    /// Rows delivered (0 when it failed).
    pub rows: usize,
    /// Pages received (0 when it failed).
    pub pages: usize,
    /// Requests sent again.
    pub retries: usize,
    /// Seconds waited for its request budget, to the millisecond.
    pub budget_wait_s: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What a fan-out did, tenant by tenant.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct FanOutSummary {
    /// One entry per instance, in the order given.
    pub tenants: Vec<TenantOutcome>,
}

impl FanOutSummary {
    /// Rows delivered, all tenants together.
    pub fn rows(&self) -> usize {
        self.tenants.iter().filter_map(|t| t.result.as_ref().ok()).map(|s| s.rows).sum()
    }
    /// Pages received, all tenants together.
    pub fn pages(&self) -> usize {
        self.tenants.iter().filter_map(|t| t.result.as_ref().ok()).map(|s| s.pages).sum()
    }
    /// Whether some tenants failed while others delivered.
    pub fn is_partial(&self) -> bool {
        self.tenants.iter().any(|t| t.result.is_err()) && self.tenants.iter().any(|t| t.result.is_ok())
    }
    /// Each tenant's status line, in the order given.
    pub fn status(&self) -> Vec<TenantStatus> {
        self.tenants
            .iter()
            .map(|t| {
                let (rows, pages, error) = match &t.result {
                    Ok(s) => (s.rows, s.pages, None),
                    Err(e) => (0, 0, Some(e.to_string())),
                };
                TenantStatus {
                    tenant: t.tenant_id.clone(),
                    name: t.name.clone(),
                    instance: t.instance.clone(),
                    rows,
                    pages,
                    retries: t.retries,
                    budget_wait_s: (t.budget_waited.as_secs_f64() * 1000.0).round() / 1000.0,
                    error,
                }
            })
            .collect()
    }

    /// The tenants that failed (by name), with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Error)> {
        self.tenants
            .iter()
            .filter_map(|t| t.result.as_ref().err().map(|e| (t.name.as_str(), e)))
    }
}

/// A row with `TenantId` and `Instance` added in front (an object row; any other row is wrapped as `value`).
///
/// ```
/// let r = secgraph::Row::from_json(r#"{"id":"a"}"#).unwrap();
/// let t = secgraph::fanout::tag_row(&r, "t-1", "Contoso");
/// assert_eq!(t.json(), r#"{"TenantId":"t-1","Instance":"Contoso","id":"a"}"#);
/// ```
pub fn tag_row(row: &Row, tenant_id: &str, instance: &str) -> Row {
    let text = row.json().trim_start();
    let head = format!(
        "{{\"TenantId\":{},\"Instance\":{}",
        serde_json::Value::from(tenant_id),
        serde_json::Value::from(instance)
    );
    let joined = match text.strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{head}}}"),
        Some(rest) => format!("{head},{rest}"),
        None => format!("{head},\"value\":{text}}}"),
    };
    Row::from_json(&joined).unwrap_or_else(|| row.clone())
}

/// A reply's declared columns (advanced hunting's) with the two [`tag_row`] adds in front.
pub fn tagged_columns(declared: &[(String, String)]) -> Vec<(String, String)> {
    let mut columns = vec![
        ("TenantId".to_string(), "String".to_string()),
        ("Instance".to_string(), "String".to_string()),
    ];
    columns.extend(declared.iter().cloned());
    columns
}

/// Connects to each named instance (`Default` or an empty name: the unnamed `MicrosoftGraph` instance), as
/// [`connect_targets`] does for targets of one instance each.
pub async fn connect_instances(
    settings: Option<&crate::config::Settings>,
    instances: &[String],
    options: &crate::ConnectOptions,
) -> Vec<(Target, Result<QueryProvider>)> {
    let targets: Vec<Target> = instances.iter().map(|i| Target::instance(i)).collect();
    connect_targets(settings, &targets, options).await
}

/// The tenants of a fan-out: connections made beforehand ([`connect_targets`]; a failed one passed as its error),
/// or targets signed in to as each gets its place among the tenants in flight — the first rows then come after one
/// tenant's sign-in, not after every tenant's. `Debug` shows no secret (settings and options redact theirs).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value a run, moved once: boxing would only burden the callers
pub enum Tenants {
    /// Connections made by the caller.
    Connected(Vec<(Target, Result<QueryProvider>)>),
    /// Targets to sign in to, with these settings and options ([`Target::connect_options`]).
    SignIn {
        /// The settings the targets' instances are read from.
        settings: Option<crate::config::Settings>,
        /// The targets, in the order their status is reported.
        targets: Vec<Target>,
        /// The connect options every target starts from.
        options: crate::ConnectOptions,
    },
}

impl From<Vec<(Target, Result<QueryProvider>)>> for Tenants {
    fn from(v: Vec<(Target, Result<QueryProvider>)>) -> Tenants {
        Tenants::Connected(v)
    }
}

/// What a tenant's task reports: its connection (when it signs in itself), then its pages.
enum Report {
    SignedIn(usize, Box<Result<QueryProvider>>),
    Page(usize, Result<Page>),
}

/// Runs `query` against every tenant, [`TENANTS_IN_FLIGHT`] at once, tagging rows with their tenant, and pushes the
/// pages into `sink` as they arrive. One slow or throttled tenant holds only its own place; a tenant that cannot
/// sign in or read is reported with its error while the others' rows are kept.
pub async fn fan_out(tenants: impl Into<Tenants>, query: &RenderedQuery, sink: &mut dyn RowSink) -> Result<FanOutSummary> {
    let query = query.clone();
    fan_out_pages(tenants, move |p: &QueryProvider| p.pages(&query), sink).await
}

/// [`fan_out`] with each tenant's pages made by `pages` from its connection — e.g. a time-ranged query read as
/// slices ([`QueryProvider::slice_pages`]) in every tenant.
pub async fn fan_out_pages(
    tenants: impl Into<Tenants>,
    pages: impl Fn(&QueryProvider) -> Result<Pages> + Send + Sync + 'static,
    sink: &mut dyn RowSink,
) -> Result<FanOutSummary> {
    let make: MakePages = std::sync::Arc::new(pages);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Report>(4);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(TENANTS_IN_FLIGHT));
    let mut summary = FanOutSummary::default();
    let mut connected: Vec<(usize, QueryProvider)> = Vec::new();
    let outcome = |target: &Target, tenant_id: Option<String>, result: Result<PageSummary>| TenantOutcome {
        name: target.label().to_string(),
        instance: target.instance.clone(),
        tenant_id,
        result,
        retries: 0,
        budget_waited: std::time::Duration::ZERO,
    };
    match tenants.into() {
        Tenants::Connected(list) => {
            for (i, (target, provider)) in list.into_iter().enumerate() {
                let (tenant_id, result) = match provider {
                    Ok(p) => {
                        spawn_tenant(i, Source::Ready(p.clone()), make.clone(), tx.clone(), slots.clone());
                        let id = tenant_of(&p);
                        connected.push((i, p));
                        (Some(id), Ok(PageSummary::default()))
                    }
                    Err(e) => (target.tenant.as_ref().map(|t| t.tenant.clone()), Err(e)),
                };
                summary.tenants.push(outcome(&target, tenant_id, result));
            }
        }
        Tenants::SignIn {
            settings,
            targets,
            options,
        } => {
            let settings = std::sync::Arc::new(settings);
            for (i, target) in targets.into_iter().enumerate() {
                let connect = target.connect_options(&options);
                let source = Source::SignIn(settings.clone(), connect);
                spawn_tenant(i, source, make.clone(), tx.clone(), slots.clone());
                let configured = target.tenant.as_ref().map(|t| t.tenant.clone());
                summary.tenants.push(outcome(&target, configured, Ok(PageSummary::default())));
            }
        }
    }
    drop(tx);
    let mut first = true;
    while let Some(report) = rx.recv().await {
        let (i, page) = match report {
            Report::SignedIn(i, signed_in) => {
                match *signed_in {
                    Ok(p) => {
                        summary.tenants[i].tenant_id = Some(tenant_of(&p));
                        connected.push((i, p));
                    }
                    Err(e) => {
                        let t = &mut summary.tenants[i];
                        tracing::warn!(tenant = %t.name, instance = %t.instance, error = %e, "a tenant cannot sign in; the others go on");
                        t.result = Err(e);
                    }
                }
                continue;
            }
            Report::Page(i, page) => (i, page),
        };
        let t = &mut summary.tenants[i];
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(tenant = %t.name, instance = %t.instance, error = %e, "a tenant failed; the others go on");
                t.result = Err(e);
                continue;
            }
        };
        let Ok(s) = t.result.as_mut() else { continue };
        s.pages += 1;
        s.rows += page.rows.len();
        s.duplicates += page.duplicates;
        if s.pages == 1 {
            s.count = page.count;
        }
        if first && !page.schema.is_empty() {
            sink.columns(&tagged_columns(&page.schema));
        }
        first = false;
        let tenant = t.tenant_id.clone().unwrap_or_default();
        let rows = page.rows.iter().map(|r| tag_row(r, &tenant, &t.instance)).collect();
        if sink.page(rows)?.is_break() {
            break;
        }
    }
    sink.finish()?;
    for (i, p) in connected {
        summary.tenants[i].retries = p.retries();
        summary.tenants[i].budget_waited = p.budget_waited();
    }
    Ok(summary)
}

/// How a row is tagged: the tenant's directory id (from its token), else the tenant as configured.
fn tenant_of(p: &QueryProvider) -> String {
    p.info().directory_id.clone().unwrap_or_else(|| p.info().tenant_id.clone())
}

/// A tenant's connection: made already, or to make once the tenant has its place.
enum Source {
    Ready(QueryProvider),
    SignIn(std::sync::Arc<Option<crate::config::Settings>>, crate::ConnectOptions),
}

/// How a tenant's pages are made from its connection.
type MakePages = std::sync::Arc<dyn Fn(&QueryProvider) -> Result<Pages> + Send + Sync>;

fn spawn_tenant(
    i: usize,
    source: Source,
    make: MakePages,
    tx: tokio::sync::mpsc::Sender<Report>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
) {
    tokio::spawn(async move {
        // A place among the tenants in flight, held until this tenant's last page is handed on; its sign-in, pages
        // and read-ahead start only then.
        let Ok(_slot) = slots.acquire_owned().await else { return };
        let provider = match source {
            Source::Ready(p) => p,
            Source::SignIn(settings, options) => {
                let connected = QueryProvider::connect(settings.as_ref().as_ref(), &options).await;
                let p = connected.as_ref().ok().cloned();
                if tx.send(Report::SignedIn(i, Box::new(connected))).await.is_err() {
                    return;
                }
                match p {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        let mut pages = match make(&provider) {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Report::Page(i, Err(e))).await;
                return;
            }
        };
        while let Some(page) = pages.next().await {
            let stop = page.is_err();
            if tx.send(Report::Page(i, page)).await.is_err() || stop {
                break;
            }
        }
    });
}

/// Consecutive slices of `[start, end]`, each `slice` long (the last may be shorter); each ends 100 ns before the
/// next begins, so an instant belongs to exactly one slice.
pub fn time_slices(start: DateTime<Utc>, end: DateTime<Utc>, slice: chrono::Duration) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    if slice <= chrono::Duration::zero() {
        return Err(Error::Query {
            message: "the split duration must be positive".into(),
        });
    }
    if start > end {
        return Err(Error::Query {
            message: format!("the time range is empty: start {start} is after end {end}"),
        });
    }
    let count = ((end - start).num_milliseconds() / slice.num_milliseconds().max(1)) + 1;
    if count > 10_000 {
        return Err(Error::Query {
            message: format!("splitting {start} – {end} by {slice} gives {count} slices; 10,000 at most"),
        });
    }
    let tick = chrono::Duration::nanoseconds(100);
    let mut out = Vec::new();
    let mut s = start;
    loop {
        let next = s + slice;
        if next > end {
            out.push((s, end));
            break;
        }
        out.push((s, next - tick));
        if next == end {
            out.push((end, end));
            break;
        }
        s = next;
    }
    Ok(out)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A time-ranged query as consecutive slices of `[start, end]` (see [`time_slices`]): `template` rendered once a
/// slice with `params` (without `start`/`end`, which the slices give). A query without both `start` and `end`
/// parameters cannot be split.
pub fn slice_queries(
    template: &crate::query::QueryTemplate,
    params: &[(String, String)],
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    slice: chrono::Duration,
) -> Result<Vec<RenderedQuery>> {
    for bound in ["start", "end"] {
        if template.parameter(bound).is_none() {
            return Err(Error::Query {
                message: format!("{} has no '{bound}' parameter: it cannot be split by time", template.full_name()),
            });
        }
    }
    let now = Utc::now();
    let mut queries = Vec::new();
    for (s, e) in time_slices(start, end, slice)? {
        let mut p: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| template.parameter(k).is_none_or(|d| d.name != "start" && d.name != "end"))
            .cloned()
            .collect();
        p.push(("start".into(), stamp(s)));
        p.push(("end".into(), stamp(e)));
        queries.push(template.render(&p, now)?);
    }
    Ok(queries)
}

impl QueryProvider {
    /// The pages of `slices` ([`slice_queries`]) as one stream: slices in order, at most `parallel` read at once,
    /// an item already delivered by an earlier slice dropped and counted in its page's `duplicates`.
    pub fn slice_pages(&self, slices: Vec<RenderedQuery>, parallel: usize) -> Pages {
        tracing::info!(slices = slices.len(), parallel, "running the query as time slices");
        let p = self.clone();
        let read = futures_util::stream::iter(slices.into_iter().map(move |q| {
            let pages = p.pages(&q);
            async move {
                let mut got = Vec::new();
                let mut pages = pages?;
                while let Some(page) = pages.next().await {
                    got.push(page?);
                }
                Ok::<_, Error>(got)
            }
        }))
        .buffered(parallel.max(1));
        let mut seen: HashSet<String> = HashSet::new();
        let pages = read.flat_map(move |slice| {
            let out: Vec<Result<Page>> = match slice {
                Err(e) => vec![Err(e)],
                Ok(pages) => pages
                    .into_iter()
                    .map(|mut page| {
                        let before = page.rows.len();
                        page.rows.retain(|r| r.id().is_none_or(|id| seen.insert(id.into_owned())));
                        page.duplicates += before - page.rows.len();
                        Ok(page)
                    })
                    .collect(),
            };
            futures_util::stream::iter(out)
        });
        Pages::new(pages)
    }

    /// Runs a named, time-ranged query as slices of `slice` between `start` and `end`, at most `parallel` at once,
    /// pushing rows into `sink` in slice order (see the [module docs](crate::fanout)). `params` must not hold
    /// `start`/`end` (they are given here).
    pub async fn run_split(
        &self,
        name: &str,
        params: &[(String, String)],
        range: (DateTime<Utc>, DateTime<Utc>),
        slice: chrono::Duration,
        parallel: usize,
        sink: &mut dyn RowSink,
    ) -> Result<PageSummary> {
        let slices = slice_queries(self.queries().get(name)?, params, range, slice)?;
        let mut pages = self.slice_pages(slices, parallel);
        let mut summary = PageSummary::default();
        let mut first = true;
        while let Some(page) = pages.next().await {
            let page = page?;
            if first && !page.schema.is_empty() {
                sink.columns(&page.schema);
            }
            first = false;
            summary.pages += 1;
            summary.duplicates += page.duplicates;
            summary.rows += page.rows.len();
            if sink.page(page.rows)?.is_break() {
                break;
            }
        }
        sink.finish()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_meet_without_overlap() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let v = time_slices(t("2026-01-01T00:00:00Z"), t("2026-01-03T12:00:00Z"), chrono::Duration::days(1)).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].1 + chrono::Duration::nanoseconds(100), v[1].0);
        assert_eq!(v[2], (t("2026-01-03T00:00:00Z"), t("2026-01-03T12:00:00Z")));
        assert!(time_slices(t("2026-01-02T00:00:00Z"), t("2026-01-01T00:00:00Z"), chrono::Duration::days(1)).is_err());
        assert!(time_slices(t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"), chrono::Duration::zero()).is_err());
    }

    #[test]
    fn tag_row_handles_empty_objects_and_non_objects() {
        assert_eq!(
            tag_row(&Row::from_json("{ }").unwrap(), "t", "i").json(),
            r#"{"TenantId":"t","Instance":"i"}"#
        );
        assert_eq!(
            tag_row(&Row::from_json("[1]").unwrap(), "t", "i").json(),
            r#"{"TenantId":"t","Instance":"i","value":[1]}"#
        );
    }
}
