//! The Graph client: builds request URLs (encoding the OData text exactly once), sends them with a bearer token,
//! retries throttled and overloaded replies, renews the token once on 401, and follows every `@odata.nextLink`,
//! pushing each page's rows into a [`RowSink`].

mod budget;
mod pager;
mod updates;

pub use budget::{HUNTING_PER_MINUTE, SECURITY_PER_MINUTE};

pub use pager::{Page, PageSummary, Pages};
pub use updates::{AlertStatus, Classification, Determination, Feedback, IncidentStatus, LegacyAlertStatus, Plan, Status, Target, Update};

use crate::auth::{TokenCredential, TokenRequestOptions};
use crate::error::{ApiError, Error, Result, redact_url};
use crate::http::{BodyError, retry_after};
use crate::output::RowSink;
use crate::retry::{Decision, Outcome, Request, RetryOptions};
use crate::row::Row;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::Value;
use std::sync::Arc;
use url::Url;

/// Characters encoded in a query key or value: everything that is not unreserved or a harmless sub-delimiter.
pub(crate) const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The most rows one advanced-hunting call returns (the service's documented limit).
pub const HUNTING_ROW_LIMIT: usize = 100_000;
/// Same-origin redirects followed for one read.
const MAX_REDIRECTS: u32 = 5;

/// Caps on what one paging run reads, so a broken or hostile server cannot exhaust memory or loop for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagingLimits {
    /// Largest page body read (default 64 MiB; Graph's real pages are a few MiB at most).
    pub max_page_bytes: usize,
    /// Most pages followed in one run (default 100,000: 100 million alerts at `$top=1000`).
    pub max_pages: usize,
}

impl Default for PagingLimits {
    fn default() -> Self {
        PagingLimits {
            max_page_bytes: 64 * 1024 * 1024,
            max_pages: 100_000,
        }
    }
}

/// A client for one Graph root and version (e.g. `https://graph.microsoft.com/v1.0`).
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    root: Url,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    limits: PagingLimits,
    /// Request budgets (security collections, hunting), shared by the clones of this client.
    budgets: Arc<(budget::Bucket, budget::Bucket)>,
    /// Requests sent again (throttled, overloaded, dropped or cut short), counted across the clones of this client.
    retries: Arc<std::sync::atomic::AtomicUsize>,
    /// When failed requests are sent again.
    retry: RetryOptions,
    /// The service's clock as its last reply's `Date` said, and when (locally) that reply came.
    server_clock: Arc<std::sync::Mutex<Option<ServerTime>>>,
}

/// The service's time as a reply's `Date` said, and the local instant that reply came.
type ServerTime = (chrono::DateTime<chrono::Utc>, std::time::Instant);

/// Characters a path segment keeps as they are: letters, digits, `-`, `_`, `.`, `~` (RFC 3986's unreserved) and `:`.
const SEGMENT_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');

/// One path segment from a value (an id, a host name, an IP address): every other character percent-encoded, so a
/// value can never add a segment or a query. [`GraphClient::url_for`] still refuses `..`.
pub fn segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, SEGMENT_SET).to_string()
}

/// Splits an OData query string on `&`, except inside single-quoted literals (where `''` is an escaped quote).
pub(crate) fn split_query(q: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut in_str = false;
    let mut start = 0;
    for (i, c) in q.char_indices() {
        match c {
            '\'' => in_str = !in_str,
            '&' if !in_str => {
                parts.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&q[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The largest `$top` each security collection accepts (incidents refuse more than 50).
pub(crate) fn page_maximum(path: &str) -> usize {
    match crate::batches::schema::collection(path) {
        Some("alerts_v2") => 2000,
        Some("alerts") => 1000,
        _ => 50,
    }
}

/// A path and query asking for pages of at most `rows` items: `$top` lowered to `rows` (or added as
/// `min(rows, the collection's page maximum)`), so that a query wanting ten rows does not download 2,000. Other
/// options are kept as written.
///
/// ```
/// use secgraph::graph::with_page_size;
/// assert_eq!(with_page_size("/security/alerts_v2?$filter=a eq 'x&y'&$top=1000", 10),
///            "/security/alerts_v2?$filter=a eq 'x&y'&$top=10");
/// assert_eq!(with_page_size("/security/alerts_v2", 5000), "/security/alerts_v2?$top=2000");
/// assert_eq!(with_page_size("/security/incidents?$top=20", 30), "/security/incidents?$top=20");
/// ```
pub fn with_page_size(path_and_query: &str, rows: usize) -> String {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut parts: Vec<String> = Vec::new();
    let mut found = false;
    for p in split_query(query) {
        match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("$top") || k.eq_ignore_ascii_case("top") => {
                found = true;
                let n = v.trim().parse::<usize>().map_or(rows, |old| old.min(rows));
                parts.push(format!("{k}={n}"));
            }
            _ => parts.push(p.to_string()),
        }
    }
    if !found {
        parts.push(format!("$top={}", rows.clamp(1, page_maximum(path))));
    }
    format!("{path}?{}", parts.join("&"))
}

impl GraphClient {
    /// `root` is the Graph root (`https://graph.microsoft.com/`), `version` `v1.0` or `beta`, `scope` the token scope.
    pub fn new(
        http: reqwest::Client,
        root: &Url,
        version: &str,
        credential: Arc<dyn TokenCredential>,
        scope: String,
    ) -> Result<GraphClient> {
        if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            return Err(Error::Setting {
                origin: "connection".into(),
                setting: "apiVersion".into(),
                message: format!("'{version}' is not an API version (v1.0 or beta)"),
            });
        }
        let root = Url::parse(&format!("{}/{version}/", root.as_str().trim_end_matches('/'))).map_err(|e| Error::Setting {
            origin: "connection".into(),
            setting: "apiRoot".into(),
            message: format!("cannot combine {root} and {version}: {e}"),
        })?;
        Ok(GraphClient {
            http,
            root,
            credential,
            scope,
            limits: PagingLimits::default(),
            budgets: Arc::new((
                budget::Bucket::per_minute(SECURITY_PER_MINUTE, "alerts and incidents"),
                budget::Bucket::per_minute(HUNTING_PER_MINUTE, "advanced hunting"),
            )),
            retries: Arc::default(),
            retry: RetryOptions::default(),
            server_clock: Arc::default(),
        })
    }

    /// The service's time now, as its replies' `Date` headers tell it (their last one, moved on by the time since);
    /// `None` before the first reply. Exports keep their watermarks by it, so a local clock that is off does not
    /// move them.
    pub fn server_now(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let (at, seen) = (*self.server_clock.lock().ok()?)?;
        Some(at + chrono::Duration::from_std(seen.elapsed()).unwrap_or_default())
    }

    fn note_server_time(&self, headers: &reqwest::header::HeaderMap) {
        let Some(date) = headers.get(reqwest::header::DATE).and_then(|v| v.to_str().ok()) else {
            return;
        };
        if let Ok(t) = chrono::DateTime::parse_from_rfc2822(date)
            && let Ok(mut c) = self.server_clock.lock()
        {
            *c = Some((t.with_timezone(&chrono::Utc), std::time::Instant::now()));
        }
    }

    /// The same client with another retry policy (see [`crate::retry`]).
    pub fn with_retry(mut self, retry: RetryOptions) -> GraphClient {
        self.retry = retry;
        self
    }

    /// How many requests this client and its clones have sent again so far (after a 429/503/504 or a 500/502 on
    /// a read, a dropped connection, a reply cut short or not whole JSON). A progress display reads it.
    pub fn retries(&self) -> usize {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long this client's requests (and its clones') have waited for the request budgets so far.
    pub fn budget_waited(&self) -> std::time::Duration {
        self.budgets.0.waited() + self.budgets.1.waited()
    }

    fn count_retry(&self) {
        self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The same client with other request budgets per minute (security collections, hunting); `None` keeps Graph's
    /// documented ones. A new budget is not shared with clones made before.
    pub fn with_budgets(mut self, per_minute: Option<(u32, u32)>) -> GraphClient {
        if let Some((security, hunting)) = per_minute {
            self.budgets = Arc::new((
                budget::Bucket::per_minute(security, "alerts and incidents"),
                budget::Bucket::per_minute(hunting, "advanced hunting"),
            ));
        }
        self
    }

    /// The same client with other paging caps.
    pub fn with_limits(mut self, limits: PagingLimits) -> GraphClient {
        self.limits = limits;
        self
    }

    /// The paging caps in force.
    pub fn limits(&self) -> PagingLimits {
        self.limits
    }

    /// The versioned root, e.g. `https://graph.microsoft.com/v1.0/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The absolute URL for an OData path relative to the versioned root, such as
    /// `/security/alerts_v2?$filter=severity eq 'high'&$top=5`. The text is taken as written (not yet encoded)
    /// and encoded exactly once; `&` inside quoted literals stays part of the value.
    pub fn url_for(&self, path_and_query: &str) -> Result<Url> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let path = path.trim().trim_start_matches('/');
        let lower = path.to_ascii_lowercase();
        if path.contains('\\')
            || lower.contains("%2f")
            || lower.contains("%5c")
            || lower.contains("%2e")
            || path.chars().any(char::is_control)
        {
            return Err(Error::Query {
                message: format!(
                    "'{}' is refused: backslashes, encoded slashes or dots and control characters are not allowed in a Graph path",
                    crate::error::clean(path_and_query, 200)
                ),
            });
        }
        if path.is_empty() || path.contains("..") || path.contains("://") {
            return Err(Error::Query {
                message: format!(
                    "'{}' is not a path under the Graph root (expected e.g. /security/alerts_v2)",
                    crate::error::clean(path_and_query, 200)
                ),
            });
        }
        let mut url = self.root.join(path).map_err(|e| Error::Query {
            message: format!("invalid path '{}': {e}", crate::error::clean(path, 200)),
        })?;
        if let Some(q) = query {
            let mut encoded = Vec::new();
            for pair in split_query(q) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                encoded.push(format!(
                    "{}={}",
                    utf8_percent_encode(k.trim(), QUERY),
                    utf8_percent_encode(v.trim(), QUERY)
                ));
            }
            if !encoded.is_empty() {
                url.set_query(Some(&encoded.join("&")));
            }
        }
        // The one check, after the URL is built: whatever the text was, the token goes to the Graph host only.
        self.check_target(&url)?;
        Ok(url)
    }

    async fn token(&self, force: bool) -> Result<crate::auth::AccessToken> {
        self.credential
            .get_token(&[self.scope.as_str()], TokenRequestOptions { force_refresh: force })
            .await
    }

    /// Checks that `url` may carry this client's bearer token: it must be on the Graph origin (scheme, host and
    /// port) and carry no user info. Every request the client sends passes here, after its URL is built — for
    /// `exec` paths, templates, next links, redirects and updates alike.
    pub fn check_target(&self, url: &Url) -> Result<()> {
        if url.origin() != self.root.origin() || !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Query {
                message: format!(
                    "refusing to send the Graph token to {} (only {} receives it)",
                    url.origin().ascii_serialization(),
                    self.root.origin().ascii_serialization()
                ),
            });
        }
        Ok(())
    }

    /// Sends one request (GET, or POST/PATCH with a JSON body) and returns the JSON reply. Retries 429/503/504
    /// (and 500/502 for reads) honouring `Retry-After`, retries dropped connections and cut-short bodies on reads,
    /// renews the token once on 401, follows same-origin redirects of reads and refuses every other redirect.
    pub async fn send_json(&self, method: reqwest::Method, url: &Url, body: Option<&Value>) -> Result<Value> {
        self.send_parsed(method, url, body, |bytes| {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(bytes).map_err(|e| e.to_string())
        })
        .await
    }

    /// [`GraphClient::send_json`] with the reply read by `parse` (an empty body included): a read whose reply
    /// `parse` refuses is tried again, as a body cut short is.
    pub(crate) async fn send_parsed<T>(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        parse: impl Fn(&[u8]) -> std::result::Result<T, String>,
    ) -> Result<T> {
        self.check_target(url)?;
        let is_read = method == reqwest::Method::GET;
        let kind = if is_read { Request::Read } else { Request::Write };
        let mut target = url.clone();
        let mut redirects = 0;
        let mut renewed = false;
        let mut attempt = 0u32;
        let mut server_errors = 0u32;
        let hunting = target.path().ends_with("/runHuntingQuery");
        loop {
            attempt += 1;
            if hunting {
                self.budgets.1.take().await
            } else {
                self.budgets.0.take().await
            }
            let token = self.token(renewed && attempt == 1).await?;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let mut req = self
                .http
                .request(method.clone(), target.clone())
                .bearer_auth(token.token.expose())
                .header("client-request-id", &client_request_id)
                .header("Accept", "application/json")
                .header("Prefer", "include-unknown-enum-members");
            if let Some(b) = body {
                req = req.json(b);
            }
            tracing::debug!(%method, url = %redact_url(&target), %client_request_id, attempt, "graph request");
            // Whether a failed attempt is sent again is the retry policy's decision alone (crate::retry).
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let outcome = if e.is_timeout() { Outcome::Timeout } else { Outcome::Connection };
                    if let Decision::Retry(wait) = self.retry.decide(kind, attempt, server_errors, outcome) {
                        tracing::info!(url = %redact_url(&target), cause = %e, attempt, wait_ms = wait.as_millis() as u64, "connection failed; retrying");
                        self.count_retry();
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(Error::transport(&target, e));
                }
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            self.note_server_time(&headers);
            if (300..400).contains(&status) && status != 304 {
                let to = crate::http::redirect_target(&target, &headers);
                match to {
                    Some(to) if is_read && redirects < MAX_REDIRECTS && self.check_target(&to).is_ok() => {
                        tracing::debug!(from = %redact_url(&target), to = %redact_url(&to), status, "same-origin redirect");
                        redirects += 1;
                        target = to;
                        attempt = 0;
                        continue;
                    }
                    to => {
                        return Err(crate::http::redirect_refused(
                            &target,
                            status,
                            to.as_ref(),
                            "Graph requests follow only a few redirects of reads to the Graph host itself; not followed",
                        ));
                    }
                }
            }
            if (200..300).contains(&status) {
                let bytes = match crate::http::read_body(resp, self.limits.max_page_bytes).await {
                    Ok(b) => b,
                    Err(BodyError::TooLarge { limit }) => {
                        return Err(Error::Response {
                            url: redact_url(&target),
                            message: format!("the reply is larger than {limit} bytes, the page size cap (PagingLimits::max_page_bytes)"),
                        });
                    }
                    Err(BodyError::Transport(e)) => {
                        let outcome = if e.is_timeout() { Outcome::Timeout } else { Outcome::BodyCutShort };
                        if let Decision::Retry(wait) = self.retry.decide(kind, attempt, server_errors, outcome) {
                            tracing::info!(url = %redact_url(&target), cause = %e, attempt, "reply cut short; retrying");
                            self.count_retry();
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        return Err(Error::transport(&target, e));
                    }
                };
                match parse(&bytes) {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        if let Decision::Retry(wait) = self.retry.decide(kind, attempt, server_errors, Outcome::BodyUnreadable) {
                            tracing::info!(url = %redact_url(&target), bytes = bytes.len(), cause = %e, attempt, "reply was not whole JSON; retrying");
                            self.count_retry();
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        return Err(Error::Response {
                            url: redact_url(&target),
                            message: format!("HTTP {status} body is not valid JSON ({} bytes): {e}", bytes.len()),
                        });
                    }
                }
            }
            let bytes = crate::http::read_error_body(resp).await;
            let mut err = api_error(status, &headers, &bytes, &method, &target);
            if status == 401 && !renewed {
                tracing::debug!(request_id = ?err.request_id, "401 from Graph; renewing the token once");
                renewed = true;
                attempt = 0;
                continue;
            }
            if matches!(status, 500 | 502) {
                server_errors += 1;
            }
            let asked = crate::http::retry_after_unclamped(&headers);
            match self.retry.decide(kind, attempt, server_errors, Outcome::Status(status, asked)) {
                Decision::Retry(wait) => {
                    tracing::info!(status, request_id = ?err.request_id, wait_ms = wait.as_millis() as u64, attempt, "Graph asked to retry later");
                    self.count_retry();
                    tokio::time::sleep(wait).await;
                    continue;
                }
                // A wait longer than we would sleep (advanced hunting's CPU quota asks for the rest of a 15-minute
                // cycle) is not slept through in silence: the error says how long, and the caller decides.
                Decision::WaitTooLong(w) => {
                    err.retry_after = Some(w);
                    tracing::warn!(request_id = ?err.request_id, wait_s = w.as_secs(), "Graph asked to wait longer than a retry would; giving up");
                }
                Decision::Stop => {}
            }
            return Err(Error::Api(Box::new(err)));
        }
    }
}

impl GraphClient {
    /// Runs an advanced-hunting query (`POST /security/runHuntingQuery`) and pushes its result rows into `sink`.
    pub async fn hunt(&self, query: &str, timespan: Option<&str>, sink: &mut dyn RowSink) -> Result<PageSummary> {
        Pages::single(self.hunt_page(query, timespan).await).into_sink(sink).await
    }

    /// Runs an advanced-hunting query and returns its results as one page. Column order follows the reply's schema
    /// (whose keys some revisions spell `Name`/`Type`).
    pub async fn hunt_page(&self, query: &str, timespan: Option<&str>) -> Result<Page> {
        let url = self.url_for("/security/runHuntingQuery")?;
        let mut body = serde_json::json!({"Query": query});
        if let Some(t) = timespan {
            body["Timespan"] = Value::String(t.to_string());
        }
        let reply = self.send_json(reqwest::Method::POST, &url, Some(&body)).await?;
        let field = |c: &Value, a: &str, b: &str| c.get(a).or_else(|| c.get(b)).and_then(Value::as_str).map(str::to_string);
        let columns: Vec<(String, String)> = reply
            .get("schema")
            .or_else(|| reply.get("Schema"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| Some((field(c, "name", "Name")?, field(c, "type", "Type").unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        let Some(Value::Array(results)) = reply.get("results").or_else(|| reply.get("Results")).cloned() else {
            return Err(Error::Response {
                url: redact_url(&url),
                message: "the hunting reply has no 'results' list".into(),
            });
        };
        // Advanced hunting returns at most its row limit; a result of exactly that size (or one the service marks as
        // cut) is almost surely short, and nothing in the rows says so.
        let truncated = ["truncated", "Truncated", "isTruncated"]
            .iter()
            .any(|k| reply.get(*k).and_then(Value::as_bool) == Some(true));
        if results.len() >= HUNTING_ROW_LIMIT || truncated {
            tracing::warn!(
                rows = results.len(),
                limit = HUNTING_ROW_LIMIT,
                "the hunting result is at advanced hunting's row limit ({HUNTING_ROW_LIMIT}) and is probably cut short: narrow the time range (or split it) or summarize"
            );
        }
        let rows: Vec<Row> = results
            .into_iter()
            .map(|r| match r {
                Value::Object(mut m) if !columns.is_empty() => {
                    let mut ordered = serde_json::Map::new();
                    for (c, _) in &columns {
                        ordered.insert(c.clone(), m.remove(c).unwrap_or(Value::Null));
                    }
                    ordered.extend(m);
                    Row::from_value(&Value::Object(ordered))
                }
                other => Row::from_value(&other),
            })
            .collect();
        Ok(Page {
            schema: columns,
            ..Page::of_rows(rows)
        })
    }
}

fn api_error(status: u16, headers: &reqwest::header::HeaderMap, body: &[u8], method: &reqwest::Method, url: &Url) -> ApiError {
    use crate::error::{MAX_SHOWN_MESSAGE, clean};
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(|v| clean(v, 100));
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = json.get("error").cloned().unwrap_or(Value::Null);
    let inner = err
        .get("innerError")
        .or_else(|| err.get("innererror"))
        .cloned()
        .unwrap_or(Value::Null);
    // A body too large to read whole (or not JSON) may still name its code: look for it in what was read.
    let s = |v: &Value, k: &str, max: usize| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| json.is_null().then(|| crate::http::sniff_json_string(body, k)).flatten())
            .map(|t| clean(&t, max))
    };
    let message = s(&err, "message", MAX_SHOWN_MESSAGE).unwrap_or_else(|| {
        if body.is_empty() {
            "(empty body)".into()
        } else {
            format!("(a {}-byte body that is not a Graph error)", body.len())
        }
    });
    ApiError {
        status,
        code: s(&err, "code", 100).unwrap_or_default(),
        message,
        request_id: s(&inner, "request-id", 100).or_else(|| header("request-id")),
        client_request_id: s(&inner, "client-request-id", 100).or_else(|| header("client-request-id")),
        date: s(&inner, "date", 100),
        request: format!("{method} {}", clean(url.path(), 300)),
        retry_after: matches!(status, 429 | 503 | 504).then(|| retry_after(headers)).flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_ampersands_inside_literals() {
        assert_eq!(
            split_query("$filter=title eq 'a & b'&$top=5"),
            vec!["$filter=title eq 'a & b'", "$top=5"]
        );
        assert_eq!(
            split_query("$filter=title eq 'it''s & x'&$count=true"),
            vec!["$filter=title eq 'it''s & x'", "$count=true"]
        );
    }

    #[test]
    fn url_for_encodes_once() {
        #[derive(Debug)]
        struct Never;
        #[async_trait::async_trait]
        impl TokenCredential for Never {
            async fn get_token(&self, _: &[&str], _: TokenRequestOptions) -> Result<crate::auth::AccessToken> {
                Err(Error::Query { message: "unused".into() })
            }
        }
        let c = GraphClient::new(
            reqwest::Client::new(),
            &Url::parse("https://graph.example/").unwrap(),
            "v1.0",
            Arc::new(Never),
            "s".into(),
        )
        .unwrap();
        let u = c
            .url_for("/security/alerts_v2?$filter=createdDateTime ge 2024-01-01T00:00:00+01:00 and title eq '100% & more'&$top=5")
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://graph.example/v1.0/security/alerts_v2?$filter=createdDateTime%20ge%202024-01-01T00:00:00%2B01:00%20and%20title%20eq%20%27100%25%20%26%20more%27&$top=5"
        );
        assert!(c.url_for("https://evil.example/x").is_err());
        assert!(c.url_for("/../../x").is_err());
    }
}
