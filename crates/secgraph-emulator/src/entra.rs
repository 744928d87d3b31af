//! Entra ID (OAuth 2.0 v2.0): the token endpoint (client credentials with a secret or a certificate assertion,
//! device code, authorization code with PKCE, refresh tokens), the device-code and authorize endpoints with their
//! sign-in pages, OpenID discovery and signing keys.

use crate::directory::{App, Tenant, User};
use crate::state::{AppState, RequestId};
use crate::tokens::AccessClaims;
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

/// Graph's first-party application id: tokens may name Graph by it instead of its URL.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Key Vault's resource id in the public cloud; the emulator's vaults accept tokens for it.
pub const KEYVAULT_RESOURCE: &str = "https://vault.azure.net";
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

fn now() -> i64 {
    chrono::Utc::now().timestamp()
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

#[derive(Debug, Clone)]
pub struct DeviceGrant {
    user_code: String,
    tenant_id: String,
    client_id: String,
    scope: String,
    expires_at: i64,
    interval: u64,
    last_poll: Option<Instant>,
    status: DeviceStatus,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    tenant_id: String,
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    user_oid: String,
    scope: String,
    expires_at: i64,
    used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RefreshState {
    Active,
    Rotated,
    Revoked,
}

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    tenant_id: String,
    client_id: String,
    user_oid: String,
    scope: String,
    state: RefreshState,
}

/// Pending device codes, issued authorization codes, refresh tokens and seen assertion ids.
#[derive(Debug, Default)]
pub struct AuthStore {
    device: HashMap<String, DeviceGrant>,
    codes: HashMap<String, AuthCode>,
    refresh: HashMap<String, RefreshRecord>,
    jtis: HashMap<String, i64>,
}

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

fn find_app<'a>(t: &'a Tenant, client_id: &str) -> Result<&'a App, Fail> {
    t.app(client_id).ok_or_else(|| {
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
    let issued = now();
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
        let issued = now();
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

// ---------------------------------------------------------------------------------------------------------------
// Client authentication

/// Checks a confidential client's secret or certificate assertion.
fn authenticate_client(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, tenant_in_path: &str) -> Result<(), Fail> {
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return Err(bad(
                "invalid_request",
                900144,
                format!("The request body must contain the following parameter: 'client_assertion_type' with value '{ASSERTION_TYPE}'."),
            ));
        }
        return verify_assertion(st, t, app, assertion, tenant_in_path);
    }
    match (form.get("client_secret"), &app.secret) {
        (None, _) => Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
        (Some(given), Some(real)) if given.as_bytes() == real.as_bytes() => Ok(()),
        (Some(_), _) => Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        )),
    }
}

fn verify_assertion(st: &AppState, t: &Tenant, app: &App, assertion: &str, tenant_in_path: &str) -> Result<(), Fail> {
    let invalid = |code: u32, m: &str| fail(StatusCode::UNAUTHORIZED, "invalid_client", code, m.to_string());
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid(50027, "JWT token is invalid or malformed."))?;
    let alg = header.alg;
    if !matches!(alg, jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256) {
        return Err(invalid(
            5002738,
            &format!("Invalid JWT token. '{alg:?}' is not a supported signature algorithm. Supported: RS256, PS256."),
        ));
    }
    let thumb_s256 = header.x5t_s256.clone();
    let thumb = header.x5t.clone().map(|t| t.trim_end_matches('=').to_string());
    let cert = app.certificates.iter().find(|c| Some(&c.x5t_s256) == thumb_s256.as_ref() || Some(&c.x5t) == thumb.as_ref()).ok_or_else(|| {
        invalid(700027, &format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']", thumb_s256.clone().or(thumb.clone()).unwrap_or_default()))
    })?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(cert.public_key_pem.as_bytes())
        .map_err(|_| invalid(700027, "Client assertion contains an invalid signature."))?;
    let mut v = jsonwebtoken::Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(assertion, &key, &v).map_err(|_| invalid(700027, "Client assertion contains an invalid signature. [Reason - The signature does not match the certificate registered on the application.]"))?;
    let c = data.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let n = |k: &str| c.get(k).and_then(Value::as_i64);
    let aud = s("aud");
    let expected = [
        format!("{}/{}/oauth2/v2.0/token", st.base_url, tenant_in_path),
        format!("{}/{}/oauth2/v2.0/token", st.base_url, t.id),
        format!("{}/{}/oauth2/token", st.base_url, t.id),
    ];
    if !expected.iter().any(|e| e.eq_ignore_ascii_case(&aud)) {
        return Err(invalid(
            700212,
            &format!(
                "The audience claim in the client assertion '{aud}' does not match the token endpoint '{}'.",
                expected[0]
            ),
        ));
    }
    if s("iss") != app.client_id || s("sub") != app.client_id {
        return Err(invalid(
            700023,
            "Client assertion 'iss' and 'sub' must both be the application (client) id.",
        ));
    }
    let t_now = now();
    let (Some(exp), nbf) = (n("exp"), n("nbf")) else {
        return Err(invalid(700024, "Client assertion has no 'exp' claim."));
    };
    if exp <= t_now - 300 || nbf.is_some_and(|nbf| nbf > t_now + 300) {
        return Err(invalid(700024, "Client assertion is not within its valid time range."));
    }
    if exp - nbf.unwrap_or(t_now) > 24 * 3600 {
        return Err(invalid(700024, "Client assertion lifetime is too long."));
    }
    let jti = s("jti");
    if jti.is_empty() {
        return Err(invalid(700025, "Client assertion has no 'jti' claim."));
    }
    let mut store = lock_store(st)?;
    store.jtis.retain(|_, e| *e > t_now - 600);
    if store.jtis.insert(format!("{}:{jti}", app.client_id), exp).is_some() {
        return Err(invalid(700025, "The client assertion 'jti' has already been used (replay)."));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Token endpoint

pub async fn token(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token_inner(&st, &rid, &tenant, &headers, &body).unwrap_or_else(|f| f.respond(&rid))
}

fn token_inner(st: &AppState, rid: &RequestId, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, Fail> {
    let form_ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_ok {
        return Err(missing("grant_type"));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let t = resolve_tenant(st, tenant, form.get("client_id").map(String::as_str))?;
    let grant = form.get("grant_type").ok_or_else(|| missing("grant_type"))?;
    let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
    let app = find_app(t, client_id)?;
    match grant.as_str() {
        "client_credentials" => {
            let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
            authenticate_client(st, t, app, &form, tenant)?;
            client_credentials(st, t, app, scope, rid)
        }
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => device_poll(st, t, app, &form, rid),
        "authorization_code" => redeem_code(st, t, app, &form, rid),
        "refresh_token" => refresh(st, t, app, &form, rid),
        other => Err(bad(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn client_credentials(st: &AppState, t: &Tenant, app: &App, scope: &str, rid: &RequestId) -> Result<Response, Fail> {
    let bad_scope = || {
        bad(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    };
    let parts: Vec<&str> = scope.split_whitespace().collect();
    let [single] = parts.as_slice() else { return Err(bad_scope()) };
    let resource = single.strip_suffix("/.default").ok_or_else(bad_scope)?;
    let canonical = canonical_resource(st, resource).ok_or_else(|| {
        bad(
            "invalid_resource",
            500011,
            format!("The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", t.domain),
        )
    })?;
    let (token, lifetime) = access_token(st, t, app, &canonical, None, rid)?;
    let mut body = serde_json::Map::new();
    body.insert("expires_in".into(), json!(lifetime));
    body.insert("ext_expires_in".into(), json!(lifetime));
    body.insert("access_token".into(), json!(token));
    Ok(token_reply(body))
}

fn device_poll(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, rid: &RequestId) -> Result<Response, Fail> {
    let code = form.get("device_code").ok_or_else(|| missing("device_code"))?;
    let (user_oid, scope) = {
        let mut store = lock_store(st)?;
        let Some(g) = store.device.get_mut(code) else {
            return Err(bad(
                "bad_verification_code",
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            ));
        };
        if g.client_id != app.client_id || g.tenant_id != t.id {
            return Err(bad(
                "bad_verification_code",
                70000,
                "The device code was issued to another application or tenant.",
            ));
        }
        if g.status == DeviceStatus::Redeemed {
            return Err(bad("bad_verification_code", 70000, "The device code has already been redeemed."));
        }
        if now() >= g.expires_at {
            return Err(bad(
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ));
        }
        let polled_early = g.last_poll.is_some_and(|p| p.elapsed().as_secs_f64() < g.interval as f64 * 0.9);
        g.last_poll = Some(Instant::now());
        if polled_early && g.status == DeviceStatus::Pending {
            g.interval += 5;
            return Err(bad(
                "slow_down",
                70016,
                format!("Polling too fast: wait at least {} seconds between requests.", g.interval),
            ));
        }
        match g.status.clone() {
            DeviceStatus::Pending => {
                return Err(bad(
                    "authorization_pending",
                    70016,
                    "The provided request has not yet been authorized by the user. The user must input their code.",
                ));
            }
            DeviceStatus::Declined => {
                return Err(bad("authorization_declined", 70000, "The user declined the sign-in request."));
            }
            DeviceStatus::Approved(oid) => {
                g.status = DeviceStatus::Redeemed;
                (oid, g.scope.clone())
            }
            DeviceStatus::Redeemed => return Err(bad("bad_verification_code", 70000, "The device code has already been redeemed.")),
        }
    };
    grant_user_tokens(st, t, app, &user_oid, &scope, form, rid)
}

fn redeem_code(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, rid: &RequestId) -> Result<Response, Fail> {
    let code = form.get("code").ok_or_else(|| missing("code"))?;
    let redirect_uri = form.get("redirect_uri").ok_or_else(|| missing("redirect_uri"))?;
    let rec = {
        let mut store = lock_store(st)?;
        let Some(rec) = store.codes.get_mut(code) else {
            return Err(bad(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the authorization code is not valid.",
            ));
        };
        if rec.used {
            return Err(bad(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        rec.used = true;
        rec.clone()
    };
    if rec.client_id != app.client_id || rec.tenant_id != t.id {
        return Err(bad(
            "invalid_grant",
            700005,
            "Provided Authorization Code is intended to use against other tenant or application.",
        ));
    }
    if now() >= rec.expires_at {
        return Err(bad(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        ));
    }
    if rec.redirect_uri.trim_end_matches('/') != redirect_uri.trim_end_matches('/') {
        return Err(bad(
            "invalid_grant",
            500112,
            "The reply address does not match the reply address provided when requesting the authorization code.",
        ));
    }
    if let Some(challenge) = &rec.challenge {
        let Some(verifier) = form.get("code_verifier") else {
            return Err(bad(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        };
        if b64url(&sha2::Sha256::digest(verifier.as_bytes())) != *challenge {
            return Err(bad(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    let scope = form.get("scope").cloned().unwrap_or(rec.scope);
    grant_user_tokens(st, t, app, &rec.user_oid, &scope, form, rid)
}

fn refresh(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, rid: &RequestId) -> Result<Response, Fail> {
    let rt = form.get("refresh_token").ok_or_else(|| missing("refresh_token"))?;
    let rec = {
        let mut store = lock_store(st)?;
        let Some(rec) = store.refresh.get_mut(rt) else {
            return Err(bad(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
            ));
        };
        match rec.state {
            RefreshState::Rotated => {
                return Err(bad(
                    "invalid_grant",
                    70008,
                    "The refresh token has already been used to obtain new tokens and is no longer valid. Sign in again.",
                ));
            }
            RefreshState::Revoked => {
                return Err(bad(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
                ));
            }
            RefreshState::Active => {}
        }
        if rec.client_id != app.client_id || rec.tenant_id != t.id {
            return Err(bad(
                "invalid_grant",
                70000,
                "The refresh token was issued to a different client or tenant.",
            ));
        }
        rec.state = RefreshState::Rotated;
        rec.clone()
    };
    let mut scope = form.get("scope").cloned().unwrap_or(rec.scope);
    if !scope.split_whitespace().any(|s| s == "offline_access") {
        scope.push_str(" offline_access");
    }
    grant_user_tokens(st, t, app, &rec.user_oid, &scope, form, rid)
}

/// The tokens a delegated grant ends with, for the user it was granted to (`client_info` when the form asks).
fn grant_user_tokens(
    st: &AppState,
    t: &Tenant,
    app: &App,
    user_oid: &str,
    scope: &str,
    form: &HashMap<String, String>,
    rid: &RequestId,
) -> Result<Response, Fail> {
    let user = t
        .user(user_oid)
        .ok_or_else(|| bad("invalid_grant", 50034, "The user account does not exist in this directory."))?;
    user_tokens(st, t, app, user, scope, form.get("client_info").is_some_and(|v| v == "1"), rid)
}

// ---------------------------------------------------------------------------------------------------------------
// Device code

const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ23456789";

pub async fn devicecode(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let r = (|| -> Result<Response, Fail> {
        let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
        let t = resolve_tenant(&st, &tenant, Some(client_id))?;
        let app = find_app(t, client_id)?;
        let scope = form.get("scope").ok_or_else(|| missing("scope"))?;
        parse_scopes(&st, scope)?;
        let device_code = format!("DAQABAAEAAA{}", random_token(96));
        let user_code: String = uuid::Uuid::new_v4().as_bytes()[..9]
            .iter()
            .map(|b| USER_CODE_ALPHABET[*b as usize % USER_CODE_ALPHABET.len()] as char)
            .collect();
        let interval = st.config.device_code_interval.as_secs().max(1);
        let lifetime = st.config.device_code_lifetime.as_secs() as i64;
        let auto = st.config.auto_approve.as_ref().and_then(|u| t.user(u)).map(|u| u.object_id.clone());
        let grant = DeviceGrant {
            user_code: user_code.clone(),
            tenant_id: t.id.clone(),
            client_id: app.client_id.clone(),
            scope: scope.clone(),
            expires_at: now() + lifetime,
            interval,
            last_poll: None,
            status: auto.map(DeviceStatus::Approved).unwrap_or(DeviceStatus::Pending),
        };
        lock_store(&st)?.device.insert(device_code.clone(), grant);
        let uri = format!("{}/devicelogin", st.base_url);
        Ok(Json(json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": lifetime,
            "interval": interval,
            "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
        }))
        .into_response())
    })();
    r.unwrap_or_else(|f| f.respond(&rid))
}

/// Approves or declines the pending device code `user_code` as `user`. Returns a message for the page.
pub fn decide_device(st: &AppState, user_code: &str, user: &str, approve: bool) -> Result<String, String> {
    let mut store = st.auth.lock().map_err(|_| "store poisoned".to_string())?;
    let code = user_code.trim().to_ascii_uppercase().replace('-', "");
    let g = store
        .device
        .values_mut()
        .find(|g| g.user_code == code && g.status == DeviceStatus::Pending && g.expires_at > now())
        .ok_or_else(|| format!("No pending sign-in has the code '{user_code}' (or it expired)."))?;
    let t = st.directory.tenant(&g.tenant_id).ok_or("tenant vanished")?;
    let u = t.user(user).ok_or_else(|| format!("No user '{user}' in tenant {}.", t.domain))?;
    g.status = if approve {
        DeviceStatus::Approved(u.object_id.clone())
    } else {
        DeviceStatus::Declined
    };
    Ok(if approve {
        format!("Signed in as {}. You can close this window.", u.upn)
    } else {
        "Sign-in declined.".into()
    })
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}label,select,input,button{{display:block;margin:.5em 0}}</style></head><body><h1>{t}</h1>{body}<p><small>secgraph emulator — not Microsoft Entra ID</small></p></body></html>",
        t = html_escape(title)
    ))
}

fn user_options(st: &AppState, hint: Option<&str>) -> String {
    st.directory
        .tenants
        .iter()
        .flat_map(|t| t.users.iter())
        .map(|u| {
            let sel = if hint.is_some_and(|h| h.eq_ignore_ascii_case(&u.upn)) {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{v}\"{sel}>{d} ({v})</option>",
                v = html_escape(&u.upn),
                d = html_escape(&u.display_name)
            )
        })
        .collect()
}

pub async fn devicelogin_page(State(st): State<Arc<AppState>>) -> Html<String> {
    page(
        "Enter code",
        &format!(
            "<form method=\"post\"><label>Code <input name=\"user_code\" autofocus></label><label>Sign in as <select name=\"user\">{}</select></label><button name=\"decision\" value=\"approve\">Continue</button><button name=\"decision\" value=\"decline\">Cancel</button></form>",
            user_options(&st, None)
        ),
    )
}

pub async fn devicelogin_submit(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let code = form.get("user_code").cloned().unwrap_or_default();
    let user = form.get("user").cloned().unwrap_or_default();
    let approve = form.get("decision").map(String::as_str) != Some("decline");
    match decide_device(&st, &code, &user, approve) {
        Ok(m) => page("Device sign-in", &format!("<p>{}</p>", html_escape(&m))).into_response(),
        Err(m) => (
            StatusCode::BAD_REQUEST,
            page("Device sign-in", &format!("<p>{}</p>", html_escape(&m))),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct DeviceDecision {
    user_code: String,
    user: String,
    #[serde(default = "yes")]
    approve: bool,
}

fn yes() -> bool {
    true
}

/// `POST /_emulator/devicecode` `{"user_code": "...", "user": "upn", "approve": true}`: the scriptable sign-in.
pub async fn admin_device(State(st): State<Arc<AppState>>, Json(d): Json<DeviceDecision>) -> Response {
    match decide_device(&st, &d.user_code, &d.user, d.approve) {
        Ok(m) => Json(json!({"result": m})).into_response(),
        Err(m) => (StatusCode::NOT_FOUND, Json(json!({"error": m}))).into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct RevokeRequest {
    user: String,
}

/// `POST /_emulator/revoke` `{"user": "upn"}`: revokes every refresh token of a user (as an admin would).
pub async fn admin_revoke(State(st): State<Arc<AppState>>, Json(r): Json<RevokeRequest>) -> Response {
    let oids: Vec<String> = st
        .directory
        .tenants
        .iter()
        .filter_map(|t| t.user(&r.user))
        .map(|u| u.object_id.clone())
        .collect();
    let mut n = 0;
    if let Ok(mut store) = st.auth.lock() {
        for rec in store
            .refresh
            .values_mut()
            .filter(|r| oids.contains(&r.user_oid) && r.state == RefreshState::Active)
        {
            rec.state = RefreshState::Revoked;
            n += 1;
        }
    }
    Json(json!({"revoked": n})).into_response()
}

// ---------------------------------------------------------------------------------------------------------------
// Authorize (browser flow)

fn is_loopback_redirect(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut u = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Redirect::to(u.as_str()).into_response()
}

/// Validates an authorization request; errors that cannot be sent to the redirect URI are shown as a page.
fn check_authorize(st: &AppState, tenant: &str, q: &HashMap<String, String>) -> Result<(String, String), Fail> {
    let client_id = q.get("client_id").ok_or_else(|| missing("client_id"))?;
    let t = resolve_tenant(st, tenant, Some(client_id))?;
    find_app(t, client_id)?;
    let redirect = q.get("redirect_uri").ok_or_else(|| missing("redirect_uri"))?;
    if !is_loopback_redirect(redirect) {
        return Err(bad(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Only loopback redirect URIs are registered on the emulator's apps."
            ),
        ));
    }
    Ok((t.id.clone(), redirect.clone()))
}

impl Fail {
    /// The error as a sign-in page (for errors that must not be redirected).
    fn page(self) -> Response {
        (
            self.status,
            page(
                "Sign-in error",
                &format!("<p>AADSTS{}: {}</p>", self.code, html_escape(&self.message)),
            ),
        )
            .into_response()
    }
}

/// Errors sent back to the redirect URI (the request itself was acceptable enough to answer there).
fn authorize_redirect_error(q: &HashMap<String, String>) -> Option<(&'static str, String)> {
    if q.get("response_type").map(String::as_str) != Some("code") {
        return Some((
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code' for this flow.".into(),
        ));
    }
    if q.get("scope").is_none_or(|s| s.trim().is_empty()) {
        return Some((
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.".into(),
        ));
    }
    match (q.get("code_challenge"), q.get("code_challenge_method").map(String::as_str)) {
        (None, _) => Some((
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption.".into(),
        )),
        (Some(_), Some("S256")) => None,
        (Some(_), m) => Some((
            "invalid_request",
            format!(
                "AADSTS5002705: code_challenge_method '{}' is not supported; use S256.",
                m.unwrap_or("plain")
            ),
        )),
    }
}

fn issue_code(st: &AppState, tenant_id: &str, q: &HashMap<String, String>, user: &User) -> Response {
    let code = format!("1.A{}", random_token(100));
    let rec = AuthCode {
        tenant_id: tenant_id.to_string(),
        client_id: q.get("client_id").cloned().unwrap_or_default(),
        redirect_uri: q.get("redirect_uri").cloned().unwrap_or_default(),
        challenge: q.get("code_challenge").cloned(),
        user_oid: user.object_id.clone(),
        scope: q.get("scope").cloned().unwrap_or_default(),
        expires_at: now() + st.config.auth_code_lifetime.as_secs() as i64,
        used: false,
    };
    if let Ok(mut store) = st.auth.lock() {
        store.codes.insert(code.clone(), rec);
    }
    let state = q.get("state").cloned().unwrap_or_default();
    let mut params = vec![("code", code.as_str())];
    if !state.is_empty() {
        params.push(("state", state.as_str()));
    }
    let session = uuid::Uuid::new_v4().to_string();
    params.push(("session_state", session.as_str()));
    redirect_with(q.get("redirect_uri").map(String::as_str).unwrap_or_default(), &params)
}

pub async fn authorize_get(
    State(st): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (tenant_id, redirect) = match check_authorize(&st, &tenant, &q) {
        Ok(x) => x,
        Err(f) => return f.page(),
    };
    let state = q.get("state").cloned().unwrap_or_default();
    if let Some((error, desc)) = authorize_redirect_error(&q) {
        return redirect_with(&redirect, &[("error", error), ("error_description", &desc), ("state", &state)]);
    }
    if let Some(auto) = &st.config.auto_approve
        && let Some(u) = st.directory.tenant(&tenant_id).and_then(|t| t.user(auto))
    {
        return issue_code(&st, &tenant_id, &q, u);
    }
    let hidden: String = q
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", html_escape(k), html_escape(v)))
        .collect();
    let hint = q.get("login_hint").map(String::as_str);
    page(
        "Sign in",
        &format!(
            "<p>The application <b>{app}</b> asks for: {scope}</p><form method=\"post\">{hidden}<label>Sign in as <select name=\"user\">{opts}</select></label><button name=\"decision\" value=\"approve\">Accept</button><button name=\"decision\" value=\"decline\">Cancel</button></form>",
            app = html_escape(q.get("client_id").map(String::as_str).unwrap_or("")),
            scope = html_escape(q.get("scope").map(String::as_str).unwrap_or("")),
            opts = user_options(&st, hint),
        ),
    )
    .into_response()
}

pub async fn authorize_post(State(st): State<Arc<AppState>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let q: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (tenant_id, redirect) = match check_authorize(&st, &tenant, &q) {
        Ok(x) => x,
        Err(f) => return f.page(),
    };
    let state = q.get("state").cloned().unwrap_or_default();
    if let Some((error, desc)) = authorize_redirect_error(&q) {
        return redirect_with(&redirect, &[("error", error), ("error_description", &desc), ("state", &state)]);
    }
    if q.get("decision").map(String::as_str) == Some("decline") {
        return redirect_with(
            &redirect,
            &[
                ("error", "access_denied"),
                ("error_description", "AADSTS65004: User declined to consent to access the app."),
                ("state", &state),
            ],
        );
    }
    let user = q.get("user").and_then(|u| st.directory.tenant(&tenant_id).and_then(|t| t.user(u)));
    match user {
        Some(u) => issue_code(&st, &tenant_id, &q, u),
        None => redirect_with(
            &redirect,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "AADSTS50034: The user account does not exist in this directory.",
                ),
                ("state", &state),
            ],
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Discovery

pub async fn openid_configuration(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(tenant): Path<String>,
) -> Response {
    let tid = match tenant.as_str() {
        "common" | "organizations" | "consumers" => "{tenantid}".to_string(),
        other => match st.directory.tenant(other) {
            Some(t) => t.id.clone(),
            None => return bad("invalid_tenant", 90002, format!("Tenant '{tenant}' not found.")).respond(&rid),
        },
    };
    let base = &st.base_url;
    let t = if tid == "{tenantid}" { tenant.clone() } else { tid.clone() };
    Json(json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": OIDC_SCOPES,
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "secgraph-emulator.local",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": base.trim_start_matches("https://"),
    }))
    .into_response()
}

pub async fn keys(State(st): State<Arc<AppState>>) -> Response {
    Json(st.issuer.jwks()).into_response()
}
