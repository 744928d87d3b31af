//! Each operator against rows computed by hand, over two small tables.

use super::eval::{Context, run};
use super::parse::parse_query;
use super::value::{KTable, KType, KV};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap()
}

fn t(h: i64) -> KV {
    KV::Date(now() - chrono::Duration::hours(h))
}

fn s(x: &str) -> KV {
    KV::Str(x.into())
}

fn tables() -> HashMap<String, KTable> {
    let logons = KTable {
        columns: vec![
            ("Timestamp".into(), KType::DateTime),
            ("Account".into(), KType::String),
            ("Device".into(), KType::String),
            ("Ok".into(), KType::Bool),
            ("Port".into(), KType::Long),
            ("Cmd".into(), KType::String),
        ],
        rows: vec![
            vec![
                t(1),
                s("alice"),
                s("ws-1"),
                KV::Bool(true),
                KV::Long(443),
                s("powershell.exe -enc AAA"),
            ],
            vec![t(2), s("bob"), s("ws-2"), KV::Bool(false), KV::Long(80), s("cmd.exe /c whoami")],
            vec![t(3), s("Alice"), s("ws-1"), KV::Bool(false), KV::Long(445), s("net use \\\\srv")],
            vec![t(30), s("carol"), s("srv-1"), KV::Bool(true), KV::Long(3389), s("")],
            vec![t(50), s("bob"), s("ws-2"), KV::Bool(true), KV::Long(443), KV::Null],
            vec![t(24 * 40), s("dave"), s("ws-9"), KV::Bool(true), KV::Long(22), s("ssh")],
        ],
    };
    let devices = KTable {
        columns: vec![
            ("Timestamp".into(), KType::DateTime),
            ("Device".into(), KType::String),
            ("Owner".into(), KType::String),
        ],
        rows: vec![
            vec![t(5), s("ws-1"), s("alice")],
            vec![t(5), s("ws-2"), s("bob")],
            vec![t(6), s("ws-2"), s("bob2")],
        ],
    };
    HashMap::from([("Logons".to_string(), logons), ("Devices".to_string(), devices)])
}

/// Runs a query over the fixture (last 30 days).
fn result(text: &str) -> KTable {
    let tabs = tables();
    let ctx = Context {
        tables: &tabs,
        now: now(),
        from: now() - chrono::Duration::days(30),
        to: now(),
        lets: Default::default(),
        scalars: Default::default(),
        scanned: &std::cell::Cell::new(0),
    };
    let parsed = parse_query(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    run(&parsed, &ctx).unwrap_or_else(|e| panic!("{text}: {}", e.0))
}

/// Runs a query over the fixture and returns the rows as JSON arrays.
fn q(text: &str) -> Vec<Vec<Value>> {
    result(text).rows.iter().map(|r| r.iter().map(KV::to_json).collect()).collect()
}

fn col(text: &str) -> Vec<Value> {
    q(text).into_iter().map(|mut r| r.remove(0)).collect()
}

#[test]
fn operator_table() {
    let cases: Vec<(&str, Vec<Value>)> = vec![
        // The 30-day window hides dave's 40-day-old row.
        (
            "Logons | project Account",
            vec![json!("alice"), json!("bob"), json!("Alice"), json!("carol"), json!("bob")],
        ),
        ("Logons | where Account == 'alice' | project Account", vec![json!("alice")]),
        (
            "Logons | where Account != 'bob' | project Account",
            vec![json!("alice"), json!("Alice"), json!("carol")],
        ),
        (
            "Logons | where Account =~ 'ALICE' | project Account",
            vec![json!("alice"), json!("Alice")],
        ),
        (
            "Logons | where Account !~ 'alice' | project Account",
            vec![json!("bob"), json!("carol"), json!("bob")],
        ),
        ("Logons | where Port < 443 | project Port", vec![json!(80)]),
        ("Logons | where Port > 443 | project Port", vec![json!(445), json!(3389)]),
        ("Logons | where Port <= 443 and Ok | project Port", vec![json!(443), json!(443)]),
        (
            "Logons | where Port >= 445 or Account == 'bob' | project Port",
            vec![json!(80), json!(445), json!(3389), json!(443)],
        ),
        ("Logons | where not(Ok) | project Account", vec![json!("bob"), json!("Alice")]),
        ("Logons | where Cmd has 'whoami' | project Account", vec![json!("bob")]),
        ("Logons | where Cmd has 'who' | project Account", vec![]),
        (
            "Logons | where Cmd !has 'exe' | project Account",
            vec![json!("Alice"), json!("carol"), json!("bob")],
        ),
        ("Logons | where Cmd contains 'SHELL' | project Account", vec![json!("alice")]),
        ("Logons | where Cmd startswith 'cmd' | project Account", vec![json!("bob")]),
        ("Logons | where Cmd endswith 'srv' | project Account", vec![json!("Alice")]),
        (
            "Logons | where Account in ('carol', 'bob') | project Port",
            vec![json!(80), json!(3389), json!(443)],
        ),
        (
            "Logons | where Account !in ('carol', 'bob') | project Port",
            vec![json!(443), json!(445)],
        ),
        ("Logons | where Account in~ ('ALICE') | project Port", vec![json!(443), json!(445)]),
        ("Logons | where isempty(Cmd) | project Account", vec![json!("carol"), json!("bob")]),
        (
            "Logons | where isnotempty(Cmd) | project Account",
            vec![json!("alice"), json!("bob"), json!("Alice")],
        ),
        ("Logons | where Timestamp > ago(2h) | project Account", vec![json!("alice")]),
        (
            "Logons | where Timestamp < now() - 1d | project Account",
            vec![json!("carol"), json!("bob")],
        ),
        (
            "Logons | where Timestamp >= datetime(2024-05-10T09:00:00Z) | project Account",
            vec![json!("alice"), json!("bob"), json!("Alice")],
        ),
        (
            "Logons | extend A = tolower(Account) | where A == 'alice' | project Port",
            vec![json!(443), json!(445)],
        ),
        ("Logons | take 2 | project Account", vec![json!("alice"), json!("bob")]),
        ("Logons | limit 1 | project Account", vec![json!("alice")]),
        ("Logons | top 2 by Port | project Port", vec![json!(3389), json!(445)]),
        ("Logons | top 2 by Port asc | project Port", vec![json!(80), json!(443)]),
        (
            "Logons | order by Account asc, Port desc | project Port",
            vec![json!(445), json!(443), json!(443), json!(80), json!(3389)],
        ),
        (
            "Logons | sort by Timestamp | project Account",
            vec![json!("alice"), json!("bob"), json!("Alice"), json!("carol"), json!("bob")],
        ),
        (
            "Logons | distinct Device | sort by Device asc",
            vec![json!("srv-1"), json!("ws-1"), json!("ws-2")],
        ),
        ("Logons | count", vec![json!(5)]),
        ("Logons | summarize count()", vec![json!(5)]),
        ("Logons | summarize dcount(Device)", vec![json!(3)]),
        ("Logons | summarize min(Port)", vec![json!(80)]),
        ("Logons | summarize max(Port)", vec![json!(3389)]),
        ("Logons | summarize sum(Port)", vec![json!(443 + 80 + 445 + 3389 + 443)]),
        ("Logons | summarize countif(Ok)", vec![json!(3)]),
    ];
    for (text, want) in cases {
        assert_eq!(col(text), want, "{text}");
    }
}

#[test]
fn summarize_by_groups_and_names_columns() {
    let tabs = tables();
    let ctx = Context {
        tables: &tabs,
        now: now(),
        from: now() - chrono::Duration::days(30),
        to: now(),
        lets: Default::default(),
        scalars: Default::default(),
        scanned: &std::cell::Cell::new(0),
    };
    let out = run(
        &parse_query("Logons | summarize n = count(), dcount(Port), make_set(Account) by Device | sort by Device asc").unwrap(),
        &ctx,
    )
    .unwrap();
    let names: Vec<&str> = out.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Device", "n", "dcount_Port", "set_Account"]);
    let rows: Vec<Vec<Value>> = out.rows.iter().map(|r| r.iter().map(KV::to_json).collect()).collect();
    assert_eq!(
        rows,
        vec![
            vec![json!("srv-1"), json!(1), json!(1), json!(["carol"])],
            vec![json!("ws-1"), json!(2), json!(2), json!(["alice", "Alice"])],
            vec![json!("ws-2"), json!(2), json!(2), json!(["bob"])],
        ]
    );
    let by_hour = q("Logons | summarize count() by bin(Timestamp, 1d) | sort by Timestamp asc");
    assert_eq!(by_hour.len(), 3);
    assert_eq!(by_hour[2][1], json!(3));
}

#[test]
fn joins() {
    assert_eq!(
        q("Logons | where Account == 'bob' | join kind=inner (Devices) on Device | project Account, Owner, Port"),
        vec![
            vec![json!("bob"), json!("bob"), json!(80)],
            vec![json!("bob"), json!("bob2"), json!(80)],
            vec![json!("bob"), json!("bob"), json!(443)],
            vec![json!("bob"), json!("bob2"), json!(443)]
        ]
    );
    // innerunique (the default) keeps one left row per key.
    assert_eq!(
        q("Logons | where Account == 'bob' | join (Devices) on Device | project Owner"),
        vec![vec![json!("bob")], vec![json!("bob2")]]
    );
    assert_eq!(
        q(
            "Logons | join kind=leftouter (Devices | where Owner != 'bob2') on $left.Device == $right.Device | project Account, Owner, Device1"
        ),
        vec![
            vec![json!("alice"), json!("alice"), json!("ws-1")],
            vec![json!("bob"), json!("bob"), json!("ws-2")],
            vec![json!("Alice"), json!("alice"), json!("ws-1")],
            vec![json!("carol"), Value::Null, Value::Null],
            vec![json!("bob"), json!("bob"), json!("ws-2")],
        ]
    );
}

#[test]
fn syntax_and_semantic_errors_say_where() {
    let bad = [
        ("Logons | where", "end of the query"),
        ("Logons | frobnicate", "operator 'frobnicate' is not supported"),
        ("Logons | where Account = 'x'", "compare with '=='"),
        ("Logons | project Account,", "end of the query"),
        ("Logons | where Account == 'x", "unterminated string"),
        ("Logons | summarize percentile(Port, 50)", "aggregation 'percentile'"),
        ("Logons | join kind=sideways Devices on Device", "join kind 'sideways'"),
        ("Logons | where hash_md5(Cmd) == 1", "function 'hash_md5'"),
        ("Logons | join (let x = 1; Devices) on Device", "'let' statements"),
        ("Logons\n| where Port >", "line 2"),
        ("Logons | parse Cmd with * \"-enc \" Payload", "operator 'parse'"),
        ("Logons | where Port between (1, 100)", "expected '..'"),
        ("Logons | summarize arg_max(Timestamp, tolower(Account))", "column names (or *)"),
        ("Logons | where Cmd matches 'x'", "'regex' after 'matches'"),
    ];
    for (text, want) in bad {
        let e = parse_query(text).expect_err(text).to_string();
        assert!(e.contains(want), "{text}: {e}");
        assert!(e.contains("line") && e.contains("position"), "{e}");
    }
    let tabs = tables();
    let ctx = Context {
        tables: &tabs,
        now: now(),
        from: now() - chrono::Duration::days(30),
        to: now(),
        lets: Default::default(),
        scalars: Default::default(),
        scanned: &std::cell::Cell::new(0),
    };
    for (text, want) in [
        ("Nope | take 1", "Failed to resolve table"),
        ("Logons | project Nope", "Failed to resolve scalar expression named 'Nope'"),
        ("Logons | where Port == 'x'", "cannot compare"),
        ("Logons | where ago(1) > now()", "ago() needs a timespan"),
    ] {
        let e = run(&parse_query(text).unwrap(), &ctx).expect_err(text).0;
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn timespan_forms() {
    use super::parse_timespan;
    let n = now();
    let d = |y, m, dd| Utc.with_ymd_and_hms(y, m, dd, 0, 0, 0).unwrap();
    assert_eq!(parse_timespan(None, n).unwrap(), (n - chrono::Duration::days(30), n));
    assert_eq!(parse_timespan(Some("P7D"), n).unwrap(), (n - chrono::Duration::days(7), n));
    assert_eq!(parse_timespan(Some("PT12H"), n).unwrap(), (n - chrono::Duration::hours(12), n));
    assert_eq!(
        parse_timespan(Some("2024-05-01T00:00:00Z/2024-05-03T00:00:00Z"), n).unwrap(),
        (d(2024, 5, 1), d(2024, 5, 3))
    );
    assert_eq!(
        parse_timespan(Some("P2D/2024-05-03T00:00:00Z"), n).unwrap(),
        (d(2024, 5, 1), d(2024, 5, 3))
    );
    assert_eq!(
        parse_timespan(Some("2024-05-01T00:00:00Z/P2D"), n).unwrap(),
        (d(2024, 5, 1), d(2024, 5, 3))
    );
    assert_eq!(parse_timespan(Some("2024-05-01T00:00:00Z"), n).unwrap(), (d(2024, 5, 1), n));
    for bad in ["P", "7D", "yesterday", "P1D/P2D", "2024-05-03T00:00:00Z/2024-05-01T00:00:00Z"] {
        assert!(parse_timespan(Some(bad), n).is_err(), "{bad}");
    }
}

/// The column names of a query's result.
fn columns(text: &str) -> Vec<String> {
    result(text).columns.into_iter().map(|c| c.0).collect()
}

#[test]
fn project_away_keep_rename_and_has_any() {
    // A join names the right side's duplicates with a 1; msticpy's files take them away with a wildcard.
    assert_eq!(
        columns("Logons | join kind=inner (Devices) on Device | project-away *1"),
        ["Timestamp", "Account", "Device", "Ok", "Port", "Cmd", "Owner"]
    );
    assert_eq!(
        columns("Logons | project-away Cmd, P*, TimeGenerated1, TenantId"),
        ["Timestamp", "Account", "Device", "Ok"],
        "names that match no column are let through"
    );
    assert_eq!(columns("Logons | project-keep Acc*, Device"), ["Account", "Device"]);
    assert_eq!(
        columns("Logons | project-rename Who = Account | project-away Timestamp, Cmd")[0],
        "Who"
    );
    assert_eq!(
        col("Logons | where Cmd has_any ('whoami', 'ssh', 'enc') | project Account"),
        vec![json!("alice"), json!("bob")]
    );
    assert_eq!(
        col("Logons | where Cmd has_all ('cmd.exe', 'whoami') | project Account"),
        vec![json!("bob")]
    );
    assert_eq!(
        col("Logons | where Cmd has_any ('who') | project Account"),
        Vec::<Value>::new(),
        "whole terms only"
    );
    let err = parse_query("Logons | project-reorder Account").unwrap_err();
    assert!(err.message.contains("project-reorder"), "{}", err.message);
}

#[test]
fn let_statements_name_values_and_tables() {
    assert_eq!(
        col("let since = ago(90m); Logons | where Timestamp > since | project Account"),
        vec![json!("alice")],
        "a value, computed once"
    );
    assert_eq!(
        col("let ws = Logons | where Device startswith 'ws'; let bobs = ws | where Account == 'bob'; bobs | count"),
        vec![json!(2)],
        "a table, and one built on it"
    );
    assert_eq!(
        q(
            "let owners = (Devices | where Owner != 'bob2' | project Device, Owner);\nLogons | where Account == 'alice' | join kind=inner (owners) on Device | project Account, Owner"
        ),
        vec![vec![json!("alice"), json!("alice")]],
        "a named table on the right of a join"
    );
    assert_eq!(
        col("let n = 443; Logons | where Port == n | project Account"),
        vec![json!("alice"), json!("bob")]
    );
    let err = super::parse::parse_query("let x = ; Logons").unwrap_err();
    assert!(err.message.contains("expected"), "{}", err.message);
}

#[test]
fn string_and_conditional_functions() {
    assert_eq!(
        col("Logons | where Account == 'bob' | project strcat(Account, '@', Device, ':', Port)"),
        vec![json!("bob@ws-2:80"), json!("bob@ws-2:443")]
    );
    assert_eq!(
        col("Logons | where Device == 'ws-1' | project iff(Ok, 'ok', 'failed')"),
        vec![json!("ok"), json!("failed")]
    );
    assert_eq!(
        col("Logons | where Account == 'carol' | project coalesce(Cmd, 'none')"),
        vec![json!("none")]
    );
    assert_eq!(
        col("Logons | where Account == 'alice' | project substring(Cmd, 0, 10)"),
        vec![json!("powershell")]
    );
    assert_eq!(
        col("Logons | where Account == 'alice' | project substring(Cmd, 15)"),
        vec![json!("-enc AAA")]
    );
    let err = super::parse::parse_query("Logons | project iff(Ok, 1)").unwrap_err();
    assert!(err.message.contains("iff() takes 3"), "{}", err.message);
}

#[test]
fn dynamic_values_and_json_functions() {
    // Literals, indexing by name and position (negative from the end), dotted access, parse_json and extractjson.
    assert_eq!(
        col("Logons | take 1 | extend d = dynamic({\"a\": {\"b\": [10, 20, 30]}}) | project x = d.a.b[-1]"),
        vec![json!(30)]
    );
    assert_eq!(
        col("Logons | take 1 | project x = parse_json('{\"ThreatName\":\"EICAR\"}').ThreatName"),
        vec![json!("EICAR")]
    );
    assert_eq!(
        col("Logons | take 1 | project x = extractjson('$.a[1].k', '{\"a\":[{},{\"k\":\"v\"}]}', typeof(string))"),
        vec![json!("v")]
    );
    assert_eq!(
        col("Logons | take 1 | project x = array_length(pack_array(1, 'two', 3))"),
        vec![json!(3)]
    );
    assert_eq!(col("Logons | take 1 | project x = split('a.b.c', '.')[1]"), vec![json!("b")]);
    let url = col("Logons | take 1 | project u = parse_url('https://h.example:8443/p/q?url=https%3A%2F%2Fx.example&b=1#f')");
    assert_eq!(url[0]["Host"], "h.example");
    assert_eq!(url[0]["Port"], "8443");
    assert_eq!(url[0]["Query Parameters"]["url"], "https://x.example");
    assert_eq!(col("Logons | take 1 | project x = url_decode('a%20b')"), vec![json!("a b")]);
    assert_eq!(
        col("Logons | take 1 | project x = base64_decode_tostring('aGVsbG8=')"),
        vec![json!("hello")]
    );
    // `in` and `has_any` spread a dynamic list (a `let` list, as msticpy's files write them).
    assert_eq!(
        col("let ports = dynamic([80, 3389]); Logons | where Port in (ports) | project Account"),
        vec![json!("bob"), json!("carol")]
    );
    assert_eq!(
        col("let words = pack_array('whoami', 'ssh'); Logons | where Cmd has_any (words) | project Account"),
        vec![json!("bob")]
    );
}

#[test]
fn regex_between_and_case_sensitive_operators() {
    assert_eq!(
        col(r#"Logons | where Cmd matches regex @"-enc\s+[A-Z]+" | project Account"#),
        vec![json!("alice")]
    );
    assert_eq!(
        col(r#"Logons | take 1 | project x = extract(@"-enc\s+(\w+)", 1, Cmd)"#),
        vec![json!("AAA")]
    );
    assert_eq!(
        col("Logons | where Port between (400 .. 445) | project Port"),
        vec![json!(443), json!(445), json!(443)]
    );
    assert_eq!(col("Logons | where Port !between (23 .. 3388) | project Port"), vec![json!(3389)]);
    // A datetime range given as start .. duration.
    assert_eq!(
        col("Logons | where Timestamp between (ago(3h) .. 150min) | project Account"),
        vec![json!("alice"), json!("bob"), json!("Alice")]
    );
    assert_eq!(
        col("Logons | where Account contains_cs 'Ali' | project Account"),
        vec![json!("Alice")]
    );
    // `has` with punctuation at the needle's ends matches inside longer terms; a word still needs whole terms.
    assert_eq!(col(r#"Logons | where Cmd has @"\\srv" | project Account"#), vec![json!("Alice")]);
    assert_eq!(col("Logons | where Cmd has ' /c ' | project Account"), vec![json!("bob")]);
    assert_eq!(col("Logons | where Cmd has 'power' | project Account"), Vec::<Value>::new());
    assert_eq!(
        col("Logons | where Account startswith_cs 'ali' | project Account"),
        vec![json!("alice")]
    );
    assert_eq!(
        col("Logons | where Account !endswith_cs 'CE' and Account has_cs 'alice' | project Account"),
        vec![json!("alice")]
    );
}

#[test]
fn more_aggregations_and_joins() {
    // arg_max with named columns and with *, tuple names, dcountif, make_list with a cap, any.
    assert_eq!(
        q("Logons | summarize arg_max(Timestamp, Port) by Account | where Account == 'bob' | project Account, Timestamp, Port").len(),
        1
    );
    assert_eq!(
        q("Logons | where Account == 'bob' | summarize (Latest, P) = arg_max(Timestamp, Port) by Account | project P"),
        vec![vec![json!(80)]]
    );
    assert_eq!(
        columns("Logons | summarize arg_min(Port, *) by Device"),
        ["Device", "Port", "Timestamp", "Account", "Ok", "Cmd"]
    );
    assert_eq!(
        q("Logons | summarize arg_min(Port, *) by Device | where Device == 'ws-1' | project Account, Port"),
        vec![vec![json!("alice"), json!(443)]]
    );
    assert_eq!(
        q("Logons | summarize n = dcountif(Account, Ok == true), l = make_list(Port, 2), a = any(Device)"),
        vec![vec![json!(3), json!([443, 80]), json!("ws-1")]]
    );
    // Semi and anti joins keep one side; outer joins keep the unmatched rows.
    assert_eq!(
        col("Logons | join kind=leftsemi (Devices | where Owner == 'bob') on Device | project Account"),
        vec![json!("bob"), json!("bob")]
    );
    assert_eq!(
        col("Logons | join kind=leftanti Devices on Device | project Account"),
        vec![json!("carol")]
    );
    assert_eq!(
        col("Devices | join kind=rightanti Logons on Device | project Account"),
        vec![json!("carol")]
    );
    assert_eq!(
        q("Logons | join kind=fullouter (Devices | where Owner == 'alice') on Device").len(),
        5
    );
    // mv-expand: one row per element, typed after the elements.
    assert_eq!(
        col("Logons | take 1 | extend p = pack_array('a', 'b', 'c') | mv-expand p | project p"),
        vec![json!("a"), json!("b"), json!("c")]
    );
    assert_eq!(
        columns("Logons | take 1 | mv-expand x = pack_array(1, 2) limit 1 | project x"),
        ["x"]
    );
    assert_eq!(q("Logons | distinct *").len(), 5);
}
