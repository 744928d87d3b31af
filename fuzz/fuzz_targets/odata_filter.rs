//! The emulator's OData `$filter` parser and evaluator: an expression or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = secgraph_emulator::odata::parse_filter(text) {
        let item = serde_json::json!({
            "id": "1", "title": "x", "severity": "high", "createdDateTime": "2026-12-01T00:00:00Z",
            "evidence": [{"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "ws-1"}],
            "comments": [], "riskScore": 5
        });
        let _ = secgraph_emulator::odata::matches(&expr, &item);
    }
});
