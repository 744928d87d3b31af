//! Time expressions, as msticpy's query parameters accept them, and their rendering for OData.
//!
//! Accepted: an ISO 8601 / RFC 3339 time (`2024-05-01T10:00:00Z`, `2024-05-01T10:00:00+02:00`, `2024-05-01`),
//! `now`, a number N (now + N days), or an offset `[+-]N[unit][@unit]` with units `y mon w d h m s` (default `d`).
//! `@unit` rounds: down for negative offsets, up for positive ones (`-3d@d` is midnight three days ago).

use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

/// A unit of an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    /// Years (`y`).
    Year,
    /// Months (`mon`).
    Month,
    /// Weeks (`w`).
    Week,
    /// Days (`d`, the default).
    Day,
    /// Hours (`h`).
    Hour,
    /// Minutes (`m`).
    Minute,
    /// Seconds (`s`).
    Second,
}

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "y" | "yr" | "year" | "years" => Unit::Year,
            "mon" | "month" | "months" => Unit::Month,
            "w" | "wk" | "week" | "weeks" => Unit::Week,
            "d" | "day" | "days" | "" => Unit::Day,
            "h" | "hr" | "hour" | "hours" => Unit::Hour,
            "m" | "min" | "minute" | "minutes" => Unit::Minute,
            "s" | "sec" | "second" | "seconds" => Unit::Second,
            _ => return None,
        })
    }
}

/// Parses a time expression relative to `now`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use secgraph::query::time_expr::parse_time;
/// let now = Utc.with_ymd_and_hms(2024, 5, 10, 13, 45, 0).unwrap();
/// assert_eq!(parse_time("-3d@d", now).unwrap(), Utc.with_ymd_and_hms(2024, 5, 7, 0, 0, 0).unwrap());
/// assert_eq!(parse_time("2h", now).unwrap(), Utc.with_ymd_and_hms(2024, 5, 10, 15, 45, 0).unwrap());
/// assert_eq!(parse_time("2024-01-02T03:04:05+01:00", now).unwrap(), Utc.with_ymd_and_hms(2024, 1, 2, 2, 4, 5).unwrap());
/// ```
pub fn parse_time(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let t = parse_unchecked(input, now)?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&t.year()) {
        return Err(Error::TimeExpr {
            input: crate::error::clean(input, 100),
            message: format!("year {} is out of range ({MIN_YEAR} to {MAX_YEAR})", t.year()),
        });
    }
    Ok(t)
}

/// The range of years a time may fall in (Graph's own range is wider, but a time outside this is a typo).
const MIN_YEAR: i32 = 1900;
const MAX_YEAR: i32 = 9999;

fn parse_unchecked(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let s = input.trim();
    let fail = |m: &str| Error::TimeExpr {
        input: crate::error::clean(input, 100),
        message: m.to_string(),
    };
    if s.is_empty() {
        return Err(fail("empty"));
    }
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.with_timezone(&Utc));
    }
    // ISO 8601 with a space instead of T, or without an offset (taken as UTC).
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Ok(Utc.from_utc_datetime(&n));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).ok_or_else(|| fail("invalid date"))?));
    }
    if let Some(why) = bad_date(s) {
        return Err(fail(&why));
    }
    if let Ok(n) = s.parse::<f64>() {
        if !n.is_finite() || n.abs() > 36_500.0 {
            return Err(fail("number of days out of range"));
        }
        return Ok(now + Duration::milliseconds((n * 86_400_000.0) as i64));
    }
    let (offset, round) = match s.split_once('@') {
        Some((o, r)) => (
            o,
            Some(
                Unit::parse(r)
                    .filter(|_| !r.is_empty())
                    .ok_or_else(|| fail(&format!("unknown rounding unit '@{r}'")))?,
            ),
        ),
        None => (s, None),
    };
    let (sign, rest) = match offset.as_bytes().first() {
        Some(b'-') => (-1i64, &offset[1..]),
        Some(b'+') => (1, &offset[1..]),
        _ => (1, offset),
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return Err(fail("not a time, a number or an offset"));
    }
    let n: i64 = rest[..digits].parse().map_err(|_| fail("number too large"))?;
    let unit = Unit::parse(&rest[digits..]).ok_or_else(|| fail(&format!("unknown unit '{}'", &rest[digits..])))?;
    let shifted = shift(now, sign * n, unit).ok_or_else(|| fail("offset out of range"))?;
    Ok(match round {
        None => shifted,
        Some(u) => round_to(shifted, u, sign >= 0).ok_or_else(|| fail("cannot round"))?,
    })
}

/// For text that starts like a date (`2026-13-01…`) but did not parse: which part is wrong.
fn bad_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let looks_like_date = b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-';
    if !looks_like_date {
        return None;
    }
    let year: i32 = s[..4].parse().ok()?;
    let month: u32 = s[5..7].parse().ok()?;
    let day: u32 = s[8..10].parse().ok()?;
    Some(if !(1..=12).contains(&month) {
        format!("month {month} is out of range (1 to 12)")
    } else if NaiveDate::from_ymd_opt(year, month, day).is_none() {
        format!("day {day} is not a day of {year}-{month:02}")
    } else {
        "not a valid ISO 8601 time (expected e.g. 2024-05-01, 2024-05-01T10:00:00Z or 2024-05-01T10:00:00+02:00)".into()
    })
}

fn shift(t: DateTime<Utc>, n: i64, unit: Unit) -> Option<DateTime<Utc>> {
    let months = |m: i64| -> Option<DateTime<Utc>> {
        let m32 = u32::try_from(m.unsigned_abs()).ok()?;
        if m >= 0 {
            t.checked_add_months(Months::new(m32))
        } else {
            t.checked_sub_months(Months::new(m32))
        }
    };
    match unit {
        Unit::Year => months(n.checked_mul(12)?),
        Unit::Month => months(n),
        Unit::Week => t.checked_add_signed(Duration::try_weeks(n)?),
        Unit::Day => t.checked_add_signed(Duration::try_days(n)?),
        Unit::Hour => t.checked_add_signed(Duration::try_hours(n)?),
        Unit::Minute => t.checked_add_signed(Duration::try_minutes(n)?),
        Unit::Second => t.checked_add_signed(Duration::try_seconds(n)?),
    }
}

/// Rounds down to the start of `unit`, or up to the start of the next one when `up` (and not already on it).
fn round_to(t: DateTime<Utc>, unit: Unit, up: bool) -> Option<DateTime<Utc>> {
    let d = t.date_naive();
    let floor = match unit {
        Unit::Year => Utc.with_ymd_and_hms(t.year(), 1, 1, 0, 0, 0).single()?,
        Unit::Month => Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0).single()?,
        Unit::Week => Utc.from_utc_datetime(&(d - Duration::days(d.weekday().num_days_from_monday() as i64)).and_hms_opt(0, 0, 0)?),
        Unit::Day => Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?),
        Unit::Hour => Utc.from_utc_datetime(&d.and_hms_opt(t.hour(), 0, 0)?),
        Unit::Minute => Utc.from_utc_datetime(&d.and_hms_opt(t.hour(), t.minute(), 0)?),
        Unit::Second => Utc.from_utc_datetime(&d.and_hms_opt(t.hour(), t.minute(), t.second())?),
    };
    if !up || floor == t {
        return Some(floor);
    }
    shift(floor, 1, unit)
}

/// Renders a time for OData: UTC, `YYYY-MM-DDTHH:MM:SSZ`, with up to seven fractional digits when non-zero.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2024, 5, 10, 13, 45, 0).unwrap();
/// assert_eq!(secgraph::query::time_expr::odata_time(t), "2024-05-10T13:45:00Z");
/// ```
pub fn odata_time(t: DateTime<Utc>) -> String {
    let ticks = t.timestamp_subsec_nanos() / 100;
    if ticks == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        let frac = format!("{ticks:07}");
        format!("{}.{}Z", t.format("%Y-%m-%dT%H:%M:%S"), frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 10, 13, 45, 30).unwrap()
    }

    #[test]
    fn offsets_and_rounding() {
        let n = now();
        let t = |s: &str| parse_time(s, n).unwrap();
        assert_eq!(t("now"), n);
        assert_eq!(t("-7"), n - Duration::days(7));
        assert_eq!(t("-7d"), n - Duration::days(7));
        assert_eq!(t("1.5"), n + Duration::hours(36));
        assert_eq!(t("-2h@h"), Utc.with_ymd_and_hms(2024, 5, 10, 11, 0, 0).unwrap());
        assert_eq!(t("+1d@d"), Utc.with_ymd_and_hms(2024, 5, 12, 0, 0, 0).unwrap());
        assert_eq!(t("-1mon"), Utc.with_ymd_and_hms(2024, 4, 10, 13, 45, 30).unwrap());
        assert_eq!(t("-1y@y"), Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(t("-1w@w"), Utc.with_ymd_and_hms(2024, 4, 29, 0, 0, 0).unwrap());
        assert_eq!(t("-30m"), n - Duration::minutes(30));
        assert_eq!(t("10s"), n + Duration::seconds(10));
        assert_eq!(t("2024-05-01"), Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap());
        assert_eq!(t("2024-05-01 10:00:00"), Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap());
    }

    #[test]
    fn malformed_inputs_name_the_accepted_forms() {
        for bad in [
            "",
            "yesterday",
            "-3x",
            "-d",
            "--3d",
            "-3d@q",
            "1e400",
            "-99999999999y",
            "2024-13-01T00:00:00Z",
        ] {
            let e = parse_time(bad, now()).unwrap_err().to_string();
            assert!(e.contains("Accepted:"), "{bad}: {e}");
        }
    }

    #[test]
    fn odata_rendering_round_trips() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..500 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let secs = (seed >> 33) as i64 % 4_000_000_000;
            let ticks = (seed % 10_000_000) as u32;
            let t = Utc.timestamp_opt(secs, ticks * 100).unwrap();
            let s = odata_time(t);
            assert!(s.ends_with('Z') && !s.contains('+'), "{s}");
            assert_eq!(parse_time(&s, now()).unwrap(), t, "{s}");
        }
    }
}
