//! What every Graph-style endpoint answers with: error replies (Graph's `error` object with `innerError`), JSON
//! bodies with Graph's OData content type, and the bearer-token check with its documented 401/403 replies.

use crate::state::{AppState, RequestId};
use crate::tokens::{AccessClaims, TokenRejection};
use axum::{
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// A Graph error reply with `innerError` carrying the request ids and date.
pub fn graph_error(status: StatusCode, code: &str, message: &str, rid: &RequestId) -> Response {
    let client = rid.1.clone().unwrap_or_else(|| rid.0.clone());
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "request-id": rid.0,
        "client-request-id": client,
    }}});
    (status, axum::Json(body)).into_response()
}

/// A Graph error reply not yet tied to a request (status, `code`, message): helpers return it, handlers add the
/// request ids with [`ErrorReply::respond`].
#[derive(Debug)]
pub struct ErrorReply {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ErrorReply {
    /// A reply with this status, Graph error code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// The same reply with a `Retry-After` header of `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> ErrorReply {
        self.retry_after = Some(secs);
        self
    }
    /// 400 `BadRequest`.
    pub(crate) fn bad(message: impl Into<String>) -> ErrorReply {
        ErrorReply::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    /// 404 `NotFound`: "`what` was not found."
    pub(crate) fn not_found(what: &str) -> ErrorReply {
        ErrorReply::new(StatusCode::NOT_FOUND, "NotFound", format!("{what} was not found."))
    }
    /// 500: a store's lock was poisoned by a panic.
    pub(crate) fn poisoned(store: &str) -> ErrorReply {
        ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR, "UnknownError", format!("{store} lock poisoned"))
    }
    /// The reply, with the request's ids.
    pub fn respond(self, rid: &RequestId) -> Response {
        let mut resp = graph_error(self.status, self.code, &self.message, rid);
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        resp
    }
}

/// Checks the bearer token (signature, lifetime, audience) and that it carries one of `needed`: as an application
/// role for app tokens; for delegated tokens, as a scope the signed-in user's own permissions also allow.
pub fn authorize(st: &AppState, headers: &HeaderMap, needed: &[&str]) -> Result<AccessClaims, ErrorReply> {
    let unauth = |m: &str| ErrorReply::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
    let raw = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .unwrap_or(raw)
        .trim();
    if token.is_empty() {
        return Err(unauth("Access token is empty."));
    }
    let now = st.clock.unix();
    let claims = st.issuer.verify(token, &st.graph_audiences(), now).map_err(|r| match r {
        TokenRejection::Malformed => unauth("IDX14100: JWT is not well formed, there are no dots (.) or the token is not a signed JWT."),
        TokenRejection::BadSignature => unauth("Access token validation failure. Invalid signature."),
        TokenRejection::Expired => unauth("Lifetime validation failed, the token is expired."),
        TokenRejection::NotYetValid => unauth("Lifetime validation failed, the token is not yet valid."),
        TokenRejection::WrongAudience => unauth("Access token validation failure. Invalid audience."),
    })?;
    match &claims.scp {
        None => {
            if !claims.roles.iter().any(|r| needed.contains(&r.as_str())) {
                return Err(ErrorReply::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    format!(
                        "Missing application roles. API required roles: {}, application roles: {}.",
                        needed.join(","),
                        claims.roles.join(",")
                    ),
                ));
            }
        }
        Some(scp) => {
            let user_perms: Vec<String> = st
                .directory
                .tenant(&claims.tid)
                .and_then(|t| t.user(&claims.oid))
                .map(|u| u.permissions.clone())
                .unwrap_or_default();
            let scopes: Vec<&str> = scp.split_whitespace().collect();
            // A user's ReadWrite permission covers the matching Read permission.
            let user_allows = |n: &str| user_perms.iter().any(|p| p == n || *p == n.replace(".Read.", ".ReadWrite."));
            let allowed = needed.iter().any(|n| scopes.contains(n) && user_allows(n));
            if !allowed {
                return Err(ErrorReply::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    format!(
                        "Missing scope permissions on the request. API requires one of '{}'. Scopes on the request '{scp}', and the signed-in user's roles allow '{}'.",
                        needed.join(", "),
                        user_perms.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(claims)
}

/// A JSON body with the OData content type Graph sends.
pub fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, ODATA_JSON)], bytes).into_response()
}

const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Serialises with the OData content type Graph sends.
pub fn json_response(status: StatusCode, v: &Value) -> Response {
    bytes_response(status, serde_json::to_vec(v).unwrap_or_default())
}

/// A request body that must be a JSON object (PATCH and POST bodies), or Graph's 400.
pub fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, ErrorReply> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ErrorReply::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body must be a JSON object.",
        )),
    }
}
