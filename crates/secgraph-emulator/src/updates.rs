//! Writes: `PATCH` of alerts_v2, incidents and legacy alerts, and `POST …/comments`. Changes are visible to later
//! reads and bump `lastUpdateDateTime`. Enum values are validated (case-insensitively, as the service accepts the
//! PascalCase spellings its older docs show) and stored in their canonical spelling.

use crate::data::graph_time;
use crate::graph::Collection;
use crate::reply::{ErrorReply, authorize, json_response, parse_body};
use crate::state::{AppState, RequestId};
use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use std::sync::Arc;

const ALERT_STATUS: &[&str] = &["unknown", "new", "inProgress", "resolved"];
const INCIDENT_STATUS: &[&str] = &["active", "resolved", "inProgress", "redirected", "awaitingAction"];
const LEGACY_STATUS: &[&str] = &["unknown", "newAlert", "inProgress", "resolved"];
const CLASSIFICATION: &[&str] = &["unknown", "falsePositive", "truePositive", "informationalExpectedActivity"];
const DETERMINATION: &[&str] = &[
    "unknown",
    "apt",
    "malware",
    "securityPersonnel",
    "securityTesting",
    "unwantedSoftware",
    "other",
    "multiStagedAttack",
    "compromisedAccount",
    "phishing",
    "maliciousUserActivity",
    "notMalicious",
    "notEnoughDataToValidate",
    "confirmedActivity",
    "lineOfBusinessApplication",
];
const FEEDBACK: &[&str] = &["unknown", "truePositive", "falsePositive", "benignPositive"];

fn enum_value(prop: &str, v: &Value, allowed: &[&str]) -> Result<Value, ErrorReply> {
    let Some(s) = v.as_str() else {
        return Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Property '{prop}' must be a string."),
        ));
    };
    allowed.iter().find(|a| a.eq_ignore_ascii_case(s)).map(|a| json!(a)).ok_or_else(|| {
        ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "Requested value '{s}' was not found for property '{prop}'. Allowed: {}.",
                allowed.join(", ")
            ),
        )
    })
}

fn string_or_null(prop: &str, v: &Value) -> Result<Value, ErrorReply> {
    match v {
        Value::String(_) | Value::Null => Ok(v.clone()),
        _ => Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Property '{prop}' must be a string or null."),
        )),
    }
}

fn string_list(prop: &str, v: &Value) -> Result<Value, ErrorReply> {
    match v {
        Value::Array(a) if a.iter().all(Value::is_string) => Ok(v.clone()),
        _ => Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Property '{prop}' must be a list of strings."),
        )),
    }
}

/// Validates a PATCH body for a collection into the changes to apply.
fn changes(coll: Collection, body: &Map<String, Value>, current: &Value) -> Result<Map<String, Value>, ErrorReply> {
    let mut out = Map::new();
    if coll == Collection::Legacy {
        let Some(vi) = body.get("vendorInformation") else {
            return Err(ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The vendorInformation property is required when updating an alert.",
            ));
        };
        let same = |k: &str| vi.get(k).and_then(Value::as_str) == current["vendorInformation"][k].as_str();
        if !same("provider") || !same("vendor") {
            return Err(ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "vendorInformation.provider and vendorInformation.vendor must match the alert's.",
            ));
        }
    }
    for (k, v) in body {
        let val = match (coll, k.as_str()) {
            (_, "@odata.type") => continue,
            (Collection::Legacy, "vendorInformation") => continue,
            (Collection::AlertsV2, "status") => enum_value(k, v, ALERT_STATUS)?,
            (Collection::Incidents, "status") => enum_value(k, v, INCIDENT_STATUS)?,
            (Collection::Legacy, "status") => enum_value(k, v, LEGACY_STATUS)?,
            (Collection::AlertsV2 | Collection::Incidents, "classification") => enum_value(k, v, CLASSIFICATION)?,
            (Collection::AlertsV2 | Collection::Incidents, "determination") => enum_value(k, v, DETERMINATION)?,
            (Collection::Legacy, "feedback") => enum_value(k, v, FEEDBACK)?,
            (_, "assignedTo") => string_or_null(k, v)?,
            (Collection::AlertsV2, "customDetails") if v.is_object() => v.clone(),
            (Collection::Incidents, "customTags") | (Collection::Legacy, "tags" | "comments") => string_list(k, v)?,
            (Collection::Incidents, "resolvingComment" | "summary") | (Collection::Legacy, "closedDateTime") => string_or_null(k, v)?,
            _ => {
                return Err(ErrorReply::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("Property '{k}' does not exist on type '{}' or cannot be updated.", coll_type(coll)),
                ));
            }
        };
        out.insert(k.clone(), val);
    }
    if out.is_empty() {
        return Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body has no property to update.",
        ));
    }
    Ok(out)
}

fn coll_type(c: Collection) -> &'static str {
    match c {
        Collection::AlertsV2 => "microsoft.graph.security.alert",
        Collection::Incidents => "microsoft.graph.security.incident",
        _ => "microsoft.graph.alert",
    }
}

fn writable(version: &str, coll: &str) -> Result<Collection, ErrorReply> {
    if version != "v1.0" && version != "beta" {
        return Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Invalid version: {version}"),
        ));
    }
    match coll {
        "alerts_v2" => Ok(Collection::AlertsV2),
        "incidents" => Ok(Collection::Incidents),
        "alerts" => Ok(Collection::Legacy),
        _ => Err(ErrorReply::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequest",
            format!("'{coll}' cannot be updated."),
        )),
    }
}

/// The position of the item with this id (`NotFound` when there is none).
fn position(ds: &crate::data::Dataset, c: Collection, id: &str) -> Result<usize, ErrorReply> {
    let items = match c {
        Collection::AlertsV2 => &ds.alerts_v2,
        Collection::Incidents => &ds.incidents,
        _ => &ds.legacy_alerts,
    };
    let found = match c {
        Collection::Incidents => ds.incident_position(id),
        _ => items.iter().position(|v| v.id().as_deref() == Some(id)),
    };
    found.ok_or_else(|| ErrorReply::new(StatusCode::NOT_FOUND, "NotFound", format!("{} '{id}' was not found.", coll_type(c))))
}

/// Keeps the time index in step after a write to the item at `pos`.
fn changed(ds: &mut crate::data::Dataset, c: Collection, pos: usize) {
    match c {
        Collection::AlertsV2 => ds.alert_changed(pos),
        Collection::Incidents => ds.incident_changed(pos),
        _ => {}
    }
}

fn items_mut(ds: &mut crate::data::Dataset, c: Collection) -> &mut Vec<crate::data::Item> {
    match c {
        Collection::AlertsV2 => &mut ds.alerts_v2,
        Collection::Incidents => &mut ds.incidents,
        _ => &mut ds.legacy_alerts,
    }
}

pub async fn patch(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, coll, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        let c = writable(&version, &coll)?;
        let claims = authorize(&st, &headers, c.write_roles())?;
        crate::graph::admit(&st, &claims)?;
        let body = parse_body(&body)?;
        let data = st.data(&claims.tid);
        let mut ds = data
            .dataset
            .write()
            .map_err(|_| ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", "dataset lock poisoned"))?;
        let pos = position(&ds, c, &id)?;
        let item = &mut items_mut(&mut ds, c)[pos];
        let ch = changes(c, &body, item)?;
        let now = graph_time(st.clock.now());
        let Value::Object(obj) = &mut **item else {
            return Err(ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", "corrupt item"));
        };
        let resolved = ch.get("status").and_then(Value::as_str) == Some("resolved");
        obj.extend(ch);
        match c {
            Collection::Legacy => {
                obj.insert("lastModifiedDateTime".into(), json!(now));
            }
            _ => {
                obj.insert("lastUpdateDateTime".into(), json!(now));
                if c == Collection::AlertsV2 && resolved {
                    obj.insert("resolvedDateTime".into(), json!(now));
                }
            }
        }
        let updated = Value::Object(obj.clone());
        changed(&mut ds, c, pos);
        if c == Collection::Legacy {
            let wants = headers
                .get("prefer")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.contains("return=representation"));
            return Ok(if wants {
                json_response(StatusCode::OK, &updated)
            } else {
                StatusCode::NO_CONTENT.into_response()
            });
        }
        Ok(json_response(StatusCode::OK, &updated))
    })();
    r.unwrap_or_else(|f| f.respond(&rid))
}

pub async fn post_comment(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path((version, coll, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| -> Result<Response, ErrorReply> {
        let c = writable(&version, &coll)?;
        if c == Collection::Legacy {
            return Err(ErrorReply::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Legacy alerts take comments in a PATCH of the 'comments' property.",
            ));
        }
        let claims = authorize(&st, &headers, c.write_roles())?;
        crate::graph::admit(&st, &claims)?;
        let body = parse_body(&body)?;
        let text = body
            .get("comment")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ErrorReply::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The request body must have a non-empty 'comment' string.",
                )
            })?;
        let author = claims.upn.clone().unwrap_or_else(|| claims.app_displayname.clone());
        let data = st.data(&claims.tid);
        let mut ds = data
            .dataset
            .write()
            .map_err(|_| ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", "dataset lock poisoned"))?;
        let pos = position(&ds, c, &id)?;
        let item = &mut items_mut(&mut ds, c)[pos];
        let now = graph_time(st.clock.now());
        let comment = json!({"comment": text, "createdByDisplayName": author, "createdDateTime": now});
        let comments = match item.get_mut("comments") {
            Some(Value::Array(a)) => {
                a.push(comment);
                a.clone()
            }
            _ => {
                item["comments"] = json!([comment]);
                vec![item["comments"][0].clone()]
            }
        };
        item["lastUpdateDateTime"] = json!(now);
        changed(&mut ds, c, pos);
        Ok(json_response(
            StatusCode::OK,
            &json!({"@odata.context": format!("{}/{version}/$metadata#security/{coll}('{id}')/comments", st.base_url), "value": comments}),
        ))
    })();
    r.unwrap_or_else(|f| f.respond(&rid))
}
