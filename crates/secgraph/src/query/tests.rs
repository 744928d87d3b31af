use super::*;
use chrono::{DateTime, TimeZone, Utc};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap()
}

const FILE: &str = r#"
metadata:
  version: 1
  data_environments: [SecurityGraph]
  data_families: [Test]
defaults:
  parameters:
    start: {description: from, type: datetime, default: -1d}
sources:
  q:
    description: test
    args:
      query: "/security/alerts?$filter=createdDateTime ge {start} and title eq '{title}'{sev} {{x}}"
    parameters:
      title: {description: t, type: str, aliases: [name]}
      sev: {description: s, type: list, default: '', format: " and severity in ({})"}
"#;

#[test]
fn renders_and_escapes_literals() {
    let mut s = QueryStore::default();
    s.add_file(FILE, "test").unwrap();
    let q = s.get("q").unwrap();
    let r = q.render(&[("name".into(), "x') or true or ('".into())], now()).unwrap();
    assert_eq!(
        r.text,
        "/security/alerts?$filter=createdDateTime ge 2024-05-09T12:00:00Z and title eq 'x'') or true or (''' {x}"
    );
    let r = q
        .render(&[("title".into(), "a".into()), ("sev".into(), "high,o'k".into())], now())
        .unwrap();
    assert!(r.text.ends_with("title eq 'a' and severity in ('high', 'o''k') {x}"), "{}", r.text);
}

#[test]
fn errors_name_the_problem() {
    let mut s = QueryStore::default();
    s.add_file(FILE, "test").unwrap();
    let q = s.get("Test.q").unwrap();
    let e = q.render(&[], now()).unwrap_err().to_string();
    assert!(e.contains("needs parameter(s): title"), "{e}");
    let e = q.render_strict(&[("titel".into(), "a".into())], now()).unwrap_err().to_string();
    assert!(e.contains("Did you mean 'title'"), "{e}");
    // Without strictness an undeclared name is ignored (msticpy's pivots pass many), and reported with a suggestion.
    let typo = [("title".into(), "a".into()), ("titel".into(), "b".into())];
    assert_eq!(q.unknown_parameters(&typo), vec![("titel".to_string(), Some("title".to_string()))]);
    let r = q.render(&typo, now()).unwrap();
    assert!(r.text.contains("'a'") && !r.text.contains("'b'"), "{}", r.text);
    let e = q
        .render(&[("title".into(), "a".into()), ("start".into(), "soon".into())], now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Accepted:"), "{e}");
    let e = s.get("qq").unwrap_err().to_string();
    assert!(e.contains("Did you mean 'Test.q'"), "{e}");
    let bad = FILE.replace("{sev}", "{nope}");
    let e = QueryStore::default().add_file(&bad, "bad.yaml").unwrap_err().to_string();
    assert!(e.contains("bad.yaml") && e.contains("{nope}"), "{e}");
    let e = QueryStore::default()
        .add_file("metadata: [1\n", "broken.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.yaml") && e.contains("line"), "{e}");
}

#[test]
fn other_environments_are_skipped_and_overrides_reported() {
    let mut s = QueryStore::default();
    assert!(s.add_file(&FILE.replace("SecurityGraph", "MSSentinel"), "x").unwrap().is_empty());
    assert!(s.all().is_empty());
    s.add_file(FILE, "a").unwrap();
    assert_eq!(s.add_file(FILE, "b").unwrap(), vec!["Test.q".to_string()]);
    assert_eq!(s.get("Test.q").unwrap().origin, "b");
}

#[test]
fn builtins_load() {
    let s = QueryStore::builtin().unwrap();
    assert!(s.get("SecurityGraphAlert.list_alerts").is_ok());
    assert!(s.get("Alerts.list").is_ok());
}

/// A msticpy M365D-style file: hunting environments, no `query_language`, `start`/`end` without defaults.
const M365D_FILE: &str = r#"
metadata:
  version: 1
  description: M365D Queries
  data_environments: [MDATP, MDE, M365D, M365DGraph, LogAnalytics]
  data_families: [M365D]
defaults:
  parameters:
    table: {description: Table name, type: str, default: "AlertInfo"}
    start: {description: Query start time, type: datetime}
    end: {description: Query end time, type: datetime}
    add_query_items: {description: Additional query clauses, type: str, default: ""}
sources:
  list_alerts:
    description: Retrieves list of alerts
    args:
      query: "
        {table}
        | where Timestamp >= datetime({start})
        | where Timestamp <= datetime({end})
        {add_query_items}"
"#;

#[test]
fn files_are_routed_by_their_data_environments() {
    let mut s = QueryStore::default();
    assert_eq!(
        s.load_file(M365D_FILE, "m365d.yaml").unwrap(),
        FileOutcome::Loaded { overridden: vec![] }
    );
    let q = s.get("M365D.list_alerts").unwrap();
    assert_eq!(q.language, Language::Kql, "hunting environments are KQL for runHuntingQuery");
    // msticpy supplies both ends of the range: one day before now to one day after.
    let r = q.render(&[], now()).unwrap();
    assert!(r.text.starts_with("AlertInfo"), "{}", r.text);
    assert!(
        r.text.contains("Timestamp >= datetime(20") && !r.text.contains("datetime(datetime("),
        "{}",
        r.text
    );
    let timespan = r.timespan.clone().expect("a hunting Timespan from start/end");
    let day = |d: i64| (now() + chrono::Duration::days(d)).format("%Y-%m-%dT%H:%M:%S").to_string();
    let (start, end) = timespan.split_once('/').expect("start/end");
    assert!(start.starts_with(&day(-1)) && end.starts_with(&day(1)), "{timespan}");

    // An OData environment stays OData; an explicit language wins over the environment.
    let odata = M365D_FILE
        .replace("[MDATP, MDE, M365D, M365DGraph, LogAnalytics]", "[SecurityGraph]")
        .replace("M365D]", "Odata]");
    s.load_file(&odata, "odata.yaml").unwrap();
    assert_eq!(s.get("Odata.list_alerts").unwrap().language, Language::OData);

    // Files for environments this provider does not serve are skipped, saying why.
    let la = M365D_FILE
        .replace("[MDATP, MDE, M365D, M365DGraph, LogAnalytics]", "[LogAnalytics]")
        .replace("M365D]", "LA]");
    match s.load_file(&la, "la.yaml").unwrap() {
        FileOutcome::Skipped(why) => assert!(why.contains("LogAnalytics") && why.contains("not served"), "{why}"),
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(s.get("LA.list_alerts").is_err());
}

#[test]
fn declared_values_are_checked_and_written_as_graph_spells_them() {
    let s = QueryStore::builtin().unwrap();
    let q = s.get("Alerts.list").unwrap();
    let e = q.render(&[("severity".into(), "hgih".into())], now()).unwrap_err().to_string();
    assert!(
        e.contains("'hgih' is not one of its values") && e.contains("Did you mean 'high'?"),
        "{e}"
    );
    // Graph compares enumerations case-sensitively: the declared spelling is what is sent.
    let r = q
        .render(
            &[("severity".into(), "HIGH,Medium".into()), ("status".into(), "inprogress".into())],
            now(),
        )
        .unwrap();
    assert!(
        r.text.contains("severity in ('high', 'medium')") && r.text.contains("status in ('inProgress')"),
        "{}",
        r.text
    );
    let i = s.get("Incidents.list").unwrap();
    let e = i.render(&[("status".into(), "new".into())], now()).unwrap_err().to_string();
    assert!(
        e.contains("active, inProgress, resolved"),
        "an incident's statuses are its own: {e}"
    );
}
