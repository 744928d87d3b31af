//! Incremental export: every version of every alert and incident, once, into a hive-partitioned Parquet dataset.
//!
//! Layout under the dataset root:
//!
//! ```text
//! ROOT/stream=alerts_v2/tenant=<tenantId>/date=<YYYY-MM-DD>/part-<shard>-<run>.parquet
//! ROOT/stream=incidents/tenant=<tenantId>/date=<YYYY-MM-DD>/part-<shard>-<run>.parquet
//! ROOT/_checkpoints/stream=<stream>/tenant=<tenantId>.json
//! ROOT/current/stream=<stream>/tenant=<tenantId>/part-0.parquet      (written by `compact`)
//! ```
//!
//! A row is one *version*: an item's id and its `lastUpdateDateTime`; `date=` is that time's UTC date.
//!
//! **Reading correctly.** Each run asks for `lastUpdateDateTime ge W` (no `$orderby`: Graph's skip token is then a
//! cursor, so an item updated mid-run is read once, at its old place, or again by the next run) and pages to the end.
//! The next watermark is the newest time seen, but never later than the run's start minus an overlap (default 5
//! minutes): whatever changed while the run was reading is read again next time. The checkpoint keeps every version
//! stored at or after the watermark, so those re-reads — and ties at the watermark's instant — are recognised and not
//! stored twice.
//!
//! **Crash safety.** A run writes its files as `….parquet.pending` (each under a temporary name first, renamed when
//! whole), then replaces the checkpoint (new watermark, versions, and the list of pending files) atomically, then
//! renames the pending files to `.parquet`, then clears the list. A run that starts finds the state of the last one:
//! pending files the checkpoint lists are renamed (the run had committed), any others are deleted (it had not), and
//! so a process killed at any moment and run again gives the same dataset as an uninterrupted run.
//!
//! **When Graph struggles.** A page that still fails with HTTP 500 or 504 after the client's retries makes the run
//! start the pass again with half the page size (down to 10), keeping what it had read; the report says so.
//!
//! **Sharding.** [`shard_of`] assigns a tenant to one of N shards by a stable hash of its id: N processes with
//! `--shard K/N` split the tenants with no coordination; file names carry the shard.
//!
//! **Where.** The root is a local folder or an object store ([`Root`]: Azure Blob, S3, GCS); the same steps hold on
//! both (see [`root`] for how each operation maps).

pub mod root;
pub use root::Root;

use crate::batches::BatchBuilder;
use crate::error::{Error, Result};
use crate::output::{ArrowFileSink, Destination, FileFormat, RowSink};
use crate::provider::QueryProvider;
use crate::query::{Language, RenderedQuery};
use crate::row::Row;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// What is exported.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stream {
    /// `/security/alerts_v2`.
    AlertsV2,
    /// `/security/incidents` with their alerts (`$expand=alerts`).
    Incidents,
    /// A named advanced-hunting query (`Family.name`, run with its defaults) whose rows have a `Timestamp`: each row
    /// is stored once, keyed by its content and time; the watermark follows `Timestamp`.
    Hunting(String),
}

/// Advanced hunting's data reaches the tables minutes after its `Timestamp`: a hunting stream's watermark stays at
/// least this far behind a run's start, whatever `--overlap` says.
const HUNTING_OVERLAP_MINUTES: i64 = 30;

impl Stream {
    /// The alert and incident streams.
    pub const ALL: [Stream; 2] = [Stream::AlertsV2, Stream::Incidents];

    /// The name used in paths (`alerts_v2`, `incidents`, `hunting.Family.name`).
    pub fn name(&self) -> String {
        match self {
            Stream::AlertsV2 => "alerts_v2".into(),
            Stream::Incidents => "incidents".into(),
            Stream::Hunting(q) => format!("hunting.{q}"),
        }
    }

    /// A stream by name: `alerts_v2`, `incidents`, or `hunting:Family.name` / `hunting.Family.name`.
    pub fn parse(name: &str) -> Option<Stream> {
        let name = name.trim();
        if let Some(q) = name.strip_prefix("hunting:").or_else(|| name.strip_prefix("hunting.")) {
            return (q.contains('.') && !q.contains('/')).then(|| Stream::Hunting(q.to_string()));
        }
        Stream::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// The request for a window `[from, to)` (either end open; `started` closes an open end for hunting).
    fn request(
        &self,
        provider: &QueryProvider,
        from: Option<&str>,
        to: Option<&str>,
        top: usize,
        started: DateTime<Utc>,
    ) -> Result<RenderedQuery> {
        let Stream::Hunting(name) = self else {
            return Ok(RenderedQuery {
                name: format!("export {}", self.name()),
                language: Language::OData,
                text: self.path(from, to, top),
                timespan: None,
                max_rows: None,
                match_evidence: None,
            });
        };
        let mut q = provider.render(name, &[])?;
        if q.language != Language::Kql {
            return Err(Error::Query {
                message: format!("{name} is not an advanced-hunting (KQL) query; only those can be exported as hunting streams"),
            });
        }
        // Hunting keeps 30 days: a first run without `--since` starts there.
        let from = from
            .map(str::to_string)
            .unwrap_or_else(|| graph_time(started - chrono::Duration::days(30)));
        let to = to.map(str::to_string).unwrap_or_else(|| graph_time(started));
        q.timespan = Some(format!("{from}/{to}"));
        q.max_rows = None;
        Ok(q)
    }

    /// A row's identity and time: an item's `id` and `lastUpdateDateTime`; a hunting row's content hash and
    /// `Timestamp`.
    fn version<'r>(&self, row: &'r Row) -> Option<(Cow<'r, str>, Cow<'r, str>)> {
        match self {
            Stream::Hunting(_) => {
                #[derive(Deserialize)]
                struct T<'a> {
                    #[serde(borrow, rename = "Timestamp")]
                    ts: Option<Cow<'a, str>>,
                }
                let t: T<'_> = serde_json::from_str(row.json()).ok()?;
                use sha2::Digest;
                let digest = sha2::Sha256::digest(row.json().as_bytes());
                let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                Some((Cow::Owned(id), t.ts?))
            }
            _ => version(row),
        }
    }

    /// The request for versions updated in `[from, to)` (either end open).
    fn path(&self, from: Option<&str>, to: Option<&str>, top: usize) -> String {
        let terms: Vec<String> = from
            .map(|w| format!("lastUpdateDateTime ge {w}"))
            .into_iter()
            .chain(to.map(|t| format!("lastUpdateDateTime lt {t}")))
            .collect();
        let filter = if terms.is_empty() {
            String::new()
        } else {
            format!("$filter={}&", terms.join(" and "))
        };
        match self {
            Stream::Incidents => format!("/security/incidents?{filter}$expand=alerts&$top={}", top.min(50)),
            _ => format!("/security/alerts_v2?{filter}$top={top}"),
        }
    }
}

/// How an export runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportOptions {
    /// The dataset root: a local folder or an object store.
    pub root: Root,
    /// How far before the run's start the next watermark may be at most.
    pub overlap: chrono::Duration,
    /// Page size asked for (`$top`; incidents at most 50).
    pub page_size: usize,
    /// This process's shard, `(k, n)`; file names carry `k`.
    pub shard: (u32, u32),
    /// Where a (tenant, stream) with no checkpoint yet starts: versions updated at or after this time (default:
    /// everything the tenant has).
    pub since: Option<DateTime<Utc>>,
}

impl ExportOptions {
    /// Defaults for a local folder: 5 minutes of overlap, pages of 1,000, one shard.
    pub fn new(root: impl Into<PathBuf>) -> ExportOptions {
        ExportOptions::with_root(Root::local(root))
    }

    /// The same defaults for any root.
    pub fn with_root(root: Root) -> ExportOptions {
        ExportOptions {
            root,
            overlap: chrono::Duration::minutes(5),
            page_size: 1000,
            shard: (0, 1),
            since: None,
        }
    }
}

/// The shard (0..n) a tenant belongs to: FNV-1a of its id, lowercased, modulo `n`. Stable across versions and
/// machines.
///
/// ```
/// assert_eq!(secgraph::export::shard_of("8F3B9A52-6C1D-4E2F-9A7B-0C5D3E1F2A4B", 4),
///            secgraph::export::shard_of("8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b", 4));
/// ```
pub fn shard_of(tenant_id: &str, n: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant_id.trim().to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(n.max(1))) as u32
}

/// The checkpoint of one (tenant, stream).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Checkpoint {
    /// The next run reads `lastUpdateDateTime ge watermark`.
    watermark: Option<String>,
    /// Versions stored whose time is at or after the watermark: `[id, lastUpdateDateTime]`.
    stored: BTreeSet<(String, String)>,
    /// Files of a committed run not yet renamed from `.pending` (relative to the root).
    pending: Vec<String>,
    /// Runs committed so far.
    runs: u64,
}

/// What one (tenant, stream) run did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StreamReport {
    /// The instance name.
    pub instance: String,
    /// The tenant id.
    pub tenant_id: String,
    /// The stream's name.
    pub stream: String,
    /// Versions stored by this run.
    pub new_versions: usize,
    /// Items read that were already stored (re-reads at the overlap, ties, repeats).
    pub already_stored: usize,
    /// Pages read.
    pub pages: usize,
    /// Passes started again with a smaller page after HTTP 500/504.
    pub shrinks: usize,
    /// Time windows split in two because even the smallest pages kept failing with HTTP 500/504.
    pub splits: usize,
    /// The page size the run ended with.
    pub page_size: usize,
    /// The watermark before and after.
    pub watermark_before: Option<String>,
    /// The watermark the next run starts from.
    pub watermark_after: Option<String>,
    /// Files written (relative to the root).
    pub files: Vec<String>,
    /// Why the run failed, if it did (nothing of it was committed then).
    pub error: Option<String>,
}

impl StreamReport {
    /// An empty report for a stream of an instance (the caller sets `error` for one that could not run at all, as
    /// when its tenant did not connect).
    pub fn failed(instance: &str, stream: &Stream) -> StreamReport {
        StreamReport {
            instance: instance.to_string(),
            tenant_id: String::new(),
            stream: stream.name(),
            new_versions: 0,
            already_stored: 0,
            pages: 0,
            shrinks: 0,
            splits: 0,
            page_size: 0,
            watermark_before: None,
            watermark_after: None,
            files: Vec::new(),
            error: None,
        }
    }
}

fn checkpoint_path(stream: &Stream, tenant: &str) -> String {
    format!("_checkpoints/stream={}/tenant={tenant}.json", stream.name())
}

async fn load_checkpoint(root: &Root, rel: &str) -> Result<Checkpoint> {
    match root.get(rel).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::Output(format!(
                "the checkpoint {} is not readable ({e}); move it away to start over",
                root.show(rel)
            ))
        }),
        None => Ok(Checkpoint::default()),
    }
}

/// Replaces the checkpoint atomically (see [`Root`]).
async fn save_checkpoint(root: &Root, rel: &str, cp: &Checkpoint) -> Result<()> {
    let text = serde_json::to_vec_pretty(cp).map_err(|e| Error::Output(format!("checkpoint: {e}")))?;
    root.put(rel, text).await
}

/// Puts the (tenant, stream) folder in the state its checkpoint describes: listed pending files renamed (their run
/// had committed), other pending files and temporary files deleted (theirs had not).
async fn recover(root: &Root, stream: &Stream, tenant: &str, cp_rel: &str, cp: &mut Checkpoint) -> Result<()> {
    if !cp.pending.is_empty() {
        for rel in std::mem::take(&mut cp.pending) {
            let pending = format!("{rel}.pending");
            if root.exists(&pending).await? {
                root.rename(&pending, &rel).await?;
            }
        }
        save_checkpoint(root, cp_rel, cp).await?;
    }
    let dir = format!("stream={}/tenant={tenant}", stream.name());
    for rel in root.list(&dir).await? {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        if name.ends_with(".parquet.pending") || (name.starts_with(".secgraph-") && name.ends_with(".partial")) {
            tracing::info!(file = %root.show(&rel), "removing a file an interrupted run left");
            root.delete(&rel).await?;
        }
    }
    Ok(())
}

/// The id and version time of a row, read without a tree.
fn version(row: &Row) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    #[derive(Deserialize)]
    struct V<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
        #[serde(borrow, rename = "lastUpdateDateTime")]
        last: Option<Cow<'a, str>>,
    }
    let v: V<'_> = serde_json::from_str(row.json()).ok()?;
    Some((v.id?, v.last?))
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Graph's own format for a time in a filter: seven fractional digits, `Z`.
fn graph_time(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // 2026-12-03T10:00:00.123456789Z → keep 7 digits.
    match s.rfind('.') {
        Some(dot) if s.len() >= dot + 8 => format!("{}Z", &s[..dot + 8]),
        _ => s,
    }
}

/// The most bytes a (tenant, stream) run's open Parquet files may report holding before their row groups are written.
/// The writers' own estimate counts encoded pages, not their encoders, so the real figure is a few times larger:
/// measured with ten tenants, 8 MiB keeps a run's peak RSS within a few hundred MiB whatever the tenant's size, at
/// the cost of smaller row groups when a run spans many dates (`--compact` writes full ones).
const BUFFER_BUDGET: usize = 8 * 1024 * 1024;

/// The smallest page asked for before a failing window is split.
const MIN_PAGE: usize = 10;
/// The most windows split in one run (each split halves a window, or peels 30 days off an open-ended one).
const MAX_SPLITS: usize = 24;

/// Where to split a window `[from, to)` (`to` open: the run's start): its middle; an open-ended start peels the last
/// 30 days off. `None` when the window is under a minute (nothing lighter to ask for).
fn split_point(from: Option<&str>, to: Option<&str>, started: DateTime<Utc>) -> Option<String> {
    let upper = to.and_then(parse_time).unwrap_or(started);
    let mid = match from.and_then(parse_time) {
        Some(lower) if upper - lower < chrono::Duration::minutes(1) => return None,
        Some(lower) => lower + (upper - lower) / 2,
        None => upper - chrono::Duration::days(30),
    };
    Some(graph_time(mid))
}

/// Exports one stream of one tenant: recovers the last run's state, reads every version since the watermark, writes
/// the new ones, commits. Errors leave nothing committed (the next run starts from the same checkpoint).
pub async fn export_stream(provider: &QueryProvider, instance: &str, stream: Stream, opts: &ExportOptions) -> StreamReport {
    let tenant = provider.info().tenant_id.clone();
    let mut report = StreamReport {
        tenant_id: tenant.clone(),
        page_size: opts.page_size,
        ..StreamReport::failed(instance, &stream)
    };
    if let Err(e) = run_stream(provider, &tenant, &stream, opts, &mut report).await {
        report.error = Some(e.to_string());
    }
    report
}

async fn run_stream(
    provider: &QueryProvider,
    tenant: &str,
    stream: &Stream,
    opts: &ExportOptions,
    report: &mut StreamReport,
) -> Result<()> {
    let hunting = matches!(stream, Stream::Hunting(_));
    let root = &opts.root;
    let cp_path = checkpoint_path(stream, tenant);
    let mut cp = load_checkpoint(root, &cp_path).await?;
    recover(root, stream, tenant, &cp_path, &mut cp).await?;
    // Object stores: files are written here, then uploaded.
    let staging = root.staging()?;
    let mut staged: Vec<(PathBuf, String)> = Vec::new();
    report.watermark_before = cp.watermark.clone();
    let started = Utc::now();
    let run_id = format!(
        "{}-{}",
        started.format("%Y%m%dT%H%M%S%.3fZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );

    let mut writers: BTreeMap<String, ArrowFileSink> = BTreeMap::new();
    let mut this_run: BTreeSet<(String, String)> = BTreeSet::new();
    let mut newest: Option<DateTime<Utc>> = None;
    // A hunting query answers in one page: there is no page size to shrink, only the window to split.
    let mut top = if hunting { MIN_PAGE } else { opts.page_size.max(1) };
    let mut schema: Vec<(String, String)> = Vec::new();
    // The `lastUpdateDateTime` windows still to read, the oldest last: at first one, [watermark, open). A window
    // whose pages keep failing at the smallest page size is split in two (see `split_point`).
    let first = cp.watermark.clone().or_else(|| opts.since.map(graph_time));
    let mut windows: Vec<(Option<String>, Option<String>)> = vec![(first, None)];
    'window: while let Some((from, to)) = windows.pop() {
        let q = stream.request(provider, from.as_deref(), to.as_deref(), top, started)?;
        let mut pages = provider.pages(&q)?;
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if matches!(e.http_status(), Some(500 | 504)) && top > MIN_PAGE => {
                    top = (top / 2).max(MIN_PAGE);
                    report.shrinks += 1;
                    report.page_size = top;
                    tracing::warn!(stream = stream.name(), tenant, page_size = top, error = %e,
                        "Graph keeps failing this page; reading again with smaller pages");
                    windows.push((from, to));
                    continue 'window;
                }
                Err(e) if (matches!(e.http_status(), Some(500 | 504)) || too_many_rows(&e)) && report.splits < MAX_SPLITS => {
                    // A hunting window with no start began 30 days back.
                    let from = from.or_else(|| hunting.then(|| graph_time(started - chrono::Duration::days(30))));
                    let Some(mid) = split_point(from.as_deref(), to.as_deref(), started) else {
                        return Err(e);
                    };
                    report.splits += 1;
                    tracing::warn!(stream = stream.name(), tenant, from = from.as_deref().unwrap_or("(start)"),
                        to = to.as_deref().unwrap_or("(now)"), at = %mid, error = %e,
                        "Graph keeps failing even small pages; splitting the time window in two");
                    // Smaller windows are lighter: they start again at the full page size.
                    top = if hunting { MIN_PAGE } else { opts.page_size.max(1) };
                    report.page_size = top;
                    windows.push((Some(mid.clone()), to));
                    windows.push((from, Some(mid)));
                    continue 'window;
                }
                Err(e) => return Err(e),
            };
            report.pages += 1;
            if !page.schema.is_empty() {
                schema = page.schema.clone();
                if hunting && !schema.iter().any(|(c, _)| c == "Timestamp") {
                    return Err(Error::Query {
                        message: format!(
                            "{}: the query's rows have no Timestamp column, so they cannot be exported as versions (aggregate queries cannot); export a row-level query",
                            stream.name()
                        ),
                    });
                }
            }
            let mut by_date: HashMap<String, Vec<Row>> = HashMap::new();
            for row in page.rows {
                let Some((id, last)) = stream.version(&row) else {
                    return Err(Error::Response {
                        url: q.name.clone(),
                        message: if hunting {
                            "a row has no Timestamp; it cannot be exported".into()
                        } else {
                            "an item has no id or lastUpdateDateTime; it cannot be exported as a version".into()
                        },
                    });
                };
                let key = (id.into_owned(), last.into_owned());
                if cp.stored.contains(&key) || this_run.contains(&key) {
                    report.already_stored += 1;
                    continue;
                }
                let t = parse_time(&key.1);
                if let Some(t) = t {
                    newest = Some(newest.map_or(t, |n| n.max(t)));
                }
                let date = t.map_or_else(|| "unknown".to_string(), |t| t.format("%Y-%m-%d").to_string());
                this_run.insert(key);
                by_date.entry(date).or_default().push(row);
            }
            for (date, rows) in by_date {
                let sink = match writers.get_mut(&date) {
                    Some(w) => w,
                    None => {
                        let rel = format!(
                            "stream={}/tenant={tenant}/date={date}/part-{}-{run_id}.parquet",
                            stream.name(),
                            opts.shard.0
                        );
                        let pending = format!("{rel}.pending");
                        let path = root.write_path(&pending, staging.as_ref().map(|d| d.path()));
                        if let Some(dir) = path.parent() {
                            std::fs::create_dir_all(dir).map_err(|e| Error::Output(format!("cannot create {}: {e}", dir.display())))?;
                        }
                        staged.push((path.clone(), pending));
                        let mut sink = ArrowFileSink::new(
                            FileFormat::Parquet,
                            BatchBuilder::new(stream_schema(stream)),
                            Destination::Path(path),
                        )?;
                        // Hunting rows are typed by the reply's declared schema.
                        sink.columns(&schema);
                        report.files.push(rel);
                        writers.entry(date).or_insert(sink)
                    }
                };
                let _ = sink.page(rows)?;
            }
            // One open file per date partition: keep what their row groups hold in memory bounded, whatever the
            // tenant's size (row groups are then smaller, never lost).
            let buffered: usize = writers.values().map(ArrowFileSink::buffered_bytes).sum();
            if buffered > BUFFER_BUDGET {
                for w in writers.values_mut() {
                    w.flush()?;
                }
            }
        }
    }
    for w in writers.values_mut() {
        w.finish()?;
    }
    if staging.is_some() {
        for (path, pending) in &staged {
            root.upload(path, pending).await?;
        }
    }
    report.new_versions = this_run.len();

    // The next watermark: the newest version seen, but no later than the run's start minus the overlap.
    let overlap = if hunting {
        opts.overlap.max(chrono::Duration::minutes(HUNTING_OVERLAP_MINUTES))
    } else {
        opts.overlap
    };
    let cap = started - overlap;
    let before = cp.watermark.as_deref().and_then(parse_time);
    let next = match (newest, before) {
        (Some(n), b) => Some(b.map_or(n.min(cap), |b| b.max(n.min(cap)))),
        (None, b) => b,
    };
    let next_s = next.map(graph_time);
    let mut stored: BTreeSet<(String, String)> = cp.stored.iter().cloned().chain(this_run).collect();
    if let Some(w) = next {
        stored.retain(|(_, t)| parse_time(t).is_none_or(|t| t >= w));
    }
    let committed = Checkpoint {
        watermark: next_s.clone(),
        stored,
        pending: report.files.clone(),
        runs: cp.runs + 1,
    };
    save_checkpoint(root, &cp_path, &committed).await?;
    let mut cp = committed;
    recover(root, stream, tenant, &cp_path, &mut cp).await?;
    report.watermark_after = next_s;
    Ok(())
}

fn stream_schema(stream: &Stream) -> &'static [(&'static str, crate::batches::schema::Kind)] {
    match stream {
        Stream::AlertsV2 => crate::batches::schema::ALERT_V2,
        Stream::Incidents => crate::batches::schema::INCIDENT,
        Stream::Hunting(_) => &[],
    }
}

/// Advanced hunting's answer to a result over its row limit: a narrower window may pass.
fn too_many_rows(e: &Error) -> bool {
    e.http_status() == Some(400) && e.to_string().contains("exceeds the limit")
}

/// Writes the latest version of every id, per (stream, tenant), to `ROOT/current/stream=…/tenant=…/part-0.parquet`
/// (replaced whole). Returns the rows written per stream.
pub async fn compact(root: &Root) -> Result<BTreeMap<String, usize>> {
    use arrow_array::BooleanArray;
    let mut out = BTreeMap::new();
    for stream in Stream::ALL {
        let sdir = format!("stream={}", stream.name());
        // The stream's data files by tenant (`stream=S/tenant=T/date=D/part-….parquet`).
        let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rel in root.list(&sdir).await? {
            let parts: Vec<&str> = rel.split('/').collect();
            if let [_, t, _, name] = parts.as_slice()
                && let Some(tenant) = t.strip_prefix("tenant=")
                && name.ends_with(".parquet")
            {
                by_tenant.entry(tenant.to_string()).or_default().push(rel.clone());
            }
        }
        let mut total = 0;
        for (tenant, files) in by_tenant {
            let mut batches_of = Vec::with_capacity(files.len());
            for f in &files {
                batches_of.push(read_batches(root, f).await?);
            }
            // Pass 1: the newest version of each id, and where it is.
            let mut best: HashMap<String, (DateTime<Utc>, usize, usize)> = HashMap::new();
            for (fi, batches) in batches_of.iter().enumerate() {
                let mut offset = 0;
                for batch in batches {
                    let ids = string_column(batch, "id");
                    let times = batch.column_by_name("lastUpdateDateTime").cloned();
                    for row in 0..batch.num_rows() {
                        let Some(id) = ids.get(row).cloned().flatten() else { continue };
                        let t = times
                            .as_ref()
                            .and_then(|c| time_value(c.as_ref(), row))
                            .unwrap_or(DateTime::<Utc>::MIN_UTC);
                        let entry = best.entry(id).or_insert((t, fi, offset + row));
                        if t > entry.0 {
                            *entry = (t, fi, offset + row);
                        }
                    }
                    offset += batch.num_rows();
                }
            }
            let mut keep: HashMap<usize, BTreeSet<usize>> = HashMap::new();
            for (_, (_, fi, row)) in best.iter() {
                keep.entry(*fi).or_default().insert(*row);
            }
            // Pass 2: those rows, under the widest schema.
            let mut chosen = Vec::new();
            for (fi, batches) in batches_of.iter().enumerate() {
                let Some(rows) = keep.get(&fi) else { continue };
                let mut offset = 0;
                for batch in batches {
                    let mask: BooleanArray = (0..batch.num_rows()).map(|r| Some(rows.contains(&(offset + r)))).collect();
                    offset += batch.num_rows();
                    let picked = arrow_select::filter::filter_record_batch(batch, &mask)
                        .map_err(|e| Error::Output(format!("compacting {}: {e}", root.show(&files[fi]))))?;
                    if picked.num_rows() > 0 {
                        chosen.push(picked);
                    }
                }
            }
            let schemas: Vec<arrow_schema::Schema> = chosen.iter().map(|b| b.schema().as_ref().clone()).collect();
            let Ok(merged) = arrow_schema::Schema::try_merge(schemas) else {
                return Err(Error::Output(format!(
                    "the files of {} disagree on column types",
                    root.show(&format!("{sdir}/tenant={tenant}"))
                )));
            };
            let merged = std::sync::Arc::new(merged);
            let rel = format!("current/{sdir}/tenant={tenant}/part-0.parquet");
            let staging = root.staging()?;
            let file = root.write_path(&rel, staging.as_ref().map(|d| d.path()));
            let dest = file.parent().map(PathBuf::from).unwrap_or_default();
            std::fs::create_dir_all(&dest).map_err(|e| Error::Output(format!("cannot create {}: {e}", dest.display())))?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".secgraph-")
                .suffix(".partial")
                .tempfile_in(&dest)
                .map_err(|e| Error::Output(format!("cannot write in {}: {e}", dest.display())))?;
            {
                let mut w = parquet::arrow::ArrowWriter::try_new(tmp.as_file_mut(), merged.clone(), None)
                    .map_err(|e| Error::Output(format!("compacting: {e}")))?;
                for b in &chosen {
                    w.write(&crate::batches::widen(b, &merged)?)
                        .map_err(|e| Error::Output(format!("compacting: {e}")))?;
                }
                w.close().map_err(|e| Error::Output(format!("compacting: {e}")))?;
            }
            tmp.persist(&file)
                .map_err(|e| Error::Output(format!("cannot replace {}: {}", file.display(), e.error)))?;
            root.upload(&file, &rel).await?;
            total += chosen.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        out.insert(stream.name().to_string(), total);
    }
    Ok(out)
}

async fn read_batches(root: &Root, rel: &str) -> Result<Vec<arrow_array::RecordBatch>> {
    let bytes = root
        .get(rel)
        .await?
        .ok_or_else(|| Error::Output(format!("{} disappeared while compacting", root.show(rel))))?;
    let bad = |e: &dyn std::fmt::Display| Error::Output(format!("cannot read {}: {e}", root.show(rel)));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| bad(&e))?;
    reader.map(|b| b.map_err(|e| bad(&e))).collect()
}

fn string_column(batch: &arrow_array::RecordBatch, name: &str) -> Vec<Option<String>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    match batch.column_by_name(name) {
        Some(c) if c.data_type() == &arrow_schema::DataType::Utf8 => {
            let s = c.as_string::<i32>();
            (0..s.len()).map(|i| (!s.is_null(i)).then(|| s.value(i).to_string())).collect()
        }
        _ => vec![None; batch.num_rows()],
    }
}

fn time_value(c: &dyn arrow_array::Array, row: usize) -> Option<DateTime<Utc>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMicrosecondType;
    if c.is_null(row) {
        return None;
    }
    match c.data_type() {
        arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
            DateTime::from_timestamp_micros(c.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let ids: Vec<String> = (0..400).map(|i| format!("{i:08x}-0000-4000-8000-000000000000")).collect();
        let mut counts = [0u32; 4];
        for id in &ids {
            counts[shard_of(id, 4) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (60..=140).contains(c)), "{counts:?}");
        assert_eq!(shard_of("x", 1), 0);
    }

    #[test]
    fn graph_time_has_seven_digits() {
        let t = parse_time("2026-12-03T10:00:00.1234567Z").unwrap();
        assert_eq!(graph_time(t), "2026-12-03T10:00:00.1234567Z");
        let t = parse_time("2026-12-03T10:00:00Z").unwrap();
        assert_eq!(graph_time(t), "2026-12-03T10:00:00.0000000Z");
    }
}
