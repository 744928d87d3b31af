//! Time expressions: a time within the accepted years, or an error; never a panic or an overflow.
#![no_main]
use chrono::{Datelike, TimeZone};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
    if let Ok(t) = secgraph::query::time_expr::parse_time(text, now) {
        assert!((1900..=9999).contains(&t.year()), "{text} → {t}");
    }
});
