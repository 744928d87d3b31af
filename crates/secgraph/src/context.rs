//! What a connection is made from, before it signs in: the caller's options ([`ConnectOptions`]), the arguments
//! after msticpy's precedence ([`EffectiveArgs`]), the sign-in method they choose ([`AuthMethod`]), and the
//! [`Context`] (settings, `Azure` section, HTTP client, cloud) that Key Vault resolution, credentials and the Graph
//! client are built from. Below `keyvault` and `connect` in the pipeline; depends only on config, HTTP and auth types.

use crate::HttpOptions;
use crate::auth::{AuthType, SignInPrompt};
use crate::config::{AzureSettings, Cloud, ProviderArgs, SecretRef, Settings, parse_connection_string};
use crate::error::{Error, Result};
use crate::retry::RetryOptions;
use crate::secret::Secret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Connection inputs given by the caller (msticpy's `connect()` keyword arguments). Each set field overrides the
/// settings file.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Named instance: `MicrosoftGraph-<instance>` in the settings.
    pub instance: Option<String>,
    /// Tenant id or domain (msticpy's `tenant_id`).
    pub tenant_id: Option<String>,
    /// App (client) id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<Secret>,
    /// Signs in as this user (delegated); picks the cached account.
    pub username: Option<String>,
    /// Client certificate file (PEM or DER), for certificate sign-in.
    pub certificate: Option<PathBuf>,
    /// Private key file for the certificate (PEM PKCS#8, encrypted PKCS#8 or PKCS#1).
    pub private_key: Option<PathBuf>,
    /// Graph root, e.g. `https://graph.microsoft.com/` (default: the cloud's).
    pub api_root: Option<String>,
    /// Graph API version, `v1.0` (default) or `beta`.
    pub api_version: Option<String>,
    /// The cloud (`global`, `usgov`, `dod`, `china`), overriding the settings' `Azure.cloud` and custom cloud: a
    /// tenant in another cloud than the instance's (a tenants file's `cloud`).
    pub cloud: Option<String>,
    /// `tenant_id=...;client_id=...;client_secret=...` — replaces the file's provider section.
    pub connection_string: Option<Secret>,
    /// Sign in as a user even without a configured username (msticpy's `delegated_auth=True`).
    pub delegated_auth: bool,
    /// Browser (default) or device code, for delegated sign-in; overrides the settings' `auth_type`.
    pub auth_type: Option<AuthType>,
    /// Shows the device-code message or the browser URL; without one, interactive sign-in cannot proceed.
    pub prompt: Option<Arc<dyn SignInPrompt>>,
    /// Token cache file for delegated sign-in; default: the settings' `location`, else
    /// [`crate::auth::TokenCache::default_path`].
    pub token_cache: Option<PathBuf>,
    /// How long the browser flow waits for the sign-in to come back.
    pub browser_timeout: Option<Duration>,
    /// Secret cache file used when `KeyVault.UseKeyring` is true; default [`crate::keyvault::SecretCache::default_path`].
    pub secret_cache: Option<PathBuf>,
    /// Caps on page size and page count; default [`crate::graph::PagingLimits::default`].
    pub paging_limits: Option<crate::graph::PagingLimits>,
    /// Requests a minute this connection may send: (security collections and updates, advanced hunting); default
    /// Graph's documented budgets, ([`crate::graph::SECURITY_PER_MINUTE`], [`crate::graph::HUNTING_PER_MINUTE`]).
    pub requests_per_minute: Option<(u32, u32)>,
    /// The process environment to use (CA bundle, Key Vault `env` sign-in, cache folder); default
    /// [`crate::Environment::from_env`] at connect time.
    pub environment: Option<crate::Environment>,
    /// When failed requests (Graph, token, Key Vault) are sent again; `None`: the settings' `Retries`, else
    /// [`crate::retry::RetryOptions::default`].
    pub retry: Option<crate::retry::RetryOptions>,
    /// Threat intelligence enrichment of alert and incident queries (`--enrich ti`): one shared by every
    /// connection made with these options, so that tenants share its cache and budget.
    pub enrich: Option<std::sync::Arc<crate::enrich::Enrichment>>,
}

impl ConnectOptions {
    /// The environment these options carry, or the process's.
    pub fn environment(&self) -> crate::Environment {
        self.environment.clone().unwrap_or_else(crate::Environment::from_env)
    }
}

/// How the connection signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// App-only, with a client secret.
    ClientSecret,
    /// App-only, with a client certificate.
    Certificate,
    /// As a signed-in user (browser or device code).
    Delegated,
    /// As the Azure CLI's signed-in account (`az account get-access-token`).
    AzureCli,
}

impl AuthMethod {
    /// In words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            AuthMethod::ClientSecret => "client secret (app-only)",
            AuthMethod::Certificate => "client certificate (app-only)",
            AuthMethod::Delegated => "delegated user",
            AuthMethod::AzureCli => "Azure CLI account (az login)",
        }
    }
}

/// The arguments a connection uses, after msticpy's precedence: a connection string replaces the settings' provider
/// section; keyword options override single values. Values are still references (literal, environment variable,
/// Key Vault) — nothing is resolved here. This is step one of [`Connection::open`](crate::connect::Connection::open); `config check` and `logout` use
/// it too, so they see exactly what a connection would.
#[derive(Debug, Clone)]
pub struct EffectiveArgs {
    pub(crate) source: String,
    pub(crate) map: Vec<(String, String, SecretRef)>,
    pub(crate) delegated: bool,
    /// The options' sign-in type said "Azure CLI" (Some(true)) or another type (Some(false)); `None`: the settings
    /// decide.
    pub(crate) azure_cli: Option<bool>,
}

impl EffectiveArgs {
    /// Gathers the arguments for `options.instance` (or the connection string, or options alone).
    pub fn gather(settings: Option<&Settings>, options: &ConnectOptions) -> Result<EffectiveArgs> {
        let (source, map) = match (&options.connection_string, settings) {
            (Some(cs), _) => (
                "connection string".to_string(),
                parse_connection_string(cs.expose())?
                    .into_iter()
                    .map(|(k, v)| (k.clone(), format!("connection string {k}"), SecretRef::Literal(v)))
                    .collect(),
            ),
            (None, Some(s)) => match s.provider_args(options.instance.as_deref()) {
                Ok(ProviderArgs { section, values }) => (section, values),
                // Options alone can connect even when the file has no provider section.
                Err(Error::Instance { .. }) if options.instance.is_none() && options.tenant_id.is_some() && options.client_id.is_some() => {
                    ("options".to_string(), vec![])
                }
                Err(e) => return Err(e),
            },
            (None, None) => {
                if let Some(i) = &options.instance {
                    return Err(Error::Instance {
                        message: format!("instance '{i}' was asked for, but no settings file was found"),
                    });
                }
                ("options".to_string(), vec![])
            }
        };
        let mut args = EffectiveArgs {
            source,
            map,
            delegated: options.delegated_auth,
            azure_cli: options.auth_type.map(|t| t == AuthType::AzureCli),
        };
        let opt = |v: &Option<String>| v.as_ref().map(|s| SecretRef::Literal(Secret::new(s.clone())));
        let overrides = [
            ("tenant_id", opt(&options.tenant_id)),
            ("client_id", opt(&options.client_id)),
            ("client_secret", options.client_secret.clone().map(SecretRef::Literal)),
            ("username", opt(&options.username)),
            ("certificate", opt(&options.certificate.as_ref().map(|p| p.display().to_string()))),
            ("private_key", opt(&options.private_key.as_ref().map(|p| p.display().to_string()))),
            ("api_root", opt(&options.api_root)),
            ("api_version", opt(&options.api_version)),
        ];
        for (name, v) in overrides {
            if let Some(v) = v {
                args.map.push((name.to_string(), format!("option {name}"), v));
            }
        }
        Ok(args)
    }

    /// Where the arguments came from: a settings section, `connection string` or `options`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The setting path and reference of a normalised argument (`tenant_id`, `client_secret`, …); later sources win.
    pub fn get(&self, name: &str) -> Option<(&str, &SecretRef)> {
        self.map.iter().rev().find(|(n, _, _)| n == name).map(|(_, p, v)| (p.as_str(), v))
    }

    /// Every argument: (normalised name, setting path, reference), in precedence order (later wins).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &SecretRef)> {
        self.map.iter().map(|(n, p, r)| (n.as_str(), p.as_str(), r))
    }

    /// How the connection signs in, decided once: a user when a username is set (or delegated sign-in was asked
    /// for), else a certificate when one is set, else a client secret.
    pub fn sign_in_method(&self) -> AuthMethod {
        let cli = self
            .azure_cli
            .unwrap_or_else(|| self.literal("auth_type").and_then(|t| AuthType::parse(&t)) == Some(AuthType::AzureCli));
        if cli {
            AuthMethod::AzureCli
        } else if self.delegated || self.get("username").is_some() {
            AuthMethod::Delegated
        } else if self.get("certificate").is_some() {
            AuthMethod::Certificate
        } else {
            AuthMethod::ClientSecret
        }
    }

    /// The settings a connection needs and these arguments lack (empty when complete).
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.sign_in_method() == AuthMethod::AzureCli {
            // The CLI's own app and account: nothing else is needed.
            return missing;
        }
        if self.get("tenant_id").is_none() {
            missing.push("tenant_id (TenantId)".to_string());
        }
        if self.get("client_id").is_none() {
            missing.push("client_id (ClientId)".to_string());
        }
        if self.sign_in_method() == AuthMethod::ClientSecret && self.get("client_secret").is_none() {
            missing.push("one of client_secret (ClientSecret), certificate (Certificate) or username (UserName)".to_string());
        }
        missing
    }

    /// A value that is written in the settings or options (not a secret reference), trimmed; `None` when absent,
    /// empty or held elsewhere.
    pub fn literal(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some((_, SecretRef::Literal(v))) => Some(v.expose().trim().to_string()).filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    /// The delegated token cache this connection uses: `options.token_cache`, else the settings' `location`, else
    /// [`crate::auth::TokenCache::default_path`].
    pub fn token_cache_path(&self, options: &ConnectOptions) -> PathBuf {
        options
            .token_cache
            .clone()
            .or_else(|| self.literal("location").map(PathBuf::from))
            .unwrap_or_else(|| options.environment().cache_dir().join("token_cache.json"))
    }

    pub(crate) fn set(&mut self, index: usize, v: SecretRef) {
        self.map[index].2 = v;
    }

    /// A non-secret value (ids, names, paths) resolved now.
    pub(crate) fn plain(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some((path, r)) => Ok(Some(r.resolve(path)?.expose().trim().to_string()).filter(|s| !s.is_empty())),
        }
    }
}

/// What every connection reads before signing in: the settings and options, the `Azure` section, the HTTP client
/// (CAs, timeout, proxy) and the cloud's endpoints (fetched for a custom cloud). Built once per connection and
/// handed down the pipeline (Key Vault, credentials, Graph).
pub(crate) struct Context<'a> {
    /// The settings file, when one was found.
    pub settings: Option<&'a Settings>,
    /// The caller's options.
    pub options: &'a ConnectOptions,
    /// The `Azure` section.
    pub azure: AzureSettings,
    /// The HTTP client every request of this connection uses.
    pub http: reqwest::Client,
    /// The cloud's endpoints.
    pub cloud: Cloud,
}

impl<'a> Context<'a> {
    /// Reads the `Azure` section, builds the HTTP client and finds the cloud's endpoints.
    pub(crate) async fn load(settings: Option<&'a Settings>, options: &'a ConnectOptions) -> Result<Context<'a>> {
        let (azure, timeout, proxy) = match settings {
            Some(s) => (s.azure()?, s.http_timeout()?.map(Duration::from_secs_f64), s.proxy()?),
            None => Default::default(),
        };
        let http = HttpOptions {
            ca_certificates: azure.ca_certificates.clone(),
            timeout,
            proxy,
            ssl_cert_file: options.environment().ssl_cert_file,
        }
        .build()?;
        let cloud = match (&options.cloud, &azure.resource_manager_url) {
            (Some(name), _) => Cloud::named(name)?,
            (None, Some(rm)) => fetch_cloud(&http, rm).await?,
            (None, None) => Cloud::named(azure.cloud.as_deref().unwrap_or("global"))?,
        };
        Ok(Context {
            settings,
            options,
            azure,
            http,
            cloud,
        })
    }

    /// The retry policy: the options', else the settings' `Retries` (resends at most), else the default.
    pub(crate) fn retry(&self) -> Result<RetryOptions> {
        retry_options(self.settings, self.options)
    }
}

/// The retry policy: the options', else the settings' `Retries` (resends at most), else the default.
pub(crate) fn retry_options(settings: Option<&Settings>, options: &ConnectOptions) -> Result<RetryOptions> {
    if let Some(r) = &options.retry {
        return Ok(r.clone());
    }
    Ok(match settings.map(Settings::retries).transpose()?.flatten() {
        Some(n) => RetryOptions::with_retries(n),
        None => RetryOptions::default(),
    })
}

/// Reads a custom cloud's endpoints from its Resource Manager metadata document.
async fn fetch_cloud(http: &reqwest::Client, resource_manager_url: &str) -> Result<Cloud> {
    let base = if resource_manager_url.ends_with('/') {
        resource_manager_url.to_string()
    } else {
        format!("{resource_manager_url}/")
    };
    let url = url::Url::parse(&base)
        .and_then(|u| u.join("metadata/endpoints?api-version=2022-09-01"))
        .map_err(|e| Error::Setting {
            origin: "settings".into(),
            setting: "Azure.resource_manager_url".into(),
            message: format!("'{resource_manager_url}' is not a URL: {e}"),
        })?;
    tracing::debug!(url = %url, "reading cloud metadata");
    let resp = http.get(url.clone()).send().await.map_err(|e| Error::transport(&url, e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Error::Response {
            url: crate::error::redact_url(&url),
            message: format!("cloud metadata request answered HTTP {status}"),
        });
    }
    let doc = crate::http::read_small_json(resp, &url, "cloud metadata").await?;
    Cloud::from_arm_metadata(&doc, &base)
}
