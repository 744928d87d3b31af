//! Template rendering with hostile values: the rendered OData parses in the emulator's parser with the whole value
//! in one literal; the rendered KQL parses with the value in one string (or the value is refused with an error).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const FILE: &str = r#"
metadata:
  data_environments: [SecurityGraph]
  data_families: [Fz]
defaults:
  parameters:
    v: {description: value, type: str}
sources:
  odata:
    description: d
    args: {query: "/security/alerts_v2?$filter=title eq '{v}' and severity eq 'high'"}
  kql:
    description: d
    args: {query: 'AlertInfo | where Title == "{v}" | take 5', language: kql}
  verbatim:
    description: d
    args: {query: "AlertInfo | where Title == @'{v}' | take 5", language: kql}
  backticks:
    description: d
    args: {query: "AlertInfo | where Title == ```{v}``` | take 5", language: kql}
"#;

fn store() -> &'static secgraph::query::QueryStore {
    static S: OnceLock<secgraph::query::QueryStore> = OnceLock::new();
    S.get_or_init(|| {
        let mut s = secgraph::query::QueryStore::default();
        s.add_file(FILE, "fuzz.yaml").unwrap();
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = std::str::from_utf8(data) else { return };
    let now = chrono::Utc::now();
    let values = [("v".to_string(), v.to_string())];
    let r = store().get("Fz.odata").unwrap().render(&values, now).unwrap();
    let filter = r.text.split_once("$filter=").unwrap().1;
    let parsed = secgraph_emulator::odata::parse_filter(filter).expect("rendered OData parses");
    let dbg = format!("{parsed:?}");
    assert!(dbg.contains(&format!("{v:?}")) && dbg.contains("\"high\""), "{v:?} escaped its literal: {dbg}");
    for q in ["Fz.kql", "Fz.verbatim", "Fz.backticks"] {
        if let Ok(r) = store().get(q).unwrap().render(&values, now) {
            let parsed = secgraph_emulator::hunting::parse_query(&r.text).expect("rendered KQL parses");
            assert_eq!(parsed.stages.len(), 2, "{q} {v:?}: {parsed:?}");
            assert!(format!("{parsed:?}").contains(&format!("Str({v:?})")), "{q} {v:?}: {parsed:?}");
        }
    }
});
