//! Entra ID (OAuth 2.0 v2.0): the token endpoint (client credentials with a secret or a certificate assertion,
//! device code, authorization code with PKCE, refresh tokens), the device-code and authorize endpoints with their
//! sign-in pages, OpenID discovery and signing keys.

mod authorize;
mod client_auth;
mod device;
mod discovery;
mod token;

pub use authorize::*;
use client_auth::*;
pub use device::*;
pub use discovery::*;
pub use token::*;

use crate::directory::{App, Tenant, User};
use crate::grants::{AuthCode, AuthStore, DeviceGrant, DeviceStatus, RefreshRecord, RefreshState};
use crate::state::{AppState, RequestId};
use crate::tokens::{AccessClaims, KEYVAULT_RESOURCE};
use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const KEYVAULT_APP_ID: &str = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// An Entra error, before the request ids are attached.
#[derive(Debug)]
pub struct Fail {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

fn fail(status: StatusCode, error: &'static str, code: u32, message: impl Into<String>) -> Fail {
    Fail {
        status,
        error,
        code,
        message: message.into(),
    }
}

fn bad(error: &'static str, code: u32, message: impl Into<String>) -> Fail {
    fail(StatusCode::BAD_REQUEST, error, code, message)
}

impl Fail {
    pub fn respond(self, rid: &RequestId) -> Response {
        entra_error(self.status, self.error, self.code, &self.message, rid)
    }
}

/// An Entra error reply: `error`, an AADSTS-prefixed description with trace and correlation ids, `error_codes`.
pub fn entra_error(status: StatusCode, error: &str, code: u32, message: &str, rid: &RequestId) -> Response {
    let now = chrono::Utc::now();
    let ts = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace = &rid.0;
    let correlation = rid.1.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, [(header::CACHE_CONTROL, "no-store, no-cache")], Json(body)).into_response()
}

fn missing(param: &str) -> Fail {
    bad(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

fn random_token(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The emulator clock's time, in Unix seconds: tokens and codes are stamped and expire by it.
fn now(st: &AppState) -> i64 {
    st.clock.unix()
}

// ---------------------------------------------------------------------------------------------------------------
// Scopes

/// A parsed `scope` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// The resource the permissions are on, without a trailing slash.
    pub resource: String,
    /// Permission names (without the resource prefix).
    pub perms: Vec<String>,
    /// `{resource}/.default` was asked for.
    pub default: bool,
    pub offline: bool,
    pub openid: bool,
}

impl Scopes {
    fn oidc_suffix(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.openid {
            v.extend(["openid", "profile", "email"]);
        }
        if self.offline {
            v.push("offline_access");
        }
        v
    }
}

fn canonical_resource(st: &AppState, r: &str) -> Option<String> {
    let r = r.trim_end_matches('/');
    if st.graph_audiences().iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(r)) {
        return Some(r.to_string());
    }
    if r.eq_ignore_ascii_case(KEYVAULT_RESOURCE) || r.eq_ignore_ascii_case(KEYVAULT_APP_ID) {
        return Some(KEYVAULT_RESOURCE.to_string());
    }
    None
}

/// Parses a delegated-flow scope string: one resource's permissions plus OpenID scopes.
pub fn parse_scopes(st: &AppState, raw: &str) -> Result<Scopes, Fail> {
    let mut s = Scopes {
        resource: String::new(),
        perms: vec![],
        default: false,
        offline: false,
        openid: false,
    };
    let mut resources: Vec<String> = Vec::new();
    for item in raw.split_whitespace() {
        match item {
            "offline_access" => s.offline = true,
            "openid" | "profile" | "email" => s.openid = true,
            _ => {
                let (res, perm) = match item.rsplit_once('/') {
                    Some((r, p)) if r.contains("://") || r.len() == 36 => (r.to_string(), p.to_string()),
                    Some(_) => {
                        return Err(bad(
                            "invalid_scope",
                            70011,
                            format!("The provided value for the input parameter 'scope' is not valid. The scope {item} is not valid."),
                        ));
                    }
                    None => ("https://graph.microsoft.com".to_string(), item.to_string()),
                };
                let Some(res) = canonical_resource(st, &res) else {
                    return Err(bad(
                        "invalid_resource",
                        500011,
                        format!("The resource principal named {res} was not found in the tenant."),
                    ));
                };
                if !resources.contains(&res) {
                    resources.push(res);
                }
                if perm == ".default" {
                    s.default = true;
                } else {
                    s.perms.push(perm);
                }
            }
        }
    }
    if resources.len() > 1 {
        return Err(bad(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains more than one resource.",
        ));
    }
    s.resource = resources.pop().unwrap_or_else(|| "https://graph.microsoft.com".into());
    Ok(s)
}

// ---------------------------------------------------------------------------------------------------------------
// Stored grants

/// The grant store, or a server error if a panic poisoned it.
fn lock_store(st: &AppState) -> Result<std::sync::MutexGuard<'_, AuthStore>, Fail> {
    st.auth
        .lock()
        .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, "store poisoned"))
}

// ---------------------------------------------------------------------------------------------------------------
// Token issuing

fn resolve_tenant<'a>(st: &'a AppState, tenant: &str, client_id: Option<&str>) -> Result<&'a Tenant, Fail> {
    if matches!(tenant, "common" | "organizations") {
        if let Some(c) = client_id
            && let Some((t, _)) = st.directory.any_app(c)
        {
            return Ok(t);
        }
        return Err(bad(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in any directory.",
                client_id.unwrap_or("")
            ),
        ));
    }
    st.directory.tenant(tenant).ok_or_else(|| {
        bad(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    })
}

/// The app in tenant `t`. A multi-tenant app registered elsewhere but never consented in `t` has no service
/// principal there: Entra answers AADSTS7000229; an app unknown everywhere, AADSTS700016.
fn find_app<'a>(st: &AppState, t: &'a Tenant, client_id: &str) -> Result<&'a App, Fail> {
    t.app(client_id).ok_or_else(|| {
        if st.directory.any_app(client_id).is_some() {
            return bad(
                "invalid_client",
                7000229,
                format!(
                    "The client application {client_id} is missing service principal in the tenant {}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
                    t.id
                ),
            );
        }
        bad(
            "unauthorized_client",
            700016,
            format!("Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", t.domain),
        )
    })
}

fn access_token(
    st: &AppState,
    t: &Tenant,
    app: &App,
    resource: &str,
    user: Option<(&User, &[String])>,
    rid: &RequestId,
) -> Result<(String, i64), Fail> {
    let issued = now(st);
    let lifetime = st.token_lifetime_secs();
    let uti: String = rid.0.replace('-', "").chars().take(22).collect();
    let claims = match user {
        None => AccessClaims::app(t, app, resource, issued, issued + lifetime, uti),
        Some((u, perms)) => AccessClaims {
            aud: resource.to_string(),
            iss: format!("https://sts.windows.net/{}/", t.id),
            iat: issued,
            nbf: issued,
            exp: issued + lifetime,
            app_displayname: app.display_name.clone(),
            appid: app.client_id.clone(),
            appidacr: "0".into(),
            idp: format!("https://sts.windows.net/{}/", t.id),
            idtyp: "user".into(),
            oid: u.object_id.clone(),
            roles: vec![],
            sub: b64url(&sha2::Sha256::digest(format!("{}{}", u.object_id, app.client_id).as_bytes())[..24]),
            tid: t.id.clone(),
            uti,
            ver: "1.0".into(),
            scp: Some(perms.join(" ")),
            upn: Some(u.upn.clone()),
            unique_name: Some(u.upn.clone()),
            name: Some(u.display_name.clone()),
        },
    };
    let token = st
        .issuer
        .sign(&claims)
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, e))?;
    Ok((token, lifetime))
}

fn token_reply(mut body: serde_json::Map<String, Value>) -> Response {
    body.insert("token_type".into(), json!("Bearer"));
    ([(header::CACHE_CONTROL, "no-store, no-cache")], Json(Value::Object(body))).into_response()
}

/// Tokens for a signed-in user: access token (with `scp`), refresh token with `offline_access`, id token and
/// `client_info` with `openid`.
fn user_tokens(
    st: &AppState,
    t: &Tenant,
    app: &App,
    user: &User,
    scope: &str,
    client_info: bool,
    rid: &RequestId,
) -> Result<Response, Fail> {
    let scopes = parse_scopes(st, scope)?;
    let consented: Vec<String> = if scopes.default {
        app.delegated.clone()
    } else {
        scopes.perms.clone()
    };
    if let Some(p) = consented.iter().find(|p| !app.delegated.contains(p)) {
        return Err(bad(
            "invalid_grant",
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource. (permission {p})",
                app.client_id, app.display_name
            ),
        ));
    }
    let (access, lifetime) = access_token(st, t, app, &scopes.resource, Some((user, &consented)), rid)?;
    let mut body = serde_json::Map::new();
    let mut granted: Vec<String> = consented.iter().map(|p| format!("{}/{p}", scopes.resource)).collect();
    granted.extend(scopes.oidc_suffix().into_iter().map(str::to_string));
    body.insert("scope".into(), json!(granted.join(" ")));
    body.insert("expires_in".into(), json!(lifetime));
    body.insert("ext_expires_in".into(), json!(lifetime));
    body.insert("access_token".into(), json!(access));
    if scopes.offline {
        let rt = format!("0.A{}", random_token(120));
        let rec = RefreshRecord {
            tenant_id: t.id.clone(),
            client_id: app.client_id.clone(),
            user_oid: user.object_id.clone(),
            scope: scope.to_string(),
            state: RefreshState::Active,
        };
        if let Ok(mut store) = st.auth.lock() {
            store.refresh.insert(rt.clone(), rec);
        }
        body.insert("refresh_token".into(), json!(rt));
    }
    if scopes.openid {
        let issued = now(st);
        let id = json!({
            "aud": app.client_id, "iss": format!("{}/{}/v2.0", st.base_url, t.id), "iat": issued, "nbf": issued,
            "exp": issued + 3600, "name": user.display_name, "oid": user.object_id, "preferred_username": user.upn,
            "sub": b64url(&sha2::Sha256::digest(user.object_id.as_bytes())[..24]), "tid": t.id, "ver": "2.0",
        });
        let id_token = st
            .issuer
            .sign(&id)
            .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, e))?;
        body.insert("id_token".into(), json!(id_token));
    }
    if client_info {
        body.insert(
            "client_info".into(),
            json!(b64url(json!({"uid": user.object_id, "utid": t.id}).to_string().as_bytes())),
        );
    }
    Ok(token_reply(body))
}
