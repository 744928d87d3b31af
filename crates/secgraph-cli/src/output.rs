//! Output formats: a terminal table, JSON, JSON lines, CSV, Parquet or an Arrow stream, to stdout or a file.

use secgraph::fanout::FanOutSummary;
use secgraph::graph::PageSummary;
use secgraph::output::{ArrowFileSink, CsvSink, Destination, FileFormat, JsonArraySink, JsonLinesSink, RowSink, Table};
use secgraph::query::{QueryStore, QueryTemplate, RenderedQuery};
use secgraph::{ConnectionInfo, QueryProvider};
use std::fs::File;
use std::io::IsTerminal;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// A table for the terminal (a query's key columns unless --columns is given).
    #[default]
    Table,
    /// One JSON array of the rows as the service sent them.
    Json,
    /// One JSON object per line, written as pages arrive.
    Jsonl,
    /// CSV from the same typed columns as parquet: the entity's documented columns first (nested objects as dotted
    /// names), times in UTC RFC 3339, lists of strings and of objects as JSON. Flat memory however many rows.
    Csv,
    /// Tab-separated values, the same columns and cells as CSV.
    Tsv,
    /// Parquet (zstd) with a typed schema: timestamps in UTC, enums as dictionaries, nested objects as dotted
    /// columns, lists of objects as JSON text. Written as pages arrive; to --out, or stdout when it is not a terminal.
    Parquet,
    /// An Arrow IPC stream with the same schema as parquet (for DuckDB, polars, pyarrow).
    Arrow,
    /// A YAML list of the rows as the service sent them (as `az -o yaml`), written as pages arrive.
    Yaml,
}

#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Columns to show (table and csv), comma-separated dotted names; 'all' for every column.
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Table: every column, every cell whole and times as sent (no fitting to the terminal's width).
    #[arg(long)]
    pub wide: bool,
    /// A JMESPath expression applied to each row before output (as `az --query`), e.g.
    /// "{id: id, sev: severity, device: evidence[?deviceDnsName].deviceDnsName | [0]}". A row for which it gives
    /// null is left out; a value that is not an object becomes a 'value' column.
    #[arg(long = "query", value_name = "JMESPATH")]
    pub jmespath: Option<String>,
    /// Stop after this many rows (no further pages are fetched). Graph's `$top` sets the page size, not a total.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// No progress line and no summary on stderr (the progress line is shown only when stderr is a terminal).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Across tenants: also write the per-tenant status (tenant, name, rows, pages, retries, budget wait, error) to
    /// FILE — CSV when it ends in .csv, else JSON.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// Across tenants, any failed tenant fails the run (set from the global --strict-tenants).
    #[arg(skip)]
    pub strict: bool,
}

/// A progress line on stderr (pages, rows, rows/s, retries; rows per tenant in a fan-out) while rows flow into the
/// real sink; hidden when stderr is not a terminal or with --quiet.
struct Progress<'a> {
    inner: &'a mut dyn RowSink,
    bar: Option<indicatif::ProgressBar>,
    rows: u64,
    pages: u64,
    started: std::time::Instant,
    /// The connections whose retries are counted.
    providers: Vec<QueryProvider>,
    /// Rows per instance, in the order given (a fan-out's rows carry their `Instance`).
    tenants: Vec<(String, u64)>,
}

impl<'a> Progress<'a> {
    fn new(inner: &'a mut dyn RowSink, quiet: bool, providers: Vec<QueryProvider>, instances: Vec<String>) -> Progress<'a> {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        });
        Progress {
            inner,
            bar,
            rows: 0,
            pages: 0,
            started: std::time::Instant::now(),
            providers,
            tenants: instances.into_iter().map(|i| (i, 0)).collect(),
        }
    }

    /// The line as it stands.
    fn message(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut line = format!(
            "{} page(s), {} row(s), {:.0} rows/s",
            self.pages,
            self.rows,
            self.rows as f64 / secs
        );
        let retries: usize = self.providers.iter().map(QueryProvider::retries).sum();
        if retries > 0 {
            line.push_str(&format!(", {retries} retried request(s)"));
        }
        line.push_str(&budget_note(&self.providers));
        for (name, rows) in &self.tenants {
            line.push_str(&format!(" · {name} {rows}"));
        }
        line
    }
}

/// The `Instance` a fan-out put at the front of a row (`{"TenantId":"…","Instance":"…",…}`); `None` for any other
/// row. Reads only the front of the row.
fn row_instance(row: &secgraph::Row) -> Option<String> {
    let rest = row.json().strip_prefix("{\"TenantId\":")?;
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    values.next()?.ok()?;
    let rest = rest[values.byte_offset()..].strip_prefix(",\"Instance\":")?;
    serde_json::Deserializer::from_str(rest).into_iter::<String>().next()?.ok()
}

impl RowSink for Progress<'_> {
    fn columns(&mut self, declared: &[(String, String)]) {
        self.inner.columns(declared);
    }
    fn page(&mut self, rows: Vec<secgraph::Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        self.pages += 1;
        self.rows += rows.len() as u64;
        if self.bar.is_some() {
            if !self.tenants.is_empty()
                && let Some(instance) = rows.first().and_then(row_instance)
                && let Some(t) = self.tenants.iter_mut().find(|(n, _)| *n == instance)
            {
                // A fan-out delivers each page from one tenant.
                t.1 += rows.len() as u64;
            }
            let line = self.message();
            if let Some(b) = &self.bar {
                b.set_message(line);
            }
        }
        self.inner.page(rows)
    }
    fn finish(&mut self) -> secgraph::Result<()> {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        self.inner.finish()
    }
}

fn writer(out: &Option<PathBuf>) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match out {
        // Large writes: a JSON lines export is hundreds of MB, and each write call costs a system call.
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).map_err(|e| secgraph::Error::output_from(format!("cannot create {}", p.display()), e))?,
        )),
        None => Box::new(BufWriter::with_capacity(256 * 1024, std::io::stdout())),
    })
}

/// Where a binary format goes: the --out file, or stdout when it is not a terminal.
fn destination(out: &Option<PathBuf>) -> anyhow::Result<Destination> {
    Ok(match out {
        Some(p) => Destination::Path(p.clone()),
        None if std::io::stdout().is_terminal() => anyhow::bail!(secgraph::Error::output(
            "binary output is not written to a terminal: give --out FILE, or redirect stdout"
        )),
        None => Destination::Writer(Box::new(BufWriter::with_capacity(256 * 1024, std::io::stdout()))),
    })
}

/// What to run: one query, a query split into time slices, or one query across several tenants.
pub enum Run<'a> {
    /// One query on one connection.
    Single(&'a QueryProvider),
    /// A named query as time slices (`--split-by`, `--parallel`).
    Split {
        provider: &'a QueryProvider,
        name: String,
        params: Vec<(String, String)>,
        range: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
        slice: chrono::Duration,
        parallel: usize,
    },
    /// One query on several tenants (`--instance A,B`, `--all-instances`, `--tenants FILE`), each signed in to as it
    /// gets its place; with `--split-by`, every tenant reads these slices, this many at once.
    FanOut(Box<secgraph::fanout::Tenants>, Option<(Vec<RenderedQuery>, usize)>),
}

impl Run<'_> {
    /// The connections the run uses (handles: clones share their budgets and counters).
    fn providers(&self) -> Vec<QueryProvider> {
        match self {
            Run::Single(p) | Run::Split { provider: p, .. } => vec![(*p).clone()],
            Run::FanOut(..) => vec![],
        }
    }
}

/// ", waited 12 s for the request budget" when requests were held back long enough to notice, else nothing.
fn budget_note(providers: &[QueryProvider]) -> String {
    budget_note_of(providers.iter().map(QueryProvider::budget_waited).sum())
}

fn budget_note_of(waited: std::time::Duration) -> String {
    if waited >= std::time::Duration::from_secs(1) {
        format!(", waited {:.0} s for the request budget", waited.as_secs_f64())
    } else {
        String::new()
    }
}

/// The tenants a progress line counts rows for: a few instances by name; none for a tenants file's many tenants
/// (their rows all carry one instance) or more than eight.
fn progress_names(tenants: &secgraph::fanout::Tenants) -> Vec<String> {
    let targets: Vec<&secgraph::fanout::Target> = match tenants {
        secgraph::fanout::Tenants::Connected(v) => v.iter().map(|(t, _)| t).collect(),
        secgraph::fanout::Tenants::SignIn { targets, .. } => targets.iter().collect(),
    };
    if targets.len() > 8 || targets.iter().any(|t| t.tenant.is_some()) {
        return vec![];
    }
    targets.iter().map(|t| t.instance.clone()).collect()
}

/// Some tenants failed while the others' rows were delivered (exit code 8).
#[derive(Debug)]
pub struct Partial(pub String);

impl std::fmt::Display for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Partial {}

/// Rows reshaped by a JMESPath expression (`--query`) on their way to the real sink.
struct Projected<'a> {
    inner: &'a mut dyn RowSink,
    expr: &'a jmespath::Expression<'static>,
}

impl RowSink for Projected<'_> {
    fn page(&mut self, rows: Vec<secgraph::Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let found = self
                .expr
                .search(row.to_value())
                .map_err(|e| secgraph::Error::output(jmespath_error(&e)))?;
            let value = serde_json::to_value(&*found).map_err(|e| secgraph::Error::output_from("--query", e))?;
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::Object(_) => out.push(secgraph::Row::from_value(&value)),
                other => out.push(secgraph::Row::from_value(&serde_json::json!({ "value": other }))),
            }
        }
        self.inner.page(out)
    }

    // The reply's declared columns describe the rows before the expression reshaped them: not passed on.

    fn finish(&mut self) -> secgraph::Result<()> {
        self.inner.finish()
    }
}

/// One line about a JMESPath error: what, and where in the expression.
fn jmespath_error(e: &jmespath::JmespathError) -> String {
    format!(
        "--query: {} at character {} of '{}'",
        e.reason,
        e.offset + 1,
        e.expression.chars().take(200).collect::<String>().replace(char::is_control, " ")
    )
}

/// Compiles `--query`, or says what is wrong with it.
fn compile_jmespath(args: &OutputArgs) -> anyhow::Result<Option<jmespath::Expression<'static>>> {
    args.jmespath
        .as_deref()
        .map(|e| jmespath::compile(e).map_err(|err| crate::UsageError(jmespath_error(&err)).into()))
        .transpose()
}

async fn drive(
    run: Run<'_>,
    query: &RenderedQuery,
    sink: &mut dyn RowSink,
    args: &OutputArgs,
) -> anyhow::Result<(PageSummary, Option<FanOutSummary>)> {
    let expr = compile_jmespath(args)?;
    let mut projected;
    let sink: &mut dyn RowSink = match &expr {
        Some(expr) => {
            projected = Projected { inner: sink, expr };
            &mut projected
        }
        None => sink,
    };
    let (providers, instances) = match &run {
        Run::Single(p) => (vec![(*p).clone()], vec![]),
        Run::Split { provider, .. } => (vec![(*provider).clone()], vec![]),
        Run::FanOut(tenants, _) => (vec![], progress_names(tenants)),
    };
    let mut progress = Progress::new(sink, args.quiet, providers, instances);
    let sink: &mut dyn RowSink = &mut progress;
    Ok(match run {
        Run::Single(p) => (p.run_rendered(query, sink).await?, None),
        Run::Split {
            provider,
            name,
            params,
            range,
            slice,
            parallel,
        } => {
            let mut s = provider.run_split(&name, &params, range, slice, parallel, sink).await?;
            if let Some(max) = query.max_rows {
                s.rows = s.rows.min(max);
            }
            (s, None)
        }
        Run::FanOut(providers, split) => {
            let f = match split {
                None => secgraph::fanout::fan_out(*providers, query, sink).await?,
                Some((slices, parallel)) => {
                    let pages = move |p: &QueryProvider| Ok(p.slice_pages(slices.clone(), parallel));
                    secgraph::fanout::fan_out_pages(*providers, pages, sink).await?
                }
            };
            let mut s = PageSummary::default();
            s.rows = f.rows();
            s.pages = f.pages();
            (s, Some(f))
        }
    })
}

/// The typed columns every format but JSON is built from: the query's entity columns, or, for rows reshaped by
/// --query (which no longer have the entity's shape), columns as the data brings them.
fn builder(query: &RenderedQuery, args: &OutputArgs) -> secgraph::batches::BatchBuilder {
    match args.jmespath {
        None => QueryProvider::batch_builder(query),
        Some(_) => secgraph::batches::BatchBuilder::new(&[]),
    }
}

/// Runs the query into the sink the format needs, then writes what remains to write.
pub async fn run_to_output(run: Run<'_>, query: &RenderedQuery, args: &OutputArgs, default_columns: &[String]) -> anyhow::Result<()> {
    let limited;
    let query = match args.limit {
        None => query,
        Some(n) => {
            limited = RenderedQuery {
                max_rows: Some(query.max_rows.map_or(n, |m| m.min(n))),
                ..query.clone()
            };
            &limited
        }
    };
    let providers = run.providers();
    let (summary, fanout) = match args.format {
        Format::Jsonl => drive(run, query, &mut JsonLinesSink::new(writer(&args.out)?), args).await?,
        // Indented for a person at a terminal; into a file or a pipe, each item as the service sent it.
        Format::Json if args.out.is_none() && std::io::stdout().is_terminal() => {
            drive(run, query, &mut JsonArraySink::pretty(writer(&args.out)?), args).await?
        }
        Format::Json => drive(run, query, &mut JsonArraySink::new(writer(&args.out)?), args).await?,
        Format::Yaml => drive(run, query, &mut YamlSink::new(writer(&args.out)?), args).await?,
        Format::Csv | Format::Tsv => {
            // Streams through a spill file: flat memory however many rows.
            let wanted: Vec<String> = args.columns.iter().filter(|c| *c != "all").cloned().collect();
            let delimiter = if args.format == Format::Tsv { b'\t' } else { b',' };
            let mut sink = CsvSink::new(writer(&args.out)?, builder(query, args), wanted)?.with_delimiter(delimiter);
            drive(run, query, &mut sink, args).await?
        }
        Format::Parquet | Format::Arrow => {
            let format = if args.format == Format::Parquet {
                FileFormat::Parquet
            } else {
                FileFormat::ArrowStream
            };
            let mut sink = ArrowFileSink::new(format, builder(query, args), destination(&args.out)?)?;
            drive(run, query, &mut sink, args).await?
        }
        Format::Table => {
            let mut table = Table::with_builder(builder(query, args));
            let done = drive(run, query, &mut table, args).await?;
            // Rows reshaped by --query have their own columns: all of them are shown.
            let mut defaults = if args.jmespath.is_some() {
                vec![]
            } else {
                default_columns.to_vec()
            };
            if done.1.is_some() && !defaults.is_empty() {
                defaults.insert(0, "Instance".into());
            }
            let asked: Vec<String> = if args.wide && args.columns.is_empty() {
                vec!["all".into()]
            } else {
                args.columns.clone()
            };
            let cols = choose_columns(&table, &asked, &defaults)?;
            let mut w = writer(&args.out)?;
            crate::table::write(&mut w, &table, &cols, table_style(args)).map_err(|e| secgraph::Error::output_from("", e))?;
            w.flush().map_err(|e| secgraph::Error::output_from("", e))?;
            done
        }
    };
    if !args.quiet {
        eprintln!(
            "{} row(s) in {} page(s){}{}{}",
            summary.rows,
            summary.pages,
            match summary.duplicates {
                0 => String::new(),
                n => format!(" ({n} item(s) the service sent twice were dropped)"),
            },
            match &fanout {
                Some(f) => budget_note_of(f.tenants.iter().map(|t| t.budget_waited).sum()),
                None => budget_note(&providers),
            },
            args.out
                .as_ref()
                .map(|p| format!(", written to {}", p.display()))
                .unwrap_or_default()
        );
    }
    if let Some(f) = fanout {
        if !args.quiet {
            for t in &f.tenants {
                let waited = match t.budget_waited.as_secs_f64() {
                    w if w >= 0.1 => format!(", waited {w:.1} s for the budget"),
                    _ => String::new(),
                };
                let retries = match t.retries {
                    0 => String::new(),
                    n => format!(", {n} retried"),
                };
                match &t.result {
                    Ok(s) => eprintln!("  {}: {} row(s) in {} page(s){retries}{waited}", t.name, s.rows, s.pages),
                    Err(e) => eprintln!("  {}: FAILED: {e}", t.name),
                }
            }
        }
        if let Some(path) = &args.summary {
            write_status(path, &f)?;
        }
        let failed: Vec<String> = f.failures().map(|(i, _)| i.to_string()).collect();
        if args.strict && !failed.is_empty() {
            let n = failed.len();
            let total = f.tenants.len();
            let names = failed.join(", ");
            if let Some(e) = f.tenants.into_iter().find_map(|t| t.result.err()) {
                return Err(anyhow::Error::new(e).context(format!(
                    "--strict-tenants: {n} of {total} tenant(s) failed ({names}); the first error"
                )));
            }
            return Ok(());
        }
        if f.is_partial() {
            anyhow::bail!(Partial(format!(
                "partial result: {} of {} tenant(s) failed ({}); the others' rows were written",
                failed.len(),
                f.tenants.len(),
                failed.join(", ")
            )));
        }
        if let Some(e) = f.tenants.into_iter().find_map(|t| t.result.err()) {
            return Err(anyhow::Error::new(e).context("every tenant failed; the first error"));
        }
    }
    Ok(())
}

/// Writes the status table to `path`: CSV when it ends in `.csv`, else a JSON array.
fn write_status(path: &std::path::Path, f: &FanOutSummary) -> anyhow::Result<()> {
    let status = f.status();
    let bytes = if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")) {
        let csv_err = |e: csv::Error| secgraph::Error::output_from("status CSV", e);
        let mut w = csv::Writer::from_writer(Vec::new());
        for s in &status {
            w.serialize(s).map_err(csv_err)?;
        }
        w.into_inner()
            .map_err(|e| secgraph::Error::output_from("status CSV", e.into_error()))?
    } else {
        serde_json::to_vec_pretty(&status)?
    };
    std::fs::write(path, bytes).map_err(|e| secgraph::Error::output_from(format!("cannot write {}", path.display()), e))?;
    Ok(())
}

fn choose_columns(table: &Table, asked: &[String], defaults: &[String]) -> anyhow::Result<Vec<usize>> {
    if asked.iter().any(|c| c == "all") || (asked.is_empty() && defaults.is_empty()) {
        return Ok((0..table.column_names().len()).collect());
    }
    if asked.is_empty() {
        let v: Vec<usize> = defaults.iter().filter_map(|c| table.column(c)).collect();
        return Ok(if v.is_empty() {
            (0..table.column_names().len()).collect()
        } else {
            v
        });
    }
    let mut v = Vec::new();
    for c in asked {
        match table.column(c) {
            Some(i) => v.push(i),
            None if table.is_empty() => {}
            None => anyhow::bail!(secgraph::Error::Query {
                message: format!("no column '{c}' in the results; columns: {}", table.column_names().join(", "))
            }),
        }
    }
    Ok(v)
}

/// The table's style: fitted and coloured for a terminal stdout, natural widths and no colour into a file.
fn table_style(args: &OutputArgs) -> crate::table::Style {
    match args.out {
        Some(_) => crate::table::Style {
            width: None,
            color: false,
            wide: args.wide,
        },
        None => crate::table::Style::for_stdout(args.wide),
    }
}

/// Rows as a YAML list, one page at a time (`[]` when there are none).
struct YamlSink {
    out: Box<dyn Write + Send>,
    rows: u64,
}

impl YamlSink {
    fn new(out: Box<dyn Write + Send>) -> YamlSink {
        YamlSink { out, rows: 0 }
    }
}

impl RowSink for YamlSink {
    fn page(&mut self, rows: Vec<secgraph::Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        if rows.is_empty() {
            return Ok(std::ops::ControlFlow::Continue(()));
        }
        let values: Vec<serde_json::Value> = rows.iter().map(secgraph::Row::to_value).collect();
        let text = serde_saphyr::to_string(&values).map_err(|e| secgraph::Error::output_from("YAML", e))?;
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| secgraph::Error::output_from("", e))?;
        self.rows += values.len() as u64;
        Ok(std::ops::ControlFlow::Continue(()))
    }

    fn finish(&mut self) -> secgraph::Result<()> {
        if self.rows == 0 {
            self.out.write_all(b"[]\n").map_err(|e| secgraph::Error::output_from("", e))?;
        }
        self.out.flush().map_err(|e| secgraph::Error::output_from("", e))
    }
}

pub fn print_connection(info: &ConnectionInfo) {
    println!("connected");
    if let Some(s) = &info.settings {
        println!("  settings:    {s}");
    }
    println!("  from:        {}", info.source);
    println!("  tenant:      {}", info.tenant_id);
    println!(
        "  app:         {}{}",
        info.client_id,
        info.app_name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
    );
    println!("  sign-in:     {}", info.auth.describe());
    if let Some(a) = &info.account {
        println!("  account:     {a}");
    }
    println!("  cloud:       {} (authority {})", info.cloud, info.authority);
    println!("  graph:       {}", info.graph_root);
    println!("  scope:       {}", info.scope);
    if !info.roles.is_empty() {
        println!("  roles:       {}", info.roles.join(", "));
    } else if info.scopes.is_empty() {
        println!("  roles:       (none granted: Graph will answer 403 until an admin consents)");
    }
    if !info.scopes.is_empty() {
        println!("  scopes:      {}", info.scopes.join(" "));
    }
    println!("  token valid until {}", info.token_expires_on.format("%Y-%m-%d %H:%M:%S UTC"));
}

pub fn print_query_list(store: &QueryStore, filter: Option<&str>) {
    let f = filter.map(str::to_lowercase);
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(["query", "parameters", "description"]);
    // A name is what the next command needs: never broken; the description wraps instead.
    if let Some(c) = t.column_mut(0) {
        c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
    }
    // Current families first; msticpy's legacy-alert queries (their API was retired in 2026) last, marked.
    let retired = |q: &&secgraph::query::QueryTemplate| q.family == "SecurityGraphAlert";
    let (old, current): (Vec<_>, Vec<_>) = store.all().iter().partition(retired);
    for q in current.into_iter().chain(old) {
        let full = if q.family == "SecurityGraphAlert" {
            format!("{} (retired API)", q.full_name())
        } else {
            q.full_name()
        };
        if let Some(f) = &f
            && !full.to_lowercase().contains(f)
            && !q.description.to_lowercase().contains(f)
            && !q.tags.iter().any(|t| t.to_lowercase().contains(f))
        {
            continue;
        }
        let params: Vec<String> = q
            .parameters
            .iter()
            .filter(|p| p.name != "path" || q.language == secgraph::query::Language::Kql)
            .map(|p| if p.required() { format!("{}*", p.name) } else { p.name.clone() })
            .collect();
        t.add_row([full, params.join(" "), q.description.lines().next().unwrap_or("").to_string()]);
    }
    println!("{t}");
    println!("* required. Run: secgraph query NAME [--start T] [--end T] [-p name=value]...");
}

/// One item (an update's result, from the collection at `path`) in the chosen format.
pub fn print_item(item: &serde_json::Value, path: &str, args: &OutputArgs) -> anyhow::Result<()> {
    let builder = || secgraph::batches::BatchBuilder::for_path(path);
    if matches!(args.format, Format::Parquet | Format::Arrow) {
        let format = if args.format == Format::Parquet {
            FileFormat::Parquet
        } else {
            FileFormat::ArrowStream
        };
        let mut sink = ArrowFileSink::new(format, builder(), destination(&args.out)?)?;
        let _ = sink.page(vec![secgraph::Row::from_value(item)])?;
        sink.finish()?;
        return Ok(());
    }
    let mut w = writer(&args.out)?;
    let io = |e: std::io::Error| secgraph::Error::output_from("", e);
    match args.format {
        Format::Json | Format::Jsonl => {
            serde_json::to_writer_pretty(&mut w, item).map_err(|e| secgraph::Error::output_from("", e))?;
            writeln!(w).map_err(io)?;
        }
        Format::Table | Format::Csv | Format::Tsv => {
            let mut t = Table::with_builder(builder());
            t.push(item);
            let cols = choose_columns(
                &t,
                &args.columns,
                &[
                    "id".into(),
                    "status".into(),
                    "classification".into(),
                    "determination".into(),
                    "assignedTo".into(),
                    "lastUpdateDateTime".into(),
                ],
            )?;
            if args.format == Format::Table {
                crate::table::write(&mut w, &t, &cols, table_style(args)).map_err(io)?;
            } else {
                let names = cols.iter().map(|i| t.column_names()[*i].clone()).collect();
                let delimiter = if args.format == Format::Tsv { b'\t' } else { b',' };
                let mut sink = CsvSink::new(&mut w, builder(), names)?.with_delimiter(delimiter);
                let _ = sink.page(vec![secgraph::Row::from_value(item)])?;
                sink.finish()?;
            }
        }
        Format::Yaml => {
            let text = serde_saphyr::to_string(item).map_err(|e| secgraph::Error::output_from("YAML", e))?;
            w.write_all(text.as_bytes()).map_err(io)?;
        }
        Format::Parquet | Format::Arrow => unreachable!("written above"),
    }
    w.flush().map_err(io)?;
    Ok(())
}

/// `queries show`: description, parameters and the request rendered with example values.
pub fn print_query(q: &QueryTemplate) -> anyhow::Result<()> {
    println!("{}  ({})", q.full_name(), q.origin);
    println!();
    for line in q.description.lines() {
        println!("  {line}");
    }
    if !q.tags.is_empty() {
        println!("  tags: {}", q.tags.join(", "));
    }
    println!();
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t.set_header(["parameter", "type", "default", "aliases", "description"]);
    let mut examples = Vec::new();
    for p in &q.parameters {
        let default = match &p.default {
            None => "(required)".to_string(),
            Some(serde_json::Value::String(s)) if s.is_empty() => "''".to_string(),
            Some(v) => secgraph::output::cell_text(v),
        };
        t.add_row([
            p.name.clone(),
            p.kind.name().to_string(),
            default,
            p.aliases.join(", "),
            match p.allowed.as_slice() {
                [] => p.description.clone(),
                values => format!("{} (one of: {})", p.description, values.join(", ")),
            },
        ]);
        if p.required() {
            examples.push((p.name.clone(), example_value(p)));
        }
    }
    println!("{t}");
    let shown: Vec<String> = examples.iter().map(|(k, v)| format!("-p {k}={v}")).collect();
    println!();
    println!("Example: secgraph query {} {}", q.full_name(), shown.join(" "));
    match q.render(&examples, chrono::Utc::now()) {
        Ok(rendered) if rendered.language == secgraph::query::Language::Kql => {
            // KQL as a person reads it, one operator a line, not as an escaped JSON string.
            match &rendered.timespan {
                Some(t) => println!("  POST /security/runHuntingQuery (Timespan {t})"),
                None => println!("  POST /security/runHuntingQuery"),
            }
            for line in kql_lines(&rendered.text) {
                println!("    {line}");
            }
        }
        Ok(rendered) => println!("  {}", rendered.describe()),
        Err(e) => println!("  ({e})"),
    }
    Ok(())
}

/// KQL split before each top-level `|` (not inside a string literal), unless it already has its own lines.
fn kql_lines(text: &str) -> Vec<String> {
    if text.contains('\n') {
        return text.lines().map(|l| l.trim_end().to_string()).filter(|l| !l.is_empty()).collect();
    }
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (None, '|') => {
                lines.push(cur.trim().to_string());
                cur = String::from("|");
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    lines.push(cur.trim().to_string());
    lines.retain(|l| !l.is_empty());
    lines
}

fn example_value(p: &secgraph::query::Parameter) -> String {
    use secgraph::query::ParamType;
    match p.kind {
        ParamType::Datetime => "-1d".into(),
        ParamType::Int => "10".into(),
        ParamType::Float => "1.5".into(),
        ParamType::Bool => "true".into(),
        ParamType::List => "a,b".into(),
        _ => match p.name.as_str() {
            n if n.contains("ip") => "203.0.113.5".into(),
            n if n.contains("host") => "ws-fin-100".into(),
            n if n.contains("user") || n.contains("upn") || n.contains("account") => "alex.walker@contoso-demo.onmicrosoft.com".into(),
            n if n.contains("hash") => "5f1e8acedc065031aad553b710838eb366cfee9a".into(),
            n if n.contains("file") => "mimikatz.exe".into(),
            "query" => "AlertInfo | take 10".into(),
            _ => "example".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kql_reads_one_operator_a_line() {
        assert_eq!(
            kql_lines(r#"T | where A == "x | y" | take 5"#),
            ["T", r#"| where A == "x | y""#, "| take 5"]
        );
        assert_eq!(kql_lines("T\n| take 5\n"), ["T", "| take 5"]);
    }

    #[test]
    fn the_progress_line_reads_the_instance_a_fan_out_put_on_a_row() {
        let row = secgraph::Row::from_json(r#"{"id":"a","Instance":"not this one"}"#).unwrap();
        let tagged = secgraph::fanout::tag_row(&row, "t-1", "Contoso \"EU\"");
        assert_eq!(row_instance(&tagged).as_deref(), Some("Contoso \"EU\""));
        assert_eq!(row_instance(&row), None, "an untagged row has no instance in front");
    }
}
