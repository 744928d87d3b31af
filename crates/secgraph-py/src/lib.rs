//! `secgraph._native`: the Rust engine as a Python extension. The pure-Python layer (`python/secgraph`) gives it
//! msticpy's shape; this module keeps to a few calls:
//!
//! - `Provider.connect(config, options, prompt, cancel)`, then `queries_json()`, `describe(name, params)`,
//!   `run(name, params, cancel)`, `run_path(path, cancel)`, `stream(name, params)`, `update(...)`, `info_json()`;
//! - results as `ArrowResult` objects exporting the Arrow PyCapsule stream interface (`__arrow_c_stream__`), which
//!   pyarrow, polars and DuckDB import without copying;
//! - `Emulator(...)`: the emulator in this process, on a background runtime;
//! - `CancelToken`: cancels a running call from another thread (the asyncio variants use it).
//!
//! Every call that waits on the network releases the GIL and checks for signals every 50 ms, so Ctrl-C
//! (KeyboardInterrupt) stops a running query at once; the task is aborted and its connections dropped.

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;
use futures_util::StreamExt;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use secgraph::auth::{AuthType, SignInPrompt};
use secgraph::batches::BatchBuilder;
use secgraph::config::{ConfigSource, SearchPaths, Settings};
use secgraph::graph::{Pages, Target, Update};
use secgraph::output::BatchCollector;
use secgraph::query::QueryStore;
use secgraph::{ConnectOptions, ErrorKind, QueryProvider, Secret};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod rules;
mod spark;

pyo3::create_exception!(secgraph, SecGraphError, PyException, "Any secgraph failure.");
pyo3::create_exception!(
    secgraph,
    ConfigurationError,
    SecGraphError,
    "Settings or connection inputs are missing or wrong."
);
pyo3::create_exception!(secgraph, AuthenticationError, SecGraphError, "Entra ID refused to sign in.");
pyo3::create_exception!(
    secgraph,
    ServiceError,
    SecGraphError,
    "Graph (or the network to it) failed a request."
);
pyo3::create_exception!(
    secgraph,
    QueryError,
    SecGraphError,
    "A query, parameter or time expression is not valid."
);
pyo3::create_exception!(secgraph, OutputError, SecGraphError, "Results could not be written.");
pyo3::create_exception!(secgraph, LocalError, SecGraphError, "A local file or folder (a cache) failed.");
pyo3::create_exception!(secgraph, CancelledError, SecGraphError, "The call was cancelled.");

/// secgraph's error as the matching Python exception; the message is the library's (secrets never appear in it).
fn py_err(e: secgraph::Error) -> PyErr {
    let msg = e.to_string();
    let err = match e.kind() {
        ErrorKind::Settings => ConfigurationError::new_err(msg),
        ErrorKind::Auth => AuthenticationError::new_err(msg),
        ErrorKind::Api => ServiceError::new_err(msg),
        ErrorKind::Usage => QueryError::new_err(msg),
        ErrorKind::Output => OutputError::new_err(msg),
        ErrorKind::Local => LocalError::new_err(msg),
        _ => SecGraphError::new_err(msg),
    };
    // The facts a program acts on, as attributes (None when the error has none): HTTP status, the id a support
    // request needs, how long the service asked to wait, the AADSTS codes of a refused sign-in.
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("status", e.http_status());
        let _ = value.setattr("request_id", e.request_id());
        let _ = value.setattr("retry_after", e.retry_after().map(|d| d.as_secs_f64()));
        let _ = value.setattr("aadsts_codes", e.aadsts_codes().to_vec());
    });
    err
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("secgraph")
            .enable_all()
            .build()
            // Building a runtime fails only when the OS refuses threads: nothing sensible can run then.
            .unwrap_or_else(|e| panic!("cannot start the secgraph runtime: {e}"))
    })
}

/// Cancels a running call from another thread.
#[pyclass(module = "secgraph._native", frozen)]
#[derive(Clone, Default)]
struct CancelToken(Arc<AtomicBool>);

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        CancelToken::default()
    }
    /// Asks the call using this token to stop.
    fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether `cancel` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs `fut` on the runtime while this thread waits without the GIL; Ctrl-C or the token aborts it.
fn wait<T: Send + 'static>(py: Python<'_>, cancel: Option<&CancelToken>, fut: impl Future<Output = T> + Send + 'static) -> PyResult<T> {
    let (tx, rx) = sync_channel(1);
    let task = runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    let mut rx = rx;
    loop {
        let (back, got) = py.detach(move || {
            let got = rx.recv_timeout(Duration::from_millis(50));
            (rx, got)
        });
        rx = back;
        match got {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    task.abort();
                    return Err(e);
                }
                if cancel.is_some_and(CancelToken::cancelled) {
                    task.abort();
                    return Err(CancelledError::new_err("cancelled"));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(
                    "the secgraph task stopped without an answer (a bug: please report it)",
                ));
            }
        }
    }
}

/// Shows sign-in messages through a Python callable `prompt(kind, text)`, kind `"device_code"` or `"browser"`.
struct PyPrompt(Py<PyAny>);

impl std::fmt::Debug for PyPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyPrompt(..)")
    }
}

impl PyPrompt {
    fn show(&self, kind: &str, text: &str) {
        Python::attach(|py| {
            if let Err(e) = self.0.call1(py, (kind, text)) {
                e.print(py);
            }
        });
    }
}

impl SignInPrompt for PyPrompt {
    fn device_code(&self, message: &str) {
        self.show("device_code", message);
    }
    fn open_browser(&self, url: &str) {
        self.show("browser", url);
    }
}

fn opt_str(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<String>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.str()?.to_string())),
        _ => Ok(None),
    }
}

/// A connected provider.
#[pyclass(module = "secgraph._native", frozen)]
struct Provider {
    inner: QueryProvider,
}

/// The built-in queries plus the settings' query folders (the library's own store).
fn query_store(settings: Option<&Settings>) -> secgraph::Result<QueryStore> {
    QueryStore::with_settings(settings).map(|(store, _)| store)
}

/// msticpy's connect keywords as options.
fn connect_options(options: &Bound<'_, PyDict>, prompt: Option<Py<PyAny>>) -> PyResult<ConnectOptions> {
    let mut o = ConnectOptions {
        instance: opt_str(options, "instance")?,
        tenant_id: opt_str(options, "tenant_id")?,
        client_id: opt_str(options, "client_id")?,
        client_secret: opt_str(options, "client_secret")?.map(Secret::new),
        username: opt_str(options, "username")?,
        certificate: opt_str(options, "certificate")?.map(PathBuf::from),
        private_key: opt_str(options, "private_key")?.map(PathBuf::from),
        api_root: opt_str(options, "api_root")?,
        api_version: opt_str(options, "api_version")?,
        connection_string: opt_str(options, "connection_str")?.map(Secret::new),
        token_cache: opt_str(options, "token_cache")?.map(PathBuf::from),
        ..Default::default()
    };
    if let Some(v) = options.get_item("retries")?
        && !v.is_none()
    {
        let n: u32 = v.extract()?;
        if n > 20 {
            return Err(pyo3::exceptions::PyValueError::new_err(format!("retries={n}: expected 0 to 20")));
        }
        o.retry = Some(secgraph::retry::RetryOptions::with_retries(n));
    }
    if let Some(v) = options.get_item("enrich")?
        && !v.is_none()
    {
        o.enrich = enrichment(Some(&v.extract::<String>()?))?;
    }
    if let Some(v) = options.get_item("requests_per_minute")?
        && !v.is_none()
    {
        let n: u32 = v.extract()?;
        o.requests_per_minute = Some((n, n));
    }
    o.delegated_auth = match options.get_item("delegated_auth")? {
        Some(v) => v.is_truthy()?,
        None => false,
    };
    if let Some(t) = opt_str(options, "auth_type")? {
        o.auth_type = Some(AuthType::parse(&t).ok_or_else(|| {
            ConfigurationError::new_err(format!("auth_type '{t}' is not one of: browser, interactive, device, devicecode"))
        })?);
    }
    if let Some(p) = prompt {
        o.prompt = Some(Arc::new(PyPrompt(p)));
    }
    Ok(o)
}

fn settings_for(config: Option<String>) -> secgraph::Result<Option<Settings>> {
    match config {
        Some(p) => Settings::load(&PathBuf::from(p), ConfigSource::Explicit).map(Some),
        None => Settings::discover(&SearchPaths::from_env(None)),
    }
}

#[pymethods]
impl Provider {
    /// Connects with msticpy's rules. `config`: a msticpyconfig.yaml path (default: found as msticpy finds it);
    /// `options`: msticpy's connect keywords.
    #[staticmethod]
    #[pyo3(signature = (config, options, prompt=None, cancel=None))]
    fn connect(
        py: Python<'_>,
        config: Option<String>,
        options: &Bound<'_, PyDict>,
        prompt: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<Provider> {
        let o = connect_options(options, prompt)?;
        let inner = wait(py, cancel.as_deref(), async move {
            let settings = settings_for(config)?;
            // No settings file and not enough keywords to connect without one: say where the file was looked for.
            if settings.is_none() && o.connection_string.is_none() && (o.tenant_id.is_none() || o.client_id.is_none()) {
                return Err(secgraph::Error::ConfigNotFound {
                    searched: Settings::searched(&SearchPaths::from_env(None)),
                });
            }
            QueryProvider::connect(settings.as_ref(), &o).await
        })?
        .map_err(py_err)?;
        Ok(Provider { inner })
    }

    /// What was connected to, as JSON: tenant, app, cloud, Graph root, roles.
    fn info_json(&self) -> String {
        let i = self.inner.info();
        serde_json::json!({
            "settings": i.settings, "source": i.source, "tenant_id": i.tenant_id, "client_id": i.client_id,
            "cloud": i.cloud, "authority": i.authority, "graph_root": i.graph_root, "roles": i.roles,
            "scopes": i.scopes, "app_name": i.app_name, "auth": format!("{:?}", i.auth),
        })
        .to_string()
    }

    /// Every query as JSON: family, name, description, language, parameters (name, type, default, required,
    /// aliases, description), default columns.
    fn queries_json(&self) -> String {
        let all: Vec<serde_json::Value> = self
            .inner
            .queries()
            .all()
            .iter()
            .map(|q| {
                serde_json::json!({
                    "family": q.family, "name": q.name, "description": q.description,
                    "language": format!("{:?}", q.language).to_lowercase(), "origin": q.origin, "columns": q.table_columns,
                    "parameters": q.parameters.iter().map(|p| serde_json::json!({
                        "name": p.name, "type": format!("{:?}", p.kind).to_lowercase(), "default": p.default,
                        "required": p.required(), "aliases": p.aliases, "description": p.description,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::Value::Array(all).to_string()
    }

    /// The request a query would send, as text (msticpy's "print").
    fn describe(&self, name: &str, params: Vec<(String, String)>) -> PyResult<String> {
        Ok(self.inner.render(name, &params).map_err(py_err)?.describe())
    }

    /// Runs a named query to the end: every row, typed. `enrich`: `"ti"` adds threat intelligence to alert and
    /// incident rows (one process-wide cache and budget).
    #[pyo3(signature = (name, params, cancel=None, enrich=None))]
    fn run(
        &self,
        py: Python<'_>,
        name: &str,
        params: Vec<(String, String)>,
        cancel: Option<PyRef<'_, CancelToken>>,
        enrich: Option<String>,
    ) -> PyResult<ArrowResult> {
        let q = self.inner.render(name, &params).map_err(py_err)?;
        let p = self.inner.clone().with_enrichment(enrichment(enrich.as_deref())?);
        let (schema, batches) = wait(py, cancel.as_deref(), async move { p.record_batches(&q).await })?.map_err(py_err)?;
        Ok(ArrowResult { schema, batches })
    }

    /// Runs a named, time-ranged query as slices of `slice_seconds` between `start` and `end` (time expressions),
    /// at most `parallel` at once; rows in time order, none repeated at slice edges.
    #[pyo3(signature = (name, params, start, end, slice_seconds, parallel=4, cancel=None))]
    #[allow(clippy::too_many_arguments)]
    fn run_split(
        &self,
        py: Python<'_>,
        name: &str,
        params: Vec<(String, String)>,
        start: &str,
        end: &str,
        slice_seconds: i64,
        parallel: usize,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<ArrowResult> {
        let now = chrono::Utc::now();
        let range = (
            secgraph::query::parse_time(start, now).map_err(py_err)?,
            secgraph::query::parse_time(end, now).map_err(py_err)?,
        );
        let q = self.inner.render(name, &params).map_err(py_err)?;
        let (p, name) = (self.inner.clone(), name.to_string());
        let batches = wait(py, cancel.as_deref(), async move {
            let mut sink = BatchCollector::new(QueryProvider::batch_builder(&q));
            p.run_split(&name, &params, range, chrono::Duration::seconds(slice_seconds), parallel, &mut sink)
                .await?;
            sink.into_batches()
        })?
        .map_err(py_err)?;
        Ok(ArrowResult {
            schema: batches.0,
            batches: batches.1,
        })
    }

    /// Runs a named query against several tenants at once: the instances given, each expanded into the tenants of
    /// a tenants file (`tenants`, or the instance's `Args.Tenants`) that `tags`/`ids` admit, each with these connect
    /// options; rows carry `TenantId` and `Instance`. Returns the result and the status of every tenant: (tenant,
    /// name, instance, rows, pages, retries, seconds waited for the budget, error).
    #[staticmethod]
    /// `split`: (start, end, slice seconds, slices at once) reads the range as time slices in every tenant.
    #[pyo3(signature = (config, options, instances, name, params, tenants=None, tags=Vec::new(), ids=Vec::new(), prompt=None, cancel=None, split=None))]
    #[allow(clippy::too_many_arguments)]
    fn run_targets(
        py: Python<'_>,
        config: Option<String>,
        options: &Bound<'_, PyDict>,
        instances: Vec<String>,
        name: String,
        params: Vec<(String, String)>,
        tenants: Option<String>,
        tags: Vec<String>,
        ids: Vec<String>,
        prompt: Option<Py<PyAny>>,
        cancel: Option<PyRef<'_, CancelToken>>,
        split: Option<(String, String, i64, usize)>,
    ) -> PyResult<(ArrowResult, Vec<TenantStatus>)> {
        let o = connect_options(options, prompt)?;
        let now = chrono::Utc::now();
        let split = match split {
            None => None,
            Some((start, end, seconds, parallel)) => Some((
                (
                    secgraph::query::parse_time(&start, now).map_err(py_err)?,
                    secgraph::query::parse_time(&end, now).map_err(py_err)?,
                ),
                chrono::Duration::seconds(seconds),
                parallel,
            )),
        };
        let out = wait(py, cancel.as_deref(), async move {
            let settings = settings_for(config)?;
            let store = query_store(settings.as_ref())?;
            let template = store.get(&name)?;
            let q = template.render(&params, now)?;
            let slices = match split {
                None => None,
                Some((range, slice, parallel)) => Some((secgraph::fanout::slice_queries(template, &params, range, slice)?, parallel)),
            };
            let targets = targets_for(settings.as_ref(), instances, tenants.as_deref(), tags, ids)?;
            let tenants = secgraph::fanout::Tenants::SignIn {
                settings,
                targets,
                options: o,
            };
            let mut sink = BatchCollector::new(QueryProvider::batch_builder(&q));
            let summary = match slices {
                None => secgraph::fanout::fan_out(tenants, &q, &mut sink).await?,
                Some((slices, parallel)) => {
                    let pages = move |p: &QueryProvider| Ok(p.slice_pages(slices.clone(), parallel));
                    secgraph::fanout::fan_out_pages(tenants, pages, &mut sink).await?
                }
            };
            Ok::<_, secgraph::Error>((sink.into_batches()?, status_of(&summary)))
        })?
        .map_err(py_err)?;
        let ((schema, batches), status) = out;
        Ok((ArrowResult { schema, batches }, status))
    }

    /// A Defender for Identity response action: the plan (JSON), and with `yes` the service's reply too.
    #[pyo3(signature = (account, action, provider=None, yes=false, cancel=None))]
    fn identity_action(
        &self,
        py: Python<'_>,
        account: String,
        action: String,
        provider: Option<String>,
        yes: bool,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<String> {
        let p = self.inner.clone();
        let out = wait(py, cancel.as_deref(), async move {
            let plan = secgraph::identity::plan(&p, &account, &action, provider.as_deref()).await?;
            let reply = match (yes, &plan.already) {
                (true, None) => Some(secgraph::identity::invoke(&p, &plan).await?),
                _ => None,
            };
            Ok::<_, secgraph::Error>(serde_json::json!({"plan": plan, "sent": reply.is_some(), "reply": reply}).to_string())
        })?
        .map_err(py_err)?;
        Ok(out)
    }

    /// Runs a raw Graph path: a `$top` in it caps the rows (one request) unless `all` asks for every page.
    #[pyo3(signature = (path, cancel=None, all=false))]
    fn run_path(&self, py: Python<'_>, path: &str, cancel: Option<PyRef<'_, CancelToken>>, all: bool) -> PyResult<ArrowResult> {
        let q = secgraph::query::RenderedQuery::raw(path, all);
        let p = self.inner.clone();
        let (schema, batches) = wait(py, cancel.as_deref(), async move { p.record_batches(&q).await })?.map_err(py_err)?;
        Ok(ArrowResult { schema, batches })
    }

    /// A named query's pages, one typed batch each, fetched as they are asked for.
    fn stream(&self, name: &str, params: Vec<(String, String)>) -> PyResult<BatchStream> {
        let q = self.inner.render(name, &params).map_err(py_err)?;
        self.stream_of(&q)
    }

    /// A raw Graph path's pages (every page: a stream is asked for to read them all).
    fn stream_path(&self, path: &str) -> PyResult<BatchStream> {
        self.stream_of(&secgraph::query::RenderedQuery::raw(path, true))
    }

    /// Updates an alert (`target="alert"`), incident or legacy alert; returns the item after the update, as JSON.
    #[pyo3(signature = (target, id, status=None, classification=None, determination=None, assigned_to=None, comment=None, tags=Vec::new(), cancel=None))]
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        py: Python<'_>,
        target: &str,
        id: String,
        status: Option<String>,
        classification: Option<String>,
        determination: Option<String>,
        assigned_to: Option<String>,
        comment: Option<String>,
        tags: Vec<String>,
        cancel: Option<PyRef<'_, CancelToken>>,
    ) -> PyResult<String> {
        let target = match target {
            "alert" => Target::Alert,
            "incident" => Target::Incident,
            "legacy_alert" => Target::LegacyAlert,
            other => return Err(QueryError::new_err(format!("unknown update target '{other}'"))),
        };
        let update = Update::from_text(
            target,
            status.as_deref(),
            classification.as_deref(),
            determination.as_deref(),
            assigned_to.as_deref(),
            comment.as_deref(),
            &tags,
        )
        .map_err(py_err)?;
        let p = self.inner.clone();
        let item = wait(py, cancel.as_deref(), async move { p.update(target, &id, &update).await })?.map_err(py_err)?;
        Ok(item.to_string())
    }
}

impl Provider {
    fn stream_of(&self, q: &secgraph::query::RenderedQuery) -> PyResult<BatchStream> {
        // The stream is made inside the runtime, so that its page prefetching runs there.
        let (p, q2) = (self.inner.clone(), q.clone());
        let pages = runtime().block_on(async move { p.pages(&q2) }).map_err(py_err)?;
        Ok(BatchStream {
            state: Arc::new(tokio::sync::Mutex::new(StreamState {
                pages: Some(pages),
                builder: QueryProvider::batch_builder(q),
                first: true,
            })),
        })
    }
}

struct StreamState {
    pages: Option<Pages>,
    builder: BatchBuilder,
    first: bool,
}

/// Pages as typed batches, one per page; `next_batch()` returns `None` at the end.
#[pyclass(module = "secgraph._native", frozen)]
struct BatchStream {
    state: Arc<tokio::sync::Mutex<StreamState>>,
}

#[pymethods]
impl BatchStream {
    /// The next page as an `ArrowResult` of one batch, or `None` after the last.
    #[pyo3(signature = (cancel=None))]
    fn next_batch(&self, py: Python<'_>, cancel: Option<PyRef<'_, CancelToken>>) -> PyResult<Option<ArrowResult>> {
        let state = self.state.clone();
        let out = wait(py, cancel.as_deref(), async move {
            let mut s = state.lock().await;
            let Some(pages) = s.pages.as_mut() else { return Ok(None) };
            match pages.next().await {
                None => {
                    s.pages = None;
                    if std::mem::take(&mut s.first) {
                        // An empty result still has the query's columns.
                        let b = s.builder.finish_batch();
                        return Ok(Some((b.schema(), vec![b])));
                    }
                    Ok(None)
                }
                Some(Err(e)) => {
                    s.pages = None;
                    Err(e)
                }
                Some(Ok(page)) => {
                    if std::mem::take(&mut s.first) && !page.schema.is_empty() {
                        s.builder.declare_hunting(&page.schema);
                    }
                    let b = match s.builder.push_page(&page.rows) {
                        Some(b) => b,
                        None => s.builder.finish_batch(),
                    };
                    Ok(Some((b.schema(), vec![b])))
                }
            }
        })?
        .map_err(py_err)?;
        Ok(out.map(|(schema, batches)| ArrowResult { schema, batches }))
    }
}

/// Typed results: a schema and its batches, exported through the Arrow PyCapsule interface.
#[pyclass(module = "secgraph._native", frozen)]
struct ArrowResult {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

#[pymethods]
impl ArrowResult {
    /// Rows in all.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The Arrow C stream of these batches (pyarrow: `pa.table(result)`, `pa.RecordBatchReader.from_stream`).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<Py<PyAny>>) -> PyResult<Bound<'py, PyCapsule>> {
        // Only the result's own schema is offered; a consumer that asked for another casts on its side.
        let _ = requested_schema;
        let reader = RecordBatchIterator::new(self.batches.clone().into_iter().map(Ok), self.schema.clone());
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}

/// The emulator (Entra ID, Graph security, Key Vault) in this process, on loopback with its own CA.
#[pyclass(module = "secgraph._native", frozen)]
struct Emulator {
    inner: secgraph_emulator::Emulator,
    config_path: PathBuf,
    _dir: tempfile::TempDir,
}

#[pymethods]
impl Emulator {
    /// Starts an emulator with `alerts` alerts (seeded by `seed`), optional fault spec and page size, and writes a
    /// msticpyconfig.yaml that points at it.
    #[new]
    /// `auto_approve`: a user (UPN) that every device-code and browser sign-in completes as, without a page visit.
    /// `hunting_calls_per_minute`: advanced hunting's per-tenant call quota (default the service's, 45).
    /// `next_links` (`always`, `never`, `when-filtered`), `max_skip`, `max_top`: how the service pages (see
    /// docs/EMULATOR.md).
    /// `tenants`: customer tenants of an MSSP (their tenants file is `tenants_path`, their instance `MSSP`);
    /// `alerts_per_tenant`: alerts in each tenant but the first; `requests_per_minute`: the rate enforced per app and
    /// tenant (default: none).
    #[pyo3(signature = (alerts=500, seed=None, faults=None, page_size=None, auto_approve=None, hunting_calls_per_minute=None, next_links=None, max_skip=None, max_top=None, ingestion_lag=None, tenants=0, alerts_per_tenant=None, requests_per_minute=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        alerts: usize,
        seed: Option<u64>,
        faults: Option<String>,
        page_size: Option<usize>,
        auto_approve: Option<String>,
        hunting_calls_per_minute: Option<u32>,
        next_links: Option<String>,
        max_skip: Option<usize>,
        max_top: Option<usize>,
        ingestion_lag: Option<String>,
        tenants: usize,
        alerts_per_tenant: Option<usize>,
        requests_per_minute: Option<u32>,
    ) -> PyResult<Emulator> {
        let faults = faults
            .map(|f| secgraph_emulator::faults::FaultSpec::parse(&f))
            .transpose()
            .map_err(ConfigurationError::new_err)?;
        let dir = tempfile::tempdir().map_err(|e| LocalError::new_err(format!("cannot create a temporary folder: {e}")))?;
        let mut config = secgraph_emulator::EmulatorConfig {
            alerts,
            faults,
            page_size,
            state_dir: Some(dir.path().to_path_buf()),
            tenants,
            alerts_per_tenant,
            requests_per_minute,
            ..Default::default()
        };
        if let Some(s) = seed {
            config.seed = s;
        }
        if let Some(n) = hunting_calls_per_minute {
            config.hunting_quota.calls_per_minute = n;
        }
        if let Some(n) = next_links {
            config.next_links = n
                .parse()
                .map_err(|e: String| pyo3::exceptions::PyValueError::new_err(format!("next_links={e}")))?;
        }
        config.max_skip = max_skip;
        config.max_top = max_top;
        if let Some(t) = ingestion_lag {
            config.ingestion_lag = Some(secgraph_emulator::parse_duration(&t).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!("ingestion_lag={t:?}: expected a duration such as 30s, 15m or 1h"))
            })?);
        }
        if auto_approve.is_some() {
            config.device_code_interval = Duration::from_secs(1);
            config.auto_approve = auto_approve;
        }
        let inner = wait(py, None, async move { secgraph_emulator::Emulator::start(config).await })?
            .map_err(|e| SecGraphError::new_err(format!("the emulator did not start: {e}")))?;
        let config_path = dir.path().join("msticpyconfig.yaml");
        std::fs::write(&config_path, inner.msticpy_config())
            .map_err(|e| LocalError::new_err(format!("cannot write {}: {e}", config_path.display())))?;
        Ok(Emulator {
            inner,
            config_path,
            _dir: dir,
        })
    }

    /// The msticpyconfig.yaml that points at this emulator.
    #[getter]
    fn config_path(&self) -> String {
        self.config_path.display().to_string()
    }

    /// `https://127.0.0.1:PORT`.
    #[getter]
    fn base_url(&self) -> String {
        self.inner.base_url().to_string()
    }

    /// The emulator's CA certificate (PEM file).
    #[getter]
    fn ca_path(&self) -> String {
        self.inner.ca_path().display().to_string()
    }

    /// The MSSP customers' tenants file (CSV), when the emulator has customer tenants.
    #[getter]
    fn tenants_path(&self) -> Option<String> {
        self.inner.tenants_path().map(|p| p.display().to_string())
    }

    /// Requests served so far whose path ends with `suffix`.
    fn requests_with(&self, text: &str) -> usize {
        self.inner.requests_with(text)
    }

    fn requests_to(&self, suffix: &str) -> usize {
        self.inner.requests_to(suffix)
    }

    /// Moves the emulator's clock forward (`"20m"`, `"2h"`, …); returns its new time (ISO 8601).
    fn advance_clock(&self, by: &str) -> PyResult<String> {
        let d = secgraph_emulator::parse_duration(by)
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("{by:?}: expected a duration such as 30s, 20m or 2h")))?;
        Ok(self.inner.advance_clock(d).to_rfc3339())
    }

    /// Sets properties of an alert (`fields`: a JSON object) as a data source could have written them, e.g. a
    /// title carrying an attacker's text; `tenant`: a tenant id (default: the first tenant). False when no such
    /// alert exists.
    #[pyo3(signature = (id, fields, tenant=None))]
    fn set_alert(&self, id: &str, fields: &str, tenant: Option<String>) -> PyResult<bool> {
        let v: serde_json::Value =
            serde_json::from_str(fields).map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("fields: not JSON: {e}")))?;
        let serde_json::Value::Object(m) = v else {
            return Err(pyo3::exceptions::PyValueError::new_err("fields: expected a JSON object"));
        };
        Ok(self.inner.set_alert_fields(tenant.as_deref(), id, &m))
    }

    /// Stops serving.
    fn stop(&self) {
        self.inner.shutdown();
    }
}

/// The process's threat intelligence enrichment for `what` (`"ti"`), shared by every call and tenant.
fn enrichment(what: Option<&str>) -> PyResult<Option<Arc<secgraph::enrich::Enrichment>>> {
    static SHARED: std::sync::OnceLock<Arc<secgraph::enrich::Enrichment>> = std::sync::OnceLock::new();
    match what {
        None | Some("") => Ok(None),
        Some("ti") => Ok(Some(
            SHARED
                .get_or_init(|| Arc::new(secgraph::enrich::Enrichment::shared_default()))
                .clone(),
        )),
        Some(other) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "enrich={other:?}: expected \"ti\""
        ))),
    }
}

/// The tenants file an instance of the settings names (`Args.Tenants`), if any.
#[pyfunction]
#[pyo3(signature = (config, instance=None))]
fn tenants_file(config: Option<String>, instance: Option<String>) -> PyResult<Option<String>> {
    let Some(settings) = settings_for(config).map_err(py_err)? else {
        return Ok(None);
    };
    let file = settings.tenants_file(instance.as_deref()).map_err(py_err)?;
    Ok(file.map(|p| p.display().to_string()))
}

/// One tenant's status in a run across tenants: (tenant, name, instance, rows, pages, retries, seconds waited for
/// the budget, error) — the CLI's `--summary` columns.
type TenantStatus = (Option<String>, String, String, usize, usize, usize, f64, Option<String>);

fn status_of(summary: &secgraph::fanout::FanOutSummary) -> Vec<TenantStatus> {
    summary
        .status()
        .into_iter()
        .map(|s| (s.tenant, s.name, s.instance, s.rows, s.pages, s.retries, s.budget_wait_s, s.error))
        .collect()
}

/// The targets of a run: `instances` (none: the default instance), each expanded into the tenants of `tenants` (a
/// tenants file) or of the instance's own `Args.Tenants`, filtered by tags and ids.
fn targets_for(
    settings: Option<&Settings>,
    instances: Vec<String>,
    tenants: Option<&str>,
    tags: Vec<String>,
    ids: Vec<String>,
) -> secgraph::Result<Vec<secgraph::fanout::Target>> {
    let instances = if instances.is_empty() {
        vec!["Default".to_string()]
    } else {
        instances
    };
    let file = tenants
        .map(|f| secgraph::tenants::TenantsFile::load(std::path::Path::new(f)))
        .transpose()?;
    let filter = secgraph::tenants::TenantFilter { tags, tenants: ids };
    secgraph::fanout::targets(settings, &instances, file.as_ref(), &filter)
}

/// The library's multi-tenant export (`secgraph::export::export_instances`), as the CLI runs it: returns the run's
/// reports as JSON text (one object per tenant and stream).
#[pyfunction]
#[pyo3(signature = (config, root, instances, all_instances, streams, since=None, shard=None, storage_options=Vec::new(), page_size=1000, overlap_minutes=5, missing_checkpoint="refuse".to_string(), options=None, tenants=None, tenant_tags=Vec::new(), tenant_ids=Vec::new(), cancel=None))]
#[allow(clippy::too_many_arguments)]
fn export(
    py: Python<'_>,
    config: Option<String>,
    root: String,
    instances: Vec<String>,
    all_instances: bool,
    streams: Vec<String>,
    since: Option<String>,
    shard: Option<(u32, u32)>,
    storage_options: Vec<(String, String)>,
    page_size: usize,
    overlap_minutes: i64,
    missing_checkpoint: String,
    options: Option<&Bound<'_, PyDict>>,
    tenants: Option<String>,
    tenant_tags: Vec<String>,
    tenant_ids: Vec<String>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<String> {
    use secgraph::export::{ExportOptions, MissingCheckpoint, Root, Stream};
    let streams: Vec<Stream> = streams
        .iter()
        .map(|s| {
            Stream::parse(s).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "streams: {s:?} is not one of alerts_v2, incidents, auditlog, or hunting:Family.name"
                ))
            })
        })
        .collect::<PyResult<_>>()?;
    if let Some((k, n)) = shard
        && (n == 0 || k >= n)
    {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "shard=({k}, {n}): expected (K, N) with 0 <= K < N"
        )));
    }
    let missing = match missing_checkpoint.as_str() {
        "refuse" => MissingCheckpoint::Refuse,
        "rebuild" => MissingCheckpoint::Rebuild,
        "force" => MissingCheckpoint::Force,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "missing_checkpoint={other:?}: expected 'refuse', 'rebuild' or 'force'"
            )));
        }
    };
    let connect = match options {
        Some(o) => connect_options(o, None)?,
        None => ConnectOptions::default(),
    };
    let root = Root::parse(&root, &storage_options).map_err(py_err)?;
    let mut opts = ExportOptions::with_root(root);
    opts.page_size = page_size.max(1);
    opts.overlap = chrono::Duration::minutes(overlap_minutes.max(0));
    opts.shard = shard.unwrap_or((0, 1));
    opts.missing_checkpoint = missing;
    opts.since = since
        .as_deref()
        .map(|t| secgraph::query::parse_time(t, chrono::Utc::now()))
        .transpose()
        .map_err(py_err)?;
    let reports = wait(py, cancel.as_deref(), async move {
        let settings = settings_for(config)?;
        let instances = if all_instances {
            let s = settings.as_ref().ok_or_else(|| secgraph::Error::Instance {
                message: "all_instances=True needs a settings file (msticpyconfig.yaml) that configures instances".into(),
            })?;
            secgraph::export::all_instances(s)
        } else {
            instances
        };
        let targets = targets_for(settings.as_ref(), instances, tenants.as_deref(), tenant_tags, tenant_ids)?;
        opts.root.prepare().await?;
        Ok::<_, secgraph::Error>(secgraph::export::export_instances(settings.as_ref(), &targets, &streams, &opts, &connect).await)
    })?
    .map_err(py_err)?;
    serde_json::to_string(&reports).map_err(|e| SecGraphError::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Log records go to Python's logging (`secgraph.…` loggers, `secgraph_emulator.…` for the emulator); like the
    // CLI's, they never carry a secret.
    // Loggers are cached, levels are not: `logging.getLogger("secgraph").setLevel(...)` takes effect at once.
    if let Ok(logger) = pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers) {
        let _ = logger.install();
    }
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(tenants_file, m)?)?;
    m.add_function(wrap_pyfunction!(rules::rules_run, m)?)?;
    m.add_function(wrap_pyfunction!(spark::plan_targets, m)?)?;
    m.add_function(wrap_pyfunction!(spark::query_schema, m)?)?;
    m.add_function(wrap_pyfunction!(spark::stream_schema, m)?)?;
    m.add_function(wrap_pyfunction!(spark::time_windows, m)?)?;
    m.add_function(wrap_pyfunction!(spark::service_time, m)?)?;
    m.add_function(wrap_pyfunction!(spark::window_end, m)?)?;
    m.add_function(wrap_pyfunction!(spark::all_instances, m)?)?;
    m.add_function(wrap_pyfunction!(spark::read_versions, m)?)?;
    m.add_class::<Provider>()?;
    m.add_class::<ArrowResult>()?;
    m.add_class::<BatchStream>()?;
    m.add_class::<Emulator>()?;
    m.add_class::<CancelToken>()?;
    for (name, e) in [
        ("SecGraphError", py.get_type::<SecGraphError>()),
        ("ConfigurationError", py.get_type::<ConfigurationError>()),
        ("AuthenticationError", py.get_type::<AuthenticationError>()),
        ("ServiceError", py.get_type::<ServiceError>()),
        ("QueryError", py.get_type::<QueryError>()),
        ("OutputError", py.get_type::<OutputError>()),
        ("LocalError", py.get_type::<LocalError>()),
        ("CancelledError", py.get_type::<CancelledError>()),
    ] {
        // Every secgraph exception has these attributes (None or empty unless the service said them).
        for attr in ["status", "request_id", "retry_after"] {
            e.setattr(attr, py.None())?;
        }
        e.setattr("aadsts_codes", Vec::<u64>::new())?;
        m.add(name, e)?;
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEMO_TENANT_ID", secgraph_emulator::DEMO_TENANT_ID)?;
    m.add("DEMO_CLIENT_ID", secgraph_emulator::DEMO_CLIENT_ID)?;
    m.add("DEMO_CLIENT_SECRET", secgraph_emulator::DEMO_CLIENT_SECRET)?;
    m.add("DEMO_ANALYST", secgraph_emulator::directory::DEMO_ANALYST)?;
    Ok(())
}
