//! A small JSON object writer: alerts are written straight into a page's buffer (no `Value` tree), which is what
//! lets the emulator keep a million alerts as a few bytes of facts each and still serve them faster than a client
//! reads them. Keys are written in the order they are given (Graph's order).

use std::fmt::Write as _;

/// Whether any byte of `s` needs escaping in JSON (a control character, `"` or `\\`), eight bytes at a time.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // A byte below 0x20 (bytes of 0x80 and up are UTF-8, never escaped), or equal to '"' or '\\'.
        let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGHS != 0;
        if below_space || has_zero(x ^ (ONES * u64::from(b'"'))) || has_zero(x ^ (ONES * u64::from(b'\\'))) {
            return true;
        }
    }
    chunks.remainder().iter().any(|b| *b < 0x20 || *b == b'"' || *b == b'\\')
}

/// Writes a JSON string (quoted, escaped).
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Rare (paths with backslashes, quoted command lines): serde_json's escaping.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Writes `"YYYY-MM-DDTHH:MM:SS.fffffffZ"`.
pub(super) fn time(out: &mut Vec<u8>, t: chrono::DateTime<chrono::Utc>) {
    use chrono::{Datelike, Timelike};
    let digits = |n: u32, width: usize, out: &mut Vec<u8>| {
        let mut buf = [b'0'; 10];
        let mut n = n;
        for i in (0..width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&buf[..width]);
    };
    out.push(b'"');
    digits(t.year().clamp(0, 9999) as u32, 4, out);
    out.push(b'-');
    digits(t.month(), 2, out);
    out.push(b'-');
    digits(t.day(), 2, out);
    out.push(b'T');
    digits(t.hour(), 2, out);
    out.push(b':');
    digits(t.minute(), 2, out);
    out.push(b':');
    digits(t.second(), 2, out);
    out.push(b'.');
    digits((t.timestamp_subsec_nanos() / 100).min(9_999_999), 7, out);
    out.extend_from_slice(b"Z\"");
}

/// One JSON object being written: `key` writes the separator and the key, the caller the value (or one of the
/// typed helpers does both).
pub(super) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes `,"key":` and hands back the buffer for the value.
    pub(super) fn key(&mut self, k: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(b':');
        self.out
    }

    pub(super) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        string(self.key(k), v);
        self
    }

    pub(super) fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    pub(super) fn null(&mut self, k: &str) -> &mut Self {
        self.raw(k, "null")
    }

    /// A value already in JSON form (`[]`, `{}`, a number).
    pub(super) fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k).extend_from_slice(json.as_bytes());
        self
    }

    /// A timestamp as Graph writes it (UTC, seven fractional digits), without formatting machinery.
    pub(super) fn time(&mut self, k: &str, t: chrono::DateTime<chrono::Utc>) -> &mut Self {
        time(self.key(k), t);
        self
    }

    pub(super) fn opt_time(&mut self, k: &str, t: Option<chrono::DateTime<chrono::Utc>>) -> &mut Self {
        match t {
            Some(t) => self.time(k, t),
            None => self.null(k),
        }
    }

    pub(super) fn num(&mut self, k: &str, n: impl std::fmt::Display) -> &mut Self {
        let mut s = String::new();
        let _ = write!(s, "{n}");
        self.raw(k, &s)
    }

    pub(super) fn strs(&mut self, k: &str, items: &[&str]) -> &mut Self {
        let out = self.key(k);
        out.push(b'[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, s);
        }
        out.push(b']');
        self
    }

    /// A nested object, written by `f`.
    pub(super) fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        let mut inner = Obj::new(self.key(k));
        f(&mut inner);
        inner.end();
        self
    }

    pub(super) fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_escaped_json_in_key_order() {
        let mut out = Vec::new();
        let mut o = Obj::new(&mut out);
        o.str("a", "plain")
            .str("b", "C:\\Windows \"x\"")
            .null("c")
            .num("d", 42)
            .strs("e", &["x", "y"]);
        o.obj("f", |f| {
            f.raw("g", "[]");
        });
        o.opt_str("h", None).opt_str("i", Some("j"));
        o.end();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"a":"plain","b":"C:\\Windows \"x\"","c":null,"d":42,"e":["x","y"],"f":{"g":[]},"h":null,"i":"j"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["b"], "C:\\Windows \"x\"");

        for s in [
            "",
            "a",
            "abcdefgh",
            "abcdefg\"",
            "tab\there",
            "0123456789\\x",
            "ünïcødé ok",
            "\u{7f}",
        ] {
            let mut a = Vec::new();
            string(&mut a, s);
            assert_eq!(a, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        let t = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07.1234567Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut a = Vec::new();
        time(&mut a, t);
        assert_eq!(String::from_utf8(a).unwrap(), format!("\"{}\"", super::super::graph_time(t)));
    }
}
