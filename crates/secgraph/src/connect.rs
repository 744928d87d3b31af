//! Turning settings, options and connection strings into a connection: msticpy's `connect()` semantics.
//!
//! Precedence: a connection string replaces the file's provider section; explicit options override either.

use crate::auth::TokenCache;
use crate::auth::{AuthType, DelegatedCredential, NoPrompt, SignInPrompt};
use crate::auth::{ClientCertificate, ClientCertificateCredential};
use crate::auth::{ClientSecretCredential, TokenCredential, TokenRequestOptions};
use crate::config::Cloud;
use crate::config::Settings;
use crate::context::Context;
pub use crate::context::{AuthMethod, ConnectOptions, EffectiveArgs};
use crate::error::{Error, Result};
use crate::graph::GraphClient;
pub use crate::keyvault::{refresh_secrets, resolve_one, vault_references};
use base64::Engine;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// Delegated permissions asked for by default: read access to what the provider queries.
pub const DELEGATED_PERMISSIONS: &[&str] = &[
    "SecurityAlert.Read.All",
    "SecurityIncident.Read.All",
    "ThreatHunting.Read.All",
    "SecurityEvents.Read.All",
];

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
        let ctx = Context::load(settings, options).await?;
        // Secrets held in Key Vault are fetched now, and only those this connection references.
        crate::keyvault::resolve_vault_references(&mut args, &ctx).await?;
        let target = Target::resolve(&args, &ctx.cloud)?;
        let (credential, scope) = credential(&args, auth, &target, &ctx)?;
        let token = credential.get_token(&[scope.as_str()], TokenRequestOptions::default()).await?;
        let graph = GraphClient::new(ctx.http.clone(), &target.graph_root, &target.api_version, credential, scope.clone())?
            .with_retry(ctx.retry()?)
            .with_limits(options.paging_limits.unwrap_or_default())
            .with_budgets(options.requests_per_minute);
        let info = ConnectionInfo::new(settings, &args, auth, &target, &ctx.cloud, &graph, scope, &token);
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
fn credential(args: &EffectiveArgs, auth: AuthMethod, target: &Target, ctx: &Context<'_>) -> Result<(Arc<dyn TokenCredential>, String)> {
    let Context {
        settings,
        options,
        http,
        cloud,
        ..
    } = ctx;
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
                        .with_retry(ctx.retry()?),
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
                        .with_retry(ctx.retry()?),
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
            .with_retry(ctx.retry()?);
            if let Some(t) = options.browser_timeout {
                cred = cred.with_browser_timeout(t);
            }
            (Arc::new(cred), target.user_scopes(args.plain("scopes")?))
        }
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

    use crate::config::parse_connection_string;

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
