//! Credentials: anything that can produce a bearer token for a set of scopes implements [`TokenCredential`]
//! (the same shape as the Azure SDK's trait), so the Graph client and later the Key Vault client take any of them.

use crate::error::{AuthError, Error, Result};
use crate::secret::Secret;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use url::Url;

/// A bearer token and when it stops working.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_on: DateTime<Utc>,
}

impl AccessToken {
    /// Whether the token should be renewed now: within five minutes of expiry, or past half its life for tokens
    /// that live less than ten minutes.
    pub(crate) fn needs_renewal(&self, issued: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let life = self.expires_on - issued;
        let margin = if life < Duration::minutes(10) {
            life / 2
        } else {
            Duration::minutes(5)
        };
        now + margin >= self.expires_on
    }
}

/// Options for one token request.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenRequestOptions {
    /// Ignore any cached token (after the service rejected it).
    pub force_refresh: bool,
}

/// Something that can get access tokens.
#[async_trait]
pub trait TokenCredential: Send + Sync + std::fmt::Debug {
    async fn get_token(&self, scopes: &[&str], options: TokenRequestOptions) -> Result<AccessToken>;
}

/// A token supplied from outside (for example `az account get-access-token`); it cannot be renewed.
#[derive(Debug, Clone)]
pub struct StaticTokenCredential {
    token: AccessToken,
}

impl StaticTokenCredential {
    pub fn new(token: Secret, expires_on: DateTime<Utc>) -> StaticTokenCredential {
        StaticTokenCredential {
            token: AccessToken { token, expires_on },
        }
    }
}

#[async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(&self, _scopes: &[&str], _options: TokenRequestOptions) -> Result<AccessToken> {
        Ok(self.token.clone())
    }
}

/// App-only sign-in with a client secret (OAuth 2.0 client credentials grant, Entra v2.0 endpoint).
/// Tokens are cached per scope set and renewed shortly before they expire.
#[derive(Debug)]
pub struct ClientSecretCredential {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    secret: Secret,
    cache: Mutex<HashMap<String, (AccessToken, DateTime<Utc>)>>,
}

/// Checks a tenant id or domain is safe to place in the token URL path.
pub fn validate_tenant(tenant: &str) -> Result<()> {
    let ok = !tenant.is_empty() && tenant.len() <= 256 && tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Error::Setting {
            origin: "connection".into(),
            setting: "tenant_id".into(),
            message: format!("'{tenant}' is not a tenant id or domain (expected a GUID or a name like contoso.onmicrosoft.com)"),
        })
    }
}

impl ClientSecretCredential {
    pub fn new(
        http: reqwest::Client,
        authority_host: &Url,
        tenant: &str,
        client_id: &str,
        secret: Secret,
    ) -> Result<ClientSecretCredential> {
        validate_tenant(tenant)?;
        let token_url = authority_host
            .join(&format!("{tenant}/oauth2/v2.0/token"))
            .map_err(|e| Error::Setting {
                origin: "connection".into(),
                setting: "authority".into(),
                message: format!("cannot build the token URL from {authority_host}: {e}"),
            })?;
        Ok(ClientSecretCredential {
            http,
            token_url,
            client_id: client_id.to_string(),
            secret,
            cache: Mutex::new(HashMap::new()),
        })
    }
}

#[async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn get_token(&self, scopes: &[&str], options: TokenRequestOptions) -> Result<AccessToken> {
        let key = scopes.join(" ");
        let now = Utc::now();
        if !options.force_refresh
            && let Ok(cache) = self.cache.lock()
            && let Some((tok, issued)) = cache.get(&key)
            && !tok.needs_renewal(*issued, now)
        {
            return Ok(tok.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose()),
            ("scope", key.as_str()),
        ];
        let issued = Utc::now();
        let tok = request_token(&self.http, &self.token_url, &form).await?.token;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (tok.clone(), issued));
        }
        Ok(tok)
    }
}

/// Everything a token reply may carry.
#[derive(Debug, Clone)]
pub(crate) struct TokenReply {
    pub token: AccessToken,
    pub refresh_token: Option<Secret>,
}

/// Posts a token request and reads the reply: tokens, or Entra's error.
pub(crate) async fn request_token(http: &reqwest::Client, url: &Url, form: &[(&str, &str)]) -> Result<TokenReply> {
    tracing::debug!(url = %crate::error::redact_url(url), grant = form.iter().find(|(k, _)| *k == "grant_type").map(|(_, v)| *v).unwrap_or(""), "requesting token");
    let resp = http
        .post(url.clone())
        .form(form)
        .send()
        .await
        .map_err(|e| Error::transport(url, &e))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| Error::transport(url, &e))?;
    let json: Value = serde_json::from_slice(&body).map_err(|_| Error::Response {
        url: crate::error::redact_url(url),
        message: format!("HTTP {status} with a body that is not JSON ({} bytes)", body.len()),
    })?;
    if !status.is_success() || json.get("error").is_some() {
        return Err(Error::Auth(Box::new(parse_auth_error(status.as_u16(), &json))));
    }
    let s = |k: &str| json.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let token = s("access_token").ok_or_else(|| Error::Response {
        url: crate::error::redact_url(url),
        message: "token reply has no access_token".into(),
    })?;
    // v2.0 sends an integer; older endpoints send a string.
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::Response {
        url: crate::error::redact_url(url),
        message: "token reply has no valid expires_in".into(),
    })?;
    Ok(TokenReply {
        token: AccessToken {
            token: Secret::new(token),
            expires_on: Utc::now() + Duration::seconds(expires_in.max(0)),
        },
        refresh_token: s("refresh_token").map(Secret::new),
    })
}

pub(crate) fn parse_auth_error(status: u16, json: &Value) -> AuthError {
    let s = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
    let description = s("error_description").unwrap_or_default();
    // The description repeats trace, correlation id and timestamp on later lines; keep the first.
    let first = description.lines().next().unwrap_or("").trim().to_string();
    AuthError {
        status,
        error: s("error").unwrap_or_else(|| "unknown_error".into()),
        description: first,
        codes: json
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
        trace_id: s("trace_id"),
        correlation_id: s("correlation_id"),
    }
}
