//! OpenID discovery and the signing keys (JWKS).

use super::*;

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
