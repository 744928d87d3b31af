//! Key Vault secrets: `GET {vault}/secrets/{name}[/{version}]?api-version=…` for several vaults, each addressed by a
//! path prefix (`https://127.0.0.1:PORT/kv/{vault}/`, an ordinary vault URL for a client), with the bearer
//! challenge, access policies, versions and disabled secrets.

use crate::state::AppState;
use crate::tokens::KEYVAULT_RESOURCE;
use crate::tokens::TokenRejection;
pub use crate::vaults::{SecretVersion, Vault, demo_vaults};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut err = json!({"code": code, "message": message});
    if let Some(i) = inner {
        err["innererror"] = json!({"code": i});
    }
    (status, Json(json!({"error": err}))).into_response()
}

/// A vault request's query string (`api-version` is required, as Key Vault requires it).
#[derive(Deserialize)]
pub struct KvQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 127 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A vault's URL in ids it returns: the root of its own origin (a real vault URL has no path).
fn vault_url(st: &AppState, vault: &str) -> String {
    match st.vault_origins.get(&vault.to_ascii_lowercase()) {
        Some(o) => o.clone(),
        None => format!("{}/kv/{vault}", st.base_url),
    }
}

/// The vault a per-vault listener serves.
#[derive(Clone, Debug)]
pub struct VaultName(
    /// The vault's name.
    pub Arc<String>,
);

/// `GET /secrets/{name}` on a vault's own origin.
pub async fn own_get_secret(
    State(st): State<Arc<AppState>>,
    axum::Extension(VaultName(vault)): axum::Extension<VaultName>,
    Path(name): Path<String>,
    q: Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    get_secret(State(st), Path((vault.to_string(), name)), q, headers).await
}

/// `GET /secrets/{name}/{version}` (or `/versions`) on a vault's own origin.
pub async fn own_get_secret_version(
    State(st): State<Arc<AppState>>,
    axum::Extension(VaultName(vault)): axum::Extension<VaultName>,
    Path((name, version)): Path<(String, String)>,
    q: Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    get_secret_version(State(st), Path((vault.to_string(), name, version)), q, headers).await
}

/// `GET /secrets` on a vault's own origin.
pub async fn own_list_secrets(
    State(st): State<Arc<AppState>>,
    axum::Extension(VaultName(vault)): axum::Extension<VaultName>,
    q: Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    list_secrets(State(st), Path(vault.to_string()), q, headers).await
}

/// Authenticates and authorises one request; returns the error reply when refused.
fn check(st: &AppState, headers: &HeaderMap, q: &KvQuery, vault: &str, perm: &str) -> Result<Vault, Response> {
    let vaults = st
        .vaults
        .read()
        .map_err(|_| kv_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "vault store poisoned", None))?;
    let Some(v) = vaults.iter().find(|v| v.name.eq_ignore_ascii_case(vault)) else {
        return Err(kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            &format!("The vault '{vault}' does not exist."),
            None,
        ));
    };
    let challenge = || {
        let mut r = kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
            None,
        );
        let h = format!(
            "Bearer authorization=\"{}/{}\", resource=\"{KEYVAULT_RESOURCE}\"",
            st.base_url, v.tenant_id
        );
        if let Ok(val) = HeaderValue::from_str(&h) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, val);
        }
        r
    };
    let raw = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).unwrap_or("");
    let Some(token) = raw.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(challenge());
    };
    if q.api_version.as_deref().is_none_or(str::is_empty) {
        return Err(kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The api-version query parameter is required.",
            None,
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let claims = st.issuer.verify(token, &[KEYVAULT_RESOURCE.to_string()], now).map_err(|r| {
        let m = match r {
            TokenRejection::Expired => "AKV10022: Invalid token: the token is expired.",
            TokenRejection::WrongAudience => "AKV10022: Invalid audience.",
            _ => "AKV10001: The token could not be validated.",
        };
        let mut resp = challenge();
        *resp.body_mut() = Json(json!({"error": {"code": "Unauthorized", "message": m}}))
            .into_response()
            .into_body();
        resp
    })?;
    if !claims.tid.eq_ignore_ascii_case(&v.tenant_id) {
        return Err(kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &format!(
                "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/{}/, found {}.",
                v.tenant_id, claims.iss
            ),
            None,
        ));
    }
    let allowed = v.access.get(&claims.oid).is_some_and(|p| p.iter().any(|x| x == perm));
    if !allowed {
        return Err(kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "The user, group or application 'appid={};oid={};iss={}' does not have secrets {perm} permission on key vault '{};location=local'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                claims.appid, claims.oid, claims.iss, v.name
            ),
            Some("AccessDenied"),
        ));
    }
    Ok(v.clone())
}

fn secret_body(st: &AppState, vault: &str, name: &str, s: &SecretVersion) -> Value {
    let mut b = json!({
        "value": s.value,
        "id": format!("{}/secrets/{name}/{}", vault_url(st, vault), s.version),
        "attributes": {"enabled": s.enabled, "created": s.created, "updated": s.created, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
        "tags": {},
    });
    if let Some(ct) = &s.content_type {
        b["contentType"] = json!(ct);
    }
    b
}

fn get_version(st: &AppState, vault: &Vault, name: &str, version: Option<&str>) -> Response {
    if !valid_name(name) {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("The secret name '{name}' is invalid: 1-127 characters of 0-9, a-z, A-Z and -."),
            None,
        );
    }
    let Some(versions) = vault.secrets.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v) else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!(
                "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
            ),
            None,
        );
    };
    let found = match version {
        None | Some("") => versions.last(),
        Some(v) => versions.iter().find(|s| s.version == v),
    };
    let Some(s) = found else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!(
                "A secret with (name/id) {name}/{} was not found in this key vault.",
                version.unwrap_or_default()
            ),
            None,
        );
    };
    if !s.enabled {
        return kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        );
    }
    Json(secret_body(st, &vault.name, name, s)).into_response()
}

/// `GET /kv/{vault}/secrets/{name}`: a secret's current version.
pub async fn get_secret(
    State(st): State<Arc<AppState>>,
    Path((vault, name)): Path<(String, String)>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    match check(&st, &headers, &q, &vault, "get") {
        Ok(v) => get_version(&st, &v, &name, None),
        Err(r) => r,
    }
}

/// `GET /kv/{vault}/secrets/{name}/{version}` (or `/versions`).
pub async fn get_secret_version(
    State(st): State<Arc<AppState>>,
    Path((vault, name, version)): Path<(String, String, String)>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    let perm = if version == "versions" { "list" } else { "get" };
    let v = match check(&st, &headers, &q, &vault, perm) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if version == "versions" {
        let items: Vec<Value> = v
            .secrets
            .get(&name)
            .map(|vs| {
                vs.iter()
                    .map(|s| {
                        let mut b = secret_body(&st, &v.name, &name, s);
                        b.as_object_mut().map(|o| o.remove("value"));
                        b
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Json(json!({"value": items, "nextLink": null})).into_response();
    }
    get_version(&st, &v, &name, Some(&version))
}

/// `GET /kv/{vault}/secrets`.
pub async fn list_secrets(
    State(st): State<Arc<AppState>>,
    Path(vault): Path<String>,
    Query(q): Query<KvQuery>,
    headers: HeaderMap,
) -> Response {
    let v = match check(&st, &headers, &q, &vault, "list") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut names: Vec<&String> = v.secrets.keys().collect();
    names.sort();
    let items: Vec<Value> = names
        .into_iter()
        .filter_map(|n| v.secrets[n].last().map(|s| (n, s)))
        .map(|(n, s)| json!({"id": format!("{}/secrets/{n}", vault_url(&st, &v.name)), "attributes": {"enabled": s.enabled, "created": s.created, "updated": s.created, "recoveryLevel": "Recoverable+Purgeable"}, "tags": {}}))
        .collect();
    Json(json!({"value": items, "nextLink": null})).into_response()
}

#[derive(Deserialize)]
struct SeedFile {
    #[serde(default)]
    vaults: Option<Vec<VaultSpec>>,
}

#[derive(Deserialize)]
struct VaultSpec {
    name: String,
    tenant: String,
    /// UPN, client id or object id → permissions (`get`, `list`).
    #[serde(default)]
    access: HashMap<String, Vec<String>>,
    /// Secret name → value, or a list of values (oldest first: versions).
    #[serde(default)]
    secrets: HashMap<String, SecretSpec>,
    /// Names of secrets whose current version is disabled.
    #[serde(default)]
    disabled: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecretSpec {
    One(String),
    Versions(Vec<String>),
}

/// Reads the `vaults:` list of a directory YAML file (see docs/EMULATOR.md); `None` when the file has none.
pub fn vaults_from_yaml(text: &str, dir: &crate::directory::Directory) -> Result<Option<Vec<Vault>>, String> {
    let seed: SeedFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let Some(specs) = seed.vaults else { return Ok(None) };
    let mut out = Vec::new();
    for v in specs {
        let t = dir
            .tenant(&v.tenant)
            .ok_or_else(|| format!("vault {}: no tenant '{}' in the directory", v.name, v.tenant))?;
        let mut vault = Vault::new(&v.name, &t.id);
        for (who, perms) in &v.access {
            let oid = t
                .app(who)
                .map(|a| a.object_id.clone())
                .or_else(|| t.user(who).map(|u| u.object_id.clone()))
                .ok_or_else(|| format!("vault {}: no app or user '{who}' in tenant {}", v.name, t.domain))?;
            let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
            vault.allow(&oid, &perms);
        }
        let mut names: Vec<&String> = v.secrets.keys().collect();
        names.sort();
        for name in names {
            if !valid_name(name) {
                return Err(format!("vault {}: '{name}' is not a secret name (1-127 of 0-9 a-z A-Z -)", v.name));
            }
            let values = match &v.secrets[name] {
                SecretSpec::One(s) => vec![s.clone()],
                SecretSpec::Versions(list) => list.clone(),
            };
            let n = values.len();
            for (i, value) in values.iter().enumerate() {
                vault.put(name, value, !(i + 1 == n && v.disabled.contains(name)));
            }
        }
        out.push(vault);
    }
    Ok(Some(out))
}
