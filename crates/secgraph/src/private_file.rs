//! Owner-only files (0600 in a 0700 folder), rewritten atomically under a lock file so concurrent secgraph processes
//! never leave them half-written. Used for the token cache and the secret cache.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Setting {
        origin: "local cache".into(),
        setting: path.display().to_string(),
        message: format!("cannot {what}: {e}"),
    }
}

/// Reads JSON from `path`; a missing or unreadable file reads as the default (and is rewritten on the next update).
pub(crate) fn read<T: DeserializeOwned + Default>(path: &Path) -> T {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| {
            tracing::warn!(path = %path.display(), "cache file unreadable; starting afresh");
            T::default()
        }),
        Err(_) => T::default(),
    }
}

fn private_dir(path: &Path) -> Result<PathBuf> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "create the folder", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(&dir, "restrict the folder to its owner", e))?;
    }
    Ok(dir)
}

/// Runs `f` on the file's contents under the lock and writes the result atomically (owner-only).
pub(crate) fn update<T: Serialize + DeserializeOwned + Default, R>(path: &Path, f: impl FnOnce(&mut T) -> R) -> Result<R> {
    let dir = private_dir(path)?;
    let lock = path.with_extension("lock");
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
                    return Err(io_err(&lock, "take the lock (another secgraph holds it)", e));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io_err(&lock, "create the lock file", e)),
        }
    }
    let result = (|| {
        let mut value: T = read(path);
        let out = f(&mut value);
        let bytes = serde_json::to_vec_pretty(&value).map_err(|e| Error::Output(e.to_string()))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("cache"),
            uuid::Uuid::new_v4().simple()
        ));
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
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, "replace", e))?;
        Ok(out)
    })();
    let _ = std::fs::remove_file(&lock);
    result
}

/// The per-user cache folder: `$XDG_CACHE_HOME/secgraph`, else `~/.cache/secgraph`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("secgraph")
}
