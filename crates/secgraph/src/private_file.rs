//! Owner-only files (0600 in a 0700 folder), rewritten atomically under a lock file so concurrent secgraph processes
//! never leave them half-written. Used for the token cache and the secret cache.

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Cache {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: Some(e),
    }
}

/// Largest cache file read.
const MAX_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads JSON from `path`; a missing or unreadable file reads as the default (and is rewritten on the next update).
/// A file that others can read is made owner-only again, with a warning.
pub(crate) fn read<T: DeserializeOwned + Default>(path: &Path) -> T {
    repair_mode(path);
    match crate::local_file::read(path, MAX_CACHE_BYTES) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| {
            tracing::warn!(path = %path.display(), "cache file unreadable; starting afresh");
            T::default()
        }),
        Err(_) => T::default(),
    }
}

/// An existing cache file with group or other permissions is set back to 0600 (it holds tokens or secrets).
fn repair_mode(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::symlink_metadata(path)
            && m.is_file()
            && m.permissions().mode() & 0o077 != 0
        {
            let was = m.permissions().mode() & 0o777;
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), mode = format!("{was:o}"), "cache file was readable by others; made it owner-only (0600)")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), mode = format!("{was:o}"), error = %e, "cache file is readable by others and cannot be restricted")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The folder that holds `path`, as an absolute path (`tc.json` means `./tc.json`).
pub(crate) fn folder_of(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Checks, without changing anything, that a cache file may live at `path`: its folder, if it exists, is a folder
/// that other users cannot write to (they could replace the cache). Run before any sign-in.
pub(crate) fn check_location(path: &Path) -> Result<()> {
    let dir = folder_of(path);
    let mut existing = dir.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => return Ok(()),
        }
    }
    let meta = std::fs::metadata(existing).map_err(|e| io_err(existing, "read the folder", e))?;
    if !meta.is_dir() {
        return Err(io_err(
            existing,
            "use it as the cache's folder",
            std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
        ));
    }
    #[cfg(unix)]
    if existing == dir {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Err(Error::Cache {
                path: path.to_path_buf(),
                what: format!(
                    "keep a cache there: the folder {} is writable by every user (mode {:o}), who could replace or read it. Choose a private folder",
                    dir.display(),
                    mode & 0o7777
                ),
                source: None,
            });
        }
        if mode & 0o020 != 0 {
            tracing::warn!(folder = %dir.display(), mode = format!("{:o}", mode & 0o7777), "the cache folder is writable by its group");
        }
    }
    Ok(())
}

/// Creates the missing folders up to `path`'s folder, each owner-only (0700). Folders that already exist are
/// checked, never changed.
fn private_dir(path: &Path) -> Result<PathBuf> {
    check_location(path)?;
    let dir = folder_of(path);
    let mut missing = Vec::new();
    let mut p = dir.as_path();
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for d in missing.iter().rev() {
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        match b.create(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(d, "create the folder", e)),
        }
    }
    Ok(dir)
}

/// A lock file held while one process refreshes a token, so that concurrent processes wait and then use the
/// token it stored instead of each spending the (rotating) refresh token. Removed on drop.
#[derive(Debug)]
pub(crate) struct ProcessLock {
    path: PathBuf,
}

impl ProcessLock {
    /// Takes the lock at `path`, waiting (without blocking the runtime) while another live process holds it.
    /// A lock whose process is gone, or older than `stale_after`, is taken over.
    pub(crate) async fn acquire(path: &Path, stale_after: Duration) -> Result<ProcessLock> {
        private_dir(path)?;
        let deadline = Instant::now() + stale_after;
        loop {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(ProcessLock { path: path.to_path_buf() });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let age = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    if age > stale_after || !holder_alive(path) || Instant::now() > deadline {
                        tracing::info!(lock = %path.display(), "taking over a lock left by a process that is gone");
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(io_err(path, "create the lock file", e)),
            }
        }
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the process whose id the lock file holds still runs (Linux: `/proc/<pid>`); unknown → assumed alive.
fn holder_alive(lock: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(lock) else { return true };
    let Ok(pid) = text.trim().parse::<u32>() else { return true };
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Runs blocking cache work (file locks that may wait, file I/O) on Tokio's blocking pool, so an async sign-in
/// never stalls the runtime's workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Cache {
        path: PathBuf::from("(cache)"),
        what: format!("complete the cache update ({e})"),
        source: None,
    })?
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
        let bytes = serde_json::to_vec_pretty(&value).map_err(|e| Error::output_from("", e))?;
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

/// The per-user cache folder: `$XDG_CACHE_HOME/secgraph`, else `~/.cache/secgraph` (see [`crate::Environment`]).
pub fn cache_dir() -> PathBuf {
    crate::Environment::from_env().cache_dir()
}
