//! Credentials: anything that can produce a bearer token for a set of scopes implements [`TokenCredential`]
//! (the same shape as the Azure SDK's trait), so the Graph client and the Key Vault client take any of them: a client
//! secret, a client certificate, a signed-in user (browser or device code, with the token cache), or a token from
//! elsewhere.
//!
//! Invariant: no credential prints or prompts; what a user must see goes through a [`SignInPrompt`].

mod certificate;
mod delegated;
mod token_cache;

pub use certificate::{ClientCertificate, ClientCertificateCredential};
pub use delegated::{AuthType, DelegatedCredential, NoPrompt, SignInPrompt};
pub use token_cache::{CacheKey, TokenCache};

use crate::error::{AuthError, Error, Result};
use crate::retry::RetryOptions;
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
    /// The bearer token (redacted in `Debug`).
    pub token: Secret,
    /// When it stops working.
    pub expires_on: DateTime<Utc>,
}

impl AccessToken {
    /// Whether the token should be renewed now: within five minutes of expiry, or past half its life for tokens
    /// that live less than ten minutes.
    pub(crate) fn needs_renewal(&self, issued: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let life = self.expires_on.signed_duration_since(issued);
        let margin = if life < Duration::minutes(10) {
            life / 2
        } else {
            Duration::minutes(5)
        };
        now.checked_add_signed(margin).is_none_or(|t| t >= self.expires_on)
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
    /// A token for `scopes` (e.g. `https://graph.microsoft.com/.default`), from a cache when one is still good.
    async fn get_token(&self, scopes: &[&str], options: TokenRequestOptions) -> Result<AccessToken>;
}

/// A token supplied from outside (for example `az account get-access-token`); it cannot be renewed.
#[derive(Debug, Clone)]
pub struct StaticTokenCredential {
    token: AccessToken,
}

impl StaticTokenCredential {
    /// A credential that always hands out `token`, valid until `expires_on`.
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
    retry: RetryOptions,
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
    /// A credential for the app `client_id` in `tenant`, signing in at `authority_host` (e.g. `https://login.microsoftonline.com/`).
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
            retry: RetryOptions::default(),
        })
    }

    /// The same credential with another retry policy for its token requests (see [`crate::retry`]).
    pub fn with_retry(mut self, retry: RetryOptions) -> ClientSecretCredential {
        self.retry = retry;
        self
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
        let tok = request_token_with(&self.http, &self.token_url, &form, &self.retry).await?.token;
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

/// Longest token lifetime believed (Entra's are at most a day); a larger `expires_in` is clamped to it.
const MAX_TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// Posts a token request and reads the reply: tokens, or Entra's error. The token endpoint's redirects are never
/// followed (the form carries the client secret, a refresh token or a code); throttling (429), server errors
/// (500/502/503/504) and dropped connections are retried a bounded number of times, honouring `Retry-After`.
pub(crate) async fn request_token_with(
    http: &reqwest::Client,
    url: &Url,
    form: &[(&str, &str)],
    retry: &RetryOptions,
) -> Result<TokenReply> {
    use crate::error::redact_url;
    use crate::http::{BodyError, MAX_TOKEN_REPLY_BYTES, read_body, retry_after_unclamped};
    use crate::retry::{Decision, Outcome, Request};
    let grant = form.iter().find(|(k, _)| *k == "grant_type").map(|(_, v)| *v).unwrap_or("");
    let mut attempt = 0;
    let (status, body) = loop {
        attempt += 1;
        tracing::debug!(url = %redact_url(url), grant, attempt, "requesting token");
        let resp = match http.post(url.clone()).form(form).send().await {
            Ok(r) => r,
            Err(e) => {
                let outcome = if e.is_timeout() { Outcome::Timeout } else { Outcome::Connection };
                if let Decision::Retry(wait) = retry.decide(Request::Token, attempt, 0, outcome) {
                    tracing::info!(url = %redact_url(url), cause = %e, attempt, wait_ms = wait.as_millis() as u64, "token endpoint unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(Error::transport(url, e));
            }
        };
        let status = resp.status();
        if status.is_redirection() {
            let to = crate::http::redirect_target(url, resp.headers());
            return Err(crate::http::redirect_refused(
                url,
                status.as_u16(),
                to.as_ref(),
                "sign-in requests carry credentials and never follow redirects",
            ));
        }
        if !status.is_success() {
            let outcome = Outcome::Status(status.as_u16(), retry_after_unclamped(resp.headers()));
            if let Decision::Retry(wait) = retry.decide(Request::Token, attempt, 0, outcome) {
                tracing::info!(
                    status = status.as_u16(),
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "token endpoint asked to retry later"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        match read_body(resp, MAX_TOKEN_REPLY_BYTES).await {
            Ok(b) => break (status, b),
            Err(BodyError::TooLarge { limit }) => {
                return Err(Error::Response {
                    url: redact_url(url),
                    message: format!("the token reply is larger than {limit} bytes; refused"),
                });
            }
            Err(BodyError::Transport(e)) => {
                let outcome = if e.is_timeout() { Outcome::Timeout } else { Outcome::BodyCutShort };
                if let Decision::Retry(wait) = retry.decide(Request::Token, attempt, 0, outcome) {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(Error::transport(url, e));
            }
        }
    };
    let json: Value = serde_json::from_slice(&body).map_err(|_| Error::Response {
        url: redact_url(url),
        message: format!("HTTP {status} with a body that is not JSON ({} bytes)", body.len()),
    })?;
    if !status.is_success() || json.get("error").is_some() {
        return Err(Error::Auth(Box::new(parse_auth_error(status.as_u16(), &json))));
    }
    let s = |k: &str| json.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let token = s("access_token").ok_or_else(|| Error::Response {
        url: redact_url(url),
        message: "token reply has no access_token".into(),
    })?;
    // v2.0 sends an integer; older endpoints send a string. Whatever the number, it is clamped to a sane lifetime.
    let expires_in = match json.get("expires_in") {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.clamp(-1.0, 1e12) as i64)),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.clamp(-1.0, 1e12) as i64),
        _ => None,
    }
    .ok_or_else(|| Error::Response {
        url: redact_url(url),
        message: "token reply has no valid expires_in".into(),
    })?;
    Ok(TokenReply {
        token: AccessToken {
            token: Secret::new(token),
            expires_on: expires_after(expires_in),
        },
        refresh_token: s("refresh_token").map(Secret::new),
    })
}

/// Now plus `secs` seconds, with `secs` clamped to `0..=MAX_TOKEN_LIFETIME_SECS` (no overflow on any input).
pub(crate) fn expires_after(secs: i64) -> DateTime<Utc> {
    Utc::now() + Duration::seconds(secs.clamp(0, MAX_TOKEN_LIFETIME_SECS))
}

pub(crate) fn parse_auth_error(status: u16, json: &Value) -> AuthError {
    use crate::error::{MAX_SHOWN_MESSAGE, clean};
    let s = |k: &str| json.get(k).and_then(Value::as_str).map(|v| clean(v, 200));
    let description = json.get("error_description").and_then(Value::as_str).unwrap_or_default();
    // The description repeats trace, correlation id and timestamp on later lines; keep the first.
    let first = clean(description.lines().next().unwrap_or("").trim(), MAX_SHOWN_MESSAGE);
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
