//! The authorize endpoint (browser flow): request checks, the sign-in page, codes sent to loopback redirect URIs.

use super::*;

pub(super) fn is_loopback_redirect(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
}

pub(super) fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
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
pub(super) fn check_authorize(st: &AppState, tenant: &str, q: &HashMap<String, String>) -> Result<(String, String), Fail> {
    let client_id = q.get("client_id").ok_or_else(|| missing("client_id"))?;
    let t = resolve_tenant(st, tenant, Some(client_id))?;
    find_app(st, t, client_id)?;
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
pub(super) fn authorize_redirect_error(q: &HashMap<String, String>) -> Option<(&'static str, String)> {
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

pub(super) fn issue_code(st: &AppState, tenant_id: &str, q: &HashMap<String, String>, user: &User) -> Response {
    let code = format!("1.A{}", random_token(100));
    let rec = AuthCode {
        tenant_id: tenant_id.to_string(),
        client_id: q.get("client_id").cloned().unwrap_or_default(),
        redirect_uri: q.get("redirect_uri").cloned().unwrap_or_default(),
        challenge: q.get("code_challenge").cloned(),
        user_oid: user.object_id.clone(),
        scope: q.get("scope").cloned().unwrap_or_default(),
        expires_at: now(st) + st.config.auth_code_lifetime.as_secs() as i64,
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
