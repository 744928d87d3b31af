//! The emulator's KQL-subset parser: a query or a syntax error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = secgraph_emulator::hunting::parse_query(text);
});
