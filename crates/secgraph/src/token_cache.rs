//! The delegated token cache: per cloud authority + tenant + client + account, the refresh token and access tokens
//! by scope set. Stored in an owner-only file (0600) inside an owner-only folder (0700), replaced atomically under a
//! lock file so concurrent secgraph processes never leave it half-written. (An OS keyring is not the default: server
//! machines rarely have one; see docs.)

use crate::credential::AccessToken;
use crate::error::{Error, Result};
use crate::secret::Secret;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Identifies one signed-in account of one app in one tenant of one cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
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

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Setting {
        origin: "token cache".into(),
        setting: path.display().to_string(),
        message: format!("cannot {what}: {e}"),
    }
}

impl TokenCache {
    /// The cache at `path`.
    pub fn at(path: impl Into<PathBuf>) -> TokenCache {
        TokenCache { path: path.into() }
    }

    /// `$XDG_CACHE_HOME/secgraph/token_cache.json`, else `~/.cache/secgraph/token_cache.json`.
    pub fn default_path() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("secgraph").join("token_cache.json")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> CacheFile {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| {
                tracing::warn!(path = %self.path.display(), "token cache unreadable; starting afresh");
                CacheFile::default()
            }),
            Err(_) => CacheFile::default(),
        }
    }

    fn dir(&self) -> Result<PathBuf> {
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "create the folder", e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io_err(&dir, "restrict the folder to its owner", e))?;
        }
        Ok(dir)
    }

    /// Runs `f` on the file's contents under the lock and writes the result atomically.
    fn update<T>(&self, f: impl FnOnce(&mut CacheFile) -> T) -> Result<T> {
        let dir = self.dir()?;
        let lock = self.path.with_extension("lock");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock older than 30 s belongs to a process that died.
                    let stale = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(30));
                    if stale {
                        let _ = std::fs::remove_file(&lock);
                    } else if Instant::now() > deadline {
                        return Err(io_err(&lock, "take the cache lock (another secgraph holds it)", e));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(io_err(&lock, "create the lock file", e)),
            }
        }
        let result = (|| {
            let mut file = self.read();
            file.version = 1;
            let out = f(&mut file);
            let bytes = serde_json::to_vec_pretty(&file).map_err(|e| Error::Output(e.to_string()))?;
            let tmp = dir.join(format!(".token_cache.{}.tmp", uuid::Uuid::new_v4().simple()));
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut fh = opts.open(&tmp).map_err(|e| io_err(&tmp, "create", e))?;
            fh.write_all(&bytes)
                .and_then(|_| fh.sync_all())
                .map_err(|e| io_err(&tmp, "write", e))?;
            std::fs::rename(&tmp, &self.path).map_err(|e| io_err(&self.path, "replace", e))?;
            Ok(out)
        })();
        let _ = std::fs::remove_file(&lock);
        result
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
