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
//! The next watermark is the newest time seen, but never later than the run's start minus an overlap (default 15
//! minutes, grown when versions are seen to arrive later): whatever changed while the run was reading is read again
//! next time. The checkpoint keeps every version
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
//! **One writer.** A run takes the (root, stream, tenant) lock before it recovers or writes anything and holds it
//! to the end of its commit ([`lease`]); a second writer of the same (root, stream, tenant) fails at once with
//! [`Error::Locked`], having changed nothing. Tenants are named by their directory id ([`tenant_key`]), so two
//! spellings of one tenant share one lock, one checkpoint and one partition.
//!
//! **Checkpoints are input.** Pending paths must be this (stream, tenant)'s data files, the watermark a time not in
//! the future; a missing checkpoint over existing data stops the run ([`MissingCheckpoint`]).
//!
//! **Odd items.** An item that cannot be a version (no id, no time, a repeated key) is written with the reason to
//! `ROOT/_rejected/stream=…/tenant=…/<run>.jsonl`, counted in the report, and the run goes on.
//!
//! **Sharding.** [`shard_of`] assigns a tenant to one of N shards by a stable hash of its id: N processes with
//! `--shard K/N` split the tenants with no coordination; file names carry the shard.
//!
//! **Where.** The root is a local folder or an object store ([`Root`]: Azure Blob, S3, GCS); the same steps hold on
//! both (see [`root`] for how each operation maps).

pub mod checkpoint;
pub mod compact;
mod crash;
pub mod lease;
pub mod root;
pub mod tenants;
pub mod window;
pub use checkpoint::{MissingCheckpoint, next_watermark};
pub use compact::compact;
pub use lease::Lease;
pub use root::Root;
pub use tenants::{all_instances, export_instances};

use crate::batches::BatchBuilder;
use crate::error::{Error, Result};
use crate::output::{ArrowFileSink, Destination, FileFormat, RowSink};
use crate::provider::QueryProvider;
use crate::query::{Language, RenderedQuery};
use crate::row::Row;
use checkpoint::Checkpoint;
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
    /// The unified audit log (`AuditLog.search` over each window): each record stored once by its `id`; the
    /// watermark follows `createdDateTime`.
    AuditLog,
}

/// Audit records reach the log up to hours after they happen: an audit stream's watermark stays at least this far
/// behind a run's start.
const AUDIT_OVERLAP_MINUTES: i64 = 120;

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
            Stream::AuditLog => "auditlog".into(),
        }
    }

    /// Streams read by a search that answers in pages of the service's choosing (no page size to shrink) and whose
    /// rows are never updated (no versions): hunting and the audit log.
    fn searched(&self) -> bool {
        matches!(self, Stream::Hunting(_) | Stream::AuditLog)
    }

    /// A stream by name: `alerts_v2`, `incidents`, or `hunting:Family.name` / `hunting.Family.name`.
    pub fn parse(name: &str) -> Option<Stream> {
        let name = name.trim();
        if let Some(q) = name.strip_prefix("hunting:").or_else(|| name.strip_prefix("hunting.")) {
            return (q.contains('.') && !q.contains('/')).then(|| Stream::Hunting(q.to_string()));
        }
        if ["auditlog", "audit_log", "audit-log"].contains(&name.to_ascii_lowercase().as_str()) {
            return Some(Stream::AuditLog);
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
        if *self == Stream::AuditLog {
            // The audit log keeps 180 days; a first run without `--since` starts 30 days back, as hunting does.
            let from = from
                .map(str::to_string)
                .unwrap_or_else(|| graph_time(started - chrono::Duration::days(30)));
            let to = to.map(str::to_string).unwrap_or_else(|| graph_time(started));
            return provider.render("AuditLog.search", &[("start".into(), from), ("end".into(), to)]);
        }
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
    fn version<'r>(&self, row: &'r Row) -> std::result::Result<(Cow<'r, str>, Cow<'r, str>), String> {
        match self {
            Stream::Hunting(_) => {
                #[derive(Deserialize)]
                struct T<'a> {
                    #[serde(borrow, rename = "Timestamp")]
                    ts: Option<Cow<'a, str>>,
                }
                let t: T<'_> = serde_json::from_str(row.json()).map_err(|e| format!("the row is unreadable ({e})"))?;
                use sha2::Digest;
                let digest = sha2::Sha256::digest(row.json().as_bytes());
                let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                Ok((Cow::Owned(id), t.ts.ok_or("the row has no Timestamp")?))
            }
            Stream::AuditLog => {
                #[derive(Deserialize)]
                struct A<'a> {
                    #[serde(borrow)]
                    id: Option<Cow<'a, str>>,
                    #[serde(borrow, rename = "createdDateTime")]
                    created: Option<Cow<'a, str>>,
                }
                let a: A<'_> = serde_json::from_str(row.json()).map_err(|e| format!("the record is unreadable ({e})"))?;
                Ok((
                    a.id.ok_or("the record has no id")?,
                    a.created.ok_or("the record has no createdDateTime")?,
                ))
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
    /// What to do when a (tenant, stream) has data but its checkpoint is missing (default: refuse, with the choices).
    pub missing_checkpoint: MissingCheckpoint,
}

impl ExportOptions {
    /// Defaults for a local folder: 15 minutes of overlap (items reach Graph minutes after they change; the overlap
    /// grows by itself when versions arrive later still), pages of 1,000, one shard.
    pub fn new(root: impl Into<PathBuf>) -> ExportOptions {
        ExportOptions::with_root(Root::local(root))
    }

    /// The same defaults for any root.
    pub fn with_root(root: Root) -> ExportOptions {
        ExportOptions {
            root,
            overlap: chrono::Duration::minutes(15),
            page_size: 1000,
            shard: (0, 1),
            since: None,
            missing_checkpoint: MissingCheckpoint::Refuse,
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

/// What one (tenant, stream) run did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StreamReport {
    /// The instance name.
    pub instance: String,
    /// The tenant id: the directory's GUID in lower case when the sign-in told it (the partition's name).
    pub tenant_id: String,
    /// The stream's name.
    pub stream: String,
    /// Versions stored by this run.
    pub new_versions: usize,
    /// Items read that were already stored (re-reads at the overlap, ties, repeats).
    pub already_stored: usize,
    /// Items that could not be stored as versions (no id, no time…): written to the quarantine with the reason.
    pub rejected: usize,
    /// Versions that arrived late: their time was before the previous run's start, yet that run did not see them.
    pub late_versions: usize,
    /// The overlap the next run's watermark keeps, in seconds (the configured one, or more after late arrivals).
    pub overlap_secs: u64,
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
    /// The quarantine file of this run's rejected items (relative to the root), if any.
    pub rejected_file: Option<String>,
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
            rejected: 0,
            late_versions: 0,
            overlap_secs: 0,
            pages: 0,
            shrinks: 0,
            splits: 0,
            page_size: 0,
            watermark_before: None,
            watermark_after: None,
            files: Vec::new(),
            rejected_file: None,
            error: None,
        }
    }
}

/// The name a tenant's data, checkpoint, lock and shard go by: its directory id (GUID, lower case) as the sign-in
/// reported it, whatever the settings call it (an upper-case GUID, a domain); the settings' spelling, lower case,
/// when the token told none.
pub fn tenant_key(info: &crate::connect::ConnectionInfo) -> String {
    info.directory_id
        .clone()
        .unwrap_or_else(|| info.tenant_id.trim().to_ascii_lowercase())
}

/// A row's identity and time, or why it has none.
fn version(row: &Row) -> std::result::Result<(Cow<'_, str>, Cow<'_, str>), String> {
    #[derive(Deserialize)]
    struct V<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
        #[serde(borrow, rename = "lastUpdateDateTime")]
        last: Option<Cow<'a, str>>,
    }
    let v: V<'_> = match serde_json::from_str(row.json()) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            return Err(if msg.contains("duplicate field") {
                format!("the item repeats a key ({msg}); which value is meant cannot be told")
            } else if msg.contains("invalid type") {
                format!("its id or lastUpdateDateTime is not text ({msg})")
            } else {
                format!("not a JSON object ({msg})")
            });
        }
    };
    match (v.id, v.last) {
        (None, _) => Err("it has no id".into()),
        (_, None) => Err("it has no lastUpdateDateTime (missing or null)".into()),
        (Some(id), Some(last)) if parse_time(&last).is_none() => Err(format!(
            "item {}: lastUpdateDateTime '{}' is not a time",
            crate::error::clean(&id, 80),
            crate::error::clean(&last, 60)
        )),
        (Some(id), Some(last)) => Ok((id, last)),
    }
}

/// An RFC 3339 time; one without an offset is UTC (Graph's documented zone).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)).or_else(|| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|t| t.and_utc())
    })
}

/// A version's time as the checkpoint keeps it: to the microsecond (what the Parquet files hold), in Graph's format,
/// so the service's spellings of one instant (`Z` or `+00:00`, 3 or 7 digits) are one key.
pub(crate) fn key_time(t: DateTime<Utc>) -> String {
    graph_time(DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t))
}

/// Graph's own format for a time in a filter: seven fractional digits, `Z`.
pub(crate) fn graph_time(t: DateTime<Utc>) -> String {
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
/// Rejected items kept whole for the quarantine file per run (more are counted only).
const MAX_QUARANTINED: usize = 10_000;

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

/// What a run does when a page fails after the client's own retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnFailure {
    /// Read the window again with this (smaller) page size.
    Shrink(usize),
    /// Split the window in two.
    Split,
    /// Give up: the run fails, nothing committed.
    Fail,
}

/// The window-planning decision: HTTP 500/504 shrink the page down to [`MIN_PAGE`], then split the window (also
/// for advanced hunting's row limit), at most [`MAX_SPLITS`] times.
fn on_failure(status: Option<u16>, too_many_rows: bool, top: usize, splits: usize) -> OnFailure {
    let heavy = matches!(status, Some(500 | 504));
    if heavy && top > MIN_PAGE {
        OnFailure::Shrink((top / 2).max(MIN_PAGE))
    } else if (heavy || too_many_rows) && splits < MAX_SPLITS {
        OnFailure::Split
    } else {
        OnFailure::Fail
    }
}

/// Exports one stream of one tenant: takes the (stream, tenant) lock, recovers the last run's state, reads every
/// version since the watermark, writes the new ones, commits. Errors leave nothing committed (the next run starts
/// from the same checkpoint); a second writer of the same (root, stream, tenant) fails with [`Error::Locked`].
pub async fn export_stream(provider: &QueryProvider, instance: &str, stream: Stream, opts: &ExportOptions) -> StreamReport {
    let tenant = tenant_key(provider.info());
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

/// The checkpoint a run starts from: the stored one, checked; none for a new (stream, tenant); and when it is
/// missing over existing data, what [`ExportOptions::missing_checkpoint`] says.
async fn starting_checkpoint(root: &Root, stream: &Stream, tenant: &str, spelled: &str, opts: &ExportOptions) -> Result<Checkpoint> {
    if let Some(cp) = checkpoint::load(root, stream, tenant).await? {
        return Ok(cp);
    }
    if let Some(other) = checkpoint::other_spelling(root, stream, tenant, spelled).await? {
        return Err(Error::Checkpoint {
            path: root.show(&checkpoint::checkpoint_path(stream, &other)),
            message: format!(
                "this dataset holds tenant {tenant} as 'tenant={other}' (the settings' spelling, from before partitions were named by directory id). Rename its data folder and checkpoint to 'tenant={tenant}' once (docs/EXPORT.md, \"One tenant, one folder\"), then run again"
            ),
        });
    }
    if !checkpoint::has_data(root, stream, tenant).await? {
        return Ok(Checkpoint::default());
    }
    match opts.missing_checkpoint {
        MissingCheckpoint::Force => {
            tracing::warn!(
                stream = stream.name(),
                tenant,
                "no checkpoint over existing data: exporting again from the start, as asked"
            );
            Ok(Checkpoint::default())
        }
        MissingCheckpoint::Rebuild => {
            let cp = checkpoint::rebuild(root, stream, tenant, opts.overlap).await?;
            tracing::warn!(
                stream = stream.name(),
                tenant,
                watermark = cp.watermark.as_deref().unwrap_or("(none)"),
                "checkpoint rebuilt from the data files"
            );
            Ok(cp)
        }
        MissingCheckpoint::Refuse => Err(Error::Checkpoint {
            path: root.show(&checkpoint::checkpoint_path(stream, tenant)),
            message: format!(
                "it is missing, but {} holds data: exporting from the start would store every version again. Rebuild the checkpoint from the data (the CLI's --rebuild-checkpoint), or export again anyway (--force)",
                root.show(&checkpoint::data_dir(stream, tenant))
            ),
        }),
    }
}

/// One run's state between reading and commit: the open partition writers, the versions it stores, its rejects.
struct Run<'a> {
    root: &'a Root,
    stream: &'a Stream,
    tenant: &'a str,
    shard: u32,
    id: String,
    staging: Option<tempfile::TempDir>,
    /// (local file, pending path) of each data file.
    staged: Vec<(PathBuf, String)>,
    writers: BTreeMap<String, ArrowFileSink>,
    stored: BTreeSet<(String, String)>,
    newest: Option<DateTime<Utc>>,
    schema: Vec<(String, String)>,
    quarantine: Vec<serde_json::Value>,
    /// When the previous committed run started: a new version older than that arrived late.
    previous_start: Option<DateTime<Utc>>,
    /// The largest lateness seen in this run.
    lateness: chrono::Duration,
    /// The service's time at the run's first reply.
    first_reply: Option<DateTime<Utc>>,
}

impl<'a> Run<'a> {
    fn new(root: &'a Root, stream: &'a Stream, tenant: &'a str, shard: u32, started: DateTime<Utc>) -> Result<Run<'a>> {
        Ok(Run {
            root,
            stream,
            tenant,
            shard,
            id: format!(
                "{}-{}",
                started.format("%Y%m%dT%H%M%S%.3fZ"),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            // Object stores: files are written here, then uploaded.
            staging: root.staging()?,
            staged: Vec::new(),
            writers: BTreeMap::new(),
            stored: BTreeSet::new(),
            newest: None,
            schema: Vec::new(),
            quarantine: Vec::new(),
            previous_start: None,
            lateness: chrono::Duration::zero(),
            first_reply: None,
        })
    }

    /// Sorts a page's rows: already stored, rejected (to the quarantine), or new (to its date's writer).
    fn take_page(&mut self, rows: Vec<Row>, known: &BTreeSet<(String, String)>, report: &mut StreamReport) -> Result<()> {
        let mut by_date: HashMap<String, Vec<Row>> = HashMap::new();
        for row in rows {
            let (id, last) = match self.stream.version(&row) {
                Ok(v) => v,
                Err(reason) => {
                    self.reject(&row, reason, report);
                    continue;
                }
            };
            let Some(t) = parse_time(&last) else {
                let reason = format!("its time '{}' is not a time", crate::error::clean(&last, 60));
                self.reject(&row, reason, report);
                continue;
            };
            let key = (id.into_owned(), key_time(t));
            if known.contains(&key) || self.stored.contains(&key) {
                report.already_stored += 1;
                continue;
            }
            self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
            if let Some(prev) = self.previous_start
                && t < prev
            {
                // It was there, by its time, when the previous run read; that run did not see it.
                report.late_versions += 1;
                self.lateness = self.lateness.max(prev - t);
            }
            self.stored.insert(key);
            by_date.entry(t.format("%Y-%m-%d").to_string()).or_default().push(row);
        }
        for (date, rows) in by_date {
            let _ = self.writer(&date, report)?.page(rows)?;
        }
        // One open file per date partition: keep what their row groups hold in memory bounded, whatever the
        // tenant's size (row groups are then smaller, never lost).
        let buffered: usize = self.writers.values().map(ArrowFileSink::buffered_bytes).sum();
        if buffered > BUFFER_BUDGET {
            for w in self.writers.values_mut() {
                w.flush()?;
            }
        }
        Ok(())
    }

    fn reject(&mut self, row: &Row, reason: String, report: &mut StreamReport) {
        report.rejected += 1;
        tracing::warn!(stream = self.stream.name(), tenant = self.tenant, %reason, "an item cannot be stored as a version; quarantined");
        if self.quarantine.len() < MAX_QUARANTINED {
            let item =
                serde_json::from_str::<serde_json::Value>(row.json()).unwrap_or_else(|_| serde_json::Value::String(row.json().to_string()));
            self.quarantine.push(serde_json::json!({ "reason": reason, "item": item }));
        }
    }

    /// The open writer of a date partition, made on first use.
    fn writer(&mut self, date: &str, report: &mut StreamReport) -> Result<&mut ArrowFileSink> {
        if !self.writers.contains_key(date) {
            let rel = format!(
                "{}/date={date}/part-{}-{}.parquet",
                checkpoint::data_dir(self.stream, self.tenant),
                self.shard,
                self.id
            );
            let pending = format!("{rel}.pending");
            let path = self.root.write_path(&pending, self.staging.as_ref().map(|d| d.path()));
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::output_from(format!("cannot create {}", dir.display()), e))?;
            }
            self.staged.push((path.clone(), pending));
            let mut sink = ArrowFileSink::new(
                FileFormat::Parquet,
                BatchBuilder::new(stream_schema(self.stream)),
                Destination::Path(path),
            )?;
            // Hunting rows are typed by the reply's declared schema.
            sink.columns(&self.schema);
            report.files.push(rel);
            self.writers.insert(date.to_string(), sink);
        }
        self.writers
            .get_mut(date)
            .ok_or_else(|| Error::output(format!("no writer for date {date}")))
    }

    /// Finishes every data file as `….parquet.pending` (uploaded, for an object store).
    async fn stage(&mut self) -> Result<()> {
        for w in self.writers.values_mut() {
            w.finish()?;
        }
        for (path, pending) in &self.staged {
            if self.staging.is_some() {
                self.root.upload(path, pending).await?;
            }
            crash::reached(crash::Point::Staged);
        }
        Ok(())
    }

    /// This run's rejected items as a quarantine file: its path under the root and its bytes (JSON lines).
    fn quarantine_file(&self) -> Result<Option<(String, Vec<u8>)>> {
        if self.quarantine.is_empty() {
            return Ok(None);
        }
        let rel = format!("_rejected/stream={}/tenant={}/{}.jsonl", self.stream.name(), self.tenant, self.id);
        let mut text = Vec::new();
        for line in &self.quarantine {
            serde_json::to_writer(&mut text, line).map_err(|e| Error::output_from("quarantine", e))?;
            text.push(b'\n');
        }
        Ok(Some((rel, text)))
    }
}

async fn run_stream(
    provider: &QueryProvider,
    tenant: &str,
    stream: &Stream,
    opts: &ExportOptions,
    report: &mut StreamReport,
) -> Result<()> {
    let root = &opts.root;
    let lease = Lease::acquire(root, &stream.name(), tenant).await?;
    crash::reached(crash::Point::Locked);
    let spelled = provider.info().tenant_id.trim().to_string();
    let mut cp = starting_checkpoint(root, stream, tenant, &spelled, opts).await?;
    checkpoint::recover(root, stream, tenant, &mut cp).await?;
    report.watermark_before = cp.watermark.clone();
    // The service's clock when it is known (an earlier reply's Date), so a local clock that is off cannot move the
    // watermark past versions the service has not shown yet.
    let started = provider.server_now().unwrap_or_else(Utc::now);
    let mut run = Run::new(root, stream, tenant, opts.shard.0, started)?;
    run.previous_start = cp.started.as_deref().and_then(parse_time);
    read(provider, &cp, opts, started, &mut run, report).await?;
    // The run's time is the service's when its first reply came (its `Date`), when the service said it.
    let started = run.first_reply.unwrap_or(started);
    run.stage().await?;
    report.new_versions = run.stored.len();
    commit(cp, opts, started, run, report, &lease).await?;
    lease.release().await;
    Ok(())
}

/// Reads every version since the checkpoint's watermark (or `since`) into the run.
async fn read(
    provider: &QueryProvider,
    cp: &Checkpoint,
    opts: &ExportOptions,
    started: DateTime<Utc>,
    run: &mut Run<'_>,
    report: &mut StreamReport,
) -> Result<()> {
    // The watermark was checked as a time when loaded and is written back in Graph's format, never as the
    // checkpoint's text.
    let first = cp.watermark_time().or(opts.since).map(graph_time);
    let reading = Reading {
        provider,
        stream: run.stream,
        tenant: run.tenant,
        page_size: opts.page_size,
        started,
    };
    reading
        .pages((first, None), report, &mut |page, report| {
            if run.first_reply.is_none() {
                run.first_reply = provider.server_now();
            }
            if !page.schema.is_empty() {
                run.schema = page.schema;
            }
            run.take_page(page.rows, &cp.stored, report)?;
            crash::reached(crash::Point::Page);
            Ok(())
        })
        .await
}

/// One (tenant, stream) being read: what every reader of versions — the export's run, a [`window`] — shares.
pub(crate) struct Reading<'a> {
    pub provider: &'a QueryProvider,
    pub stream: &'a Stream,
    /// The tenant's key, for messages.
    pub tenant: &'a str,
    /// Page size asked for (`$top`).
    pub page_size: usize,
    /// The service's time when reading began (closes a hunting window's open end).
    pub started: DateTime<Utc>,
}

impl Reading<'_> {
    /// Reads the versions in `window` (`[from, to)`, either end open), page by page, into `on_page`. A page that
    /// still fails with HTTP 500/504 after the client's retries makes the pass start again with half the page
    /// size, then the window split in two ([`on_failure`]); the report counts both.
    pub async fn pages(
        &self,
        window: (Option<String>, Option<String>),
        report: &mut StreamReport,
        on_page: &mut (dyn FnMut(crate::graph::Page, &mut StreamReport) -> Result<()> + Send),
    ) -> Result<()> {
        let (provider, stream, started) = (self.provider, self.stream, self.started);
        let hunting = stream.searched();
        // A hunting query answers in one page (the audit log in pages of its own size): there is no page size to
        // shrink, only the window to split.
        let full = if hunting { MIN_PAGE } else { self.page_size.max(1) };
        let mut top = full;
        // The windows still to read, the oldest last.
        let mut windows: Vec<(Option<String>, Option<String>)> = vec![window];
        'window: while let Some((from, to)) = windows.pop() {
            let q = stream.request(provider, from.as_deref(), to.as_deref(), top, started)?;
            let mut pages = provider.pages(&q)?;
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(p) => p,
                    Err(e) => match on_failure(e.http_status(), too_many_rows(&e), top, report.splits) {
                        OnFailure::Shrink(smaller) => {
                            top = smaller;
                            report.shrinks += 1;
                            report.page_size = top;
                            tracing::warn!(stream = stream.name(), tenant = self.tenant, page_size = top, error = %e,
                                "Graph keeps failing this page; reading again with smaller pages");
                            windows.push((from, to));
                            continue 'window;
                        }
                        OnFailure::Split => {
                            // A hunting window with no start began 30 days back.
                            let from = from.or_else(|| hunting.then(|| graph_time(started - chrono::Duration::days(30))));
                            let Some(mid) = split_point(from.as_deref(), to.as_deref(), started) else {
                                return Err(e);
                            };
                            report.splits += 1;
                            tracing::warn!(stream = stream.name(), tenant = self.tenant, from = from.as_deref().unwrap_or("(start)"),
                                to = to.as_deref().unwrap_or("(now)"), at = %mid, error = %e,
                                "Graph keeps failing even small pages; splitting the time window in two");
                            // Smaller windows are lighter: they start again at the full page size.
                            top = full;
                            report.page_size = top;
                            windows.push((Some(mid.clone()), to));
                            windows.push((from, Some(mid)));
                            continue 'window;
                        }
                        OnFailure::Fail => return Err(e),
                    },
                };
                report.pages += 1;
                if hunting && !page.schema.is_empty() && !page.schema.iter().any(|(c, _)| c == "Timestamp") {
                    return Err(Error::Query {
                        message: format!(
                            "{}: the query's rows have no Timestamp column, so they cannot be exported as versions (aggregate queries cannot); export a row-level query",
                            stream.name()
                        ),
                    });
                }
                on_page(page, report)?;
            }
        }
        Ok(())
    }
}

/// Commits a run: the quarantine file, then the checkpoint (new watermark, versions, the pending files) replaced
/// atomically — the commit point — then the pending files renamed.
async fn commit(
    cp: Checkpoint,
    opts: &ExportOptions,
    started: DateTime<Utc>,
    run: Run<'_>,
    report: &mut StreamReport,
    lease: &Lease,
) -> Result<()> {
    let (root, stream, tenant) = (run.root, run.stream, run.tenant);
    // Written before the commit point: a crash in between leaves a quarantine file the rerun writes again.
    if let Some((rel, text)) = run.quarantine_file()? {
        root.put(&rel, text).await?;
        report.rejected_file = Some(rel);
    }
    let configured = match stream {
        Stream::Hunting(_) => opts.overlap.max(chrono::Duration::minutes(HUNTING_OVERLAP_MINUTES)),
        Stream::AuditLog => opts.overlap.max(chrono::Duration::minutes(AUDIT_OVERLAP_MINUTES)),
        _ => opts.overlap,
    };
    let lateness_secs = cp.lateness_secs.max(u64::try_from(run.lateness.num_seconds()).unwrap_or(0));
    let overlap = checkpoint::overlap_in_force(configured, lateness_secs);
    if overlap > checkpoint::overlap_in_force(configured, cp.lateness_secs) {
        tracing::info!(
            stream = stream.name(),
            tenant,
            late = report.late_versions,
            lateness_s = lateness_secs,
            overlap_s = overlap.num_seconds(),
            "versions arrived late; the overlap grows to cover them"
        );
    }
    report.overlap_secs = u64::try_from(overlap.num_seconds()).unwrap_or(0);
    let next = checkpoint::next_watermark(cp.watermark_time(), run.newest, started - overlap);
    let mut stored = cp.stored;
    stored.extend(run.stored);
    checkpoint::retain_from(&mut stored, next);
    let mut committed = Checkpoint {
        watermark: next.map(graph_time),
        stored,
        pending: report.files.clone(),
        runs: cp.runs + 1,
        started: Some(graph_time(started)),
        lateness_secs,
    };
    // A writer that lost its lease must not commit: another may own the folder now.
    lease.check()?;
    checkpoint::save(root, stream, tenant, &committed).await?;
    crash::reached(crash::Point::Committed);
    checkpoint::recover(root, stream, tenant, &mut committed).await?;
    report.watermark_after = committed.watermark;
    Ok(())
}

fn stream_schema(stream: &Stream) -> &'static [(&'static str, crate::batches::schema::Kind)] {
    match stream {
        Stream::AlertsV2 => crate::batches::schema::ALERT_V2,
        Stream::Incidents => crate::batches::schema::INCIDENT,
        Stream::Hunting(_) => &[],
        Stream::AuditLog => crate::batches::schema::AUDIT_RECORD,
    }
}

/// Advanced hunting's answer to a result over its row limit: a narrower window may pass.
fn too_many_rows(e: &Error) -> bool {
    e.http_status() == Some(400) && e.to_string().contains("exceeds the limit")
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

    #[tokio::test]
    async fn items_that_cannot_be_versions_are_quarantined_and_the_rest_stored() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::local(dir.path());
        let mut run = Run::new(&root, &Stream::AlertsV2, "t1", 0, Utc::now()).unwrap();
        let mut report = StreamReport::failed("Default", &Stream::AlertsV2);
        let rows: Vec<Row> = [
            r#"{"id":"a","lastUpdateDateTime":"2026-12-01T10:00:00Z"}"#,
            r#"{"id":"b","lastUpdateDateTime":null}"#,
            r#"{"id":7,"lastUpdateDateTime":"2026-12-01T10:00:00Z"}"#,
            r#"{"id":"c","id":"d","lastUpdateDateTime":"2026-12-01T10:00:00Z"}"#,
            r#"{"id":"e","lastUpdateDateTime":"2026-12-01T23:30:00"}"#,
            r#"{"lastUpdateDateTime":"2026-12-01T10:00:00Z"}"#,
            r#"{"id":"f","lastUpdateDateTime":"yesterday"}"#,
        ]
        .iter()
        .map(|t| Row::from_json(t).unwrap())
        .collect();
        run.take_page(rows, &BTreeSet::new(), &mut report).unwrap();
        assert_eq!(report.rejected, 5);
        let ids: Vec<&str> = run.stored.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "e"]);
        // A time without an offset is UTC: 23:30 stays on the 1st.
        assert!(run.writers.keys().eq(["2026-12-01"]), "{:?}", run.writers.keys());
        run.stage().await.unwrap();
        let (rel, text) = run.quarantine_file().unwrap().unwrap();
        root.put(&rel, text).await.unwrap();
        assert!(rel.starts_with("_rejected/stream=alerts_v2/tenant=t1/"), "{rel}");
        let text = std::fs::read_to_string(dir.path().join(&rel)).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 5);
        let reasons: Vec<&str> = lines.iter().map(|l| l["reason"].as_str().unwrap()).collect();
        assert!(reasons[0].contains("no lastUpdateDateTime"), "{reasons:?}");
        assert!(reasons[1].contains("not text"), "{reasons:?}");
        assert!(reasons[2].contains("repeats a key"), "{reasons:?}");
        assert!(reasons[3].contains("no id"), "{reasons:?}");
        assert!(reasons[4].contains("item f") && reasons[4].contains("'yesterday'"), "{reasons:?}");
        assert_eq!(lines[3]["item"]["lastUpdateDateTime"], "2026-12-01T10:00:00Z");
    }

    #[test]
    fn failures_shrink_the_page_then_split_the_window() {
        assert_eq!(on_failure(Some(500), false, 1000, 0), OnFailure::Shrink(500));
        assert_eq!(on_failure(Some(504), false, 15, 0), OnFailure::Shrink(MIN_PAGE));
        assert_eq!(on_failure(Some(500), false, MIN_PAGE, 0), OnFailure::Split);
        assert_eq!(on_failure(Some(400), true, MIN_PAGE, 3), OnFailure::Split);
        assert_eq!(on_failure(Some(500), false, MIN_PAGE, MAX_SPLITS), OnFailure::Fail);
        assert_eq!(on_failure(Some(403), false, 1000, 0), OnFailure::Fail);
        assert_eq!(on_failure(None, false, 1000, 0), OnFailure::Fail);
    }

    #[test]
    fn graph_time_has_seven_digits() {
        let t = parse_time("2026-12-03T10:00:00.1234567Z").unwrap();
        assert_eq!(graph_time(t), "2026-12-03T10:00:00.1234567Z");
        let t = parse_time("2026-12-03T10:00:00Z").unwrap();
        assert_eq!(graph_time(t), "2026-12-03T10:00:00.0000000Z");
    }
}
