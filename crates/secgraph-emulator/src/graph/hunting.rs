//! `POST /security/runHuntingQuery`: the KQL engine of [`crate::hunting`] over the tenant's tables, within
//! Defender's quota, with the documented response and errors.

use crate::hunting::{self, quota};
use crate::reply::{ErrorReply, authorize, bytes_response};
use crate::state::{AppState, RequestId};
use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::Utc;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Runs a query text with a Timespan and renders the documented response (`schema` + `results`), charging its
/// modelled CPU to `tenant`.
pub fn run_query(st: &AppState, tenant: &str, query: &str, timespan: Option<&str>) -> Result<Value, ErrorReply> {
    let badreq = |m: String| ErrorReply::new(StatusCode::BAD_REQUEST, "BadRequest", m);
    let tables = st.data(tenant).hunting_tables(&st.config);
    let outcome = hunting::execute(&tables, query, timespan, Utc::now()).map_err(badreq)?;
    st.hunting_usage
        .charge(tenant, quota::cost_ms(outcome.scanned), std::time::Instant::now());
    let t = outcome.result.map_err(|e| badreq(format!("Semantic error: {e}")))?;
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
    let r = (|| -> Result<Response, ErrorReply> {
        if version != "v1.0" && version != "beta" {
            return Err(ErrorReply::new(
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
            let mut resp = ErrorReply::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", r.message).respond(&rid);
            if let Ok(v) = axum::http::HeaderValue::from_str(&r.retry_after.as_secs().to_string()) {
                resp.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            return Ok(resp);
        }
        let body: Value = serde_json::from_slice(&body).map_err(|_| {
            ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body must be JSON: {\"Query\": \"...\", \"Timespan\": \"P30D\"}.",
            )
        })?;
        let get = |k: &str| body.get(k).or_else(|| body.get(k.to_lowercase())).and_then(Value::as_str);
        let query = get("Query").filter(|q| !q.trim().is_empty()).ok_or_else(|| {
            ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body must have a non-empty 'Query'.",
            )
        })?;
        let reply = run_query(&st, &claims.tid, query, get("Timespan"))?;
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        let limit = st.config.hunting_quota.max_result_bytes;
        if body.len() > limit {
            return Err(ErrorReply::new(
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
