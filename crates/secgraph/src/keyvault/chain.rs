//! How secgraph signs in to Key Vault: the chain of credentials the `KeyVault.AuthnType` / `Azure.auth_methods`
//! settings name (environment, Azure CLI, client secret, device code, browser), tried in order.

use crate::auth::{
    AccessToken, AuthType, ClientSecretCredential, DelegatedCredential, NoPrompt, SignInPrompt, TokenCache, TokenCredential,
    TokenRequestOptions,
};
use crate::config::SecretRef;
use crate::context::{Context, EffectiveArgs};
use crate::error::{Error, Result};
use crate::secret::Secret;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// Azure CLI: `az account get-access-token` (the signed-in CLI user), optionally for a given tenant.
#[derive(Debug, Default)]
pub struct AzureCliCredential {
    tenant: Option<String>,
}

impl AzureCliCredential {
    /// Tokens for `tenant` (`az … --tenant`), or for the CLI's current account when `None`.
    pub fn new(tenant: Option<String>) -> AzureCliCredential {
        AzureCliCredential { tenant }
    }
}

#[async_trait]
impl TokenCredential for AzureCliCredential {
    async fn get_token(&self, scopes: &[&str], _options: TokenRequestOptions) -> Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let mut cmd = tokio::process::Command::new("az");
        cmd.args(["account", "get-access-token", "--output", "json", "--scope", scope]);
        if let Some(t) = &self.tenant {
            cmd.args(["--tenant", t]);
        }
        let out = cmd.output().await.map_err(|e| Error::Unsupported {
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

/// The Key Vault client for a connection: vault URL template, credential chain, optional secret cache.
pub(crate) fn vault_client(
    values: &EffectiveArgs,
    ctx: &Context<'_>,
    kv: &crate::keyvault::KeyVaultSettings,
) -> Result<crate::keyvault::SecretClient> {
    let Context {
        settings,
        options,
        azure,
        http,
        cloud,
    } = ctx;
    use super::{SecretCache, SecretClient};
    let plain_only = |name: &str| -> Option<String> {
        match values.get(name) {
            Some((p, r @ (SecretRef::Literal(_) | SecretRef::EnvVar(_)))) => {
                r.resolve(p).ok().map(|s| s.expose().trim().to_string()).filter(|s| !s.is_empty())
            }
            _ => None,
        }
    };
    let tenant = kv.tenant_id.clone().or_else(|| plain_only("tenant_id"));
    let mut methods = kv.auth_methods.clone();
    if methods.is_empty() {
        methods = azure.auth_methods.clone();
    }
    if methods.is_empty() {
        methods = vec!["env".into(), "cli".into(), "clientsecret".into(), "devicecode".into()];
    }
    let retry = ctx.retry()?;
    let secret_credential = |t: &str, c: &str, sec: String| -> Result<Arc<dyn TokenCredential>> {
        Ok(Arc::new(
            ClientSecretCredential::new(http.clone(), &cloud.authority_host, t, c, Secret::new(sec))?.with_retry(retry.clone()),
        ))
    };
    let mut chain: Vec<(String, Arc<dyn TokenCredential>)> = Vec::new();
    for m in &methods {
        match m.to_ascii_lowercase().as_str() {
            "env" | "environment" => {
                let env = options.environment();
                if let (Some(t), Some(c), Some(sec)) = (env.azure_tenant_id, env.azure_client_id, env.azure_client_secret) {
                    chain.push(("env".into(), secret_credential(&t, &c, sec.expose().to_string())?));
                }
            }
            "cli" | "azurecli" => chain.push(("cli".into(), Arc::new(AzureCliCredential::default()))),
            "clientsecret" | "client_secret" => {
                if let (Some(t), Some(c), Some(sec)) = (tenant.clone(), plain_only("client_id"), plain_only("client_secret")) {
                    chain.push(("clientsecret".into(), secret_credential(&t, &c, sec)?));
                }
            }
            "devicecode" | "device_code" | "interactive" | "browser" => {
                if let (Some(t), Some(c)) = (tenant.clone(), plain_only("client_id")) {
                    let auth_type = if m.eq_ignore_ascii_case("interactive") || m.eq_ignore_ascii_case("browser") {
                        AuthType::Browser
                    } else {
                        AuthType::Device
                    };
                    let cache = TokenCache::at(
                        options
                            .token_cache
                            .clone()
                            .unwrap_or_else(|| options.environment().cache_dir().join("token_cache.json")),
                    );
                    cache.check()?;
                    let prompt: Arc<dyn SignInPrompt> = options.prompt.clone().unwrap_or_else(|| Arc::new(NoPrompt));
                    let cred = DelegatedCredential::new(
                        http.clone(),
                        &cloud.authority_host,
                        &t,
                        &c,
                        plain_only("username"),
                        auth_type,
                        Some(cache),
                        prompt,
                    )?
                    .with_retry(retry.clone());
                    chain.push((m.to_ascii_lowercase(), Arc::new(cred)));
                }
            }
            "msi" | "managedidentity" => {
                return Err(Error::Unsupported {
                    what: "managed-identity sign-in to Key Vault (AuthnType msi)".into(),
                });
            }
            other => {
                return Err(Error::Setting {
                    origin: settings.map(|s| s.origin()).unwrap_or_default(),
                    setting: "KeyVault.AuthnType".into(),
                    message: format!("unknown sign-in method '{other}' (env, cli, clientsecret, devicecode, interactive)"),
                });
            }
        }
    }
    if chain.is_empty() {
        return Err(Error::Setting {
            origin: settings.map(|s| s.origin()).unwrap_or_default(),
            setting: "KeyVault.AuthnType".into(),
            message: format!(
                "no usable way to sign in to Key Vault among: {} (env needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; clientsecret needs a plain or environment ClientSecret)",
                methods.join(", ")
            ),
        });
    }
    let template = azure
        .keyvault_url
        .clone()
        .unwrap_or_else(|| format!("https://{{vault}}.{}/", cloud.keyvault_dns));
    let cache = kv.use_keyring.then(|| {
        SecretCache::at(
            options
                .secret_cache
                .clone()
                .unwrap_or_else(|| options.environment().cache_dir().join("secrets.json")),
        )
    });
    Ok(
        SecretClient::new(http.clone(), &template, Arc::new(ChainedCredential::new(chain)), cache)
            .with_vault_urls(azure.keyvault_urls.clone())
            .with_retry(retry),
    )
}
