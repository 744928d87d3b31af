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
    let e = q.render(&[("titel".into(), "a".into())], now()).unwrap_err().to_string();
    assert!(e.contains("Did you mean 'title'"), "{e}");
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
