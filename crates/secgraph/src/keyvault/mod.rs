//! Secrets held in Azure Key Vault: msticpy's `{KeyVault: …}` references, the vault client (REST `GET
//! secrets/{name}` with the 401 bearer challenge), the credential chosen by the `KeyVault`/`Azure` sections, and the
//! optional owner-only secret cache (`UseKeyring: true`).
//!
//! A small REST client of our own rather than `azure_security_keyvault_secrets`: one GET, and it must reach private
//! endpoints given as URL templates (`https://host:port/kv/{vault}/`), which the SDK's challenge-resource check
//! refuses unless disabled; see docs/CONFIGURATION.md.

mod cache;
mod chain;
mod client;
mod references;

pub use cache::SecretCache;
pub(crate) use chain::vault_client;
pub use chain::{AzureCliCredential, ChainedCredential};
pub use client::SecretClient;
pub(crate) use references::resolve_vault_references;
pub use references::{refresh_secrets, resolve_one, vault_references};

use crate::error::{Error, Result};

/// The `KeyVault` section (read by [`Settings::keyvault`](crate::config::Settings::keyvault)).
pub use crate::config::KeyVaultSettings;

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
