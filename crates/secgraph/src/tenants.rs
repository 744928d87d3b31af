//! Tenants files: the customer tenants an MSSP reads with one multi-tenant app.
//!
//! A tenants file is CSV (a header row naming the columns) or YAML (a list, or `tenants:` holding one). Columns or
//! keys: `tenant` (id or domain; also `tenant_id`/`TenantId`; required), `name` (default: the tenant), `tags`
//! (`;`-separated in CSV, a list in YAML), and per-tenant overrides of the instance's settings: `cloud`,
//! `client_id`, `certificate`, `private_key` (paths relative to the file). The instance's credential — secret,
//! certificate or Key Vault reference — signs in to each tenant.
//!
//! ```text
//! tenant,name,tags
//! 2f4a…,Contoso Ltd,prod;eu
//! fabrikam.onmicrosoft.com,Fabrikam,test
//! ```
//!
//! An instance names its file with `DataProviders.MicrosoftGraph[-<name>].Args.Tenants: path` (relative to the
//! settings file); the CLI's `--tenants FILE` and Python's `tenants=` name one for the run.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Largest tenants file read.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One tenant of a tenants file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantEntry {
    /// The tenant's id (GUID) or domain, as written.
    pub tenant: String,
    /// Its display name (the tenant when the file gives none).
    pub name: String,
    /// Its tags, for `--tenant-tag`.
    pub tags: Vec<String>,
    /// The cloud it lives in, when not the instance's (`global`, `usgov`, `dod`, `china`).
    pub cloud: Option<String>,
    /// The app to sign in as, when not the instance's.
    pub client_id: Option<String>,
    /// A client certificate file, when not the instance's.
    pub certificate: Option<PathBuf>,
    /// The certificate's private key file.
    pub private_key: Option<PathBuf>,
}

impl TenantEntry {
    /// An entry for `tenant` with nothing else set.
    pub fn new(tenant: &str) -> TenantEntry {
        TenantEntry {
            tenant: tenant.to_string(),
            name: tenant.to_string(),
            tags: vec![],
            cloud: None,
            client_id: None,
            certificate: None,
            private_key: None,
        }
    }

    /// Whether this entry is the tenant `id` (id or domain, any case).
    pub fn is(&self, id: &str) -> bool {
        self.tenant.eq_ignore_ascii_case(id.trim())
    }
}

/// A tenants file, read and checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TenantsFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its tenants, in file order.
    pub entries: Vec<TenantEntry>,
}

/// Which tenants of a file a run reads: all, or those with any of `tags`, or those named in `tenants` (both:
/// named and tagged).
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// Keep tenants carrying one of these tags (`--tenant-tag`).
    pub tags: Vec<String>,
    /// Keep these tenants, by id or domain (`--tenant`).
    pub tenants: Vec<String>,
}

impl TenantFilter {
    /// Whether `e` passes.
    pub fn admits(&self, e: &TenantEntry) -> bool {
        (self.tags.is_empty() || e.tags.iter().any(|t| self.tags.iter().any(|w| w.eq_ignore_ascii_case(t))))
            && (self.tenants.is_empty() || self.tenants.iter().any(|w| e.is(w)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlEntry {
    #[serde(alias = "tenant_id", alias = "TenantId", alias = "id")]
    tenant: String,
    #[serde(default, alias = "Name", alias = "display_name")]
    name: Option<String>,
    #[serde(default, alias = "Tags")]
    tags: Vec<String>,
    #[serde(default)]
    cloud: Option<String>,
    #[serde(default, alias = "ClientId")]
    client_id: Option<String>,
    #[serde(default, alias = "Certificate")]
    certificate: Option<String>,
    #[serde(default, alias = "PrivateKey")]
    private_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlWrapped {
    tenants: Vec<YamlEntry>,
}

impl TenantsFile {
    /// Reads `path` (CSV unless it ends in `.yaml`/`.yml` or starts like YAML).
    pub fn load(path: &Path) -> Result<TenantsFile> {
        let bytes = crate::local_file::read(path, MAX_FILE_BYTES).map_err(|e| Error::ConfigRead {
            path: path.to_path_buf(),
            source: e,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let base = path.parent().unwrap_or(Path::new("."));
        let yaml = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml"));
        let entries = Self::parse(&text, yaml, base).map_err(|message| Error::Setting {
            origin: path.display().to_string(),
            setting: "Tenants".into(),
            message,
        })?;
        Ok(TenantsFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Parses a tenants file's text; paths in it are relative to `base`. Errors say which line or entry.
    pub fn parse(text: &str, yaml: bool, base: &Path) -> std::result::Result<Vec<TenantEntry>, String> {
        let looks_yaml = text.trim_start().starts_with('-') || text.trim_start().starts_with("tenants:");
        let entries = if yaml || looks_yaml {
            parse_yaml(text, base)?
        } else {
            parse_csv(text, base)?
        };
        if entries.is_empty() {
            return Err("the file lists no tenants".into());
        }
        let mut seen = std::collections::HashSet::new();
        for e in &entries {
            if !seen.insert(e.tenant.to_ascii_lowercase()) {
                return Err(format!("tenant '{}' is listed twice", crate::error::clean(&e.tenant, 80)));
            }
        }
        Ok(entries)
    }

    /// The entries `filter` admits, in file order.
    pub fn select(&self, filter: &TenantFilter) -> Vec<TenantEntry> {
        self.entries.iter().filter(|e| filter.admits(e)).cloned().collect()
    }
}

fn check_tenant(t: &str, at: &str) -> std::result::Result<String, String> {
    let t = t.trim();
    let ok = !t.is_empty() && t.len() <= 255 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(t.to_string())
    } else {
        Err(format!("{at}: '{}' is not a tenant id or domain", crate::error::clean(t, 80)))
    }
}

fn path_in(base: &Path, p: Option<String>) -> Option<PathBuf> {
    p.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).map(|s| base.join(s))
}

fn parse_yaml(text: &str, base: &Path) -> std::result::Result<Vec<TenantEntry>, String> {
    // serde-saphyr's messages name the key and place, never the values around them.
    let err = |e: serde_saphyr::Error| format!("not a tenants list: {}", crate::error::clean(&e.to_string(), 300));
    let wrapped = text.lines().any(|l| l.starts_with("tenants:"));
    let list: Vec<YamlEntry> = if wrapped {
        serde_saphyr::from_str::<YamlWrapped>(text).map_err(err)?.tenants
    } else {
        serde_saphyr::from_str(text).map_err(err)?
    };
    list.into_iter()
        .enumerate()
        .map(|(i, y)| {
            let tenant = check_tenant(&y.tenant, &format!("entry {}", i + 1))?;
            Ok(TenantEntry {
                name: y
                    .name
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| tenant.clone()),
                tenant,
                tags: y.tags.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
                cloud: y.cloud.filter(|c| !c.trim().is_empty()),
                client_id: y.client_id.filter(|c| !c.trim().is_empty()),
                certificate: path_in(base, y.certificate),
                private_key: path_in(base, y.private_key),
            })
        })
        .collect()
}

fn parse_csv(text: &str, base: &Path) -> std::result::Result<Vec<TenantEntry>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase().replace([' ', '-'], "_"))
        .collect();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let tenant_col = col(&["tenant", "tenant_id", "tenantid", "id"])
        .ok_or("the header row has no 'tenant' column (tenant,name,tags,cloud,client_id,certificate,private_key)")?;
    let known = [
        "tenant",
        "tenant_id",
        "tenantid",
        "id",
        "name",
        "display_name",
        "tags",
        "cloud",
        "client_id",
        "clientid",
        "certificate",
        "private_key",
    ];
    if let Some(unknown) = headers.iter().find(|h| !known.contains(&h.as_str())) {
        return Err(format!(
            "unknown column '{}' (tenant, name, tags, cloud, client_id, certificate, private_key)",
            crate::error::clean(unknown, 40)
        ));
    }
    let (name, tags, cloud) = (col(&["name", "display_name"]), col(&["tags"]), col(&["cloud"]));
    let (client, cert, key) = (col(&["client_id", "clientid"]), col(&["certificate"]), col(&["private_key"]));
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::to_string).filter(|s| !s.is_empty());
        let tenant = check_tenant(rec.get(tenant_col).unwrap_or_default(), &format!("line {line}"))?;
        out.push(TenantEntry {
            name: get(name).unwrap_or_else(|| tenant.clone()),
            tags: get(tags)
                .map(|t| t.split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
                .unwrap_or_default(),
            cloud: get(cloud),
            client_id: get(client),
            certificate: path_in(base, get(cert)),
            private_key: path_in(base, get(key)),
            tenant,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_yaml_give_the_same_entries() {
        let base = Path::new("/cfg");
        let csv = "tenant,name,tags,certificate\n# a comment\nAAA-1,Contoso,prod; eu,certs/c.pem\nfab.onmicrosoft.com,,test,\n";
        let yaml = "tenants:\n  - tenant: AAA-1\n    name: Contoso\n    tags: [prod, eu]\n    certificate: certs/c.pem\n  - tenant: fab.onmicrosoft.com\n    tags: [test]\n";
        let a = TenantsFile::parse(csv, false, base).unwrap();
        let b = TenantsFile::parse(yaml, true, base).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].tags, vec!["prod", "eu"]);
        assert_eq!(a[0].certificate.as_deref(), Some(Path::new("/cfg/certs/c.pem")));
        assert_eq!(
            a[1].name, "fab.onmicrosoft.com",
            "the tenant names itself when the file gives no name"
        );
    }

    #[test]
    fn mistakes_are_named_by_line() {
        let base = Path::new(".");
        let e = TenantsFile::parse("name\nx\n", false, base).unwrap_err();
        assert!(e.contains("no 'tenant' column"), "{e}");
        let e = TenantsFile::parse("tenant,colour\na,red\n", false, base).unwrap_err();
        assert!(e.contains("unknown column 'colour'"), "{e}");
        let e = TenantsFile::parse("tenant\nok-1\nbad tenant\n", false, base).unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        let e = TenantsFile::parse("tenant\nA\na\n", false, base).unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        let e = TenantsFile::parse("tenant,name\n", false, base).unwrap_err();
        assert!(e.contains("no tenants"), "{e}");
        let e = TenantsFile::parse("- tenant: a\n  colour: red\n", true, base).unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn filters_by_tag_and_by_id() {
        let entries = TenantsFile::parse("tenant,tags\na,prod;eu\nb,test\nc,prod;us\n", false, Path::new(".")).unwrap();
        let f = TenantsFile {
            path: PathBuf::new(),
            entries,
        };
        let names = |filter: TenantFilter| f.select(&filter).into_iter().map(|e| e.tenant).collect::<Vec<_>>();
        assert_eq!(names(TenantFilter::default()), ["a", "b", "c"]);
        assert_eq!(
            names(TenantFilter {
                tags: vec!["PROD".into()],
                ..Default::default()
            }),
            ["a", "c"]
        );
        assert_eq!(
            names(TenantFilter {
                tags: vec!["prod".into()],
                tenants: vec!["C".into()]
            }),
            ["c"]
        );
    }
}
