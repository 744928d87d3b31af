//! The token endpoint: client credentials, device-code polling, authorization-code redemption (PKCE) and rotating
//! refresh tokens.

use super::*;

pub async fn token(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token_inner(&st, &rid, &tenant, &headers, &body).unwrap_or_else(|f| f.respond(&rid))
}

pub(super) fn token_inner(st: &AppState, rid: &RequestId, tenant: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, Fail> {
    // Entra reads a form body; a request without a Content-Type is read as one too (msticpy's OData drivers send
    // none). A JSON body is not a form: its parameters are missing.
    let form_ok = match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"),
    };
    if !form_ok {
        return Err(missing("grant_type"));
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    // App-only sign-in needs a tenant: Entra refuses the multi-tenant authorities for it.
    if form.get("grant_type").map(String::as_str) == Some("client_credentials") {
        match tenant.to_ascii_lowercase().as_str() {
            "common" | "consumers" => {
                return Err(bad(
                    "invalid_request",
                    9001023,
                    "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
                ));
            }
            "organizations" => {
                return Err(bad(
                    "invalid_request",
                    50059,
                    "No tenant-identifying information found in either the request or implied by any provided credentials.",
                ));
            }
            _ => {}
        }
    }
    let t = resolve_tenant(st, tenant, form.get("client_id").map(String::as_str))?;
    let grant = form.get("grant_type").ok_or_else(|| missing("grant_type"))?;
    let client_id = form.get("client_id").ok_or_else(|| missing("client_id"))?;
    let app = find_app(st, t, client_id)?;
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

pub(super) fn client_credentials(st: &AppState, t: &Tenant, app: &App, scope: &str, rid: &RequestId) -> Result<Response, Fail> {
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

pub(super) fn device_poll(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, rid: &RequestId) -> Result<Response, Fail> {
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
        if now(st) >= g.expires_at {
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

pub(super) fn redeem_code(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, rid: &RequestId) -> Result<Response, Fail> {
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
    if now(st) >= rec.expires_at {
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

pub(super) fn refresh(st: &AppState, t: &Tenant, app: &App, form: &HashMap<String, String>, rid: &RequestId) -> Result<Response, Fail> {
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
pub(super) fn grant_user_tokens(
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
