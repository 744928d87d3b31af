//! Key Vault references in the settings: resolved for a connection (only those it uses), listed for
//! `config check`, fetched one at a time, or refreshed into the secret cache.

use super::vault_client;
use crate::config::{SecretRef, Settings};
use crate::context::{ConnectOptions, Context, EffectiveArgs};
use crate::error::{Error, Result};

/// Replaces every `KeyVault` reference among `values` with the secret it names, fetched through a Key Vault client
/// signed in as the settings say (`KeyVault.AuthnType` or `Azure.auth_methods`).
pub(crate) async fn resolve_vault_references(values: &mut EffectiveArgs, ctx: &Context<'_>) -> Result<()> {
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
    let kv = ctx.settings.map(|s| s.keyvault()).transpose()?.flatten().unwrap_or_default();
    let client = vault_client(values, ctx, &kv)?;
    for (i, path, reference) in refs {
        let target = super::parse_reference(&reference, &msticpy_setting_path(&path), kv.vault_name.as_deref())?;
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
pub fn vault_references(settings: &Settings) -> Result<Vec<(String, super::VaultSecret)>> {
    let kv = settings.keyvault()?.unwrap_or_default();
    let mut instances: Vec<Option<String>> = if settings.has_default_instance() { vec![None] } else { vec![] };
    instances.extend(settings.instances().into_iter().map(Some));
    let mut out = Vec::new();
    for i in instances {
        for (_, path, r) in settings.provider_args(i.as_deref())?.values {
            if let SecretRef::KeyVault(v) = r {
                let target = super::parse_reference(&v, &msticpy_setting_path(&path), kv.vault_name.as_deref())?;
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
    let ctx = Context::load(Some(settings), options).await?;
    let values = EffectiveArgs::gather(Some(settings), options)?;
    let client = vault_client(&values, &ctx, &kv)?;
    client.fetch(target).await.map(drop)
}

/// Re-reads every referenced Key Vault secret into the secret cache (`UseKeyring: true`) and drops cached secrets
/// the settings no longer reference. Signs in to Key Vault as the instance in `options` would. Returns each
/// secret's outcome (never its value).
pub async fn refresh_secrets(settings: &Settings, options: &ConnectOptions) -> Result<Vec<(String, std::result::Result<(), String>)>> {
    let refs = vault_references(settings)?;
    let kv = settings.keyvault()?.unwrap_or_default();
    let cache = super::SecretCache::at(options.secret_cache.clone().unwrap_or_else(super::SecretCache::default_path));
    let ctx = Context::load(Some(settings), options).await?;
    let values = EffectiveArgs::gather(Some(settings), options).unwrap_or_else(|_| EffectiveArgs {
        source: "options".into(),
        map: vec![],
        delegated: false,
        azure_cli: None,
    });
    let client = vault_client(&values, &ctx, &kv)?;
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
