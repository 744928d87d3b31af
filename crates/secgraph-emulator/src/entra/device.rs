//! The device-code flow: issuing codes, the `/devicelogin` page, and the scriptable admin endpoints.

use super::*;

pub(super) const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ23456789";

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
        let app = find_app(&st, t, client_id)?;
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
            expires_at: now(&st) + lifetime,
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
        .find(|g| g.user_code == code && g.status == DeviceStatus::Pending && g.expires_at > now(st))
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

pub(super) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;max-width:32em;margin:3em auto}}label,select,input,button{{display:block;margin:.5em 0}}</style></head><body><h1>{t}</h1>{body}<p><small>secgraph emulator — not Microsoft Entra ID</small></p></body></html>",
        t = html_escape(title)
    ))
}

pub(super) fn user_options(st: &AppState, hint: Option<&str>) -> String {
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

pub(super) fn yes() -> bool {
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
