//! Entra ID (OAuth 2.0 v2.0) endpoints: token, OpenID discovery and signing keys.

use crate::state::{AppState, RequestId};
use crate::tokens::AccessClaims;
use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Graph's first-party application id: tokens may name Graph by it instead of its URL.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

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
    (status, [(header::CACHE_CONTROL, "no-store, no-cache")], axum::Json(body)).into_response()
}

fn missing(param: &str, rid: &RequestId) -> Response {
    entra_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{param}'."),
        rid,
    )
}

pub async fn token(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form_ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_ok {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
            &rid,
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let Some(t) = st.directory.tenant(&tenant) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
            &rid,
        );
    };
    let Some(grant) = form.get("grant_type") else {
        return missing("grant_type", &rid);
    };
    if grant != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
            &rid,
        );
    }
    let Some(client_id) = form.get("client_id") else {
        return missing("client_id", &rid);
    };
    let Some(app) = t.app(client_id) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                t.domain
            ),
            &rid,
        );
    };
    let Some(scope) = form.get("scope") else {
        return missing("scope", &rid);
    };
    match form.get("client_secret") {
        None => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                &rid,
            );
        }
        Some(s) if s.as_bytes() != app.secret.as_bytes() => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
                &rid,
            );
        }
        Some(_) => {}
    }
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let [single] = scopes.as_slice() else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
            &rid,
        );
    };
    let Some(resource) = single.strip_suffix("/.default") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
            &rid,
        );
    };
    if !st
        .graph_audiences()
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(resource.trim_end_matches('/')))
    {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                t.domain
            ),
            &rid,
        );
    }
    let now = chrono::Utc::now().timestamp();
    let lifetime = st.token_lifetime_secs();
    let claims = AccessClaims {
        aud: resource.trim_end_matches('/').to_string(),
        iss: format!("https://sts.windows.net/{}/", t.id),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        app_displayname: app.display_name.clone(),
        appid: app.client_id.clone(),
        appidacr: "1".into(),
        idp: format!("https://sts.windows.net/{}/", t.id),
        idtyp: "app".into(),
        oid: app.object_id.clone(),
        roles: app.roles.clone(),
        sub: app.object_id.clone(),
        tid: t.id.clone(),
        uti: rid.0.replace('-', "")[..22.min(rid.0.len())].to_string(),
        ver: "1.0".into(),
    };
    let access_token = match st.issuer.sign(&claims) {
        Ok(t) => t,
        Err(e) => return entra_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, &e, &rid),
    };
    (
        [(header::CACHE_CONTROL, "no-store, no-cache")],
        axum::Json(json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        })),
    )
        .into_response()
}

pub async fn openid_configuration(
    State(st): State<Arc<AppState>>,
    Extension(rid): Extension<RequestId>,
    Path(tenant): Path<String>,
) -> Response {
    let tid = match tenant.as_str() {
        "common" | "organizations" | "consumers" => "{tenantid}".to_string(),
        other => match st.directory.tenant(other) {
            Some(t) => t.id.clone(),
            None => {
                return entra_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_tenant",
                    90002,
                    &format!("Tenant '{tenant}' not found."),
                    &rid,
                );
            }
        },
    };
    let base = &st.base_url;
    let t = if tid == "{tenantid}" { tenant.clone() } else { tid.clone() };
    axum::Json(json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
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
    axum::Json(st.issuer.jwks()).into_response()
}
