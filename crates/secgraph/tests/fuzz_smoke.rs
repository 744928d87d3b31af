//! Short, deterministic versions of the cargo-fuzz targets in `fuzz/` (see docs/RELIABILITY.md): seeded mutations
//! of typical inputs, each checked against the same oracle as its fuzz target. They run in the normal suite so a
//! regression shows up without a fuzzing session.

use chrono::{Datelike, TimeZone};
use secgraph::output::RowSink;

/// A xorshift generator: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `rounds` mutations of each seed: characters from `alphabet` inserted, deleted, replaced, or spans repeated.
fn mutations(seeds: &[&str], alphabet: &str, rounds: usize, mut check: impl FnMut(&str)) {
    let alphabet: Vec<char> = alphabet.chars().collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in seeds {
        check(seed);
        for _ in 0..rounds {
            let mut s: Vec<char> = seed.chars().collect();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(s.len() + 1);
                let c = alphabet[rng.below(alphabet.len())];
                match rng.below(4) {
                    0 => s.insert(at, c),
                    1 if at < s.len() => {
                        s.remove(at);
                    }
                    2 if at < s.len() => s[at] = c,
                    _ => {
                        let end = (at + rng.below(8)).min(s.len());
                        let span: Vec<char> = s[at..end].to_vec();
                        for (i, ch) in span.into_iter().enumerate() {
                            s.insert(end + i, ch);
                        }
                    }
                }
            }
            check(&s.into_iter().collect::<String>());
        }
    }
}

#[test]
fn connection_strings() {
    mutations(
        &[
            "tenant_id=t1;client_id='c1';client_secret=\"a=b\"",
            "TenantId = x ; ClientSecret=hunter2hunter2",
        ],
        ";='\" \x1b\nabc_Tenant",
        3000,
        |s| {
            if let Err(e) = secgraph::config::parse_connection_string(s) {
                let msg = e.to_string();
                assert!(!msg.chars().any(char::is_control), "{msg:?}");
                assert!(!msg.contains("hunter2hunter2"), "{msg}");
            }
        },
    );
}

#[test]
fn time_expressions() {
    let now = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
    mutations(
        &["-7d@d", "2024-05-01T10:00:00+02:00", "+3mon@w", "now", "-1.5", "99999999999999y"],
        "+-@0123456789ydhmswTZ:.e ",
        3000,
        |s| {
            if let Ok(t) = secgraph::query::time_expr::parse_time(s, now) {
                assert!((1900..=9999).contains(&t.year()), "{s} → {t}");
            }
        },
    );
}

#[test]
fn template_values_stay_in_their_literal() {
    let file = "metadata:\n  data_environments: [SecurityGraph]\n  data_families: [Fz]\ndefaults:\n  parameters:\n    v: {description: value, type: str}\nsources:\n  odata:\n    description: d\n    args: {query: \"/security/alerts_v2?$filter=title eq '{v}' and severity eq 'high'\"}\n  kql:\n    description: d\n    args: {query: 'AlertInfo | where Title == \"{v}\" | take 5', language: kql}\n  verbatim:\n    description: d\n    args: {query: \"AlertInfo | where Title == @'{v}' | take 5\", language: kql}\n  backticks:\n    description: d\n    args: {query: \"AlertInfo | where Title == ```{v}``` | take 5\", language: kql}\n";
    let mut store = secgraph::query::QueryStore::default();
    store.add_file(file, "fz.yaml").unwrap();
    let now = chrono::Utc::now();
    // "\0\r\n" is a crash the template_render fuzz target found (the emulator's KQL lexer read `\r` as `r`).
    mutations(
        &["x' or true or '", "a\\\"b", "@'q''", "\0\r\n"],
        "'\"\\@`{}() or\n\r\0\t",
        1500,
        |v| {
            let values = [("v".to_string(), v.to_string())];
            let r = store.get("Fz.odata").unwrap().render(&values, now).unwrap();
            let filter = r.text.split_once("$filter=").unwrap().1;
            let dbg = format!("{:?}", secgraph_emulator::odata::parse_filter(filter).unwrap());
            assert!(dbg.contains(&format!("{v:?}")) && dbg.contains("\"high\""), "{v:?}: {dbg}");
            for q in ["Fz.kql", "Fz.verbatim", "Fz.backticks"] {
                if let Ok(r) = store.get(q).unwrap().render(&values, now) {
                    let parsed = secgraph_emulator::hunting::parse_query(&r.text).unwrap_or_else(|e| panic!("{q} {v:?}: {e:?}"));
                    assert!(format!("{parsed:?}").contains(&format!("Str({v:?})")), "{q} {v:?}");
                }
            }
        },
    );
}

#[test]
fn odata_filters() {
    let item = serde_json::json!({"id": "1", "title": "x", "severity": "high", "evidence": [{"deviceDnsName": "ws"}]});
    mutations(
        &[
            "severity eq 'high' and evidence/any(e:e/deviceDnsName eq 'ws')",
            "createdDateTime ge 2024-01-01T00:00:00Z or contains(title,'x')",
            "not (status in ('new','inProgress'))",
        ],
        "()'/:, andornoteqgeany",
        3000,
        |s| {
            if let Ok(e) = secgraph_emulator::odata::parse_filter(s) {
                let _ = secgraph_emulator::odata::matches(&e, &item);
            }
        },
    );
}

#[test]
fn kql_queries() {
    mutations(
        &[
            "AlertInfo | where Severity == 'High' and Title has @'x''y' | summarize n=count() by Severity | take 5",
            "AlertEvidence | where Timestamp > ago(7d) | project AlertId, DeviceName | join kind=inner (AlertInfo) on AlertId",
        ],
        "|()'\"@`=!~,.; abc123",
        2000,
        |s| {
            let _ = secgraph_emulator::hunting::parse_query(s);
        },
    );
}

#[test]
fn graph_pages() {
    mutations(
        &[
            r#"{"value":[{"id":"1","evidence":[{"a":{"b":1}}],"n":null}],"@odata.nextLink":"https://x/v1.0/a","@odata.count":3}"#,
            r#"{"id":"x","@odata.context":"c","nested":{"deep":[1,2,{"k":"v"}]}}"#,
        ],
        "{}[]\":,0123456789.-eE nulltrue",
        3000,
        |s| {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(s) else {
                return;
            };
            if let Ok(page) = secgraph::graph::Page::from_reply(v) {
                let mut t = secgraph::output::Table::default();
                let _ = t.page(page.rows);
                let _ = t.finish();
            }
        },
    );
}
