//! Graph page JSON: read into rows and flattened into a table, or refused; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use secgraph::output::RowSink;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(page) = secgraph::graph::Page::from_reply(reply) {
        let mut t = secgraph::output::Table::default();
        let _ = t.page(page.rows);
        let _ = t.finish();
        let _ = t.columns.len();
    }
});
