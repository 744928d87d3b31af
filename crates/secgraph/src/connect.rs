//! Turning settings, options and connection strings into a connection: msticpy's `connect()` semantics.
//!
//! Precedence: a connection string replaces the file's provider section; explicit options override either.

use crate::HttpOptions;
use crate::auth::TokenCache;
use crate::auth::{AuthType, DelegatedCredential, NoPrompt, SignInPrompt};
use crate::auth::{ClientCertificate, ClientCertificateCredential};
use crate::auth::{ClientSecretCredential, TokenCredential, TokenRequestOptions};
use crate::config::Cloud;
use crate::config::{ProviderArgs, SecretRef, Settings, parse_connection_string};
use crate::error::{Error, Result};
use crate::graph::GraphClient;
use crate::keyvault::vault_client;
use crate::secret::Secret;
use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};
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
    /// `tenant_id=...;client_id=...;client_secret=...` — replaces the file's provider section.
    pub connection_string: Option<Secret>,
    /// Sign in as a user even without a configured username (msticpy's `delegated_auth=True`).
    pub delegated_auth: bool,
    /// Browser (default) or device code, for delegated sign-in; overrides the settings' `auth_type`.
    pub auth_type: Option<AuthType>,
    /// Shows the device-code message or the browser URL; without one, interactive sign-in cannot proceed.
    pub prompt: Option<Arc<dyn SignInPrompt>>,
    /// Token cache file for delegated sign-in; default: the settings' `location`, else
    /// [`TokenCache::default_path`].
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
}

impl ConnectOptions {
    /// The environment these options carry, or the process's.
    pub fn environment(&self) -> crate::Environment {
        self.environment.clone().unwrap_or_else(crate::Environment::from_env)
    }
}

/// Delegated permissions asked for by default: read access to what the provider queries.
pub const DELEGATED_PERMISSIONS: &[&str] = &[
    "SecurityAlert.Read.All",
    "SecurityIncident.Read.All",
    "ThreatHunting.Read.All",
    "SecurityEvents.Read.All",
];

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

/// What `connect` found out, safe to print: no secret, no token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The settings file used, if any, and why.
    pub settings: Option<String>,
    /// `MicrosoftGraph` or `MicrosoftGraph-<instance>`, or `connection string`/`options`.
    pub source: String,
    /// The tenant signed in to.
    pub tenant_id: String,
    /// The tenant's directory id (a GUID, lower case) from the token's `tid` claim: the same whether the settings
    /// name the tenant by GUID (any case) or by domain. `None` when the token carries none.
    pub directory_id: Option<String>,
    /// The app (client) id.
    pub client_id: String,
    /// How the connection signs in.
    pub auth: AuthMethod,
    /// The cloud's name (`global`, `usgov`, … or `custom`).
    pub cloud: String,
    /// The authority host used.
    pub authority: String,
    /// The versioned Graph root requests go to.
    pub graph_root: String,
    /// The token scope asked for.
    pub scope: String,
    /// Application roles granted (from the token's `roles` claim).
    pub roles: Vec<String>,
    /// Delegated scopes (from the token's `scp` claim).
    pub scopes: Vec<String>,
    /// The app's display name, from the token.
    pub app_name: Option<String>,
    /// The signed-in user (delegated sign-in).
    pub account: Option<String>,
    /// When the first token expires (it is renewed on its own).
    pub token_expires_on: chrono::DateTime<chrono::Utc>,
}

/// A connected Graph client and what is known about the connection.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The Graph client, signed in.
    pub graph: GraphClient,
    /// What was connected to, as whom.
    pub info: ConnectionInfo,
}

/// The arguments a connection uses, after msticpy's precedence: a connection string replaces the settings' provider
/// section; keyword options override single values. Values are still references (literal, environment variable,
/// Key Vault) — nothing is resolved here. This is step one of [`Connection::open`]; `config check` and `logout` use
/// it too, so they see exactly what a connection would.
#[derive(Debug, Clone)]
pub struct EffectiveArgs {
    source: String,
    map: Vec<(String, String, SecretRef)>,
    delegated: bool,
    /// The options' sign-in type said "Azure CLI" (Some(true)) or another type (Some(false)); `None`: the settings
    /// decide.
    azure_cli: Option<bool>,
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
    /// [`TokenCache::default_path`].
    pub fn token_cache_path(&self, options: &ConnectOptions) -> PathBuf {
        options
            .token_cache
            .clone()
            .or_else(|| self.literal("location").map(PathBuf::from))
            .unwrap_or_else(|| options.environment().cache_dir().join("token_cache.json"))
    }

    fn set(&mut self, index: usize, v: SecretRef) {
        self.map[index].2 = v;
    }

    /// A non-secret value (ids, names, paths) resolved now.
    fn plain(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some((path, r)) => Ok(Some(r.resolve(path)?.expose().trim().to_string()).filter(|s| !s.is_empty())),
        }
    }
}

impl Connection {
    /// Connects, in the steps of the pipeline: effective arguments ([`EffectiveArgs::gather`]) → sign-in method
    /// (decided once) → the cloud's endpoints → the Key Vault secrets this connection references → credential →
    /// first token → [`ConnectionInfo`].
    pub async fn open(settings: Option<&Settings>, options: &ConnectOptions) -> Result<Connection> {
        let mut args = EffectiveArgs::gather(settings, options)?;
        let auth = args.sign_in_method();
        let missing = args.missing();
        if !missing.is_empty() {
            return Err(Error::MissingSettings {
                instance: args.source.clone(),
                missing,
            });
        }
        let (azure, http, cloud) = environment(settings, options).await?;
        // Secrets held in Key Vault are fetched now, and only those this connection references.
        resolve_vault_references(&mut args, settings, &azure, &cloud, &http, options).await?;
        let target = Target::resolve(&args, &cloud)?;
        let (credential, scope) = credential(&args, auth, &target, settings, options, &http, &cloud)?;
        let token = credential.get_token(&[scope.as_str()], TokenRequestOptions::default()).await?;
        let graph = GraphClient::new(http, &target.graph_root, &target.api_version, credential, scope.clone())?
            .with_retry(retry_options(settings, options)?)
            .with_limits(options.paging_limits.unwrap_or_default())
            .with_budgets(options.requests_per_minute);
        let info = ConnectionInfo::new(settings, &args, auth, &target, &cloud, &graph, scope, &token);
        tracing::info!(tenant = %info.tenant_id, client = %info.client_id, root = %info.graph_root, "connected");
        Ok(Connection { graph, info })
    }
}

/// Where a connection goes: tenant, app, Graph root and version.
struct Target {
    tenant_id: String,
    client_id: String,
    graph_root: url::Url,
    api_version: String,
}

/// The Azure CLI's own application id (its tokens carry it as `appid`).
const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

impl Target {
    fn resolve(args: &EffectiveArgs, cloud: &Cloud) -> Result<Target> {
        let cli = args.sign_in_method() == AuthMethod::AzureCli;
        let tenant = args.plain("tenant_id")?.or_else(|| cli.then(String::new));
        let client = args.plain("client_id")?.or_else(|| cli.then(|| AZURE_CLI_CLIENT_ID.to_string()));
        let (Some(tenant_id), Some(client_id)) = (tenant, client) else {
            let mut missing = Vec::new();
            if args.plain("tenant_id")?.is_none() {
                missing.push("tenant_id (TenantId)".to_string());
            }
            if args.plain("client_id")?.is_none() {
                missing.push("client_id (ClientId)".to_string());
            }
            return Err(Error::MissingSettings {
                instance: args.source.clone(),
                missing,
            });
        };
        let graph_root = match args.plain("api_root")? {
            Some(r) => {
                let r = if r.ends_with('/') { r } else { format!("{r}/") };
                url::Url::parse(&r).map_err(|e| Error::Setting {
                    origin: args.source.clone(),
                    setting: "apiRoot".into(),
                    message: format!("'{r}' is not a URL: {e}"),
                })?
            }
            None => cloud.graph_root.clone(),
        };
        let api_version = args.plain("api_version")?.unwrap_or_else(|| "v1.0".into());
        Ok(Target {
            tenant_id,
            client_id,
            graph_root,
            api_version,
        })
    }

    /// The token's audience follows the root actually called (msticpy kept the cloud's, a defect).
    fn app_scope(&self) -> String {
        format!("{}/.default", self.graph_root.as_str().trim_end_matches('/'))
    }

    /// Delegated scopes: the settings' `scopes` (bare names are taken under the Graph root), else
    /// [`DELEGATED_PERMISSIONS`].
    fn user_scopes(&self, configured: Option<String>) -> String {
        let root = self.graph_root.as_str().trim_end_matches('/').to_string();
        match configured {
            Some(list) => list
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.contains('/') || matches!(s, "offline_access" | "openid" | "profile") {
                        s.to_string()
                    } else {
                        format!("{root}/{s}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            None => DELEGATED_PERMISSIONS
                .iter()
                .map(|p| format!("{root}/{p}"))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// Builds the credential for the chosen sign-in method, and the scope its first token is asked for.
fn credential(
    args: &EffectiveArgs,
    auth: AuthMethod,
    target: &Target,
    settings: Option<&Settings>,
    options: &ConnectOptions,
    http: &reqwest::Client,
    cloud: &Cloud,
) -> Result<(Arc<dyn TokenCredential>, String)> {
    // Checked whichever way the app signs in: a misspelt auth_type is a mistake even where it does not apply.
    let configured_auth_type = match args.plain("auth_type")? {
        Some(t) => Some(AuthType::parse(&t).ok_or_else(|| Error::Setting {
            origin: args.source.clone(),
            setting: "auth_type".into(),
            message: format!(
                "'{}' is not a sign-in type; use browser (or interactive), device (or devicecode), or cli (the Azure CLI)",
                crate::error::clean(&t, 60)
            ),
        })?),
        None => None,
    };
    let (tenant_id, client_id) = (target.tenant_id.as_str(), target.client_id.as_str());
    Ok(match auth {
        AuthMethod::ClientSecret => {
            let (secret_path, secret_ref) = args.get("client_secret").ok_or_else(|| Error::MissingSettings {
                instance: args.source.clone(),
                missing: vec!["client_secret".into()],
            })?;
            let secret = secret_ref.resolve(secret_path)?;
            (
                Arc::new(
                    ClientSecretCredential::new(http.clone(), &cloud.authority_host, tenant_id, client_id, secret)?
                        .with_retry(retry_options(settings, options)?),
                ),
                target.app_scope(),
            )
        }
        AuthMethod::Certificate => {
            let cert = args.plain("certificate")?.ok_or_else(|| Error::MissingSettings {
                instance: args.source.clone(),
                missing: vec!["certificate".into()],
            })?;
            let key = args.plain("private_key")?;
            let pass = match args.get("private_key_secret") {
                Some((p, r)) => Some(r.resolve(p)?),
                None => None,
            };
            let base = settings
                .and_then(|s| s.path())
                .and_then(|p| p.parent())
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let certificate = ClientCertificate::load(&base.join(cert), key.map(|k| base.join(k)).as_deref(), pass.as_ref())?;
            (
                Arc::new(
                    ClientCertificateCredential::new(http.clone(), &cloud.authority_host, tenant_id, client_id, certificate)?
                        .with_retry(retry_options(settings, options)?),
                ),
                target.app_scope(),
            )
        }
        AuthMethod::AzureCli => {
            let tenant = Some(tenant_id.to_string()).filter(|t| !t.is_empty());
            (Arc::new(crate::keyvault::AzureCliCredential::new(tenant)), target.app_scope())
        }
        AuthMethod::Delegated => {
            let auth_type = options.auth_type.or(configured_auth_type).unwrap_or_default();
            let cache = TokenCache::at(args.token_cache_path(options));
            cache.check()?;
            let prompt: Arc<dyn SignInPrompt> = options.prompt.clone().unwrap_or_else(|| Arc::new(NoPrompt));
            let mut cred = DelegatedCredential::new(
                http.clone(),
                &cloud.authority_host,
                tenant_id,
                client_id,
                args.plain("username")?,
                auth_type,
                Some(cache),
                prompt,
            )?
            .with_retry(retry_options(settings, options)?);
            if let Some(t) = options.browser_timeout {
                cred = cred.with_browser_timeout(t);
            }
            (Arc::new(cred), target.user_scopes(args.plain("scopes")?))
        }
    })
}

/// The retry policy: the options', else the settings' `Retries` (resends at most), else the default.
pub(crate) fn retry_options(settings: Option<&Settings>, options: &ConnectOptions) -> Result<crate::retry::RetryOptions> {
    if let Some(r) = &options.retry {
        return Ok(r.clone());
    }
    Ok(match settings.map(Settings::retries).transpose()?.flatten() {
        Some(n) => crate::retry::RetryOptions::with_retries(n),
        None => crate::retry::RetryOptions::default(),
    })
}

impl ConnectionInfo {
    #[allow(clippy::too_many_arguments)]
    fn new(
        settings: Option<&Settings>,
        args: &EffectiveArgs,
        auth: AuthMethod,
        target: &Target,
        cloud: &Cloud,
        graph: &GraphClient,
        scope: String,
        token: &crate::auth::AccessToken,
    ) -> ConnectionInfo {
        let claims = token_claims(token.token.expose());
        let list = |k: &str| -> Vec<String> {
            match claims.get(k) {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                _ => vec![],
            }
        };
        ConnectionInfo {
            settings: settings.map(|s| format!("{} ({})", s.origin(), s.source())),
            source: args.source.clone(),
            // The Azure CLI's tokens say which tenant and app they are for.
            tenant_id: match (auth, claims.get("tid").and_then(Value::as_str)) {
                (AuthMethod::AzureCli, Some(t)) => t.to_string(),
                _ => target.tenant_id.clone(),
            },
            directory_id: claims
                .get("tid")
                .and_then(Value::as_str)
                .filter(|t| uuid::Uuid::parse_str(t).is_ok())
                .map(str::to_ascii_lowercase),
            client_id: match (auth, claims.get("appid").and_then(Value::as_str)) {
                (AuthMethod::AzureCli, Some(a)) => a.to_string(),
                _ => target.client_id.clone(),
            },
            auth,
            cloud: cloud.name.clone(),
            authority: cloud.authority_host.to_string(),
            graph_root: graph.root().to_string(),
            scope,
            roles: list("roles"),
            scopes: list("scp"),
            app_name: claims.get("app_displayname").and_then(Value::as_str).map(str::to_string),
            account: claims
                .get("upn")
                .or_else(|| claims.get("preferred_username"))
                .and_then(Value::as_str)
                .map(str::to_string),
            token_expires_on: token.expires_on,
        }
    }
}

/// Replaces every `KeyVault` reference among `values` with the secret it names, fetched through a Key Vault client
/// signed in as the settings say (`KeyVault.AuthnType` or `Azure.auth_methods`).
async fn resolve_vault_references(
    values: &mut EffectiveArgs,
    settings: Option<&Settings>,
    azure: &crate::config::AzureSettings,
    cloud: &Cloud,
    http: &reqwest::Client,
    options: &ConnectOptions,
) -> Result<()> {
    let refs: Vec<(usize, String, String)> = values
        .map
        .iter()
        .enumerate()
        .filter_map(|(i, (_, path, r))| match r {
            SecretRef::KeyVault(v) => Some((i, path.clone(), v.clone())),
            _ => None,
        })
        .collect();
    if refs.is_empty() {
        return Ok(());
    }
    let kv = settings.map(|s| s.keyvault()).transpose()?.flatten().unwrap_or_default();
    let client = vault_client(values, settings, &kv, azure, cloud, http, options)?;
    for (i, path, reference) in refs {
        let target = crate::keyvault::parse_reference(&reference, &msticpy_setting_path(&path), kv.vault_name.as_deref())?;
        let secret = client.get(&target).await.map_err(|e| match e {
            Error::Vault {
                secret,
                status,
                code,
                message,
                ..
            } => Error::Vault {
                setting: Some(path.to_string()),
                secret,
                status,
                code,
                message,
            },
            other => other,
        })?;
        values.set(i, SecretRef::Literal(secret));
    }
    Ok(())
}

/// msticpy names secrets after the setting path with dots: `DataProviders.MicrosoftGraph.Args.ClientSecret`.
fn msticpy_setting_path(path: &str) -> String {
    path.to_string()
}

/// Every Key Vault secret the settings reference (all instances), with the setting that names it.
pub fn vault_references(settings: &Settings) -> Result<Vec<(String, crate::keyvault::VaultSecret)>> {
    let kv = settings.keyvault()?.unwrap_or_default();
    let mut instances: Vec<Option<String>> = if settings.has_default_instance() { vec![None] } else { vec![] };
    instances.extend(settings.instances().into_iter().map(Some));
    let mut out = Vec::new();
    for i in instances {
        for (_, path, r) in settings.provider_args(i.as_deref())?.values {
            if let SecretRef::KeyVault(v) = r {
                let target = crate::keyvault::parse_reference(&v, &msticpy_setting_path(&path), kv.vault_name.as_deref())?;
                if !out.iter().any(|(_, t)| *t == target) {
                    out.push((path, target));
                }
            }
        }
    }
    Ok(out)
}

/// Fetches the one Key Vault secret named at `setting` (for `config check --resolve`); the value is dropped.
pub async fn resolve_one(settings: &Settings, options: &ConnectOptions, setting: &str) -> Result<()> {
    let refs = vault_references(settings)?;
    let Some((_, target)) = refs.iter().find(|(p, _)| p == setting) else {
        return Err(Error::Setting {
            origin: settings.origin(),
            setting: setting.into(),
            message: "not a Key Vault reference".into(),
        });
    };
    let kv = settings.keyvault()?.unwrap_or_default();
    let (azure, http, cloud) = environment(Some(settings), options).await?;
    let values = EffectiveArgs::gather(Some(settings), options)?;
    let client = vault_client(&values, Some(settings), &kv, &azure, &cloud, &http, options)?;
    client.fetch(target).await.map(drop)
}

/// Re-reads every referenced Key Vault secret into the secret cache (`UseKeyring: true`) and drops cached secrets
/// the settings no longer reference. Signs in to Key Vault as the instance in `options` would. Returns each
/// secret's outcome (never its value).
pub async fn refresh_secrets(settings: &Settings, options: &ConnectOptions) -> Result<Vec<(String, std::result::Result<(), String>)>> {
    let refs = vault_references(settings)?;
    let kv = settings.keyvault()?.unwrap_or_default();
    let cache = crate::keyvault::SecretCache::at(
        options
            .secret_cache
            .clone()
            .unwrap_or_else(crate::keyvault::SecretCache::default_path),
    );
    let (azure, http, cloud) = environment(Some(settings), options).await?;
    let values = EffectiveArgs::gather(Some(settings), options).unwrap_or_else(|_| EffectiveArgs {
        source: "options".into(),
        map: vec![],
        delegated: false,
        azure_cli: None,
    });
    let client = vault_client(&values, Some(settings), &kv, &azure, &cloud, &http, options)?;
    let mut out = Vec::new();
    for (_, target) in &refs {
        let r = match client.fetch(target).await {
            Ok(v) => cache.put(target, &v).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push((target.to_string(), r));
    }
    let kept: Vec<_> = refs.into_iter().map(|(_, t)| t).collect();
    cache.retain(&kept)?;
    Ok(out)
}

/// What every connection needs from the settings before signing in: the `Azure` section, the HTTP client (CAs,
/// timeout, proxy) and the cloud's endpoints (fetched for a custom cloud).
async fn environment(
    settings: Option<&Settings>,
    options: &ConnectOptions,
) -> Result<(crate::config::AzureSettings, reqwest::Client, Cloud)> {
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
    let cloud = match &azure.resource_manager_url {
        Some(rm) => fetch_cloud(&http, rm).await?,
        None => Cloud::named(azure.cloud.as_deref().unwrap_or("global"))?,
    };
    Ok((azure, http, cloud))
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

/// The claims of a JWT access token, read without verification (only to report roles and names; the token itself
/// stays opaque to every decision).
fn token_claims(token: &str) -> serde_json::Map<String, Value> {
    token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_forms() {
        let v = parse_connection_string(" TenantId = 'abc' ; ClientId=\"def\";client_secret='x=y;' ").unwrap_err();
        // ';' inside a value is not supported by the format: the stray part after it has no '='.
        assert!(v.to_string().contains("unbalanced"), "{v}");
        let v = parse_connection_string("tenant_id=abc;client_id=def;client_secret=s3cr=t;apiVersion=beta").unwrap();
        assert_eq!(v["tenant_id"].expose(), "abc");
        assert_eq!(v["client_secret"].expose(), "s3cr=t");
        assert_eq!(v["api_version"].expose(), "beta");
        for (bad, want) in [
            ("", "empty"),
            ("tenant_id", "no '='"),
            ("=x", "empty key"),
            ("tenant_id=a;tenant_id=b", "more than once"),
            ("tenant_id=a;secret=hunter2", "unknown key 'secret'"),
            ("tenant_id='abc", "unbalanced quote"),
        ] {
            let e = parse_connection_string(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
