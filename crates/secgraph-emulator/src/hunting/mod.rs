//! Advanced hunting: `POST /security/runHuntingQuery` with a documented KQL subset over seeded tables that are
//! consistent with the alerts (every alert has an AlertInfo row and one AlertEvidence row per evidence item; the
//! devices, accounts and addresses in alerts appear in the Device* and IdentityLogonEvents tables around the alert).

mod eval;
mod parse;
pub mod quota;
mod stories;
mod tables;
pub mod value;

pub use eval::{Context, SemanticError};
pub use parse::{SyntaxError, parse_query};
pub use tables::build_tables;

use crate::graph::{Fault, authorize, bytes_response};
use crate::state::{AppState, RequestId};
use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Parses an ISO 8601 duration such as `P30D`, `PT12H`, `P1DT2H30M`, `P2W`.
fn iso_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = Duration::zero();
    let mut any = false;
    let mut take = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let secs = units.iter().find(|(u, _)| u.eq_ignore_ascii_case(&c))?.1;
            let n: f64 = num.parse().ok()?;
            total += Duration::milliseconds((n * secs as f64 * 1000.0) as i64);
            num.clear();
            any = true;
        }
        num.is_empty().then_some(())
    };
    take(date, &[('Y', 365 * 86400), ('M', 30 * 86400), ('W', 7 * 86400), ('D', 86400)])?;
    if let Some(t) = time {
        take(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    any.then_some(total)
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.with_timezone(&Utc))
}

/// The Timespan forms: `P30D`, `start/end`, `P30D/end`, `start/P30D`, or a single start time. Default 30 days.
pub fn parse_timespan(s: Option<&str>, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok((now - Duration::days(30), now));
    };
    let bad =
        || format!("Invalid Timespan '{s}': use an ISO 8601 duration (P30D), start/end, duration/end, start/duration or a start time");
    let r = match s.split_once('/') {
        None => match iso_duration(s) {
            Some(d) => (now - d, now),
            None => (instant(s).ok_or_else(bad)?, now),
        },
        Some((a, b)) => match (iso_duration(a), iso_duration(b)) {
            (Some(d), None) => {
                let end = instant(b).ok_or_else(bad)?;
                (end - d, end)
            }
            (None, Some(d)) => {
                let start = instant(a).ok_or_else(bad)?;
                (start, start + d)
            }
            (None, None) => (instant(a).ok_or_else(bad)?, instant(b).ok_or_else(bad)?),
            (Some(_), Some(_)) => return Err(bad()),
        },
    };
    if r.0 > r.1 {
        return Err(format!("Invalid Timespan '{s}': the start is after the end"));
    }
    Ok(r)
}

/// Runs a query text with a Timespan and renders the documented response (`schema` + `results`), charging its
/// modelled CPU to `tenant`.
pub fn run_query(st: &AppState, tenant: &str, query: &str, timespan: Option<&str>) -> Result<Value, Fault> {
    let badreq = |m: String| Fault::new(StatusCode::BAD_REQUEST, "BadRequest", m);
    let q = parse_query(query).map_err(|e| badreq(e.to_string()))?;
    let now = Utc::now();
    let (from, to) = parse_timespan(timespan, now).map_err(badreq)?;
    let tables = st.hunting_tables();
    let ctx = Context {
        tables: &tables,
        now,
        from,
        to,
        lets: Default::default(),
        scalars: Default::default(),
        scanned: &std::cell::Cell::new(0),
    };
    let result = eval::run(&q, &ctx);
    st.hunting_usage
        .charge(tenant, quota::cost_ms(ctx.scanned.get()), std::time::Instant::now());
    let t = result.map_err(|e| badreq(format!("Semantic error: {}", e.0)))?;
    let schema: Vec<Value> = t
        .columns
        .iter()
        .map(|(n, ty)| json!({"name": n, "type": ty.schema_name()}))
        .collect();
    let results: Vec<Value> = t
        .rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            for ((n, _), v) in t.columns.iter().zip(r) {
                m.insert(n.clone(), v.to_json());
            }
            Value::Object(m)
        })
        .collect();
    Ok(
        json!({"@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.security.huntingQueryResults", st.base_url), "schema": schema, "results": results}),
    )
}

/// `POST /security/runHuntingQuery`: runs the KQL over the tenant's tables, within its quota.
pub async fn run_hunting_query(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, Fault> {
        if version != "v1.0" && version != "beta" {
            return Err(Fault::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Invalid version: {version}"),
            ));
        }
        let claims = authorize(&st, &headers, &["ThreatHunting.Read.All"])?;
        if let Err(r) = st
            .hunting_usage
            .admit(&claims.tid, &st.config.hunting_quota, std::time::Instant::now())
        {
            let mut resp = Fault::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", r.message).respond(&rid);
            if let Ok(v) = axum::http::HeaderValue::from_str(&r.retry_after.as_secs().to_string()) {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
        let body: Value = serde_json::from_slice(&body).map_err(|_| {
            Fault::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body must be JSON: {\"Query\": \"...\", \"Timespan\": \"P30D\"}.",
            )
        })?;
        let get = |k: &str| body.get(k).or_else(|| body.get(k.to_lowercase())).and_then(Value::as_str);
        let query = get("Query").filter(|q| !q.trim().is_empty()).ok_or_else(|| {
            Fault::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body must have a non-empty 'Query'.",
            )
        })?;
        let reply = run_query(&st, &claims.tid, query, get("Timespan"))?;
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        let limit = st.config.hunting_quota.max_result_bytes;
        if body.len() > limit {
            return Err(Fault::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "Query result is {} bytes, over the limit of {limit} bytes per result; narrow it with where, project, summarize or take",
                    body.len()
                ),
            ));
        }
        Ok(bytes_response(StatusCode::OK, body))
    })();
    r.unwrap_or_else(|f| f.respond(&rid))
}

#[cfg(test)]
mod tests;
