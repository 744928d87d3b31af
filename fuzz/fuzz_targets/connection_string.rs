//! Connection strings: parsed or refused, never a panic, never a value in the error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = secgraph::config::parse_connection_string(text) {
        let msg = e.to_string();
        assert!(!msg.chars().any(char::is_control), "control characters in {msg:?}");
        let keys: Vec<&str> = text.split(';').filter_map(|p| p.split_once('=')).map(|(k, _)| k.trim()).collect();
        for pair in text.split(';') {
            if let Some((_, v)) = pair.split_once('=') {
                let v = v.trim().trim_matches(['"', '\'']);
                let is_also_a_key = keys.iter().any(|k| k.contains(v));
                // Only values that could not be a piece of the fixed message text (which is lower-case words,
                // digits and a little punctuation) are checked.
                let secret_like = v.chars().any(|c| c.is_ascii_uppercase() || "!#$%&*+-./:<>?@[]^{|}~".contains(c));
                assert!(v.len() < 12 || !secret_like || is_also_a_key || !msg.contains(v), "value quoted in {msg}");
            }
        }
    }
});
