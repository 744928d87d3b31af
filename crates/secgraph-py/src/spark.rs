//! The calls `secgraph.spark` (the PySpark data source) makes: planning on Spark's driver — targets, schema, time
//! windows, the next streaming window's end — and reading one partition on an executor. Each executor signs in
//! itself from the settings: no secret or token is ever an argument or a result here.

use super::{ArrowResult, CancelToken, connect_options, py_err, query_store, settings_for, targets_for, wait};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use secgraph::QueryProvider;
use secgraph::batches::BatchBuilder;
use secgraph::export::Stream;
use secgraph::export::window;
use secgraph::query::{Language, RenderedQuery};

/// A time as the plans carry it: RFC 3339, UTC, to the microsecond.
fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn time(s: &str, now: chrono::DateTime<chrono::Utc>) -> PyResult<chrono::DateTime<chrono::Utc>> {
    secgraph::query::parse_time(s, now).map_err(py_err)
}

fn stream_of(name: &str) -> PyResult<Stream> {
    Stream::parse(name).ok_or_else(|| {
        super::QueryError::new_err(format!(
            "stream '{}': expected alerts_v2, incidents or hunting:Family.name",
            name.chars().filter(|c| !c.is_control()).take(80).collect::<String>()
        ))
    })
}

/// The targets of a read: (instance, tenant id from the tenants file or None, the name reports use).
#[pyfunction]
#[pyo3(signature = (config, instances, tenants=None, tags=Vec::new(), ids=Vec::new()))]
pub(crate) fn plan_targets(
    config: Option<String>,
    instances: Vec<String>,
    tenants: Option<String>,
    tags: Vec<String>,
    ids: Vec<String>,
) -> PyResult<Vec<(String, Option<String>, String)>> {
    let settings = settings_for(config).map_err(py_err)?;
    let targets = targets_for(settings.as_ref(), instances, tenants.as_deref(), tags, ids).map_err(py_err)?;
    Ok(targets
        .into_iter()
        .map(|t| {
            let label = t.label().to_string();
            (t.instance, t.tenant.map(|e| e.tenant), label)
        })
        .collect())
}

/// A named query's result columns as the library declares them — `TenantId`, `Instance`, then the entity's columns
/// (none for advanced hunting, whose reply declares them) — with its language (`odata` or `kql`) and whether it
/// takes a time range (`start` and `end` parameters).
#[pyfunction]
pub(crate) fn query_schema(config: Option<String>, name: String, params: Vec<(String, String)>) -> PyResult<(ArrowResult, String, bool)> {
    use secgraph::batches::schema::{Kind, for_path};
    let settings = settings_for(config).map_err(py_err)?;
    let store = query_store(settings.as_ref()).map_err(py_err)?;
    let template = store.get(&name).map_err(py_err)?;
    let q = template.render(&params, chrono::Utc::now()).map_err(py_err)?;
    let mut columns = vec![("TenantId", Kind::Text), ("Instance", Kind::Text)];
    let language = if q.language == Language::Kql {
        "kql"
    } else {
        columns.extend_from_slice(for_path(&q.text).unwrap_or_default());
        "odata"
    };
    let ranged = template.parameter("start").is_some() && template.parameter("end").is_some();
    let schema = BatchBuilder::new(&columns).schema();
    Ok((
        ArrowResult {
            schema,
            batches: Vec::new(),
        },
        language.to_string(),
        ranged,
    ))
}

/// The columns of a versions stream (`alerts_v2`, `incidents`): `TenantId`, `Instance`, then the export's.
#[pyfunction]
pub(crate) fn stream_schema(stream: &str) -> PyResult<ArrowResult> {
    let stream = stream_of(stream)?;
    let schema = BatchBuilder::new(&window::columns(&stream)).schema();
    Ok(ArrowResult {
        schema,
        batches: Vec::new(),
    })
}

/// `[start, end]` as consecutive windows `seconds` long, as `--split-by` cuts them (each ends 100 ns before the
/// next begins); times may be relative (`-7d`, `now`).
#[pyfunction]
pub(crate) fn time_windows(start: &str, end: &str, seconds: i64) -> PyResult<Vec<(String, String)>> {
    let now = chrono::Utc::now();
    let slices = secgraph::fanout::time_slices(time(start, now)?, time(end, now)?, chrono::Duration::seconds(seconds)).map_err(py_err)?;
    Ok(slices.into_iter().map(|(s, e)| (nanos(s), nanos(e))).collect())
}

fn nanos(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Signs in to one target: `instance`, narrowed to `tenant` of the tenants file when given.
async fn connect_target(
    config: Option<String>,
    options: secgraph::ConnectOptions,
    instance: String,
    tenant: Option<String>,
    tenants_file: Option<String>,
) -> secgraph::Result<QueryProvider> {
    let settings = settings_for(config)?;
    let targets = targets_for(
        settings.as_ref(),
        vec![instance],
        tenants_file.as_deref(),
        Vec::new(),
        tenant.into_iter().collect(),
    )?;
    let Some(target) = targets.into_iter().next() else {
        return Err(secgraph::Error::Query {
            message: "no tenant to read".into(),
        });
    };
    QueryProvider::connect(settings.as_ref(), &target.connect_options(&options)).await
}

/// The service's time now, by the `Date` of one small request to the target (a streaming window ends at it less
/// the overlap: the local clock may be off, and the emulator's clock may be moved).
#[pyfunction]
#[pyo3(signature = (config, options, instance, tenant, tenants_file, cancel=None))]
pub(crate) fn service_time(
    py: Python<'_>,
    config: Option<String>,
    options: &Bound<'_, PyDict>,
    instance: String,
    tenant: Option<String>,
    tenants_file: Option<String>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<String> {
    let o = connect_options(options, None)?;
    let now = wait(py, cancel.as_deref(), async move {
        let p = connect_target(config, o, instance, tenant, tenants_file).await?;
        let probe = RenderedQuery::raw("/security/alerts_v2?$top=1", false);
        let mut pages = p.pages(&probe)?;
        if let Some(page) = futures_util::StreamExt::next(&mut pages).await {
            page?;
        }
        Ok::<_, secgraph::Error>(p.server_now().unwrap_or_else(chrono::Utc::now))
    })?
    .map_err(py_err)?;
    Ok(stamp(now))
}

/// The end of a tenant's next streaming window after `before` ([`window::window_end`]): `service_now` less
/// `overlap_seconds`, never before `before`.
#[pyfunction]
pub(crate) fn window_end(before: Option<String>, service_now: &str, overlap_seconds: i64) -> PyResult<String> {
    let now = chrono::Utc::now();
    let before = before.map(|b| time(&b, now)).transpose()?;
    let end = window::window_end(before, time(service_now, now)?, chrono::Duration::seconds(overlap_seconds));
    Ok(stamp(end))
}

/// Every instance of the settings (`*`): the unnamed one, if set, and each `MicrosoftGraph-<name>`.
#[pyfunction]
#[pyo3(signature = (config=None))]
pub(crate) fn all_instances(config: Option<String>) -> PyResult<Vec<String>> {
    let settings = settings_for(config).map_err(py_err)?;
    Ok(settings.as_ref().map(secgraph::export::all_instances).unwrap_or_default())
}

/// Reads one tenant's versions of `stream` in `[from, to)` ([`window::read_window`]): the batches (`TenantId`,
/// `Instance`, the export's columns) and the read's report as JSON text.
#[pyfunction]
#[pyo3(signature = (config, options, instance, tenant, tenants_file, stream, start, end, page_size=1000, cancel=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_versions(
    py: Python<'_>,
    config: Option<String>,
    options: &Bound<'_, PyDict>,
    instance: String,
    tenant: Option<String>,
    tenants_file: Option<String>,
    stream: &str,
    start: Option<String>,
    end: String,
    page_size: usize,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<(ArrowResult, String)> {
    let o = connect_options(options, None)?;
    let stream = stream_of(stream)?;
    let now = chrono::Utc::now();
    let from = start.map(|s| time(&s, now)).transpose()?;
    let to = time(&end, now)?;
    let read = wait(py, cancel.as_deref(), async move {
        let p = connect_target(config, o, instance.clone(), tenant, tenants_file).await?;
        window::read_window(&p, &instance, &stream, from, to, page_size).await
    })?
    .map_err(py_err)?;
    let report = serde_json::to_string(&read.report).unwrap_or_default();
    Ok((
        ArrowResult {
            schema: read.schema,
            batches: read.batches,
        },
        report,
    ))
}
