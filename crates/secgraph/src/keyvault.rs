//! Secrets held in Azure Key Vault: msticpy's `{KeyVault: …}` references, the vault client (REST `GET
//! secrets/{name}` with the 401 bearer challenge), the credential chosen by the `KeyVault`/`Azure` sections, and the
//! optional owner-only secret cache (`UseKeyring: true`).
//!
//! A small REST client of our own rather than `azure_security_keyvault_secrets`: one GET, and it must reach private
//! endpoints given as URL templates (`https://host:port/kv/{vault}/`), which the SDK's challenge-resource check
//! refuses unless disabled; see docs/CONFIGURATION.md.

use crate::auth::{AccessToken, TokenCredential, TokenRequestOptions};
use crate::error::{Error, Result};
use crate::secret::Secret;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

const API_VERSION: &str = "7.4";

/// The `KeyVault` section.
#[derive(Debug, Clone, Default)]
pub struct KeyVaultSettings {
    /// `KeyVault.VaultName`: the default vault.
    pub vault_name: Option<String>,
    /// `KeyVault.TenantId`: the vault's tenant.
    pub tenant_id: Option<String>,
    /// `AuthnType` (or `Azure.auth_methods`): env, cli, msi, clientsecret, devicecode, interactive.
    pub auth_methods: Vec<String>,
    /// `KeyVault.UseKeyring`: keep fetched secrets in the owner-only secret cache.
    pub use_keyring: bool,
}

/// Which secret a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSecret {
    /// The vault's name.
    pub vault: String,
    /// The secret's name (normalised as msticpy does).
    pub name: String,
}

impl std::fmt::Display for VaultSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.vault, self.name)
    }
}

/// msticpy's name normalisation: every character outside `[0-9a-zA-Z-]` becomes `-`.
///
/// ```
/// assert_eq!(secgraph::keyvault::normalise_name("DataProviders.MicrosoftGraph-Tenant1.Args.ClientSecret"), "DataProviders-MicrosoftGraph-Tenant1-Args-ClientSecret");
/// assert_eq!(secgraph::keyvault::normalise_name("my_secret"), "my-secret");
/// ```
pub fn normalise_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect()
}

/// Resolves a `KeyVault:` value: empty or `default` → the setting path as the name in the default vault; `name` →
/// that name in the default vault; `vault/name` → that vault.
pub fn parse_reference(value: &str, setting: &str, default_vault: Option<&str>) -> Result<VaultSecret> {
    let v = value.trim();
    let need_vault = || {
        default_vault.map(str::to_string).ok_or_else(|| Error::Setting {
            origin: "settings".into(),
            setting: setting.into(),
            message: "a KeyVault reference needs a vault: add a KeyVault section with VaultName, or write KeyVault: vault/secret".into(),
        })
    };
    let (vault, name) = if v.is_empty() || v.eq_ignore_ascii_case("default") {
        (need_vault()?, normalise_name(setting))
    } else if let Some((vault, name)) = v.split_once('/') {
        (vault.trim().to_string(), normalise_name(name.trim()))
    } else {
        (need_vault()?, normalise_name(v))
    };
    let bad_vault = vault.is_empty() || vault.len() > 63 || !vault.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if bad_vault {
        return Err(Error::Setting {
            origin: "settings".into(),
            setting: setting.into(),
            message: format!("'{vault}' is not a vault name (3-24 characters of letters, digits and -)"),
        });
    }
    if name.is_empty() || name.len() > 127 {
        return Err(Error::Setting {
            origin: "settings".into(),
            setting: setting.into(),
            message: "the secret name is empty or longer than 127 characters".into(),
        });
    }
    Ok(VaultSecret { vault, name })
}

/// The cached secrets file (`UseKeyring: true`): vault/name → value, owner-only.
#[derive(Debug, Clone)]
pub struct SecretCache {
    path: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct SecretFile {
    secrets: BTreeMap<String, String>,
}

impl SecretCache {
    /// The cache at `path`.
    pub fn at(path: impl Into<PathBuf>) -> SecretCache {
        SecretCache { path: path.into() }
    }

    /// `~/.cache/secgraph/secrets.json` (or under `$XDG_CACHE_HOME`).
    pub fn default_path() -> PathBuf {
        crate::private_file::cache_dir().join("secrets.json")
    }

    /// The cache file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn key(s: &VaultSecret) -> String {
        format!("{}/{}", s.vault.to_lowercase(), s.name.to_lowercase())
    }

    pub(crate) fn get(&self, s: &VaultSecret) -> Option<Secret> {
        crate::private_file::read::<SecretFile>(&self.path)
            .secrets
            .get(&Self::key(s))
            .cloned()
            .map(Secret::new)
    }

    pub(crate) fn put(&self, s: &VaultSecret, value: &Secret) -> Result<()> {
        crate::private_file::update(&self.path, |f: &mut SecretFile| {
            f.secrets.insert(Self::key(s), value.expose().to_string());
        })
    }

    /// Keeps only the given secrets (the ones the settings reference). Returns how many were dropped.
    pub fn retain(&self, keep: &[VaultSecret]) -> Result<usize> {
        let keys: Vec<String> = keep.iter().map(Self::key).collect();
        crate::private_file::update(&self.path, |f: &mut SecretFile| {
            let before = f.secrets.len();
            f.secrets.retain(|k, _| keys.contains(k));
            before - f.secrets.len()
        })
    }

    /// Removes the file. Returns whether there was one.
    pub fn clear(&self) -> Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::Cache {
                path: self.path.clone(),
                what: "remove the secret cache".into(),
                source: Some(e),
            }),
        }
    }

    /// The cached secrets' names (`vault/name`), never their values.
    pub fn names(&self) -> Vec<String> {
        crate::private_file::read::<SecretFile>(&self.path)
            .secrets
            .keys()
            .cloned()
            .collect()
    }
}

/// Reads secrets from vaults. `vault_url` is a template with `{vault}`.
#[derive(Debug, Clone)]
pub struct SecretClient {
    http: reqwest::Client,
    vault_url: String,
    credential: Arc<dyn TokenCredential>,
    cache: Option<SecretCache>,
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
            credential,
            cache,
        }
    }

    fn url(&self, s: &VaultSecret) -> Result<Url> {
        let base = self.vault_url.replace("{vault}", &s.vault);
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
        let first = self.http.get(url.clone()).send().await.map_err(|e| Error::transport(&url, e))?;
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
        let resp = self
            .http
            .get(url.clone())
            .bearer_auth(token.token.expose())
            .send()
            .await
            .map_err(|e| Error::transport(&url, e))?;
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

/// Azure CLI: `az account get-access-token` (the signed-in CLI user).
#[derive(Debug, Default)]
pub struct AzureCliCredential;

#[async_trait]
impl TokenCredential for AzureCliCredential {
    async fn get_token(&self, scopes: &[&str], _options: TokenRequestOptions) -> Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let out = tokio::process::Command::new("az")
            .args(["account", "get-access-token", "--output", "json", "--scope", scope])
            .output()
            .await
            .map_err(|e| Error::Unsupported {
                what: format!("Azure CLI sign-in (cannot run az: {e})"),
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Auth(Box::new(crate::error::AuthError {
                status: 0,
                error: "azure_cli".into(),
                description: err
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("az failed")
                    .chars()
                    .take(300)
                    .collect(),
                codes: vec![],
                trace_id: None,
                correlation_id: None,
            })));
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| Error::Response {
            url: "az".into(),
            message: format!("unexpected output: {e}"),
        })?;
        let token = v["accessToken"].as_str().ok_or_else(|| Error::Response {
            url: "az".into(),
            message: "no accessToken".into(),
        })?;
        let expires_on = v["expires_on"]
            .as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::minutes(5));
        Ok(AccessToken {
            token: Secret::new(token),
            expires_on,
        })
    }
}

/// Several credentials tried in order; the first that yields a token wins, and is kept.
#[derive(Debug)]
pub struct ChainedCredential {
    chain: Vec<(String, Arc<dyn TokenCredential>)>,
    chosen: std::sync::Mutex<Option<usize>>,
}

impl ChainedCredential {
    /// Tries each named credential in turn; the first that signs in is used from then on.
    pub fn new(chain: Vec<(String, Arc<dyn TokenCredential>)>) -> ChainedCredential {
        ChainedCredential {
            chain,
            chosen: std::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl TokenCredential for ChainedCredential {
    async fn get_token(&self, scopes: &[&str], options: TokenRequestOptions) -> Result<AccessToken> {
        if let Some(i) = self.chosen.lock().ok().and_then(|c| *c) {
            return self.chain[i].1.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, (name, c)) in self.chain.iter().enumerate() {
            match c.get_token(scopes, options).await {
                Ok(t) => {
                    if let Ok(mut chosen) = self.chosen.lock() {
                        *chosen = Some(i);
                    }
                    tracing::debug!(method = %name, "Key Vault sign-in");
                    return Ok(t);
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        Err(Error::Auth(Box::new(crate::error::AuthError {
            status: 0,
            error: "keyvault_sign_in_failed".into(),
            description: crate::error::clean(
                &format!("signing in to Key Vault: every method failed ({})", failures.join("; ")),
                crate::error::MAX_SHOWN_MESSAGE,
            ),
            codes: vec![],
            trace_id: None,
            correlation_id: None,
        })))
    }
}
