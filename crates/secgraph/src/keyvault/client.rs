//! The vault client: one REST `GET secrets/{name}` with the 401 bearer challenge naming the resource to sign in to.

use super::{SecretCache, VaultSecret};
use crate::auth::{TokenCredential, TokenRequestOptions};
use crate::error::{Error, Result};
use crate::secret::Secret;
use serde_json::Value;
use std::sync::Arc;
use url::Url;

const API_VERSION: &str = "7.4";

/// Reads secrets from vaults. `vault_url` is a template with `{vault}`; `vault_urls` names vaults it cannot describe.
#[derive(Debug, Clone)]
pub struct SecretClient {
    http: reqwest::Client,
    vault_url: String,
    vault_urls: std::collections::BTreeMap<String, String>,
    credential: Arc<dyn TokenCredential>,
    cache: Option<SecretCache>,
    retry: crate::retry::RetryOptions,
}

fn challenge_resource(h: &reqwest::header::HeaderMap) -> Option<String> {
    let v = h.get(reqwest::header::WWW_AUTHENTICATE)?.to_str().ok()?;
    let rest = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?;
    rest.split(',').find_map(|kv| {
        let (k, val) = kv.trim().split_once('=')?;
        (k.trim() == "resource" || k.trim() == "scope").then(|| val.trim().trim_matches('"').trim_end_matches("/.default").to_string())
    })
}

impl SecretClient {
    /// A client reaching vaults through `vault_url` (`{vault}` is replaced by the vault's name), signing in with `credential`, keeping secrets in `cache` when given.
    pub fn new(
        http: reqwest::Client,
        vault_url_template: &str,
        credential: Arc<dyn TokenCredential>,
        cache: Option<SecretCache>,
    ) -> SecretClient {
        SecretClient {
            http,
            vault_url: vault_url_template.to_string(),
            vault_urls: Default::default(),
            credential,
            cache,
            retry: crate::retry::RetryOptions::default(),
        }
    }

    /// The same client with another retry policy (see [`crate::retry`]): a vault read throttled (429), unavailable
    /// (503, 504), failing (500, 502) or cut off is sent again as the policy says.
    pub fn with_retry(mut self, retry: crate::retry::RetryOptions) -> SecretClient {
        self.retry = retry;
        self
    }

    /// Sends a vault GET (with `token`, if any), again while the retry policy says so; returns the last reply.
    async fn send(&self, url: &Url, token: Option<&str>) -> Result<reqwest::Response> {
        use crate::retry::{Decision, Outcome, Request};
        let mut attempt = 0;
        let mut server_errors = 0;
        loop {
            attempt += 1;
            let mut req = self.http.get(url.clone());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if matches!(status, 500 | 502) {
                        server_errors += 1;
                    }
                    let outcome = Outcome::Status(status, crate::http::retry_after_unclamped(resp.headers()));
                    if resp.status().is_success() || status == 401 {
                        return Ok(resp);
                    }
                    match self.retry.decide(Request::Read, attempt, server_errors, outcome) {
                        Decision::Retry(wait) => {
                            tracing::info!(status, attempt, wait_ms = wait.as_millis() as u64, "Key Vault asked to retry later");
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        _ => return Ok(resp),
                    }
                }
                Err(e) if e.is_timeout() => return Err(Error::transport(url, e)),
                Err(e) => match self.retry.decide(Request::Read, attempt, server_errors, Outcome::Connection) {
                    Decision::Retry(wait) => {
                        tracing::info!(cause = %e, attempt, "Key Vault unreachable; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    _ => return Err(Error::transport(url, e)),
                },
            }
        }
    }

    /// The same client, reaching the named vaults (lower-case names) at their own URLs instead of the template.
    pub fn with_vault_urls(mut self, urls: std::collections::BTreeMap<String, String>) -> SecretClient {
        self.vault_urls = urls;
        self
    }

    fn url(&self, s: &VaultSecret) -> Result<Url> {
        let base = match self.vault_urls.get(&s.vault.to_ascii_lowercase()) {
            Some(u) => u.clone(),
            None => self.vault_url.replace("{vault}", &s.vault),
        };
        let base = if base.ends_with('/') { base } else { format!("{base}/") };
        Url::parse(&base)
            .and_then(|u| u.join(&format!("secrets/{}?api-version={API_VERSION}", s.name)))
            .map_err(|e| Error::Setting {
                origin: "settings".into(),
                setting: "Key Vault URL".into(),
                message: format!("'{base}' is not a URL: {e}"),
            })
    }

    /// The secret's current value: from the cache when enabled and present, else from the vault (then cached).
    pub async fn get(&self, s: &VaultSecret) -> Result<Secret> {
        if let Some(c) = &self.cache
            && let Some(v) = c.get(s)
        {
            tracing::debug!(secret = %s, "secret from the local cache");
            return Ok(v);
        }
        let v = self.fetch(s).await?;
        if let Some(c) = &self.cache {
            c.put(s, &v)?;
        }
        Ok(v)
    }

    /// Reads the secret from the vault, bypassing the cache.
    pub async fn fetch(&self, s: &VaultSecret) -> Result<Secret> {
        let url = self.url(s)?;
        let failed = |status: u16, body: &Value| {
            let code = body["error"]["code"].as_str().unwrap_or("");
            let inner = body["error"]["innererror"]["code"]
                .as_str()
                .map(|i| format!("/{i}"))
                .unwrap_or_default();
            let msg = body["error"]["message"].as_str().unwrap_or("no message");
            let clean = crate::error::clean;
            Error::Vault {
                setting: None,
                secret: s.to_string(),
                status,
                code: format!("{}{}", clean(code, 100), clean(&inner, 100)),
                message: clean(msg, crate::error::MAX_SHOWN_MESSAGE),
            }
        };
        // First without a token: the 401 challenge names the resource to ask a token for.
        let first = self.send(&url, None).await?;
        refuse_redirect(&url, &first)?;
        let resource = match first.status().as_u16() {
            401 => challenge_resource(first.headers()).unwrap_or_else(|| "https://vault.azure.net".into()),
            200 => {
                return Err(Error::Response {
                    url: crate::error::redact_url(&url),
                    message: "the vault answered without authentication; refusing to trust it".into(),
                });
            }
            status => {
                let body: Value = serde_json::from_slice(&crate::http::read_error_body(first).await).unwrap_or(Value::Null);
                return Err(failed(status, &body));
            }
        };
        let scope = format!("{}/.default", resource.trim_end_matches('/'));
        let token = self.credential.get_token(&[scope.as_str()], TokenRequestOptions::default()).await?;
        let resp = self.send(&url, Some(token.token.expose())).await?;
        refuse_redirect(&url, &resp)?;
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_slice(&crate::http::read_error_body(resp).await).unwrap_or(Value::Null);
        if status != 200 {
            return Err(failed(status, &body));
        }
        body.get("value")
            .and_then(Value::as_str)
            .map(Secret::new)
            .ok_or_else(|| Error::Response {
                url: crate::error::redact_url(&url),
                message: "the secret reply has no value".into(),
            })
    }
}

/// A vault reply that redirects is an error: the request may carry a token, and the vault never redirects.
fn refuse_redirect(url: &Url, resp: &reqwest::Response) -> Result<()> {
    if resp.status().is_redirection() {
        let to = crate::http::redirect_target(url, resp.headers());
        return Err(crate::http::redirect_refused(
            url,
            resp.status().as_u16(),
            to.as_ref(),
            "Key Vault requests never follow redirects",
        ));
    }
    Ok(())
}
