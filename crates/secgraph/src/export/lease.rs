//! One writer per (root, stream, tenant): the lock an export takes before it recovers or writes anything, and holds
//! until its commit is done.
//!
//! - **Local folder**: an OS advisory lock (`flock`) on `ROOT/_locks/stream=S/tenant=T.lock`. The OS releases it when
//!   the process ends, however it ends, so there are no staleness rules: a lock is held exactly while its holder
//!   lives. The file's text names the holder (host, process id, since when) for the message a second writer gets.
//! - **Object store**: a lease object at the same path, created with a conditional put (`If-None-Match: *` on Azure,
//!   conditional writes on S3, generation match on GCS) and holding its holder and expiry. The holder renews it every
//!   [`LEASE_TTL`]/3 with a put conditional on the version it wrote; a lease not renewed within [`LEASE_TTL`] (its
//!   holder died) may be taken over, again conditionally, so two writers can never both win. A holder that fails to
//!   renew stops before its commit ([`Lease::check`]).
//!
//! A second writer fails at once with [`Error::Locked`]; it has changed nothing. Recovery (deleting files a killed
//! run left) runs only under the lock, so it can never delete a live writer's files.

use super::Root;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long an object-store lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct Lease {
    held: Held,
    shown: String,
}

#[derive(Debug)]
enum Held {
    /// The open lock file: the OS lock lives as long as it.
    Local { _file: std::fs::File },
    Object {
        lost: Arc<AtomicBool>,
        renew: tokio::task::JoinHandle<()>,
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
        token: String,
    },
}

/// Who this process is, for the holder's note.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unnamed host".into());
    format!(
        "process {} on {host} since {}",
        std::process::id(),
        Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// The lock's path under the root.
pub(crate) fn lock_path(stream: &str, tenant: &str) -> String {
    format!("_locks/stream={stream}/tenant={tenant}.lock")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LeaseBody {
    holder: String,
    token: String,
    expires: DateTime<Utc>,
}

impl LeaseBody {
    fn new(token: &str, holder: &str) -> LeaseBody {
        LeaseBody {
            holder: holder.to_string(),
            token: token.to_string(),
            expires: Utc::now() + chrono::Duration::from_std(LEASE_TTL).unwrap_or_default(),
        }
    }

    fn bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }
}

impl Lease {
    /// Takes the lock of `(stream, tenant)` under `root`, or fails at once with [`Error::Locked`] naming the holder.
    pub async fn acquire(root: &Root, stream: &str, tenant: &str) -> Result<Lease> {
        let rel = lock_path(stream, tenant);
        let shown = root.show(&rel);
        let locked = |holder: String| Error::Locked {
            stream: stream.to_string(),
            tenant: tenant.to_string(),
            lock: shown.clone(),
            holder,
        };
        match root {
            Root::Local(base) => {
                let path = rel.split('/').fold(base.clone(), |p, part| p.join(part));
                let io = |what: &str, e: std::io::Error| Error::output_from(format!("cannot {what} the lock {}", path.display()), e);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| io("open", e))?;
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => {
                        let who = std::fs::read_to_string(&path).unwrap_or_default();
                        let who = crate::error::clean(who.trim(), 200);
                        return Err(locked(if who.is_empty() { "another process".into() } else { who }));
                    }
                    Err(std::fs::TryLockError::Error(e)) => return Err(io("take", e)),
                }
                // The holder's note, for a second writer's message (the lock, not the text, is what excludes).
                use std::io::{Seek, Write};
                let note = holder();
                let _ = file.set_len(0);
                let _ = file.seek(std::io::SeekFrom::Start(0));
                let _ = file.write_all(note.as_bytes());
                Ok(Lease {
                    held: Held::Local { _file: file },
                    shown,
                })
            }
            Root::Object { store, prefix, .. } => {
                let path = Root::object_path(prefix, &rel);
                let token = uuid::Uuid::new_v4().simple().to_string();
                let me = holder();
                let os = |e: object_store::Error| Error::output_from(format!("cannot take the lock {shown}"), e);
                let create = PutOptions::from(PutMode::Create);
                let version = match store.put_opts(&path, LeaseBody::new(&token, &me).bytes().into(), create).await {
                    Ok(r) => UpdateVersion {
                        e_tag: r.e_tag,
                        version: r.version,
                    },
                    Err(object_store::Error::AlreadyExists { .. }) => {
                        let got = store.get(&path).await.map_err(os)?;
                        let current = UpdateVersion {
                            e_tag: got.meta.e_tag.clone(),
                            version: got.meta.version.clone(),
                        };
                        let body = got.bytes().await.map_err(os)?;
                        let theirs: Option<LeaseBody> = serde_json::from_slice(&body).ok();
                        if let Some(t) = &theirs
                            && t.expires > Utc::now()
                        {
                            return Err(locked(format!(
                                "{} (lease until {})",
                                crate::error::clean(&t.holder, 200),
                                t.expires.format("%H:%M:%SZ")
                            )));
                        }
                        // Expired (its holder stopped renewing): take it over, if nobody else does first.
                        let take = PutOptions::from(PutMode::Update(current));
                        match store.put_opts(&path, LeaseBody::new(&token, &me).bytes().into(), take).await {
                            Ok(r) => UpdateVersion {
                                e_tag: r.e_tag,
                                version: r.version,
                            },
                            Err(object_store::Error::Precondition { .. }) => {
                                return Err(locked("another process that took over an expired lease".into()));
                            }
                            Err(e) => return Err(os(e)),
                        }
                    }
                    Err(e) => return Err(os(e)),
                };
                let lost = Arc::new(AtomicBool::new(false));
                let renew = tokio::spawn(renew(store.clone(), path.clone(), token.clone(), me, version, lost.clone()));
                Ok(Lease {
                    held: Held::Object {
                        lost,
                        renew,
                        store: store.clone(),
                        path,
                        token,
                    },
                    shown,
                })
            }
        }
    }

    /// Fails when the lease was lost (an object-store lease that could not be renewed): the holder must not commit.
    pub fn check(&self) -> Result<()> {
        match &self.held {
            Held::Object { lost, .. } if lost.load(Ordering::SeqCst) => Err(Error::output(format!(
                "the lock {} could not be renewed (the store did not answer, or another writer took it over after {} s); this run commits nothing",
                self.shown,
                LEASE_TTL.as_secs()
            ))),
            _ => Ok(()),
        }
    }

    /// Releases the lock (also done on drop; an object-store lease is deleted only while still ours).
    pub async fn release(self) {
        if let Held::Object {
            renew, store, path, token, ..
        } = &self.held
        {
            renew.abort();
            if let Ok(got) = store.get(path).await
                && let Ok(body) = got.bytes().await
                && serde_json::from_slice::<LeaseBody>(&body).is_ok_and(|b| &b.token == token)
            {
                let _ = store.delete(path).await;
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Held::Object { renew, .. } = &self.held {
            renew.abort();
        }
    }
}

async fn renew(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    token: String,
    me: String,
    mut version: UpdateVersion,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(LEASE_TTL / 3).await;
        let opts = PutOptions::from(PutMode::Update(version.clone()));
        match store.put_opts(&path, LeaseBody::new(&token, &me).bytes().into(), opts).await {
            Ok(r) => {
                version = UpdateVersion {
                    e_tag: r.e_tag,
                    version: r.version,
                }
            }
            Err(e) => {
                tracing::warn!(lock = %path, error = %e, "could not renew the export's lease; this run will not commit");
                lost.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}
