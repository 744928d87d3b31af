//! The emulator's vaults: their tenants, access policies and secret versions (the demo set, or the caller's). Owned
//! by the shared state; served by the `keyvault` endpoints.

use std::collections::HashMap;

/// One version of a secret.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    /// The version id (32 hex digits).
    pub version: String,
    /// The value.
    pub value: String,
    /// Whether it may be read (a disabled version answers 403 `Forbidden`/`SecretDisabled`).
    pub enabled: bool,
    /// When it was set, in Unix seconds.
    pub created: i64,
    /// Its content type, if set.
    pub content_type: Option<String>,
}

/// A vault: its tenant, who may do what, and its secrets (versions oldest first).
#[derive(Debug, Clone)]
pub struct Vault {
    /// The vault's name (its host label).
    pub name: String,
    /// The tenant whose tokens it accepts.
    pub tenant_id: String,
    /// Object id (of an app's service principal or a user) → permissions (`get`, `list`).
    pub access: HashMap<String, Vec<String>>,
    /// Secrets by name, versions oldest first.
    pub secrets: HashMap<String, Vec<SecretVersion>>,
}

fn version_id(name: &str, n: usize) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{name}/{n}").as_bytes());
    h[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Vault {
    /// An empty vault of `tenant_id`.
    pub fn new(name: &str, tenant_id: &str) -> Vault {
        Vault {
            name: name.into(),
            tenant_id: tenant_id.into(),
            access: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// Adds a new current version of `name`.
    pub fn put(&mut self, name: &str, value: &str, enabled: bool) -> &mut Vault {
        let versions = self.secrets.entry(name.to_string()).or_default();
        let n = versions.len();
        versions.push(SecretVersion {
            version: version_id(name, n),
            value: value.into(),
            enabled,
            created: 1_700_000_000 + n as i64 * 86_400,
            content_type: None,
        });
        self
    }

    /// Grants `perms` (`get`, `list`) to an object id.
    pub fn allow(&mut self, object_id: &str, perms: &[&str]) -> &mut Vault {
        self.access
            .insert(object_id.to_string(), perms.iter().map(|p| p.to_string()).collect());
        self
    }
}

/// The demo vaults: `demo-vault` (the demo app and analyst may read), `locked-vault` (nobody may), and
/// `fabrikam-vault` in the second tenant.
pub fn demo_vaults(dir: &crate::directory::Directory) -> Vec<Vault> {
    use crate::directory::*;
    let oid = |t: &str, who: &str| -> String {
        dir.tenant(t)
            .and_then(|t| {
                t.app(who)
                    .map(|a| a.object_id.clone())
                    .or_else(|| t.user(who).map(|u| u.object_id.clone()))
            })
            .unwrap_or_default()
    };
    let mut demo = Vault::new("demo-vault", DEMO_TENANT_ID);
    demo.allow(&oid(DEMO_TENANT_ID, DEMO_CLIENT_ID), &["get", "list"])
        .allow(&oid(DEMO_TENANT_ID, DEMO_ANALYST), &["get", "list"]);
    demo.put("DataProviders-MicrosoftGraph-Args-ClientSecret", DEMO_CLIENT_SECRET, true)
        .put("DataProviders-MicrosoftGraph-KeyVault-Args-ClientSecret", DEMO_CLIENT_SECRET, true)
        .put("graph-client-secret", DEMO_CLIENT_SECRET, true)
        .put("rotating-secret", "first-value", true)
        .put("rotating-secret", "second-value", true)
        .put("disabled-secret", "you-should-not-see-this", false)
        .put("proxy-password", "demo-proxy-password", true);
    let mut locked = Vault::new("locked-vault", DEMO_TENANT_ID);
    locked.put("graph-client-secret", DEMO_CLIENT_SECRET, true);
    let mut fab = Vault::new("fabrikam-vault", SECOND_TENANT_ID);
    fab.allow(&oid(SECOND_TENANT_ID, SECOND_CLIENT_ID), &["get", "list"])
        .put("graph-client-secret", "fabrikam-demo-secret", true);
    vec![demo, locked, fab]
}
