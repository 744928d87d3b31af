//! Where a dataset lives: a local folder, or an object store (Azure Blob Storage, Amazon S3, Google Cloud Storage)
//! through the `object_store` crate. Paths below the root are relative, `/`-separated (`stream=…/tenant=…/…`).
//!
//! What the export needs from a root, and how each kind gives it:
//!
//! | operation | local folder | object store |
//! |---|---|---|
//! | replace a small file (checkpoint) atomically | temporary file, fsync, rename | one PUT (objects are replaced whole) |
//! | publish a data file | written in place under a temporary name, renamed | written locally, uploaded (multipart) |
//! | rename `….pending` → `….parquet` | rename | copy, then delete (repeatable: a crash between them is finished by the next run) |
//! | list, read, delete | directory walk, read, remove | LIST, GET, DELETE |

use crate::error::{Error, Result};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A dataset root. [`Root::parse`] makes one from what a user types.
#[derive(Clone)]
pub enum Root {
    /// A local (or mounted) folder.
    Local(PathBuf),
    /// A container or bucket, and a prefix inside it.
    Object {
        /// The URL as shown to people: no user info, no query (a SAS is taken out and used as a setting).
        url: String,
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The prefix inside the container or bucket.
        prefix: ObjectPath,
    },
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// Option names that carry secrets: never echoed.
fn secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["key", "secret", "token", "sas", "password", "credential"]
        .iter()
        .any(|s| k.contains(s))
}

/// Text that failed to parse as a URL, without what could be user info (`…://USER:PASS@`) or a query (`?…`).
fn scrub(root: &str) -> String {
    let no_query = root.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => no_query.to_string(),
        },
        None => no_query.to_string(),
    }
}

/// A URL without its user info, query or fragment.
fn shown_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

impl Root {
    /// A local folder.
    pub fn local(path: impl Into<PathBuf>) -> Root {
        Root::Local(path.into())
    }

    /// `az://container/path` (also `abfs://`, `abfss://`, `azure://`, `https://ACCOUNT.blob.core.windows.net/…`),
    /// `s3://bucket/path`, `gs://bucket/path`, or a local path. An object store is configured by `object_store`'s
    /// settings — the `AZURE_*`, `AWS_*` and `GOOGLE_*` environment variables, then `options` on top (keys such as
    /// `azure_storage_account_name`, `azure_storage_endpoint`, `aws_region`, `allow_http`).
    pub fn parse(root: &str, options: &[(String, String)]) -> Result<Root> {
        let looks_remote = [
            "az://", "abfs://", "abfss://", "azure://", "adl://", "s3://", "s3a://", "gs://", "https://", "http://",
        ]
        .iter()
        .any(|s| root.to_ascii_lowercase().starts_with(s));
        if !looks_remote {
            return Ok(Root::local(root));
        }
        let bad = |message: String| Error::Setting {
            origin: "the export root".into(),
            setting: scrub(root),
            message,
        };
        let mut url = url::Url::parse(root).map_err(|e| bad(e.to_string()))?;
        // What the URL shows people: never its user info or query (a password, a SAS signature).
        let shown = shown_url(&url);
        let bad = |message: String| Error::Setting {
            origin: "the export root".into(),
            setting: shown.clone(),
            message,
        };
        let scheme = url.scheme().to_ascii_lowercase();
        let azure = !matches!(scheme.as_str(), "s3" | "s3a" | "gs");
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "the URL carries a user name or password, which object storage does not take there; remove it and pass credentials as storage options or the AZURE_*/AWS_*/GOOGLE_* variables".into(),
            ));
        }
        let mut from_url: Vec<(String, String)> = Vec::new();
        if let Some(query) = url.query().filter(|q| !q.is_empty()).map(str::to_string) {
            let is_sas = url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "sig");
            if !(azure && is_sas) {
                return Err(bad(
                    "the URL has a query string, which is not part of a root; pass settings as storage options (an Azure SAS — a query with sig= — is the one query taken from the URL)".into(),
                ));
            }
            // A portal "Blob SAS URL": the SAS signs the requests, as object_store's SAS setting.
            from_url.push(("azure_storage_sas_key".into(), query));
            url.set_query(None);
        }
        let parse_key = |k: &str| -> bool {
            let k = k.to_ascii_lowercase();
            match scheme.as_str() {
                "s3" | "s3a" => k.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok(),
                "gs" => k.parse::<object_store::gcp::GoogleConfigKey>().is_ok(),
                _ => k.parse::<object_store::azure::AzureConfigKey>().is_ok(),
            }
        };
        if let Some((k, _)) = options.iter().find(|(k, _)| !parse_key(k)) {
            let known: &[&str] = match scheme.as_str() {
                "s3" | "s3a" => &[
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "aws_session_token",
                    "aws_region",
                    "aws_endpoint",
                    "aws_default_region",
                    "aws_conditional_put",
                ],
                "gs" => &[
                    "google_service_account",
                    "google_service_account_key",
                    "google_application_credentials",
                    "google_bucket",
                ],
                _ => &[
                    "azure_storage_account_name",
                    "azure_storage_account_key",
                    "azure_storage_sas_key",
                    "azure_storage_client_id",
                    "azure_storage_client_secret",
                    "azure_storage_tenant_id",
                    "azure_storage_endpoint",
                    "azure_storage_use_emulator",
                    "azure_use_azure_cli",
                ],
            };
            return Err(bad(format!(
                "unknown storage option '{}'; known keys include {}, and the client's (allow_http, timeout, connect_timeout, proxy_url)",
                crate::error::clean(k, 60),
                known.join(", ")
            )));
        }
        if !from_url.is_empty() && options.iter().any(|(k, _)| k.to_ascii_lowercase().contains("sas")) {
            return Err(bad("a SAS is given both in the URL and as a storage option; give it once".into()));
        }
        let prefixes: &[&str] = match scheme.as_str() {
            "s3" | "s3a" => &["AWS_"],
            "gs" => &["GOOGLE_"],
            _ => &["AZURE_"],
        };
        let mut opts: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        opts.extend(options.iter().cloned());
        opts.extend(from_url);
        let (store, prefix) = object_store::parse_url_opts(&url, opts).map_err(|e| {
            bad(format!(
                "{} (settings given: {})",
                crate::error::clean(&e.to_string(), 300),
                options
                    .iter()
                    .map(|(k, v)| if secret_option(k) { format!("{k}=***") } else { format!("{k}={v}") })
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        Ok(Root::Object {
            url: shown,
            store: Arc::from(store),
            prefix,
        })
    }

    /// The root as shown to people.
    pub fn display(&self) -> String {
        match self {
            Root::Local(p) => p.display().to_string(),
            Root::Object { url, .. } => url.clone(),
        }
    }

    /// A relative path under this root, as shown to people.
    pub fn show(&self, rel: &str) -> String {
        format!("{}/{rel}", self.display().trim_end_matches('/'))
    }

    /// Where files for an object store are written before their upload: a temporary folder (`None` for a local root,
    /// whose files are written in place).
    pub(crate) fn staging(&self) -> Result<Option<tempfile::TempDir>> {
        match self {
            Root::Local(_) => Ok(None),
            Root::Object { .. } => tempfile::tempdir()
                .map(Some)
                .map_err(|e| Error::output_from("cannot create a local staging folder", e)),
        }
    }

    fn local_path(base: &Path, rel: &str) -> PathBuf {
        rel.split('/').fold(base.to_path_buf(), |p, part| p.join(part))
    }

    pub(crate) fn object_path(prefix: &ObjectPath, rel: &str) -> ObjectPath {
        match prefix.as_ref() {
            "" => ObjectPath::from(rel),
            p => ObjectPath::from(format!("{p}/{rel}")),
        }
    }

    fn os_err(&self, what: &str, rel: &str) -> impl Fn(object_store::Error) -> Error + use<> {
        let at = self.show(rel);
        let what = what.to_string();
        move |e| Error::output_from(format!("{what} {at}"), e)
    }

    /// Creates the root if it is a local folder; checks an object store answers (one LIST), so a missing container,
    /// wrong credentials or a wrong endpoint are said once, before any tenant is read.
    pub async fn prepare(&self) -> Result<()> {
        match self {
            Root::Local(p) => {
                std::fs::create_dir_all(p).map_err(|e| Error::output_from(format!("cannot create {}", p.display()), e))?;
            }
            Root::Object { store, prefix, url } => {
                if let Some(Err(e)) = store.list(Some(prefix)).next().await {
                    let hint = if e.to_string().contains("ContainerNotFound") || e.to_string().contains("NoSuchBucket") {
                        " (the container or bucket does not exist: create it first)"
                    } else {
                        ""
                    };
                    return Err(Error::output_from(format!("the export root {url} is not usable{hint}"), e));
                }
            }
        }
        Ok(())
    }

    /// A file's bytes, or `None` when it does not exist.
    pub(crate) async fn get(&self, rel: &str) -> Result<Option<bytes::Bytes>> {
        match self {
            Root::Local(base) => {
                let p = Self::local_path(base, rel);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b.into())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::output_from(format!("cannot read {}", p.display()), e)),
                }
            }
            Root::Object { store, prefix, .. } => match store.get(&Self::object_path(prefix, rel)).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(self.os_err("cannot read", rel))?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.os_err("cannot read", rel)(e)),
            },
        }
    }

    /// Replaces a small file whole and atomically (readers see the old or the new bytes, never a mix).
    pub(crate) async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Root::Local(base) => {
                let path = Self::local_path(base, rel);
                let dir = path.parent().unwrap_or(base);
                let io = |what: &str, e: std::io::Error| Error::output_from(format!("{what} {}", path.display()), e);
                std::fs::create_dir_all(dir).map_err(|e| io("cannot create the folder of", e))?;
                // Named after the file it replaces, so a recovery can remove its own leftovers and no one else's.
                let name = rel.rsplit('/').next().unwrap_or(rel);
                let mut tmp = tempfile::Builder::new()
                    .prefix(&format!(".secgraph-{name}."))
                    .suffix(".partial")
                    .tempfile_in(dir)
                    .map_err(|e| io("cannot write beside", e))?;
                std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| io("cannot write", e))?;
                tmp.as_file().sync_all().map_err(|e| io("cannot flush", e))?;
                tmp.persist(&path).map_err(|e| io("cannot replace", e.error))?;
                Ok(())
            }
            Root::Object { store, prefix, .. } => {
                store
                    .put(&Self::object_path(prefix, rel), bytes.into())
                    .await
                    .map_err(self.os_err("cannot write", rel))?;
                Ok(())
            }
        }
    }

    /// Where a writer should write the file that will be `rel`: in place for a local root (the writer renames its
    /// temporary file there when whole), else in `staging` (then [`Root::upload`]).
    pub(crate) fn write_path(&self, rel: &str, staging: Option<&Path>) -> PathBuf {
        match (self, staging) {
            (Root::Local(base), _) => Self::local_path(base, rel),
            (Root::Object { .. }, Some(dir)) => dir.join(rel.replace('/', "_")),
            (Root::Object { .. }, None) => std::env::temp_dir().join(rel.replace('/', "_")),
        }
    }

    /// Uploads a finished local file as `rel` (object stores; a local root already has it in place). Streams it in
    /// parts, so memory stays flat whatever its size.
    pub(crate) async fn upload(&self, local: &Path, rel: &str) -> Result<()> {
        let Root::Object { store, prefix, .. } = self else { return Ok(()) };
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| Error::output_from(format!("cannot read {}", local.display()), e))?;
        let mut w = object_store::buffered::BufWriter::new(store.clone(), Self::object_path(prefix, rel));
        let copied = tokio::io::copy(&mut file, &mut w).await;
        let shut = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
        match copied.and(shut) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = w.abort().await;
                Err(Error::output(format!(
                    "cannot upload {} to {}: {e}",
                    local.display(),
                    self.show(rel)
                )))
            }
        }
    }

    /// Renames `from` to `to`, replacing `to`. On an object store a copy then a delete: done again, it ends the same.
    pub(crate) async fn rename(&self, from: &str, to: &str) -> Result<()> {
        match self {
            Root::Local(base) => {
                let (a, b) = (Self::local_path(base, from), Self::local_path(base, to));
                std::fs::rename(&a, &b).map_err(|e| Error::output_from(format!("cannot rename {}", a.display()), e))
            }
            Root::Object { store, prefix, .. } => store
                .rename(&Self::object_path(prefix, from), &Self::object_path(prefix, to))
                .await
                .map_err(self.os_err("cannot rename", from)),
        }
    }

    /// Whether a file exists.
    pub(crate) async fn exists(&self, rel: &str) -> Result<bool> {
        match self {
            Root::Local(base) => Ok(Self::local_path(base, rel).exists()),
            Root::Object { store, prefix, .. } => match store.head(&Self::object_path(prefix, rel)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.os_err("cannot look up", rel)(e)),
            },
        }
    }

    /// Deletes a file (a missing one is not an error).
    pub(crate) async fn delete(&self, rel: &str) -> Result<()> {
        match self {
            Root::Local(base) => {
                let p = Self::local_path(base, rel);
                match std::fs::remove_file(&p) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::output_from(format!("cannot remove {}", p.display()), e)),
                }
            }
            Root::Object { store, prefix, .. } => match store.delete(&Self::object_path(prefix, rel)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.os_err("cannot delete", rel)(e)),
            },
        }
    }

    /// Every file under `dir` (relative paths, sorted), at any depth.
    pub(crate) async fn list(&self, dir: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        match self {
            Root::Local(base) => {
                // Every folder that exists must be read whole: a folder skipped for a permission or I/O error would
                // make recovery or compaction silently incomplete.
                let unreadable = |p: &Path, e: std::io::Error| Error::output_from(format!("cannot list {}", p.display()), e);
                let mut todo = vec![(Self::local_path(base, dir), dir.trim_end_matches('/').to_string())];
                while let Some((path, rel)) = todo.pop() {
                    let entries = match std::fs::read_dir(&path) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(unreadable(&path, e)),
                    };
                    for e in entries {
                        let e = e.map_err(|e| unreadable(&path, e))?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        let child = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                        match e.file_type().map_err(|err| unreadable(&e.path(), err))? {
                            t if t.is_dir() => todo.push((e.path(), child)),
                            _ => out.push(child),
                        }
                    }
                }
            }
            Root::Object { store, prefix, .. } => {
                let under = Self::object_path(prefix, dir);
                let skip = prefix.parts().count();
                let mut items = store.list(Some(&under));
                while let Some(meta) = items.try_next().await.map_err(self.os_err("cannot list", dir))? {
                    let rel: Vec<String> = meta.location.parts().skip(skip).map(|p| p.as_ref().to_string()).collect();
                    out.push(rel.join("/"));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_remote_roots_are_told_apart() {
        assert!(matches!(Root::parse("/lake/security", &[]).unwrap(), Root::Local(_)));
        assert!(matches!(Root::parse("relative/dir", &[]).unwrap(), Root::Local(_)));
        let opts = vec![
            ("azure_storage_account_name".to_string(), "acct".to_string()),
            ("azure_storage_account_key".to_string(), "c2VjcmV0".to_string()),
        ];
        let r = Root::parse("az://container/lake", &opts).unwrap();
        assert_eq!(r.display(), "az://container/lake");
        let Root::Object { prefix, .. } = &r else {
            panic!("an object root")
        };
        assert_eq!(prefix.as_ref(), "lake");
        assert_eq!(
            Root::object_path(prefix, "stream=a/tenant=b/x.parquet").as_ref(),
            "lake/stream=a/tenant=b/x.parquet"
        );
        // A bad setting is an error that names the root and hides secret values.
        let bad = vec![
            ("azure_storage_account_key".to_string(), "not base64 !".to_string()),
            ("nonsense_key".to_string(), "1".to_string()),
        ];
        let e = Root::parse("az://container/lake", &bad).unwrap_err().to_string();
        assert!(e.contains("az://container/lake") && !e.contains("not base64"), "{e}");
    }

    #[test]
    fn root_urls_never_show_credentials() {
        let sas = "https://acct.blob.core.windows.net/lake/x?sv=2024-01-01&sp=rw&sig=SECRETSIG%3D";
        let r = Root::parse(sas, &[]).unwrap();
        assert_eq!(r.display(), "https://acct.blob.core.windows.net/lake/x");
        assert!(!format!("{r:?}").contains("SECRETSIG"));
        for bad in [
            "https://user:PASSWORD1@acct.blob.core.windows.net/lake",
            "s3://bucket/x?X-Amz-Signature=SECRETSIG",
            "https://user:PASSWORD1@[bad",
        ] {
            let e = Root::parse(bad, &[]).unwrap_err().to_string();
            assert!(!e.contains("PASSWORD1") && !e.contains("SECRETSIG"), "{e}");
        }
        let e = Root::parse("az://c/x", &[("azure_storage_acount_name".into(), "a".into())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown storage option 'azure_storage_acount_name'") && e.contains("azure_storage_account_name"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn local_operations() {
        let dir = tempfile::tempdir().unwrap();
        let r = Root::local(dir.path());
        assert_eq!(r.get("a/b.json").await.unwrap(), None);
        r.put("a/b.json", b"one".to_vec()).await.unwrap();
        r.put("a/b.json", b"two".to_vec()).await.unwrap();
        assert_eq!(r.get("a/b.json").await.unwrap().unwrap().as_ref(), b"two");
        r.rename("a/b.json", "a/c/d.json").await.ok();
        std::fs::create_dir_all(dir.path().join("a/c")).unwrap();
        r.rename("a/b.json", "a/c/d.json").await.unwrap();
        assert_eq!(r.list("a").await.unwrap(), vec!["a/c/d.json".to_string()]);
        assert!(r.exists("a/c/d.json").await.unwrap());
        r.delete("a/c/d.json").await.unwrap();
        r.delete("a/c/d.json").await.unwrap();
        assert!(r.list("").await.unwrap().is_empty());
    }
}
