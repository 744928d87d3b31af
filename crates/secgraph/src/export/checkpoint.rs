//! The checkpoint of one (stream, tenant): read and checked like any input, recovered to, rebuilt from the data when
//! lost, and the pure watermark arithmetic ([`next_watermark`]).

use super::{Root, Stream, graph_time, key_time, parse_time};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How far ahead of this machine's clock a watermark may be before the checkpoint is refused (clocks of sharded
/// machines differ a little; a watermark is always written at least the overlap behind its run's start).
const CLOCK_SKEW: chrono::Duration = chrono::Duration::hours(1);

/// The checkpoint of one (tenant, stream).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Checkpoint {
    /// The next run reads `lastUpdateDateTime ge watermark`.
    pub watermark: Option<String>,
    /// Versions stored whose time is at or after the watermark: `[id, lastUpdateDateTime]`.
    pub stored: BTreeSet<(String, String)>,
    /// Files of a committed run not yet renamed from `.pending` (relative to the root).
    pub pending: Vec<String>,
    /// Runs committed so far.
    pub runs: u64,
    /// When the last committed run started (`None` in checkpoints written before lateness was tracked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// The largest lateness seen for this (tenant, stream), in seconds: how long after its time a version was first
    /// read (it was not there when an earlier run read that time). The overlap grows to cover twice it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lateness_secs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The longest a learnt overlap grows to.
pub const MAX_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// The overlap a run uses: the configured one, or twice the largest lateness seen when that is longer (at most
/// [`MAX_OVERLAP`]), so a version that reaches Graph late is still behind no watermark when it arrives.
pub fn overlap_in_force(configured: chrono::Duration, lateness_secs: u64) -> chrono::Duration {
    let learnt = chrono::Duration::seconds(i64::try_from(lateness_secs.saturating_mul(2)).unwrap_or(i64::MAX / 4));
    configured.max(learnt.min(MAX_OVERLAP))
}

impl Checkpoint {
    /// The watermark as a time (checked when loaded).
    pub fn watermark_time(&self) -> Option<DateTime<Utc>> {
        self.watermark.as_deref().and_then(parse_time)
    }
}

pub(crate) fn checkpoint_path(stream: &Stream, tenant: &str) -> String {
    format!("_checkpoints/stream={}/tenant={tenant}.json", stream.name())
}

/// The folder of a (stream, tenant)'s data files.
pub(crate) fn data_dir(stream: &Stream, tenant: &str) -> String {
    format!("stream={}/tenant={tenant}", stream.name())
}

/// Reads a checkpoint (`None` when there is none) and checks it as input: pending paths must be data files of this
/// (stream, tenant) under the root, the watermark a time not in the future.
pub(crate) async fn load(root: &Root, stream: &Stream, tenant: &str) -> Result<Option<Checkpoint>> {
    let rel = checkpoint_path(stream, tenant);
    let bad = |message: String| Error::Checkpoint {
        path: root.show(&rel),
        message,
    };
    let Some(bytes) = root.get(&rel).await? else { return Ok(None) };
    let mut cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "not readable ({e}); restore it from a backup, or move it away and run again with the option to rebuild it from the data"
        ))
    })?;
    let dir = format!("{}/", data_dir(stream, tenant));
    for p in &cp.pending {
        if !confined_data_file(p, &dir) {
            return Err(bad(format!(
                "lists a pending file '{}' that is not a data file of {dir} under the root; refused (the checkpoint was changed by hand or is damaged)",
                crate::error::clean(p, 200)
            )));
        }
    }
    if let Some(w) = &cp.watermark {
        let Some(t) = parse_time(w) else {
            return Err(bad(format!(
                "its watermark '{}' is not a time (RFC 3339, e.g. 2026-12-01T00:00:00Z)",
                crate::error::clean(w, 60)
            )));
        };
        if t > Utc::now() + CLOCK_SKEW {
            return Err(bad(format!(
                "its watermark {w} is in the future (this machine's clock says {}): a run from it would export nothing; correct the watermark or this machine's clock",
                graph_time(Utc::now())
            )));
        }
    }
    // Versions are compared by instant: older checkpoints kept the service's spelling of the time.
    cp.stored = std::mem::take(&mut cp.stored)
        .into_iter()
        .map(|(id, t)| match parse_time(&t) {
            Some(t) => (id, key_time(t)),
            None => (id, t),
        })
        .collect();
    Ok(Some(cp))
}

/// `stream=…/tenant=…/date=YYYY-MM-DD/part-….parquet` under `dir`, with no way out of it.
fn confined_data_file(p: &str, dir: &str) -> bool {
    let Some(rest) = p.strip_prefix(dir) else { return false };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [date, name]
        if date.strip_prefix("date=").is_some_and(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        && name.starts_with("part-") && name.ends_with(".parquet")
        && !name.contains(['\\', '\0']) && *name != ".." )
}

/// Replaces the checkpoint atomically (see [`Root`]).
pub(crate) async fn save(root: &Root, stream: &Stream, tenant: &str, cp: &Checkpoint) -> Result<()> {
    let text = serde_json::to_vec_pretty(cp).map_err(|e| Error::Checkpoint {
        path: root.show(&checkpoint_path(stream, tenant)),
        message: e.to_string(),
    })?;
    root.put(&checkpoint_path(stream, tenant), text).await
}

/// Puts the (tenant, stream) folder in the state its checkpoint describes: listed pending files renamed (their run
/// had committed), other pending files and temporary files deleted (theirs had not), and temporary files an
/// interrupted checkpoint write left removed. Runs only under the (stream, tenant) lock.
pub(crate) async fn recover(root: &Root, stream: &Stream, tenant: &str, cp: &mut Checkpoint) -> Result<()> {
    if !cp.pending.is_empty() {
        for rel in std::mem::take(&mut cp.pending) {
            let pending = format!("{rel}.pending");
            if root.exists(&pending).await? {
                root.rename(&pending, &rel).await?;
                super::crash::reached(super::crash::Point::Renamed);
            } else if !root.exists(&rel).await? {
                // Committed, yet neither the pending file nor the final one exists: data were removed from outside.
                return Err(Error::Checkpoint {
                    path: root.show(&checkpoint_path(stream, tenant)),
                    message: format!(
                        "lists {} as committed, but neither it nor its pending file exists: something outside secgraph removed it. Restore it, or rebuild the checkpoint from the data",
                        root.show(&rel)
                    ),
                });
            }
        }
        save(root, stream, tenant, cp).await?;
    }
    let dir = data_dir(stream, tenant);
    for rel in root.list(&dir).await? {
        if is_leftover(&rel) {
            tracing::info!(file = %root.show(&rel), "removing a file an interrupted run left");
            root.delete(&rel).await?;
        }
    }
    let cp_rel = checkpoint_path(stream, tenant);
    let cp_dir = cp_rel.rsplit_once('/').map_or("", |(d, _)| d);
    let own = format!(".secgraph-tenant={tenant}.json");
    for rel in root.list(cp_dir).await? {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        // Only this tenant's: another tenant's writer may be writing its own checkpoint now.
        if name.starts_with(&own) && name.ends_with(".partial") {
            root.delete(&rel).await?;
        }
    }
    Ok(())
}

fn is_leftover(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.ends_with(".parquet.pending") || (name.starts_with(".secgraph-") && name.ends_with(".partial"))
}

/// The next watermark: the newest version seen, but never later than `cap` (the run's start minus the overlap), and
/// never earlier than the watermark before (a run that saw only old versions keeps it).
///
/// ```text
/// before  newest  cap   → next
/// None    None    c     → None        (nothing seen yet: start from the beginning again)
/// b       None    c     → b           (an empty run keeps its place)
/// None    n<c     c     → n
/// b       n>c     c     → max(b, c)   (changes near the run's start are read again next time)
/// ```
pub fn next_watermark(before: Option<DateTime<Utc>>, newest: Option<DateTime<Utc>>, cap: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match (newest, before) {
        (Some(n), b) => Some(b.map_or(n.min(cap), |b| b.max(n.min(cap)))),
        (None, b) => b,
    }
}

/// Versions to remember: those at or after the next watermark (re-reads and ties there are recognised).
pub(crate) fn retain_from(stored: &mut BTreeSet<(String, String)>, watermark: Option<DateTime<Utc>>) {
    if let Some(w) = watermark {
        // Keys are kept to the microsecond: a version at the watermark's own instant (7 digits) is kept too.
        let w = DateTime::from_timestamp_micros(w.timestamp_micros()).unwrap_or(w);
        stored.retain(|(_, t)| parse_time(t).is_none_or(|t| t >= w));
    }
}

/// What to do when a (stream, tenant) has data files but no checkpoint (it was deleted or lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissingCheckpoint {
    /// Stop with an error that explains the two choices below (the default: nothing is written twice unasked).
    #[default]
    Refuse,
    /// Rebuild the checkpoint from the data files: the newest stored version, minus the overlap, becomes the
    /// watermark, and every version stored since is remembered (alerts and incidents only).
    Rebuild,
    /// Export from the beginning (or `since`) as if the folder were empty: versions already stored are stored again.
    Force,
}

/// A checkpoint rebuilt from a (stream, tenant)'s data files.
pub(crate) async fn rebuild(root: &Root, stream: &Stream, tenant: &str, overlap: chrono::Duration) -> Result<Checkpoint> {
    if matches!(stream, Stream::Hunting(_) | Stream::AuditLog) {
        return Err(Error::Checkpoint {
            path: root.show(&checkpoint_path(stream, tenant)),
            message: format!(
                "the {} stream's checkpoint cannot be rebuilt from its data (only alerts' and incidents' can); export it again into a new root, or force",
                stream.name()
            ),
        });
    }
    let mut versions: Vec<(String, DateTime<Utc>)> = Vec::new();
    for rel in root.list(&data_dir(stream, tenant)).await? {
        if rel.ends_with(".parquet") {
            versions.extend(super::compact::read_versions(root, &rel).await?);
        }
    }
    let newest = versions.iter().map(|(_, t)| *t).max();
    let watermark = newest.map(|n| n - overlap);
    let mut stored = BTreeSet::new();
    for (id, t) in versions {
        if watermark.is_some_and(|w| t >= w) {
            stored.insert((id, key_time(t)));
        }
    }
    Ok(Checkpoint {
        watermark: watermark.map(graph_time),
        stored,
        pending: Vec::new(),
        runs: 0,
        started: None,
        lateness_secs: 0,
    })
}

/// A (stream, tenant) folder with data files: whether there are any.
pub(crate) async fn has_data(root: &Root, stream: &Stream, tenant: &str) -> Result<bool> {
    Ok(root.list(&data_dir(stream, tenant)).await?.iter().any(|r| r.ends_with(".parquet")))
}

/// Another spelling of this tenant (an upper-case GUID, a domain) that already has a checkpoint for this stream.
pub(crate) async fn other_spelling(root: &Root, stream: &Stream, tenant: &str, spelled: &str) -> Result<Option<String>> {
    let dir = format!("_checkpoints/stream={}", stream.name());
    for rel in root.list(&dir).await? {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        if let Some(t) = name.strip_prefix("tenant=").and_then(|n| n.strip_suffix(".json"))
            && t != tenant
            && (t.eq_ignore_ascii_case(tenant) || t.eq_ignore_ascii_case(spelled))
        {
            return Ok(Some(t.to_string()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn next_watermark_table() {
        let cap = t("2026-12-07T12:00:00Z");
        let early = t("2026-12-07T10:00:00Z");
        let late = t("2026-12-07T12:03:00Z");
        let before = t("2026-12-07T09:00:00Z");
        // (before, newest) → next
        let table = [
            ((None, None), None),
            ((Some(before), None), Some(before)),
            ((None, Some(early)), Some(early)),
            ((None, Some(late)), Some(cap)),
            ((Some(before), Some(early)), Some(early)),
            ((Some(before), Some(late)), Some(cap)),
            // Clock skew: a watermark already past the cap is never moved back.
            ((Some(late), Some(early)), Some(late)),
            // Ties: newest equal to the watermark keeps it.
            ((Some(early), Some(early)), Some(early)),
        ];
        for ((b, n), want) in table {
            assert_eq!(next_watermark(b, n, cap), want, "before {b:?}, newest {n:?}");
        }
    }

    #[test]
    fn the_overlap_grows_to_twice_the_lateness_seen_and_no_further_than_a_day() {
        let five = chrono::Duration::minutes(5);
        assert_eq!(overlap_in_force(five, 0), five);
        assert_eq!(overlap_in_force(five, 60), five);
        assert_eq!(overlap_in_force(five, 900), chrono::Duration::minutes(30));
        assert_eq!(overlap_in_force(five, 10 * 86_400), MAX_OVERLAP);
    }

    #[test]
    fn pending_paths_are_confined() {
        let dir = "stream=alerts_v2/tenant=abc/";
        assert!(confined_data_file(
            "stream=alerts_v2/tenant=abc/date=2026-12-01/part-0-x.parquet",
            dir
        ));
        for bad in [
            "../outside/victim",
            "stream=alerts_v2/tenant=abc/../../x/part-0.parquet",
            "stream=alerts_v2/tenant=abc/date=2026-12-01/../part-0.parquet",
            "stream=alerts_v2/tenant=other/date=2026-12-01/part-0.parquet",
            "/etc/passwd",
            "stream=alerts_v2/tenant=abc/date=2026-12-01/x/part-0.parquet",
        ] {
            assert!(!confined_data_file(bad, dir), "{bad}");
        }
    }

    #[test]
    fn a_version_at_the_watermarks_own_instant_is_remembered() {
        // The watermark has Graph's 7 digits; the key is kept to the microsecond.
        let mut s: BTreeSet<(String, String)> = [("a".to_string(), key_time(t("2026-12-07T02:23:57.4254227Z")))].into();
        retain_from(&mut s, Some(t("2026-12-07T02:23:57.4254227Z")));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn retained_versions_start_at_the_watermark() {
        let mut s: BTreeSet<(String, String)> = [
            ("a".to_string(), "2026-12-07T10:00:00Z".to_string()),
            ("b".to_string(), "2026-12-07T11:00:00Z".to_string()),
        ]
        .into();
        retain_from(&mut s, Some(t("2026-12-07T11:00:00Z")));
        assert_eq!(s.len(), 1);
        assert!(s.iter().all(|(id, _)| id == "b"));
    }
}
