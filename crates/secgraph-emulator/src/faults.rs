//! Fault injection: a layer in front of the honest handlers that makes chosen requests fail the way real services
//! and networks do. Rules are configured per route, fire by rate, by count or for the first N requests, and are
//! reproducible: rates draw from a generator seeded with the emulator's seed.
//!
//! Spec: rules separated by `;`, each `ROUTE:KIND[(ARG)][@WHEN]`.
//! - ROUTE: `*`, `graph` (every Graph call), a collection (`alerts_v2`, `incidents`, `alerts`, `secureScores`,
//!   `secureScoreControlProfiles`), `hunting`, `token`, `devicecode`, `kv`.
//! - KIND: `429`, `500`, `503`, `504` (ARG: Retry-After seconds, fractions allowed, or `none`; 429 defaults to 1 s, the others
//!   send none unless given), `reset` (connection reset mid-body), `truncate` (half the JSON body),
//!   `slow-first-byte(MS)`, `slow-body(MS)` (pause between body chunks), `expire-token` (401 as if the token expired
//!   mid-paging), `repeat-next-link` (the page's `@odata.nextLink` points back at the page itself),
//!   `duplicate-item` (the page's first item appears again at its end), `slow-down` (a token request answered
//!   `slow_down`, as Entra does to a device-code poll that comes too fast).
//! - WHEN: `rate=0.2`, `nth=3` (only the 3rd matching request), `first=2`, `every=4`, `wide=7d` (requests whose
//!   `$filter` covers more than that much `lastUpdateDateTime`/`createdDateTime` — an open end counts up to now, no
//!   lower bound as forever: a heavy query, as big tenants see 500s on); default: every request.
//! - TENANT (optional, after the WHEN or in its place): `@tenant=ID` — only requests whose bearer token is for that
//!   tenant (its `tid`): one customer of many that throttles or hangs.
//!
//! Example: `alerts_v2:429(2)@every=3;token:503@first=1;incidents:reset@nth=2`.

use crate::data::Rng;
use crate::state::RequestId;
use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a fault does to a request (see the module's spec).
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// An error status instead of the honest answer.
    Status {
        /// 429, 500, 503 or 504.
        code: u16,
        /// The `Retry-After` to send, in seconds, if any.
        retry_after: Option<f64>,
    },
    /// The connection is reset in the middle of the body.
    Reset,
    /// Half the JSON body is sent.
    Truncate,
    /// The reply starts this late.
    SlowFirstByte(Duration),
    /// The body comes in chunks this far apart.
    SlowBody(Duration),
    /// 401 as if the token had expired mid-paging.
    ExpireToken,
    /// The page's `@odata.nextLink` points back at the page itself.
    RepeatNextLink,
    /// The page's first item appears again at its end.
    DuplicateItem,
    /// A token request answered `slow_down`, as a device-code poll that came too fast.
    SlowDown,
}

/// Which matching requests a rule fires on.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Every one.
    Always,
    /// At random, with this probability (seeded).
    Rate(f64),
    /// Only the nth (from 1).
    Nth(u64),
    /// The first n.
    First(u64),
    /// Every nth.
    Every(u64),
    /// The request's `$filter` time range is open-ended or longer than this.
    Wide(chrono::Duration),
}

/// One rule: `ROUTE:KIND[(ARG)][@WHEN]`.
#[derive(Debug)]
pub struct Rule {
    /// The route it applies to (`*`, `graph`, a collection, `hunting`, `token`, `devicecode`, `kv`).
    pub route: String,
    /// What it does.
    pub kind: FaultKind,
    /// When it fires.
    pub when: When,
    /// Only requests for this tenant (the bearer token's `tid`), if set.
    pub tenant: Option<String>,
    seen: AtomicU64,
}

/// A parsed fault specification.
#[derive(Debug, Default)]
pub struct FaultSpec {
    /// The rules, in the order given; the first that fires wins.
    pub rules: Vec<Rule>,
}

impl Clone for FaultSpec {
    fn clone(&self) -> Self {
        FaultSpec {
            rules: self
                .rules
                .iter()
                .map(|r| Rule {
                    route: r.route.clone(),
                    kind: r.kind.clone(),
                    when: r.when.clone(),
                    tenant: r.tenant.clone(),
                    seen: AtomicU64::new(0),
                })
                .collect(),
        }
    }
}

const ROUTES: &[&str] = &[
    "*",
    "graph",
    "alerts_v2",
    "incidents",
    "alerts",
    "secureScores",
    "secureScoreControlProfiles",
    "hunting",
    "token",
    "devicecode",
    "kv",
];

impl FaultSpec {
    /// Parses a spec (see the module documentation).
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut rules = Vec::new();
        for raw in spec.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (route, rest) = raw
                .split_once(':')
                .ok_or_else(|| format!("fault rule '{raw}': expected ROUTE:KIND"))?;
            if !ROUTES.contains(&route) {
                return Err(format!(
                    "fault rule '{raw}': unknown route '{route}' (one of {})",
                    ROUTES.join(", ")
                ));
            }
            let (rest, tenant) = match rest.split_once("@tenant=") {
                Some((r, t)) if !t.trim().is_empty() && !t.contains('@') => (r, Some(t.trim().to_ascii_lowercase())),
                Some(_) => return Err(format!("fault rule '{raw}': @tenant= needs a tenant id, last in the rule")),
                None => (rest, None),
            };
            let (kind_s, when_s) = match rest.split_once('@') {
                Some((k, w)) => (k, Some(w)),
                None => (rest, None),
            };
            let (name, arg) = match kind_s.split_once('(') {
                Some((n, a)) => (
                    n,
                    Some(a.strip_suffix(')').ok_or_else(|| format!("fault rule '{raw}': unclosed '('"))?),
                ),
                None => (kind_s, None),
            };
            let millis = |a: Option<&str>| -> Result<Duration, String> {
                let a = a.ok_or_else(|| format!("fault rule '{raw}': {name} needs a duration, e.g. {name}(500ms)"))?;
                let n: u64 = a
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|_| format!("fault rule '{raw}': '{a}' is not a number of milliseconds"))?;
                Ok(Duration::from_millis(n))
            };
            let kind = match name {
                "429" | "500" | "503" | "504" => {
                    let code: u16 = name.parse().unwrap_or(503);
                    let retry_after = match arg {
                        // `429(none)`: throttled without saying for how long.
                        Some("none") => None,
                        Some(a) => Some(
                            a.parse::<f64>()
                                .ok()
                                .filter(|f| f.is_finite() && *f >= 0.0)
                                .ok_or_else(|| format!("fault rule '{raw}': Retry-After '{a}' is not a number of seconds"))?,
                        ),
                        None if code == 429 => Some(1.0),
                        None => None,
                    };
                    FaultKind::Status { code, retry_after }
                }
                "reset" => FaultKind::Reset,
                "truncate" => FaultKind::Truncate,
                "slow-first-byte" => FaultKind::SlowFirstByte(millis(arg)?),
                "slow-body" => FaultKind::SlowBody(millis(arg)?),
                "expire-token" => FaultKind::ExpireToken,
                "repeat-next-link" => FaultKind::RepeatNextLink,
                "duplicate-item" => FaultKind::DuplicateItem,
                "slow-down" => FaultKind::SlowDown,
                other => {
                    return Err(format!(
                        "fault rule '{raw}': unknown fault '{other}' (429, 500, 503, 504, reset, truncate, slow-first-byte, slow-body, expire-token, repeat-next-link, duplicate-item, slow-down)"
                    ));
                }
            };
            let when = match when_s {
                None => When::Always,
                Some(w) => {
                    let (k, v) = w
                        .split_once('=')
                        .ok_or_else(|| format!("fault rule '{raw}': expected @rate=R, @nth=N, @first=N, @every=N or @wide=DURATION"))?;
                    let n = || {
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("fault rule '{raw}': '{v}' is not a positive whole number"))
                    };
                    match k {
                        "rate" => When::Rate(
                            v.parse::<f64>()
                                .ok()
                                .filter(|r| (0.0..=1.0).contains(r))
                                .ok_or_else(|| format!("fault rule '{raw}': rate '{v}' is not between 0 and 1"))?,
                        ),
                        "nth" => When::Nth(n()?),
                        "first" => When::First(n()?),
                        "every" => When::Every(n()?),
                        "wide" => When::Wide(
                            span(v).ok_or_else(|| format!("fault rule '{raw}': wide '{v}' is not a duration such as 7d, 12h or 30m"))?,
                        ),
                        other => {
                            return Err(format!(
                                "fault rule '{raw}': unknown selector '{other}' (rate, nth, first, every, wide)"
                            ));
                        }
                    }
                }
            };
            rules.push(Rule {
                route: route.to_string(),
                kind,
                when,
                tenant,
                seen: AtomicU64::new(0),
            });
        }
        Ok(FaultSpec { rules })
    }
}

/// `7d`, `12h`, `30m`, `45s`.
fn span(v: &str) -> Option<chrono::Duration> {
    let v = v.trim();
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    match unit {
        "d" => Some(chrono::Duration::days(n)),
        "h" => Some(chrono::Duration::hours(n)),
        "m" => Some(chrono::Duration::minutes(n)),
        "s" => Some(chrono::Duration::seconds(n)),
        _ => None,
    }
}

/// The layer's state: the rules and the seeded generator for rates.
#[derive(Debug)]
pub struct Faults {
    spec: FaultSpec,
    rng: Mutex<Rng>,
}

impl Faults {
    /// The layer's state for `spec`, its rates drawn from a generator seeded with `seed`.
    pub fn new(spec: FaultSpec, seed: u64) -> Faults {
        Faults {
            spec,
            rng: Mutex::new(Rng::new(seed ^ 0xFA17)),
        }
    }

    fn route_matches(route: &str, path: &str) -> bool {
        let graph = path.starts_with("/v1.0/") || path.starts_with("/beta/");
        match route {
            "*" => true,
            "graph" => graph,
            "token" => path.ends_with("/oauth2/v2.0/token"),
            "devicecode" => path.ends_with("/oauth2/v2.0/devicecode"),
            "kv" => path.starts_with("/kv/") || path.starts_with("/secrets"),
            "hunting" => graph && path.ends_with("/security/runHuntingQuery"),
            coll => graph && path.split('/').nth(3) == Some(coll),
        }
    }

    /// The fault to inject for this request, if any rule fires (the query string is for `wide=`).
    #[cfg(test)]
    fn pick_for(&self, path: &str, query: Option<&str>) -> Option<FaultKind> {
        self.pick_for_tenant(path, query, None)
    }

    /// [`Faults::pick_for`] for a request on behalf of `tenant` (its token's `tid`), if known.
    fn pick_for_tenant(&self, path: &str, query: Option<&str>, tenant: Option<&str>) -> Option<FaultKind> {
        for r in &self.spec.rules {
            if !Self::route_matches(&r.route, path) {
                continue;
            }
            if let Some(t) = &r.tenant
                && !tenant.is_some_and(|x| x.eq_ignore_ascii_case(t))
            {
                continue;
            }
            if let When::Wide(limit) = r.when {
                let filter = query.and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "$filter")
                        .map(|(_, v)| v.into_owned())
                });
                let narrow = filter.as_deref().and_then(crate::graph::filter_span).is_some_and(|w| w <= limit);
                if narrow {
                    continue;
                }
            }
            let n = r.seen.fetch_add(1, Ordering::SeqCst) + 1;
            let fire = match r.when {
                When::Always => true,
                When::Nth(k) => n == k,
                When::First(k) => n <= k,
                When::Every(k) => n % k == 0,
                When::Wide(_) => true,
                When::Rate(p) => self
                    .rng
                    .lock()
                    .map(|mut g| (g.next_u64() as f64 / u64::MAX as f64) < p)
                    .unwrap_or(false),
            };
            if fire {
                return Some(r.kind.clone());
            }
        }
        None
    }
}

/// The `tid` of a request's bearer token, read without verification (only to choose which faults apply; the
/// handlers verify the token).
fn bearer_tenant(headers: &axum::http::HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let raw = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = raw.strip_prefix("Bearer ").or_else(|| raw.strip_prefix("bearer "))?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["tid"].as_str().map(str::to_ascii_lowercase)
}

fn status_reply(code: u16, retry_after: Option<f64>, path: &str, rid: &RequestId) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = if path.contains("/oauth2/") {
        crate::entra::entra_error(
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
            rid,
        )
    } else {
        let (c, m) = match code {
            429 => (
                "TooManyRequests",
                "Too many requests. Please retry after the time in the Retry-After header.",
            ),
            503 => ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
            504 => ("GatewayTimeout", "The gateway did not receive a timely response from the service."),
            _ => ("UnknownError", "An internal server error occurred."),
        };
        crate::reply::graph_error(status, c, m, rid)
    };
    if let Some(ra) = retry_after
        && let Ok(v) = HeaderValue::from_str(&ra.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn body_bytes(resp: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 256 * 1024 * 1024).await.unwrap_or_default();
    (parts, bytes)
}

/// Rewrites a JSON collection page; other bodies pass unchanged.
fn rewrite_page(bytes: &Bytes, uri: &str, kind: &FaultKind) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    match kind {
        FaultKind::RepeatNextLink => {
            v.get("@odata.nextLink")?;
            v["@odata.nextLink"] = Value::String(uri.to_string());
        }
        FaultKind::DuplicateItem => {
            let arr = v.get_mut("value")?.as_array_mut()?;
            let first = arr.first()?.clone();
            arr.push(first);
        }
        _ => return None,
    }
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// The middleware: asks the rules about each request and fails it as the first that fires says.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let tenant = bearer_tenant(req.headers());
    let Some(kind) = faults.pick_for_tenant(&path, req.uri().query(), tenant.as_deref()) else {
        return next.run(req).await;
    };
    let rid = req
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or(RequestId(String::new(), None));
    tracing::warn!(request_id = %rid.0, %path, fault = ?kind, "injecting fault");
    let full_uri = {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_string();
        let authority = req.uri().authority().map(|a| a.to_string()).unwrap_or(host);
        format!(
            "https://{authority}{}",
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
        )
    };
    match kind {
        FaultKind::Status { code, retry_after } => status_reply(code, retry_after, &path, &rid),
        FaultKind::SlowDown => crate::entra::entra_error(
            StatusCode::BAD_REQUEST,
            "slow_down",
            70016,
            "Polling too fast: wait longer between requests.",
            &rid,
        ),
        FaultKind::ExpireToken => crate::reply::graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
            &rid,
        ),
        FaultKind::SlowFirstByte(d) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        FaultKind::SlowBody(d) => {
            let (parts, bytes) = body_bytes(next.run(req).await).await;
            let chunk = bytes.len().div_ceil(4).max(1);
            let chunks: Vec<Bytes> = bytes.chunks(chunk).map(Bytes::copy_from_slice).collect();
            let stream = futures_util::stream::unfold((chunks.into_iter(), true), move |(mut it, first)| async move {
                let c = it.next()?;
                if !first {
                    tokio::time::sleep(d).await;
                }
                Some((Ok::<Bytes, std::io::Error>(c), (it, false)))
            });
            Response::from_parts(parts, Body::from_stream(stream))
        }
        FaultKind::Reset => {
            let (mut parts, bytes) = body_bytes(next.run(req).await).await;
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let stream = futures_util::stream::iter(vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                )),
            ]);
            Response::from_parts(parts, Body::from_stream(stream))
        }
        FaultKind::Truncate => {
            let (mut parts, bytes) = body_bytes(next.run(req).await).await;
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(half.len()));
            Response::from_parts(parts, Body::from(half))
        }
        FaultKind::RepeatNextLink | FaultKind::DuplicateItem => {
            let (mut parts, bytes) = body_bytes(next.run(req).await).await;
            match rewrite_page(&bytes, &full_uri, &kind) {
                Some(b) => {
                    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
                    Response::from_parts(parts, Body::from(b))
                }
                None => Response::from_parts(parts, Body::from(bytes)).into_response(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_reports_errors() {
        let s = FaultSpec::parse("alerts_v2:429(2.5)@every=3; token:503@first=1;*:slow-body(20ms)@rate=0.5;incidents:reset@nth=2").unwrap();
        assert_eq!(s.rules.len(), 4);
        assert_eq!(
            s.rules[0].kind,
            FaultKind::Status {
                code: 429,
                retry_after: Some(2.5)
            }
        );
        assert_eq!(s.rules[0].when, When::Every(3));
        assert_eq!(
            s.rules[1].kind,
            FaultKind::Status {
                code: 503,
                retry_after: None
            }
        );
        assert_eq!(s.rules[2].kind, FaultKind::SlowBody(Duration::from_millis(20)));
        for (bad, want) in [
            ("alerts_v2", "expected ROUTE:KIND"),
            ("mars:429", "unknown route"),
            ("graph:418", "unknown fault"),
            ("graph:429@often", "expected @rate"),
            ("graph:429@rate=2", "between 0 and 1"),
            ("graph:429@nth=0", "positive whole number"),
            ("graph:slow-body", "needs a duration"),
            ("graph:503(x)", "Retry-After"),
        ] {
            let e = FaultSpec::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn selectors_count_matching_requests_only() {
        let f = Faults::new(FaultSpec::parse("alerts_v2:500@nth=2;graph:503@every=2").unwrap(), 1);
        let picks: Vec<Option<FaultKind>> = [
            "/v1.0/security/incidents",
            "/v1.0/security/alerts_v2",
            "/v1.0/security/alerts_v2",
            "/kv/x/secrets/y",
        ]
        .iter()
        .map(|p| f.pick_for(p, None))
        .collect();
        assert_eq!(picks[0], None);
        assert_eq!(
            picks[1],
            Some(FaultKind::Status {
                code: 503,
                retry_after: None
            }),
            "graph rule: 2nd graph request"
        );
        assert_eq!(
            picks[2],
            Some(FaultKind::Status {
                code: 500,
                retry_after: None
            }),
            "alerts_v2 rule: 2nd alerts_v2 request"
        );
        assert_eq!(picks[3], None);
        // `wide=`: only requests whose filter covers more than the span (or is open-ended) fail.
        let w = Faults::new(FaultSpec::parse("alerts_v2:500@wide=2d").unwrap(), 1);
        let p = "/v1.0/security/alerts_v2";
        let q = |f: &str| {
            format!(
                "$filter={}&$top=10",
                url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
            )
        };
        assert!(
            w.pick_for(p, Some(&q("lastUpdateDateTime ge 2026-01-01T00:00:00Z"))).is_some(),
            "from long ago to now"
        );
        let recent = format!(
            "lastUpdateDateTime ge {}",
            (chrono::Utc::now() - chrono::Duration::hours(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert!(w.pick_for(p, Some(&q(&recent))).is_none(), "the last five hours");
        assert!(w.pick_for(p, None).is_some(), "no filter at all");
        let narrow = "lastUpdateDateTime ge 2026-01-01T00:00:00Z and lastUpdateDateTime lt 2026-01-02T00:00:00Z";
        assert!(w.pick_for(p, Some(&q(narrow))).is_none(), "one day");
        let broad = "lastUpdateDateTime ge 2026-01-01T00:00:00Z and lastUpdateDateTime lt 2026-01-05T00:00:00Z";
        assert!(w.pick_for(p, Some(&q(broad))).is_some(), "four days");
        assert!(FaultSpec::parse("alerts_v2:500@wide=soon").is_err());
        // Rates are reproducible for a seed.
        let a = Faults::new(FaultSpec::parse("*:500@rate=0.5").unwrap(), 9);
        let b = Faults::new(FaultSpec::parse("*:500@rate=0.5").unwrap(), 9);
        let sa: Vec<bool> = (0..64).map(|_| a.pick_for("/x", None).is_some()).collect();
        let sb: Vec<bool> = (0..64).map(|_| b.pick_for("/x", None).is_some()).collect();
        assert_eq!(sa, sb);
        assert!(sa.iter().any(|x| *x) && sa.iter().any(|x| !*x));
    }
}
