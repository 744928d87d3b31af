//! Connection strings (`tenant_id=…;client_id=…;client_secret=…`), msticpy's third way to connect.

use crate::config::normalise_arg_name;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Keys a connection string may carry.
const CONNECTION_STRING_KEYS: &[&str] = &[
    "tenant_id",
    "client_id",
    "client_secret",
    "api_root",
    "api_version",
    "username",
    "certificate",
    "private_key",
];

/// Parses a connection string: `;`-separated `key=value` pairs, spaces around keys and values trimmed, values
/// optionally wrapped in single or double quotes (removed), `=` allowed inside values. Unknown keys, repeated keys
/// and pairs without `=` are errors. Messages never quote values.
///
/// ```
/// let v = secgraph::config::parse_connection_string("tenant_id='t1'; client_id = \"c1\" ;client_secret=a=b").unwrap();
/// assert_eq!(v.get("tenant_id").map(|s| s.expose()), Some("t1"));
/// assert_eq!(v.get("client_secret").map(|s| s.expose()), Some("a=b"));
/// assert!(secgraph::config::parse_connection_string("tenant_id=t;colour=red").is_err());
/// ```
pub fn parse_connection_string(s: &str) -> Result<std::collections::BTreeMap<String, Secret>> {
    let err = |message: String| Error::ConnectionString { message };
    let mut out = std::collections::BTreeMap::new();
    for (i, part) in s.split(';').enumerate() {
        if part.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(err(format!(
                "part {} has no '=' (expected key=value pairs separated by ';')",
                i + 1
            )));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(err(format!("part {} has an empty key", i + 1)));
        }
        let name = normalise_arg_name(key);
        // A key is quoted back only when it looks like one: anything else may be a pasted value.
        let key = if key.len() <= 40 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            key.to_string()
        } else {
            format!("(part {})", i + 1)
        };
        if !CONNECTION_STRING_KEYS.contains(&name.as_str()) {
            return Err(err(format!(
                "unknown key '{key}'; expected one of tenant_id, client_id, client_secret, apiRoot, apiVersion, username, certificate, private_key"
            )));
        }
        let raw = v.trim();
        let quoted = raw.len() >= 2 && ((raw.starts_with('\'') && raw.ends_with('\'')) || (raw.starts_with('"') && raw.ends_with('"')));
        let v = if quoted { &raw[1..raw.len() - 1] } else { raw };
        if !quoted && (raw.starts_with(['\'', '"']) || raw.ends_with(['\'', '"'])) {
            return Err(err(format!("the value of '{key}' has an unbalanced quote")));
        }
        if out.insert(name, Secret::new(v)).is_some() {
            return Err(err(format!("key '{key}' appears more than once")));
        }
    }
    if out.is_empty() {
        return Err(err("it is empty".into()));
    }
    Ok(out)
}
