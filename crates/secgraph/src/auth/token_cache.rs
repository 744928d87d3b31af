//! The delegated token cache: per cloud authority + tenant + client + account, the refresh token and access tokens
//! by scope set. Stored in an owner-only file (0600) inside an owner-only folder (0700), replaced atomically under a
//! lock file so concurrent secgraph processes never leave it half-written. (An OS keyring is not the default: server
//! machines rarely have one; see docs.)

use crate::auth::AccessToken;
use crate::error::Result;
use crate::secret::Secret;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Identifies one signed-in account of one app in one tenant of one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// The authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority: String,
    /// The tenant id or domain.
    pub tenant: String,
    /// The app (client) id.
    pub client_id: String,
    /// The user's sign-in name (UPN).
    pub username: String,
}

impl CacheKey {
    fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.authority.trim_end_matches('/'),
            self.tenant.to_lowercase(),
            self.client_id.to_lowercase(),
            self.username.to_lowercase()
        )
    }
}

#[derive(Serialize, Deserialize, Default)]
struct CacheFile {
    version: u32,
    accounts: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct Entry {
    username: String,
    refresh_token: Option<String>,
    /// Scope set (sorted, space-joined) → token.
    access_tokens: BTreeMap<String, CachedToken>,
}

#[derive(Serialize, Deserialize, Clone)]
struct CachedToken {
    token: String,
    expires_on: i64,
    issued: i64,
}

/// The cache file. Cheap to clone; every operation reads or rewrites the file.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
}

/// A cached access token with when it was issued (to judge renewal).
pub(crate) struct Cached {
    pub token: AccessToken,
    pub issued: DateTime<Utc>,
}

impl TokenCache {
    /// The cache at `path` (a relative path is taken from the current folder, now).
    pub fn at(path: impl Into<PathBuf>) -> TokenCache {
        let path = path.into();
        TokenCache {
            path: std::path::absolute(&path).unwrap_or(path),
        }
    }

    /// Checks that the cache can live where it was asked to (its folder exists or can be created, and no other
    /// user can write to it), before any sign-in, so a user never signs in only to find the token cannot be kept.
    pub fn check(&self) -> Result<()> {
        crate::private_file::check_location(&self.path)
    }

    /// Takes the cross-process refresh lock of this cache (see [`crate::private_file::ProcessLock`]).
    pub(crate) async fn refresh_lock(&self) -> Result<crate::private_file::ProcessLock> {
        crate::private_file::ProcessLock::acquire(&self.path.with_extension("refresh.lock"), std::time::Duration::from_secs(20 * 60)).await
    }

    /// `$XDG_CACHE_HOME/secgraph/token_cache.json`, else `~/.cache/secgraph/token_cache.json`.
    pub fn default_path() -> PathBuf {
        crate::private_file::cache_dir().join("token_cache.json")
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> CacheFile {
        crate::private_file::read(&self.path)
    }

    fn update<T>(&self, f: impl FnOnce(&mut CacheFile) -> T) -> Result<T> {
        crate::private_file::update(&self.path, |file: &mut CacheFile| {
            file.version = 1;
            f(file)
        })
    }

    /// A cached access token for exactly this scope set.
    pub(crate) fn access_token(&self, key: &CacheKey, scopes: &str) -> Option<Cached> {
        let file = self.read();
        let t = file.accounts.get(&key.id())?.access_tokens.get(scopes)?;
        Some(Cached {
            token: AccessToken {
                token: Secret::new(t.token.clone()),
                expires_on: Utc.timestamp_opt(t.expires_on, 0).single()?,
            },
            issued: Utc.timestamp_opt(t.issued, 0).single()?,
        })
    }

    pub(crate) fn refresh_token(&self, key: &CacheKey) -> Option<Secret> {
        self.read().accounts.get(&key.id())?.refresh_token.clone().map(Secret::new)
    }

    /// Stores a new access token and (when given) the rotated refresh token.
    pub(crate) fn store(
        &self,
        key: &CacheKey,
        scopes: &str,
        token: &AccessToken,
        issued: DateTime<Utc>,
        refresh: Option<&Secret>,
    ) -> Result<()> {
        self.update(|f| {
            let e = f.accounts.entry(key.id()).or_default();
            e.username = key.username.clone();
            if let Some(r) = refresh {
                e.refresh_token = Some(r.expose().to_string());
            }
            let now = Utc::now().timestamp();
            e.access_tokens.retain(|_, t| t.expires_on > now);
            e.access_tokens.insert(
                scopes.to_string(),
                CachedToken {
                    token: token.token.expose().to_string(),
                    expires_on: token.expires_on.timestamp(),
                    issued: issued.timestamp(),
                },
            );
        })
    }

    /// Forgets an account's refresh token (after the service refused it).
    pub(crate) fn drop_refresh_token(&self, key: &CacheKey) -> Result<()> {
        self.update(|f| {
            if let Some(e) = f.accounts.get_mut(&key.id()) {
                e.refresh_token = None;
                e.access_tokens.clear();
            }
        })
    }

    /// Removes the accounts whose username matches (all of them with `None`). Returns how many were removed.
    pub fn remove(&self, username: Option<&str>) -> Result<usize> {
        if !self.path.exists() {
            return Ok(0);
        }
        self.update(|f| {
            let before = f.accounts.len();
            f.accounts
                .retain(|_, e| username.is_some_and(|u| !e.username.eq_ignore_ascii_case(u)));
            before - f.accounts.len()
        })
    }

    /// The usernames with cached sign-ins.
    pub fn accounts(&self) -> Vec<String> {
        self.read().accounts.values().map(|e| e.username.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_never_corrupt_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("cache.json");
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let cache = TokenCache::at(&path);
                std::thread::spawn(move || {
                    let key = CacheKey {
                        authority: "https://login.example/".into(),
                        tenant: "t".into(),
                        client_id: "c".into(),
                        username: format!("user{i}@example"),
                    };
                    for n in 0..15 {
                        let tok = AccessToken {
                            token: Secret::new(format!("tok-{i}-{n}")),
                            expires_on: Utc::now() + chrono::Duration::hours(1),
                        };
                        cache
                            .store(&key, "s", &tok, Utc::now(), Some(&Secret::new(format!("rt-{i}-{n}"))))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let cache = TokenCache::at(&path);
        let mut users = cache.accounts();
        users.sort();
        assert_eq!(users.len(), 6, "every writer's account survived: {users:?}");
        let key = CacheKey {
            authority: "https://login.example/".into(),
            tenant: "t".into(),
            client_id: "c".into(),
            username: "user3@example".into(),
        };
        assert_eq!(cache.refresh_token(&key).unwrap().expose(), "rt-3-14");
        assert!(!path.with_extension("lock").exists());
        assert_eq!(cache.remove(None).unwrap(), 6);
    }
}
