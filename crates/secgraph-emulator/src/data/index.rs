//! Creation and update times of a collection's items, by position, so that a `$filter` on a time range looks at the
//! items in that range rather than at the whole collection.
//!
//! Times are kept as ticks (100 ns since the Unix epoch: Graph's seven fractional digits). Items whose time cannot be
//! read are kept at `i64::MIN` (they sort first and fall outside every lower bound, as a null does in OData).

use super::Item;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeSet;

/// Ticks (100 ns) since the Unix epoch.
pub fn ticks(t: DateTime<Utc>) -> i64 {
    t.timestamp()
        .saturating_mul(10_000_000)
        .saturating_add(i64::from(t.timestamp_subsec_nanos() / 100))
}

fn ticks_of(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(i64::MIN, |d| ticks(d.with_timezone(&Utc)))
}

/// The time index of one collection.
#[derive(Debug, Clone)]
pub struct TimeIndex {
    created: Vec<i64>,
    updated: Vec<i64>,
    by_updated: BTreeSet<(i64, u32)>,
    /// Whether `created` is in collection order (seeded items are; an item added with an older time breaks it, and
    /// range lookups on creation time then fall back to a scan).
    created_sorted: bool,
}

impl Default for TimeIndex {
    fn default() -> TimeIndex {
        TimeIndex {
            created: Vec::new(),
            updated: Vec::new(),
            by_updated: BTreeSet::new(),
            created_sorted: true,
        }
    }
}

/// Inclusive bounds in ticks (`None`: open).
pub type Range = (Option<i64>, Option<i64>);

impl TimeIndex {
    /// Adds the times of the item appended at the next position.
    pub fn push(&mut self, created: DateTime<Utc>, updated: DateTime<Utc>) {
        self.push_ticks(ticks(created), ticks(updated));
    }

    fn push_ticks(&mut self, created: i64, updated: i64) {
        let pos = self.created.len() as u32;
        if self.created.last().is_some_and(|last| *last > created) {
            self.created_sorted = false;
        }
        self.created.push(created);
        self.updated.push(updated);
        self.by_updated.insert((updated, pos));
    }

    /// Re-reads the times of the item at `pos` (after a write). An item past the end is appended.
    pub fn reread(&mut self, pos: usize, item: &Item) {
        let p = item.props(&["createdDateTime", "lastUpdateDateTime"]);
        let (created, updated) = (ticks_of(p.get("createdDateTime")), ticks_of(p.get("lastUpdateDateTime")));
        if pos >= self.created.len() {
            self.push_ticks(created, updated);
            return;
        }
        if self.created[pos] != created {
            self.created[pos] = created;
            let sorted_here =
                (pos == 0 || self.created[pos - 1] <= created) && self.created.get(pos + 1).is_none_or(|next| created <= *next);
            self.created_sorted &= sorted_here;
        }
        let old = self.updated[pos];
        if old != updated {
            self.by_updated.remove(&(old, pos as u32));
            self.by_updated.insert((updated, pos as u32));
            self.updated[pos] = updated;
        }
    }

    /// How many items the index holds.
    pub fn len(&self) -> usize {
        self.created.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
    }

    /// The creation time (ticks) of the item at `pos`.
    pub fn created(&self, pos: usize) -> i64 {
        self.created.get(pos).copied().unwrap_or(i64::MIN)
    }

    /// The last-update time (ticks) of the item at `pos`.
    pub fn updated(&self, pos: usize) -> i64 {
        self.updated.get(pos).copied().unwrap_or(i64::MIN)
    }

    /// Positions `[from, to)` that can hold items created within `range`, when creation times are in collection
    /// order; `None` when they are not (scan everything).
    pub fn created_span(&self, range: Range) -> Option<(usize, usize)> {
        if !self.created_sorted {
            return None;
        }
        let from = range.0.map_or(0, |lo| self.created.partition_point(|t| *t < lo));
        let to = range.1.map_or(self.created.len(), |hi| self.created.partition_point(|t| *t <= hi));
        Some((from, to.max(from)))
    }

    /// Positions of the items last updated within `range`, in collection order, from position `from` on.
    pub fn updated_positions(&self, range: Range, from: usize) -> Vec<usize> {
        let lo = (range.0.unwrap_or(i64::MIN), 0u32);
        let hi = (range.1.unwrap_or(i64::MAX), u32::MAX);
        if lo > hi {
            return Vec::new();
        }
        let mut out: Vec<usize> = self
            .by_updated
            .range(lo..=hi)
            .map(|(_, p)| *p as usize)
            .filter(|p| *p >= from)
            .collect();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ranges_find_the_positions_and_follow_writes() {
        let mut ix = TimeIndex::default();
        ix.push(t("2026-01-01T00:00:00Z"), t("2026-01-05T00:00:00Z"));
        ix.push(t("2026-01-02T00:00:00Z"), t("2026-01-02T00:00:00Z"));
        ix.push(t("2026-01-03T00:00:00Z"), t("2026-01-04T00:00:00Z"));
        let r = |a: &str, b: &str| (Some(ticks(t(a))), Some(ticks(t(b))));
        assert_eq!(ix.created_span(r("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z")), Some((1, 3)));
        assert_eq!(ix.created_span((Some(ticks(t("2027-01-01T00:00:00Z"))), None)), Some((3, 3)));
        assert_eq!(
            ix.updated_positions(r("2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"), 0),
            vec![0, 2]
        );
        assert_eq!(ix.updated_positions(r("2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"), 1), vec![2]);

        let moved = Item::new(json!({"createdDateTime": "2026-01-02T00:00:00Z", "lastUpdateDateTime": "2026-02-01T00:00:00.0000001Z"}));
        ix.reread(1, &moved);
        assert_eq!(
            ix.updated_positions((Some(ticks(t("2026-02-01T00:00:00.0000001Z"))), None), 0),
            vec![1]
        );
        assert_eq!(
            ix.updated_positions(r("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"), 0),
            Vec::<usize>::new()
        );

        let older = Item::new(json!({"createdDateTime": "2025-01-01T00:00:00Z", "lastUpdateDateTime": "2025-01-01T00:00:00Z"}));
        ix.reread(3, &older);
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.created_span((None, None)), None, "out-of-order creation times turn the span off");
    }
}
