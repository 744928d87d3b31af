//! Settings YAML: parsing and every accessor a connection uses must return, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(s) = secgraph::config::Settings::from_yaml(text, "fuzz.yaml") {
        let _ = s.provider_args(None);
        let _ = s.azure();
        let _ = s.http_timeout();
        let _ = s.proxy();
        let _ = s.instances();
    }
});
