//! Advanced hunting's engine: a documented KQL subset over seeded tables (served by `graph::hunting`) that are
//! consistent with the alerts (every alert has an AlertInfo row and one AlertEvidence row per evidence item; the
//! devices, accounts and addresses in alerts appear in the Device* and IdentityLogonEvents tables around the alert).

mod eval;
/// The KQL parser, shared with the library (`secgraph-kql`).
pub use secgraph_kql::parse;
pub mod quota;
mod stories;
mod tables;
/// KQL values and column types (`secgraph-kql`).
pub use secgraph_kql::value;

pub use eval::{Context, SemanticError};
pub use parse::{SyntaxError, parse_query};
pub use tables::build_tables;

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use value::KTable;

/// Parses an ISO 8601 duration such as `P30D`, `PT12H`, `P1DT2H30M`, `P2W`.
fn iso_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut any = false;
    let mut take = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let secs = units.iter().find(|(u, _)| u.eq_ignore_ascii_case(&c))?.1;
            let n: f64 = num.parse().ok()?;
            total += Duration::milliseconds((n * secs as f64 * 1000.0) as i64);
            num.clear();
            any = true;
        }
        num.is_empty().then_some(())
    };
    take(date, &[('Y', 365 * 86400), ('M', 30 * 86400), ('W', 7 * 86400), ('D', 86400)])?;
    if let Some(t) = time {
        take(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.with_timezone(&Utc))
}

/// The Timespan forms: `P30D`, `start/end`, `P30D/end`, `start/P30D`, or a single start time. Default 30 days.
pub fn parse_timespan(s: Option<&str>, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok((now - Duration::days(30), now));
    };
    let bad =
        || format!("Invalid Timespan '{s}': use an ISO 8601 duration (P30D), start/end, duration/end, start/duration or a start time");
    let r = match s.split_once('/') {
        None => match iso_duration(s) {
            Some(d) => (now - d, now),
            None => (instant(s).ok_or_else(bad)?, now),
        },
        Some((a, b)) => match (iso_duration(a), iso_duration(b)) {
            (Some(d), None) => {
                let end = instant(b).ok_or_else(bad)?;
                (end - d, end)
            }
            (None, Some(d)) => {
                let start = instant(a).ok_or_else(bad)?;
                (start, start + d)
            }
            (None, None) => (instant(a).ok_or_else(bad)?, instant(b).ok_or_else(bad)?),
            (Some(_), Some(_)) => return Err(bad()),
        },
    };
    if r.0 > r.1 {
        return Err(format!("Invalid Timespan '{s}': the start is after the end"));
    }
    Ok(r)
}

/// What running a query gave: its table, or the semantic error, and the rows it scanned (its modelled CPU).
pub struct Outcome {
    /// The result table, or the semantic error's message.
    pub result: Result<KTable, String>,
    /// Rows scanned (see [`quota::cost_ms`]).
    pub scanned: u64,
}

/// Parses `query` and runs it over `tables` for `timespan` (default: the last 30 days) as of `now`. A syntax or
/// timespan error is `Err`; a semantic error is in the [`Outcome`].
pub fn execute(tables: &HashMap<String, KTable>, query: &str, timespan: Option<&str>, now: DateTime<Utc>) -> Result<Outcome, String> {
    let q = parse_query(query).map_err(|e| e.to_string())?;
    let (from, to) = parse_timespan(timespan, now)?;
    let ctx = Context {
        tables,
        now,
        from,
        to,
        lets: Default::default(),
        scalars: Default::default(),
        scanned: &std::cell::Cell::new(0),
    };
    let result = eval::run(&q, &ctx).map_err(|e| e.0);
    Ok(Outcome {
        result,
        scanned: ctx.scanned.get(),
    })
}

#[cfg(test)]
mod tests;
