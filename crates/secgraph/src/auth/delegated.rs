//! Delegated (user) sign-in: the browser flow (authorization code + PKCE with a one-shot loopback listener) and the
//! device-code flow, with silent reuse of cached access tokens and refresh tokens before any prompt.
//!
//! The library never talks to the terminal: what the user must see (the device-code message, the URL to open) goes
//! through a [`SignInPrompt`] the caller provides.

use crate::auth::{AccessToken, TokenCredential, TokenReply, TokenRequestOptions, request_token_with, validate_tenant};
use crate::auth::{CacheKey, TokenCache};
use crate::error::{AuthError, Error, Result};
use crate::secret::Secret;
use async_trait::async_trait;
use base64::Engine;
use chrono::Utc;
use serde_json::Value;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// How the user signs in interactively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthType {
    /// Authorization code + PKCE in the system browser (msticpy's default, "interactive").
    #[default]
    Browser,
    /// Device code: a code to enter on another device.
    Device,
    /// The Azure CLI's signed-in account (`az account get-access-token`): no app registration of one's own.
    AzureCli,
}

impl AuthType {
    /// msticpy's names: `browser`/`interactive` and `device`/`devicecode`; `cli`/`azurecli` for the Azure CLI.
    pub fn parse(s: &str) -> Option<AuthType> {
        match s.trim().to_ascii_lowercase().as_str() {
            "browser" | "interactive" => Some(AuthType::Browser),
            "device" | "devicecode" | "device_code" => Some(AuthType::Device),
            "cli" | "azurecli" | "azure_cli" | "az" => Some(AuthType::AzureCli),
            _ => None,
        }
    }
}

/// What the user must be shown during an interactive sign-in.
pub trait SignInPrompt: Send + Sync + std::fmt::Debug {
    /// The service's device-code message ("To sign in, use a web browser to open … and enter the code …").
    fn device_code(&self, message: &str);
    /// The sign-in URL for the browser flow; show it (for headless machines) and try to open a browser.
    fn open_browser(&self, url: &str);
    /// Whether a user can be reached at all. When false, a sign-in that needs the user fails at once (with
    /// `interaction_required`) instead of waiting for a browser or a device code nobody will see.
    fn can_interact(&self) -> bool {
        true
    }
    /// Whether a browser can be opened here. When false, the browser flow fails at once, suggesting the device-code
    /// flow, instead of waiting minutes for a redirect that cannot come (a server, an SSH session).
    fn can_open_browser(&self) -> bool {
        true
    }
}

/// A prompt for programs without a user: every interactive sign-in fails with a clear error.
#[derive(Debug, Default)]
pub struct NoPrompt;

impl SignInPrompt for NoPrompt {
    fn device_code(&self, _message: &str) {}
    fn open_browser(&self, _url: &str) {}
    fn can_interact(&self) -> bool {
        false
    }
}

/// Delegated-user credential: memory → cache → refresh token → interactive sign-in.
#[derive(Debug)]
pub struct DelegatedCredential {
    http: reqwest::Client,
    authority: Url,
    tenant: String,
    client_id: String,
    username: Option<String>,
    auth_type: AuthType,
    cache: Option<TokenCache>,
    prompt: Arc<dyn SignInPrompt>,
    browser_timeout: Duration,
    memory: Mutex<HashMap<String, (AccessToken, chrono::DateTime<Utc>)>>,
    refresh: Mutex<Option<Secret>>,
    retry: crate::retry::RetryOptions,
}

fn sorted_scopes(scopes: &[&str]) -> String {
    let mut v: Vec<&str> = scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .filter(|s| !matches!(*s, "offline_access" | "openid" | "profile"))
        .collect();
    v.sort_unstable();
    v.dedup();
    v.join(" ")
}

fn auth_error(error: &str, description: String) -> Error {
    Error::Auth(Box::new(AuthError {
        status: 400,
        error: error.into(),
        description,
        codes: vec![],
        trace_id: None,
        correlation_id: None,
    }))
}

impl DelegatedCredential {
    #[allow(clippy::too_many_arguments)]
    /// A user credential for the app `client_id` in `tenant`: `username` picks the cached account (and is the login hint), `cache` keeps tokens between runs, `prompt` shows what the user must see.
    pub fn new(
        http: reqwest::Client,
        authority: &Url,
        tenant: &str,
        client_id: &str,
        username: Option<String>,
        auth_type: AuthType,
        cache: Option<TokenCache>,
        prompt: Arc<dyn SignInPrompt>,
    ) -> Result<DelegatedCredential> {
        validate_tenant(tenant)?;
        Ok(DelegatedCredential {
            http,
            authority: authority.clone(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            username,
            auth_type,
            cache,
            prompt,
            browser_timeout: Duration::from_secs(300),
            memory: Mutex::new(HashMap::new()),
            refresh: Mutex::new(None),
            retry: crate::retry::RetryOptions::default(),
        })
    }

    /// The same credential with another retry policy for its token requests (see [`crate::retry`]).
    pub fn with_retry(mut self, retry: crate::retry::RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// How long the browser flow waits for the redirect (default five minutes).
    pub fn with_browser_timeout(mut self, t: Duration) -> Self {
        self.browser_timeout = t;
        self
    }

    fn endpoint(&self, leaf: &str) -> Result<Url> {
        self.authority
            .join(&format!("{}/oauth2/v2.0/{leaf}", self.tenant))
            .map_err(|e| Error::Setting {
                origin: "connection".into(),
                setting: "authority".into(),
                message: e.to_string(),
            })
    }

    fn key(&self) -> Option<CacheKey> {
        Some(CacheKey {
            authority: self.authority.to_string(),
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            username: self.username.clone()?,
        })
    }

    async fn remember(&self, scopes: &str, reply: &TokenReply, issued: chrono::DateTime<Utc>) -> Result<()> {
        if let Ok(mut m) = self.memory.lock() {
            m.insert(scopes.to_string(), (reply.token.clone(), issued));
        }
        if let Some(r) = &reply.refresh_token
            && let Ok(mut slot) = self.refresh.lock()
        {
            *slot = Some(r.clone());
        }
        if let (Some(cache), Some(key)) = (self.cache.clone(), self.key()) {
            // The cache's file lock may wait: off the async workers.
            let (scopes, token, refresh) = (scopes.to_string(), reply.token.clone(), reply.refresh_token.clone());
            crate::private_file::blocking(move || cache.store(&key, &scopes, &token, issued, refresh.as_ref())).await?;
        }
        Ok(())
    }

    fn request_scope(scopes: &str) -> String {
        format!("{scopes} offline_access openid profile")
    }

    async fn try_refresh(&self, scopes: &str) -> Result<Option<TokenReply>> {
        // The cache's refresh token first: another process may have rotated the one this process remembers.
        let rt = self
            .key()
            .and_then(|k| self.cache.as_ref()?.refresh_token(&k))
            .or_else(|| self.refresh.lock().ok().and_then(|r| r.clone()));
        let Some(rt) = rt else { return Ok(None) };
        let scope = Self::request_scope(scopes);
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("refresh_token", rt.expose()),
            ("scope", scope.as_str()),
            ("client_info", "1"),
        ];
        match request_token_with(&self.http, &self.endpoint("token")?, &form, &self.retry).await {
            Ok(r) => Ok(Some(r)),
            Err(Error::Auth(a)) if a.error == "invalid_grant" => {
                tracing::info!(codes = ?a.codes, "refresh token refused; signing in again");
                if let Ok(mut slot) = self.refresh.lock() {
                    *slot = None;
                }
                if let (Some(cache), Some(key)) = (&self.cache, self.key()) {
                    let cache = cache.clone();
                    crate::private_file::blocking(move || cache.drop_refresh_token(&key)).await?;
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn device_flow(&self, scopes: &str) -> Result<TokenReply> {
        let url = self.endpoint("devicecode")?;
        let scope = Self::request_scope(scopes);
        let resp = self
            .http
            .post(url.clone())
            .form(&[("client_id", self.client_id.as_str()), ("scope", scope.as_str())])
            .send()
            .await
            .map_err(|e| Error::transport(&url, e))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let to = crate::http::redirect_target(&url, resp.headers());
            return Err(crate::http::redirect_refused(
                &url,
                status,
                to.as_ref(),
                "sign-in requests never follow redirects",
            ));
        }
        let v = crate::http::read_small_json(resp, &url, "device code reply").await?;
        if v.get("error").is_some() {
            return Err(Error::Auth(Box::new(crate::auth::parse_auth_error(status, &v))));
        }
        let num = |k: &str| match v.get(k) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let device_code = Secret::new(v["device_code"].as_str().ok_or_else(|| Error::Response {
            url: crate::error::redact_url(&url),
            message: "no device_code".into(),
        })?);
        let message = v["message"].as_str().map(str::to_string).unwrap_or_else(|| {
            format!(
                "To sign in, open {} and enter the code {}",
                v["verification_uri"]
                    .as_str()
                    .or(v["verification_url"].as_str())
                    .unwrap_or("the verification page"),
                v["user_code"].as_str().unwrap_or("?")
            )
        });
        // What the server wrote is shown to the user: no control characters, bounded.
        let message = crate::error::clean(&message, 1000);
        // Server-sent numbers are clamped: a poll at least every minute, a code that lives at most an hour.
        let mut interval = Duration::from_secs(num("interval").unwrap_or(5).clamp(1, 60));
        let deadline = Instant::now() + Duration::from_secs(num("expires_in").unwrap_or(900).min(3600));
        self.prompt.device_code(&message);
        let token_url = self.endpoint("token")?;
        loop {
            tokio::time::sleep(interval).await;
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", self.client_id.as_str()),
                ("device_code", device_code.expose()),
                ("client_info", "1"),
            ];
            match request_token_with(&self.http, &token_url, &form, &self.retry).await {
                Ok(r) => return Ok(r),
                Err(Error::Auth(a)) => match a.error.as_str() {
                    "authorization_pending" if Instant::now() < deadline => continue,
                    "slow_down" => interval = (interval + Duration::from_secs(5)).min(Duration::from_secs(60)),
                    "authorization_pending" | "expired_token" => {
                        return Err(auth_error(
                            "expired_token",
                            "the device code expired before sign-in completed; run the command again".into(),
                        ));
                    }
                    "authorization_declined" | "access_denied" => return Err(auth_error(&a.error, "the sign-in was declined".into())),
                    _ => return Err(Error::Auth(a)),
                },
                Err(e) => return Err(e),
            }
        }
    }

    async fn browser_flow(&self, scopes: &str) -> Result<TokenReply> {
        if !self.prompt.can_open_browser() {
            return Err(auth_error(
                "no_browser",
                "there is no browser to sign in with on this machine; sign in with a device code instead (the \
                 settings' AuthType: device, or --auth-type device), which works from any other device"
                    .into(),
            ));
        }
        let listener_error = |e: std::io::Error| Error::Transport {
            url: "127.0.0.1".into(),
            message: "cannot open the loopback listener for the sign-in redirect".into(),
            source: Some(Box::new(e)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(listener_error)?;
        let port = listener.local_addr().map_err(listener_error)?.port();
        let redirect_uri = format!("http://localhost:{port}");
        let verifier = Secret::new(format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.expose().as_bytes()));
        let state = uuid::Uuid::new_v4().simple().to_string();
        let scope = Self::request_scope(scopes);
        let mut url = self.endpoint("authorize")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id)
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("response_mode", "query")
                .append_pair("scope", &scope)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(u) = &self.username {
                q.append_pair("login_hint", u);
            }
        }
        self.prompt.open_browser(url.as_str());
        let code = tokio::time::timeout(self.browser_timeout, wait_for_redirect(&listener, &state))
            .await
            .map_err(|_| {
                auth_error(
                    "timeout",
                    format!("no sign-in arrived within {} seconds", self.browser_timeout.as_secs()),
                )
            })??;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.client_id.as_str()),
            ("scope", scope.as_str()),
            ("code", code.expose()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.expose()),
            ("client_info", "1"),
        ];
        request_token_with(&self.http, &self.endpoint("token")?, &form, &self.retry).await
    }
}

const PAGE_OK: &str = "<!doctype html><html><body style=\"font-family:sans-serif\"><h1>Signed in</h1><p>secgraph has what it needs. You can close this window.</p></body></html>";

fn page_failed(reason: &str) -> String {
    let esc = reason.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h1>Sign-in failed</h1><p>{esc}</p><p>Return to secgraph for details.</p></body></html>"
    )
}

async fn respond(stream: &mut tokio::net::TcpStream, status: &str, body: &str) {
    let r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(r.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Accepts loopback connections until one carries the authorization reply; answers each with a small page.
async fn wait_for_redirect(listener: &tokio::net::TcpListener, state: &str) -> Result<Secret> {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let target = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("/");
        let Ok(u) = Url::parse(&format!("http://localhost{target}")) else {
            respond(&mut stream, "400 Bad Request", &page_failed("malformed request")).await;
            continue;
        };
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        if !q.contains_key("code") && !q.contains_key("error") {
            respond(&mut stream, "404 Not Found", "").await;
            continue;
        }
        if q.get("state").map(String::as_str) != Some(state) {
            respond(
                &mut stream,
                "400 Bad Request",
                &page_failed("the reply's state does not match this sign-in"),
            )
            .await;
            return Err(auth_error(
                "state_mismatch",
                "the sign-in reply's state did not match the request (possible cross-site request forgery); nothing was accepted".into(),
            ));
        }
        if let Some(err) = q.get("error") {
            let desc = q.get("error_description").cloned().unwrap_or_default();
            respond(&mut stream, "200 OK", &page_failed(&desc)).await;
            return Err(auth_error(
                err,
                if desc.is_empty() { format!("sign-in failed: {err}") } else { desc },
            ));
        }
        respond(&mut stream, "200 OK", PAGE_OK).await;
        return Ok(Secret::new(q.get("code").cloned().unwrap_or_default()));
    }
}

#[async_trait]
impl TokenCredential for DelegatedCredential {
    async fn get_token(&self, scopes: &[&str], options: TokenRequestOptions) -> Result<AccessToken> {
        let key = sorted_scopes(scopes);
        let now = Utc::now();
        if !options.force_refresh {
            if let Ok(m) = self.memory.lock()
                && let Some((t, issued)) = m.get(&key)
                && !t.needs_renewal(*issued, now)
            {
                return Ok(t.clone());
            }
            if let (Some(cache), Some(k)) = (&self.cache, self.key())
                && let Some(c) = cache.access_token(&k, &key)
                && !c.token.needs_renewal(c.issued, now)
            {
                if let Ok(mut m) = self.memory.lock() {
                    m.insert(key.clone(), (c.token.clone(), c.issued));
                }
                return Ok(c.token);
            }
        }
        // One process at a time renews a cached sign-in: the others wait, then find the token it stored (a rotated
        // refresh token spent twice is refused, and every process would prompt the user again).
        let _lock = match (&self.cache, self.key()) {
            (Some(cache), Some(k)) => {
                let lock = cache.refresh_lock().await?;
                if !options.force_refresh
                    && let Some(c) = cache.access_token(&k, &key)
                    && !c.token.needs_renewal(c.issued, Utc::now())
                {
                    tracing::debug!("another process renewed the token while this one waited");
                    if let Ok(mut m) = self.memory.lock() {
                        m.insert(key.clone(), (c.token.clone(), c.issued));
                    }
                    return Ok(c.token);
                }
                Some(lock)
            }
            _ => None,
        };
        let issued = Utc::now();
        if let Some(reply) = self.try_refresh(&key).await? {
            self.remember(&key, &reply, issued).await?;
            return Ok(reply.token);
        }
        if !self.prompt.can_interact() {
            return Err(auth_error(
                "interaction_required",
                "a user must sign in, and no sign-in prompt was given (sign in once with the secgraph CLI to fill the token cache, or pass a SignInPrompt)".into(),
            ));
        }
        tracing::info!(flow = ?self.auth_type, "interactive sign-in needed");
        let reply = match self.auth_type {
            AuthType::Device => self.device_flow(&key).await?,
            AuthType::Browser => self.browser_flow(&key).await?,
            AuthType::AzureCli => {
                return Err(auth_error(
                    "unsupported_auth_type",
                    "the Azure CLI signs in on its own (`az login`); it is not a user sign-in flow of this app".into(),
                ));
            }
        };
        self.remember(&key, &reply, issued).await?;
        Ok(reply.token)
    }
}
