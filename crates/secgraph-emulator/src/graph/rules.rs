//! Custom detection rules: `/security/rules/detectionRules` (list, get, create, update, delete), per tenant, with
//! the service's validation. A rule's query must parse and, run over the tenant's hunting tables, return
//! `Timestamp`, `ReportId` and the column each impacted asset names — as Defender requires of a detection. Reads
//! need `CustomDetection.Read.All` (or `.ReadWrite.All`), writes `CustomDetection.ReadWrite.All`. The last run is
//! derived from the schedule and the emulator's clock: a rule has run at every period boundary since it was
//! created (`lastRunDetails`), and runs next at the following one.

use crate::data::graph_time;
use crate::reply::{ErrorReply, authorize, json_response, parse_body};
use crate::state::{AppState, RequestId};
use crate::tokens::AccessClaims;
use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;

const READ: &[&str] = &["CustomDetection.Read.All", "CustomDetection.ReadWrite.All"];
const WRITE: &[&str] = &["CustomDetection.ReadWrite.All"];
/// The schedule periods Defender offers: continuous (NRT), every 1, 3, 12 and 24 hours.
const PERIODS: &[&str] = &["0", "1H", "3H", "12H", "24H"];
const SEVERITIES: &[&str] = &["informational", "low", "medium", "high"];
/// Rules a tenant may have (Defender's limit).
const MAX_RULES: usize = 1000;

fn who(claims: &AccessClaims) -> String {
    if claims.app_displayname.is_empty() {
        claims.appid.clone()
    } else {
        claims.app_displayname.clone()
    }
}

fn period_duration(p: &str) -> Option<chrono::Duration> {
    let h: i64 = p.strip_suffix('H')?.parse().ok()?;
    Some(chrono::Duration::hours(h))
}

/// The rule as read at `now`: `lastRunDetails` and `schedule.nextRunDateTime` follow from its schedule.
fn as_read(rule: &Value, now: DateTime<Utc>) -> Value {
    let mut r = rule.clone();
    let created = r["createdDateTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    let period = r["schedule"]["period"].as_str().unwrap_or("24H").to_string();
    let enabled = r["isEnabled"].as_bool().unwrap_or(true);
    if let (Some(created), true) = (created, enabled) {
        let (last, next) = match period_duration(&period) {
            Some(every) if every > chrono::Duration::zero() => {
                let runs = (now - created).num_seconds() / every.num_seconds();
                let last = (runs > 0).then(|| created + every * runs as i32);
                (last, created + every * (runs as i32 + 1))
            }
            _ => (Some(now), now),
        };
        r["schedule"]["nextRunDateTime"] = json!(graph_time(next));
        if let Some(last) = last {
            r["lastRunDetails"] =
                json!({"lastRunDateTime": graph_time(last), "status": "completed", "failureReason": null, "errorCode": null});
        }
    }
    r
}

fn text<'a>(v: &'a Value, path: &str) -> Result<&'a str, ErrorReply> {
    let mut cur = v;
    for k in path.split('.') {
        cur = &cur[k];
    }
    match cur.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ErrorReply::bad(format!("The field '{path}' is required."))),
    }
}

/// The service's checks of a whole rule (after a create's body, or an update merged into the stored rule).
fn validate(st: &AppState, tid: &str, rule: &Value) -> Result<(), ErrorReply> {
    text(rule, "displayName")?;
    let query = text(rule, "queryCondition.queryText")?;
    let period = text(rule, "schedule.period")?;
    if !PERIODS.contains(&period) {
        return Err(ErrorReply::bad(format!(
            "Invalid schedule period '{period}'. Supported values: {}.",
            PERIODS.join(", ")
        )));
    }
    text(rule, "detectionAction.alertTemplate.title")?;
    let severity = text(rule, "detectionAction.alertTemplate.severity")?;
    if !SEVERITIES.contains(&severity) {
        return Err(ErrorReply::bad(format!(
            "Invalid severity '{severity}'. Supported values: {}.",
            SEVERITIES.join(", ")
        )));
    }
    let tables = st.data(tid).hunting_tables(&st.config);
    let outcome =
        crate::hunting::execute(&tables, query, None, st.clock.now()).map_err(|e| ErrorReply::bad(format!("Query is invalid: {e}")))?;
    let table = outcome.result.map_err(|e| ErrorReply::bad(format!("Query is invalid: {e}")))?;
    let has = |c: &str| table.columns.iter().any(|(n, _)| n.eq_ignore_ascii_case(c));
    for c in ["Timestamp", "ReportId"] {
        if !has(c) {
            return Err(ErrorReply::bad(format!(
                "The query must return the '{c}' column for the rule to create alerts."
            )));
        }
    }
    let assets = rule["detectionAction"]["alertTemplate"]["impactedAssets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for a in &assets {
        let id = a["identifier"].as_str().unwrap_or_default();
        let mut col = id.to_string();
        if let Some(f) = col.get_mut(..1) {
            f.make_ascii_uppercase();
        }
        if id.is_empty() || !has(&col) {
            return Err(ErrorReply::bad(format!(
                "The impacted asset identifier '{id}' is not a column the query returns."
            )));
        }
    }
    if assets.is_empty() {
        return Err(ErrorReply::bad("At least one impacted asset is required."));
    }
    Ok(())
}

/// Keeps what a client may set; read-only metadata is ignored, as the service does.
fn writable(body: &Map<String, Value>) -> Result<Map<String, Value>, ErrorReply> {
    let mut out = Map::new();
    for (k, v) in body {
        match k.as_str() {
            "displayName" | "isEnabled" | "queryCondition" | "schedule" | "detectionAction" => {
                out.insert(k.clone(), v.clone());
            }
            "@odata.type"
            | "id"
            | "createdBy"
            | "createdDateTime"
            | "lastModifiedBy"
            | "lastModifiedDateTime"
            | "lastRunDetails"
            | "detectorId" => {}
            other => {
                return Err(ErrorReply::bad(format!(
                    "Property '{other}' does not exist on type 'microsoft.graph.security.detectionRule'."
                )));
            }
        }
    }
    Ok(out)
}

/// Merges `patch` into `into` (objects merged key by key, anything else replaced), as a Graph PATCH of complex
/// properties does.
fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// `GET /security/rules/detectionRules`.
pub async fn list(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        super::check_version(&version)?;
        let claims = authorize(&st, &headers, READ)?;
        crate::graph::admit(&st, &claims)?;
        let data = st.data(&claims.tid);
        let rules = data.detection_rules.lock().map_err(|_| ErrorReply::poisoned("rules"))?;
        let now = st.clock.now();
        let value: Vec<Value> = rules.items.iter().map(|r| as_read(r, now)).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({"@odata.context": format!("{}/{version}/$metadata#security/rules/detectionRules", st.base_url), "value": value}),
        ))
    })();
    r.unwrap_or_else(|e| e.respond(&rid))
}

/// `GET /security/rules/detectionRules/{id}`.
pub async fn get_one(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        super::check_version(&version)?;
        let claims = authorize(&st, &headers, READ)?;
        crate::graph::admit(&st, &claims)?;
        let data = st.data(&claims.tid);
        let rules = data.detection_rules.lock().map_err(|_| ErrorReply::poisoned("rules"))?;
        let rule = rules
            .items
            .iter()
            .find(|r| r["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Detection rule '{id}'")))?;
        Ok(json_response(StatusCode::OK, &as_read(rule, st.clock.now())))
    })();
    r.unwrap_or_else(|e| e.respond(&rid))
}

/// `POST /security/rules/detectionRules`: 201 with the rule.
pub async fn create(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        super::check_version(&version)?;
        let claims = authorize(&st, &headers, WRITE)?;
        crate::graph::admit(&st, &claims)?;
        let mut rule = Value::Object(writable(&parse_body(&body)?)?);
        validate(&st, &claims.tid, &rule)?;
        let data = st.data(&claims.tid);
        let mut rules = data.detection_rules.lock().map_err(|_| ErrorReply::poisoned("rules"))?;
        if rules.items.len() >= MAX_RULES {
            return Err(ErrorReply::bad(format!(
                "A tenant can have at most {MAX_RULES} custom detection rules."
            )));
        }
        let now = graph_time(st.clock.now());
        let id = rules.next_id;
        rules.next_id += 1;
        if rule.get("isEnabled").is_none() {
            rule["isEnabled"] = json!(true);
        }
        rule["@odata.type"] = json!("#microsoft.graph.security.detectionRule");
        rule["id"] = json!(id.to_string());
        rule["createdBy"] = json!(who(&claims));
        rule["createdDateTime"] = json!(now);
        rule["lastModifiedBy"] = json!(who(&claims));
        rule["lastModifiedDateTime"] = json!(now);
        rule["detectorId"] = json!(uuid::Uuid::new_v4().to_string());
        rule["queryCondition"]["lastModifiedDateTime"] = json!(now);
        rule["lastRunDetails"] = json!({"lastRunDateTime": null, "status": null, "failureReason": null, "errorCode": null});
        rules.items.push(rule.clone());
        Ok(json_response(StatusCode::CREATED, &as_read(&rule, st.clock.now())))
    })();
    r.unwrap_or_else(|e| e.respond(&rid))
}

/// `PATCH /security/rules/detectionRules/{id}`: 200 with the rule.
pub async fn update(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        super::check_version(&version)?;
        let claims = authorize(&st, &headers, WRITE)?;
        crate::graph::admit(&st, &claims)?;
        let patch = writable(&parse_body(&body)?)?;
        if patch.is_empty() {
            return Err(ErrorReply::bad("The request body has no property to update."));
        }
        let data = st.data(&claims.tid);
        let mut rules = data.detection_rules.lock().map_err(|_| ErrorReply::poisoned("rules"))?;
        let pos = rules
            .items
            .iter()
            .position(|r| r["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Detection rule '{id}'")))?;
        let mut rule = rules.items[pos].clone();
        let query_before = rule["queryCondition"]["queryText"].clone();
        merge(&mut rule, &Value::Object(patch));
        validate(&st, &claims.tid, &rule)?;
        let now = graph_time(st.clock.now());
        rule["lastModifiedBy"] = json!(who(&claims));
        rule["lastModifiedDateTime"] = json!(now);
        if rule["queryCondition"]["queryText"] != query_before {
            rule["queryCondition"]["lastModifiedDateTime"] = json!(now);
        }
        rules.items[pos] = rule.clone();
        Ok(json_response(StatusCode::OK, &as_read(&rule, st.clock.now())))
    })();
    r.unwrap_or_else(|e| e.respond(&rid))
}

/// `DELETE /security/rules/detectionRules/{id}`: 204.
pub async fn delete(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        super::check_version(&version)?;
        let claims = authorize(&st, &headers, WRITE)?;
        crate::graph::admit(&st, &claims)?;
        let data = st.data(&claims.tid);
        let mut rules = data.detection_rules.lock().map_err(|_| ErrorReply::poisoned("rules"))?;
        let pos = rules
            .items
            .iter()
            .position(|r| r["id"] == id.as_str())
            .ok_or_else(|| ErrorReply::not_found(&format!("Detection rule '{id}'")))?;
        rules.items.remove(pos);
        Ok(StatusCode::NO_CONTENT.into_response())
    })();
    r.unwrap_or_else(|e| e.respond(&rid))
}
