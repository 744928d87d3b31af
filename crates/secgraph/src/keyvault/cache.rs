//! The owner-only secret cache (`KeyVault.UseKeyring: true`): vault/name → value, rewritten atomically.

use super::VaultSecret;
use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

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
