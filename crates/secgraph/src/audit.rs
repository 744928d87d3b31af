//! The unified audit log search (`/security/auditLog/queries`): the service runs a search asynchronously — created,
//! then `notStarted` → `running` → `succeeded` (or `failed`) — and its records are paged when it has succeeded.
//!
//! A search is written like a query (`AuditLog.search`, [`crate::query::Language::AuditLog`]): its parameters as an
//! OData-style filter on audit log queries (`filterStartDateTime eq … and operationFilters in ('New-InboxRule')`),
//! which [`search_body`] turns into the create request's body. [`search_pages`] creates the search (or resumes one:
//! the search's id is kept in the cache folder under a key made of the tenant and the body, so a run that was
//! interrupted — Ctrl-C, kill — and is started again with the same parameters polls the same search instead of
//! starting another), polls it with back-off, logging its progress, then pages its records; the kept id goes when
//! every record has been read.

use crate::error::{Error, Result};
use crate::graph::{GraphClient, Page, Pages};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use sha2::Digest;
use std::path::PathBuf;
use std::time::Duration;

/// Where searches are created and read.
pub const QUERIES_PATH: &str = "/security/auditLog/queries";
/// The longest wait between two polls of a running search.
const MAX_POLL: Duration = Duration::from_secs(30);
/// How long a search may take before the run gives up (the search goes on on the service; rerun to resume it).
const MAX_WAIT: Duration = Duration::from_secs(60 * 60);

/// The create request's body from a search's filter text (`name eq value`, `name in ('a', 'b')`, joined by
/// `and`; values as OData writes them: quoted strings, bare times).
pub fn search_body(filter: &str) -> Result<Value> {
    let bad = |m: String| Error::Query {
        message: format!("audit log search: {m}"),
    };
    let mut body = Map::new();
    body.insert("displayName".into(), json!("secgraph AuditLog.search"));
    for clause in split_outside_quotes(filter, " and ") {
        let clause = clause.trim();
        if clause.is_empty() {
            continue;
        }
        let (name, rest) = clause
            .split_once(' ')
            .ok_or_else(|| bad(format!("'{clause}' is not NAME eq VALUE")))?;
        let rest = rest.trim_start();
        let value = if let Some(v) = rest.strip_prefix("eq ") {
            unquote(v.trim())
        } else if let Some(v) = rest.strip_prefix("in ") {
            let inner = v
                .trim()
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| bad(format!("'{clause}': expected a list in parentheses")))?;
            Value::Array(
                split_outside_quotes(inner, ",")
                    .iter()
                    .filter(|i| !i.trim().is_empty())
                    .map(|i| unquote(i.trim()))
                    .collect(),
            )
        } else {
            return Err(bad(format!("'{clause}': only eq and in are understood")));
        };
        body.insert(name.to_string(), value);
    }
    for k in ["filterStartDateTime", "filterEndDateTime"] {
        if !body.contains_key(k) {
            return Err(bad(format!("{k} is required")));
        }
    }
    Ok(Value::Object(body))
}

fn unquote(v: &str) -> Value {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => json!(inner.replace("''", "'")),
        None => json!(v),
    }
}

/// `text` split on `sep` wherever it stands outside single quotes (OData strings, `''` an escaped quote).
fn split_outside_quotes<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let (mut quoted, mut start, mut i) = (false, 0, 0);
    while i < text.len() {
        if text.as_bytes()[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted && text.as_bytes()[i..].starts_with(sep.as_bytes()) {
            out.push(&text[start..i]);
            i += sep.len();
            start = i;
            continue;
        }
        i += 1;
    }
    out.push(&text[start..]);
    out
}

/// The folder that keeps a tenant's unfinished searches between runs (one file per search: its id, body and when it
/// was created).
pub fn state_dir(tenant: &str) -> PathBuf {
    let key = sha2::Sha256::digest(tenant.to_ascii_lowercase().as_bytes());
    let hex: String = key[..8].iter().map(|b| format!("{b:02x}")).collect();
    crate::private_file::cache_dir().join("auditlog").join(hex)
}

/// Whether a kept search answers `body`: the same filters, and a time range that differs from the kept one by no
/// more than the time since it was created (plus five minutes) — a rerun of `--start -1d` ends a little later.
fn same_search(kept: &Value, body: &Value, created: i64, now: i64) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for k in ["displayName", "filterStartDateTime", "filterEndDateTime"] {
                m.remove(k);
            }
        }
        v
    };
    if strip(kept) != strip(body) {
        return false;
    }
    let slack = (now - created).max(0) + 300;
    ["filterStartDateTime", "filterEndDateTime"].iter().all(|k| {
        let t = |v: &Value| {
            v[*k]
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.timestamp())
        };
        matches!((t(kept), t(body)), (Some(a), Some(b)) if (a - b).abs() <= slack)
    })
}

/// The kept search (its file and id) that answers `body`, if any.
fn kept_search(dir: &std::path::Path, body: &Value) -> Option<(PathBuf, String)> {
    let now = chrono::Utc::now().timestamp();
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let path = e.path();
        let v: Value = serde_json::from_slice(&crate::local_file::read(&path, 256 * 1024).ok()?).ok()?;
        let created = v["created"].as_i64()?;
        same_search(&v["body"], body, created, now)
            .then(|| (path, v["id"].as_str().map(str::to_string)))
            .and_then(|(p, id)| Some((p, id?)))
    })
}

fn keep(dir: &std::path::Path, id: &str, body: &Value) -> Result<PathBuf> {
    let err = |e: std::io::Error| Error::output_from("cannot keep the audit log search's id", e);
    std::fs::create_dir_all(dir).map_err(err)?;
    let safe: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
    let path = dir.join(format!("{safe}.json"));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::fs::write(
        tmp.path(),
        json!({"id": id, "body": body, "created": chrono::Utc::now().timestamp()}).to_string(),
    )
    .map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(path)
}

/// The search for `body` in this tenant: the one an earlier run left (unless it failed or is gone), else a new one.
/// Returns its id and the file that keeps it.
async fn start(graph: &GraphClient, body: &Value, dir: &std::path::Path) -> Result<(String, PathBuf)> {
    if let Some((path, id)) = kept_search(dir, body) {
        let url = graph.url_for(&format!("{QUERIES_PATH}/{id}"))?;
        match graph.send_json(reqwest::Method::GET, &url, None).await {
            Ok(v) if !matches!(v["status"].as_str(), Some("failed" | "cancelled")) => {
                tracing::info!(search = %id, status = v["status"].as_str().unwrap_or("?"), "resuming the audit log search an earlier run started");
                return Ok((id, path));
            }
            Ok(_) => tracing::info!(search = %id, "the earlier audit log search failed: starting a new one"),
            Err(e) if e.http_status() == Some(404) => {
                tracing::info!(search = %id, "the earlier audit log search is gone: starting a new one")
            }
            Err(e) => return Err(e),
        }
        let _ = std::fs::remove_file(&path);
    }
    let created = graph
        .send_json(reqwest::Method::POST, &graph.url_for(QUERIES_PATH)?, Some(body))
        .await?;
    let id = created["id"].as_str().ok_or_else(|| Error::Paging {
        message: "the audit log search was created without an id".into(),
    })?;
    let path = keep(dir, id, body)?;
    tracing::info!(search = %id, "audit log search created");
    Ok((id.to_string(), path))
}

/// Polls until the search has succeeded (back-off from one second to [`MAX_POLL`]).
async fn wait(graph: &GraphClient, id: &str) -> Result<()> {
    let url = graph.url_for(&format!("{QUERIES_PATH}/{id}"))?;
    let begun = std::time::Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let v = graph.send_json(reqwest::Method::GET, &url, None).await?;
        match v["status"].as_str().unwrap_or("unknown") {
            "succeeded" => return Ok(()),
            s @ ("failed" | "cancelled") => {
                return Err(Error::Query {
                    message: format!("the audit log search {id} {s} on the service; run again to start a new one"),
                });
            }
            s => tracing::info!(search = %id, status = s, waited_s = begun.elapsed().as_secs(), "audit log search in progress"),
        }
        if begun.elapsed() > MAX_WAIT {
            return Err(Error::Query {
                message: format!(
                    "the audit log search {id} has not finished after an hour; it goes on on the service: run again to resume it"
                ),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// The records of the search `filter` describes, in tenant `tenant` (for the resume key): created or resumed,
/// polled, then paged.
pub fn search_pages(graph: GraphClient, filter: String, tenant: String) -> Pages {
    let setup = async move {
        let body = search_body(&filter)?;
        let (id, state) = start(&graph, &body, &state_dir(&tenant)).await?;
        wait(&graph, &id).await?;
        let pages = graph.pages(graph.url_for(&format!("{QUERIES_PATH}/{id}/records"))?);
        Ok::<_, Error>((pages, state))
    };
    let stream = futures_util::stream::once(setup).flat_map(|r| match r {
        Ok((pages, state)) => {
            // Every record read: the kept id goes (a later run with the same parameters searches anew).
            let done = futures_util::stream::once(async move {
                let _ = std::fs::remove_file(&state);
                None::<Result<Page>>
            })
            .filter_map(futures_util::future::ready);
            pages.chain(done).boxed()
        }
        Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
    });
    Pages::new(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_becomes_the_search_body() {
        let b = search_body(
            "filterStartDateTime eq 2026-01-01T00:00:00Z and filterEndDateTime eq 2026-01-02T00:00:00Z and operationFilters in ('New-InboxRule', 'it''s, odd') and keywordFilter eq 'a and b'",
        )
        .unwrap();
        assert_eq!(b["filterStartDateTime"], "2026-01-01T00:00:00Z");
        assert_eq!(b["operationFilters"], json!(["New-InboxRule", "it's, odd"]));
        assert_eq!(b["keywordFilter"], "a and b");
        assert!(search_body("operationFilters in ('x')").is_err(), "the range is required");
        assert!(search_body("filterStartDateTime gt x").is_err());
        let b = search_body("filterStartDateTime eq a and filterEndDateTime eq b and keywordFilter eq 'café and ü'").unwrap();
        assert_eq!(b["keywordFilter"], "café and ü", "text beyond ASCII is split on whole characters");
    }

    #[test]
    fn a_kept_search_answers_the_same_filters_over_a_range_moved_by_the_wait() {
        let body = |s: &str, e: &str, op: &str| json!({"displayName": "x", "filterStartDateTime": s, "filterEndDateTime": e, "operationFilters": [op]});
        let kept = body("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "a");
        let created = chrono::DateTime::parse_from_rfc3339("2026-01-02T00:00:00Z").unwrap().timestamp();
        let later = body("2026-01-01T00:10:00Z", "2026-01-02T00:10:00Z", "a");
        assert!(
            same_search(&kept, &later, created, created + 600),
            "ten minutes later, ten minutes on"
        );
        assert!(!same_search(&kept, &later, created, created + 60), "moved more than the wait");
        assert!(!same_search(
            &kept,
            &body("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "b"),
            created,
            created
        ));
        assert_ne!(state_dir("t"), state_dir("u"));
    }
}
