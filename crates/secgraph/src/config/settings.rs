//! msticpy-compatible settings: finding `msticpyconfig.yaml`, reading the `MicrosoftGraph` provider sections and the
//! `Azure` cloud section, and secret references in `Args` values.
//!
//! Architecture invariant: parsing does no I/O beyond reading the one file. Secret references are kept as
//! [`SecretRef`]s and resolved only when a connection needs them.

use crate::error::{Error, Result};
use crate::secret::Secret;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Largest settings file accepted; msticpy configs are a few KiB.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Why a particular file was used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Named by the caller (`--config`).
    Explicit,
    /// Named by the `MSTICPYCONFIG` environment variable.
    EnvVar,
    /// `msticpyconfig.yaml` in the current directory.
    CurrentDir,
    /// `~/.msticpy/msticpyconfig.yaml`.
    Home,
    /// Text supplied by the program (no file).
    Inline(String),
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Explicit => f.write_str("given with --config"),
            ConfigSource::EnvVar => f.write_str("named by MSTICPYCONFIG"),
            ConfigSource::CurrentDir => f.write_str("found in the current directory"),
            ConfigSource::Home => f.write_str("found in ~/.msticpy"),
            ConfigSource::Inline(what) => write!(f, "{what}"),
        }
    }
}

/// Where discovery looks, in order. Separate from the process environment so it can be tested.
#[derive(Debug, Clone, Default)]
pub struct SearchPaths {
    /// A path given explicitly (`--config`).
    pub explicit: Option<PathBuf>,
    /// `$MSTICPYCONFIG`.
    pub env_var: Option<PathBuf>,
    /// The current folder (`./msticpyconfig.yaml`).
    pub current_dir: Option<PathBuf>,
    /// The home folder (`~/.msticpy/msticpyconfig.yaml`).
    pub home: Option<PathBuf>,
}

impl SearchPaths {
    /// The search paths of this process: `MSTICPYCONFIG`, the current directory and the home directory.
    pub fn from_env(explicit: Option<PathBuf>) -> SearchPaths {
        SearchPaths {
            explicit,
            env_var: std::env::var_os("MSTICPYCONFIG").filter(|v| !v.is_empty()).map(PathBuf::from),
            current_dir: std::env::current_dir().ok(),
            home: std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from),
        }
    }
}

/// A loaded settings file. Its `Debug` shows where it came from, never its contents (which may hold secrets).
#[derive(Clone)]
pub struct Settings {
    path: Option<PathBuf>,
    source: ConfigSource,
    root: Value,
}

/// An `Args` value as written: a literal, an environment variable, or a Key Vault secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretRef {
    /// The value itself.
    Literal(Secret),
    /// `{EnvironmentVar: NAME}`: read from the environment when needed.
    EnvVar(String),
    /// The `KeyVault:` value as written (empty, `default`, `name` or `vault/name`).
    KeyVault(String),
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Literal(_) => f.write_str("Literal(<redacted>)"),
            SecretRef::EnvVar(n) => write!(f, "EnvVar({n})"),
            SecretRef::KeyVault(n) => write!(f, "KeyVault({n})"),
        }
    }
}

impl SecretRef {
    /// A human description of where the value comes from, never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Literal(_) => "literal value in the file".into(),
            SecretRef::EnvVar(n) => format!("environment variable {n}"),
            SecretRef::KeyVault(n) if n.is_empty() => "Key Vault (default name)".into(),
            SecretRef::KeyVault(n) => format!("Key Vault secret {n}"),
        }
    }

    /// Resolves a literal or environment variable here, with no I/O beyond the environment. A Key Vault reference is
    /// an error at this level: connecting resolves those first, through the vault (`keyvault/`), so a reference that
    /// reaches here was not meant to be fetched (e.g. a proxy password).
    pub fn resolve(&self, setting: &str) -> Result<Secret> {
        match self {
            SecretRef::Literal(s) => Ok(s.clone()),
            SecretRef::EnvVar(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                Ok(_) => Err(Error::EnvVar {
                    setting: setting.into(),
                    var: name.clone(),
                    state: "empty",
                }),
                Err(std::env::VarError::NotPresent) => Err(Error::EnvVar {
                    setting: setting.into(),
                    var: name.clone(),
                    state: "not set",
                }),
                Err(std::env::VarError::NotUnicode(_)) => Err(Error::EnvVar {
                    setting: setting.into(),
                    var: name.clone(),
                    state: "not valid UTF-8",
                }),
            },
            SecretRef::KeyVault(_) => Err(Error::Unsupported {
                what: format!("setting {setting} uses a KeyVault reference; reading secrets from Key Vault"),
            }),
        }
    }
}

/// One provider instance's `Args`, keys normalised to msticpy's names.
#[derive(Debug, Clone, Default)]
pub struct ProviderArgs {
    /// The section the values came from, e.g. `DataProviders.MicrosoftGraph-Tenant2`.
    pub section: String,
    /// (normalised name, setting path, value) in file order.
    pub values: Vec<(String, String, SecretRef)>,
}

impl ProviderArgs {
    /// The setting path and value of a normalised argument name (`tenant_id`, `client_secret`, …).
    pub fn get(&self, name: &str) -> Option<(&str, &SecretRef)> {
        self.values.iter().find(|(n, _, _)| n == name).map(|(_, p, v)| (p.as_str(), v))
    }
}

/// Longest `msticpy.http_timeout` accepted, in seconds.
pub const MAX_HTTP_TIMEOUT_SECS: f64 = 3600.0;

/// msticpy's Args name mapping (compared case-insensitively); other keys pass through lower-cased.
pub fn normalise_arg_name(key: &str) -> String {
    let k = key.to_ascii_lowercase();
    match k.as_str() {
        "tenantid" | "tenant_id" => "tenant_id",
        "clientid" | "client_id" => "client_id",
        "clientsecret" | "client_secret" => "client_secret",
        "username" | "user_name" => "username",
        "certificate" | "cert" => "certificate",
        "privatekey" | "private_key" => "private_key",
        "privatekeysecret" | "private_key_secret" => "private_key_secret",
        "apiroot" | "api_root" => "api_root",
        "apiversion" | "api_version" => "api_version",
        other => return other.to_string(),
    }
    .to_string()
}

/// The `KeyVault` section.
#[derive(Debug, Clone, Default)]
pub struct KeyVaultSettings {
    /// `KeyVault.VaultName`: the default vault.
    pub vault_name: Option<String>,
    /// `KeyVault.TenantId`: the vault's tenant.
    pub tenant_id: Option<String>,
    /// `AuthnType` (or `Azure.auth_methods`): env, cli, msi, clientsecret, devicecode, interactive.
    pub auth_methods: Vec<String>,
    /// `KeyVault.UseKeyring`: keep fetched secrets in the owner-only secret cache.
    pub use_keyring: bool,
}

/// The `Azure` section: which cloud, or a custom one described by its Resource Manager metadata.
#[derive(Debug, Clone, Default)]
pub struct AzureSettings {
    /// `global` (default), `usgov`, `cn`, `de`, `dod`.
    pub cloud: Option<String>,
    /// A Resource Manager URL whose `/metadata/endpoints` document describes a custom cloud.
    pub resource_manager_url: Option<String>,
    /// Extra CA certificates (PEM files) to trust, resolved against the settings file's folder.
    pub ca_certificates: Vec<PathBuf>,
    /// Vault URL template with `{vault}` (a private endpoint); default `https://{vault}.<cloud's Key Vault DNS>/`.
    pub keyvault_url: Option<String>,
    /// `keyvault_urls`: the URL of each named vault (lower-case name → URL), for vaults that a single template cannot
    /// describe (private endpoints on different hosts or ports). Looked up before `keyvault_url`.
    pub keyvault_urls: std::collections::BTreeMap<String, String>,
    /// `auth_methods`: how to sign in to Key Vault when the KeyVault section does not say.
    pub auth_methods: Vec<String>,
}

/// An HTTPS proxy (`msticpy.Proxies.https`).
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// The proxy URL, e.g. `http://proxy:8080`.
    pub url: String,
    /// The proxy user, if it needs one.
    pub username: Option<String>,
    /// The proxy password (redacted in `Debug`).
    pub password: Option<Secret>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("path", &self.path)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Finds the settings file by msticpy's rules: explicit path, `MSTICPYCONFIG`, `./msticpyconfig.yaml`,
    /// `~/.msticpy/msticpyconfig.yaml`. Returns `Ok(None)` when there is none at all; an explicit path or
    /// `MSTICPYCONFIG` that does not exist is an error.
    pub fn discover(paths: &SearchPaths) -> Result<Option<Settings>> {
        if let Some(p) = &paths.explicit {
            return Settings::load(p, ConfigSource::Explicit).map(Some);
        }
        if let Some(p) = &paths.env_var {
            return Settings::load(p, ConfigSource::EnvVar).map(Some);
        }
        if let Some(d) = &paths.current_dir {
            let p = d.join("msticpyconfig.yaml");
            if p.is_file() {
                return Settings::load(&p, ConfigSource::CurrentDir).map(Some);
            }
        }
        if let Some(h) = &paths.home {
            let p = h.join(".msticpy").join("msticpyconfig.yaml");
            if p.is_file() {
                return Settings::load(&p, ConfigSource::Home).map(Some);
            }
        }
        Ok(None)
    }

    /// The places [`Settings::discover`] looks, for error messages.
    pub fn searched(paths: &SearchPaths) -> Vec<PathBuf> {
        let mut v = Vec::new();
        v.extend(paths.explicit.clone());
        v.extend(paths.env_var.clone());
        v.extend(paths.current_dir.as_ref().map(|d| d.join("msticpyconfig.yaml")));
        v.extend(paths.home.as_ref().map(|h| h.join(".msticpy").join("msticpyconfig.yaml")));
        v
    }

    /// Reads and parses one file.
    pub fn load(path: &Path, source: ConfigSource) -> Result<Settings> {
        let bytes = crate::local_file::read(path, MAX_FILE_BYTES).map_err(|e| Error::ConfigRead {
            path: path.into(),
            source: e,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| Error::ConfigParse {
            origin: path.display().to_string(),
            message: format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        let mut s = Settings::parse(&text, &path.display().to_string(), source)?;
        s.path = Some(path.to_path_buf());
        Ok(s)
    }

    /// Parses settings from YAML text; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Settings> {
        Settings::parse(text, origin, ConfigSource::Inline(origin.to_string()))
    }

    fn parse(text: &str, origin: &str, source: ConfigSource) -> Result<Settings> {
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(Error::ConfigParse {
                origin: origin.into(),
                message: "settings text too large".into(),
            });
        }
        let root: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            parse_yaml(text).map_err(|message| Error::ConfigParse {
                origin: origin.into(),
                message,
            })?
        };
        let root = match root {
            Value::Null => Value::Object(Default::default()),
            Value::Object(_) => root,
            _ => {
                return Err(Error::ConfigParse {
                    origin: origin.into(),
                    message: "the top level must be a mapping of sections".into(),
                });
            }
        };
        Ok(Settings { path: None, source, root })
    }

    /// The file the settings came from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// How the file was found.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// What to call this file in messages.
    pub fn origin(&self) -> String {
        match (&self.path, &self.source) {
            (Some(p), _) => p.display().to_string(),
            (None, ConfigSource::Inline(o)) => o.clone(),
            (None, s) => s.to_string(),
        }
    }

    fn section<'a>(&'a self, path: &[&str]) -> Result<Option<&'a serde_json::Map<String, Value>>> {
        let mut cur = &self.root;
        for (i, key) in path.iter().enumerate() {
            match cur.get(*key) {
                None | Some(Value::Null) => return Ok(None),
                Some(v) => cur = v,
            }
            if !cur.is_object() {
                return Err(Error::Setting {
                    origin: self.origin(),
                    setting: path[..=i].join("."),
                    message: format!("expected a mapping, found {}", kind(cur)),
                });
            }
        }
        Ok(cur.as_object())
    }

    /// Names of the named `MicrosoftGraph-<name>` (and legacy `SecurityGraphApp-<name>`) instances.
    pub fn instances(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(Some(dp)) = self.section(&["DataProviders"]) {
            out.extend(dp.keys().filter_map(|k| k.strip_prefix("MicrosoftGraph-")).map(str::to_string));
        }
        if let Some(o) = self.root.as_object() {
            for k in o.keys().filter_map(|k| k.strip_prefix("SecurityGraphApp-")) {
                if !out.iter().any(|x| x == k) {
                    out.push(k.to_string());
                }
            }
        }
        out
    }

    /// Whether the default instance (`MicrosoftGraph` or `SecurityGraphApp`) is present.
    pub fn has_default_instance(&self) -> bool {
        matches!(self.section(&["DataProviders", "MicrosoftGraph"]), Ok(Some(_)))
            || matches!(self.section(&["SecurityGraphApp"]), Ok(Some(_)))
    }

    /// The tenants file an instance names (`Args.Tenants`, relative to the settings file's folder), if it names one.
    pub fn tenants_file(&self, instance: Option<&str>) -> Result<Option<PathBuf>> {
        let args = self.provider_args(instance)?;
        let Some((path, r)) = args.values.iter().rev().find(|(n, _, _)| n == "tenants").map(|(_, p, r)| (p, r)) else {
            return Ok(None);
        };
        let SecretRef::Literal(v) = r else {
            return Err(Error::Setting {
                origin: self.origin(),
                setting: path.clone(),
                message: "a tenants file is a path written in the settings, not a secret reference".into(),
            });
        };
        let file = v.expose().trim();
        if file.is_empty() {
            return Ok(None);
        }
        let base = self.path().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        Ok(Some(base.join(file)))
    }

    /// The `Args` of an instance: `None`/`Default` → `MicrosoftGraph`, else `MicrosoftGraph-<name>`; falls back to
    /// the legacy top-level `SecurityGraphApp[-<name>]`. With no instance named, no default section and named
    /// instances present, the error lists them.
    pub fn provider_args(&self, instance: Option<&str>) -> Result<ProviderArgs> {
        // The unnamed section answers to `Default` (any case) and to its own name, `MicrosoftGraph`.
        let instance =
            instance.filter(|i| !i.is_empty() && !i.eq_ignore_ascii_case("default") && !i.eq_ignore_ascii_case("microsoftgraph"));
        let key = match instance {
            None => "MicrosoftGraph".to_string(),
            Some(i) => format!("MicrosoftGraph-{i}"),
        };
        let legacy = match instance {
            None => "SecurityGraphApp".to_string(),
            Some(i) => format!("SecurityGraphApp-{i}"),
        };
        let (section_path, section) = if let Some(s) = self.section(&["DataProviders", &key])? {
            (format!("DataProviders.{key}"), s)
        } else if let Some(s) = self.section(&[&legacy])? {
            (legacy.clone(), s)
        } else {
            let names = self.instances();
            let message = match (instance, names.is_empty()) {
                (None, true) => format!("{} has no DataProviders.MicrosoftGraph section", self.origin()),
                (None, false) => format!(
                    "{} has no default DataProviders.MicrosoftGraph section; choose an instance with --instance: {}",
                    self.origin(),
                    names.join(", ")
                ),
                (Some(i), true) => format!(
                    "{} has no DataProviders.MicrosoftGraph-{i} section and no named instances",
                    self.origin()
                ),
                (Some(i), false) => {
                    let default = if self.has_default_instance() {
                        "Default (the MicrosoftGraph section), "
                    } else {
                        ""
                    };
                    format!("{} has no instance '{i}'; instances: {default}{}", self.origin(), names.join(", "))
                }
            };
            return Err(Error::Instance { message });
        };
        let args_path = format!("{section_path}.Args");
        let args = match section.get("Args") {
            None | Some(Value::Null) => {
                return Ok(ProviderArgs {
                    section: section_path,
                    values: vec![],
                });
            }
            Some(Value::Object(a)) => a,
            Some(other) => {
                return Err(Error::Setting {
                    origin: self.origin(),
                    setting: args_path,
                    message: format!("expected a mapping, found {}", kind(other)),
                });
            }
        };
        let mut values = Vec::new();
        for (k, v) in args {
            let setting = format!("{args_path}.{k}");
            let r = secret_ref(v).map_err(|message| Error::Setting {
                origin: self.origin(),
                setting: setting.clone(),
                message,
            })?;
            let name = normalise_arg_name(k);
            if let Some((_, first, _)) = values.iter().find(|(n, _, _)| *n == name) {
                return Err(Error::Setting {
                    origin: self.origin(),
                    setting,
                    message: format!("sets {name} again (already set by {first}); keep one of the two"),
                });
            }
            if let Some(r) = r {
                values.push((name, setting, r));
            }
        }
        Ok(ProviderArgs {
            section: section_path,
            values,
        })
    }

    /// The `Azure` section.
    pub fn azure(&self) -> Result<AzureSettings> {
        let Some(az) = self.section(&["Azure"])? else {
            return Ok(AzureSettings::default());
        };
        let string = |key: &str| -> Result<Option<String>> {
            match az.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => Err(Error::Setting {
                    origin: self.origin(),
                    setting: format!("Azure.{key}"),
                    message: format!("expected a string, found {}", kind(other)),
                }),
            }
        };
        let cloud = string("cloud")?.map(|c| c.to_ascii_lowercase());
        let resource_manager_url = string("resource_manager_url")?;
        let base = self.path.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf);
        let resolve = |p: &str| {
            let p = PathBuf::from(p);
            match (&base, p.is_relative()) {
                (Some(b), true) => b.join(p),
                _ => p,
            }
        };
        let ca_certificates = match az.get("ca_certificates") {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => vec![resolve(s)],
            Some(Value::Array(a)) => {
                let mut v = Vec::new();
                for (i, item) in a.iter().enumerate() {
                    match item {
                        Value::String(s) => v.push(resolve(s)),
                        other => {
                            return Err(Error::Setting {
                                origin: self.origin(),
                                setting: format!("Azure.ca_certificates[{i}]"),
                                message: format!("expected a file path, found {}", kind(other)),
                            });
                        }
                    }
                }
                v
            }
            Some(other) => {
                return Err(Error::Setting {
                    origin: self.origin(),
                    setting: "Azure.ca_certificates".into(),
                    message: format!("expected a path or a list of paths, found {}", kind(other)),
                });
            }
        };
        let keyvault_url = string("keyvault_url")?;
        if let Some(u) = &keyvault_url
            && (!u.contains("{vault}") || url::Url::parse(&u.replace("{vault}", "v")).is_err())
        {
            return Err(Error::Setting {
                origin: self.origin(),
                setting: "Azure.keyvault_url".into(),
                message: format!("'{u}' is not a URL template with {{vault}}"),
            });
        }
        let mut keyvault_urls = std::collections::BTreeMap::new();
        match az.get("keyvault_urls") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (name, v) in m {
                    let u = v
                        .as_str()
                        .map(str::trim)
                        .filter(|u| url::Url::parse(u).is_ok_and(|p| p.scheme() == "https"));
                    let Some(u) = u else {
                        return Err(Error::Setting {
                            origin: self.origin(),
                            setting: format!("Azure.keyvault_urls.{name}"),
                            message: "expected an https URL".into(),
                        });
                    };
                    keyvault_urls.insert(name.to_ascii_lowercase(), u.to_string());
                }
            }
            Some(other) => {
                return Err(Error::Setting {
                    origin: self.origin(),
                    setting: "Azure.keyvault_urls".into(),
                    message: format!("expected a mapping of vault names to URLs, found {}", kind(other)),
                });
            }
        }
        let auth_methods = string_list(az.get("auth_methods")).map_err(|m| Error::Setting {
            origin: self.origin(),
            setting: "Azure.auth_methods".into(),
            message: m,
        })?;
        Ok(AzureSettings {
            cloud,
            resource_manager_url,
            ca_certificates,
            keyvault_url,
            keyvault_urls,
            auth_methods,
        })
    }

    /// The `KeyVault` section, if present.
    pub fn keyvault(&self) -> Result<Option<KeyVaultSettings>> {
        let Some(kv) = self.section(&["KeyVault"])? else { return Ok(None) };
        let err = |k: &str, m: String| Error::Setting {
            origin: self.origin(),
            setting: format!("KeyVault.{k}"),
            message: m,
        };
        let text = |k: &str| -> Result<Option<String>> {
            match kv.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => Err(err(k, format!("expected text, found {}", kind(other)))),
            }
        };
        let use_keyring = match kv.get("UseKeyring") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "true" | "yes") => true,
            Some(Value::String(s)) if matches!(s.to_ascii_lowercase().as_str(), "false" | "no") => false,
            Some(other) => return Err(err("UseKeyring", format!("expected true or false, found {}", kind(other)))),
        };
        let auth_methods = string_list(kv.get("AuthnType")).map_err(|m| err("AuthnType", m))?;
        Ok(Some(KeyVaultSettings {
            vault_name: text("VaultName")?,
            tenant_id: text("TenantId")?,
            auth_methods,
            use_keyring,
        }))
    }

    /// `msticpy.Proxies.https` (or `Proxies.https` at the top level): URL, user name and password (a secret
    /// reference: literal or environment variable).
    pub fn proxy(&self) -> Result<Option<ProxySettings>> {
        let section = match self.section(&["msticpy", "Proxies", "https"])? {
            Some(s) => Some(("msticpy.Proxies.https", s)),
            None => self.section(&["Proxies", "https"])?.map(|s| ("Proxies.https", s)),
        };
        let Some((path, p)) = section else { return Ok(None) };
        let err = |k: &str, m: String| Error::Setting {
            origin: self.origin(),
            setting: format!("{path}.{k}"),
            message: m,
        };
        let url = match p.get("Url").or_else(|| p.get("url")) {
            Some(Value::String(u)) if !u.trim().is_empty() => u.trim().to_string(),
            _ => return Err(err("Url", "a proxy needs a Url, e.g. http://proxy.example:8080".into())),
        };
        let parsed = url::Url::parse(&url).map_err(|e| err("Url", format!("'{url}' is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https" | "socks5") || parsed.host_str().is_none() {
            return Err(err("Url", format!("'{url}' is not an http(s) proxy URL with a host")));
        }
        let username = match p.get("UserName") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) => Some(u.clone()),
            Some(other) => return Err(err("UserName", format!("expected text, found {}", kind(other)))),
        };
        let password = match p.get("Password").map(secret_ref) {
            None => None,
            Some(Err(m)) => return Err(err("Password", m)),
            Some(Ok(None)) => None,
            Some(Ok(Some(SecretRef::KeyVault(_)))) => {
                return Err(err(
                    "Password",
                    "a proxy password cannot come from Key Vault (the vault is reached through the proxy); use EnvironmentVar".into(),
                ));
            }
            Some(Ok(Some(r))) => Some(r.resolve(&format!("{path}.Password"))?),
        };
        Ok(Some(ProxySettings { url, username, password }))
    }

    /// Folders of extra query files: `QueryDefinitions.Custom` (top level or under `msticpy`), a path or a list,
    /// relative to the settings file's folder.
    pub fn query_folders(&self) -> Result<Vec<PathBuf>> {
        let base = self.path.as_ref().and_then(|p| p.parent()).map(Path::to_path_buf);
        let mut out = Vec::new();
        for prefix in [&[][..], &["msticpy"][..]] {
            let mut path: Vec<&str> = prefix.to_vec();
            path.push("QueryDefinitions");
            let Some(qd) = self.section(&path)? else { continue };
            let setting = format!("{}.Custom", path.join("."));
            let items: Vec<&Value> = match qd.get("Custom") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(a)) => a.iter().collect(),
                Some(v @ Value::String(_)) => vec![v],
                Some(other) => {
                    return Err(Error::Setting {
                        origin: self.origin(),
                        setting,
                        message: format!("expected a folder or a list of folders, found {}", kind(other)),
                    });
                }
            };
            for item in items {
                let Value::String(p) = item else {
                    return Err(Error::Setting {
                        origin: self.origin(),
                        setting,
                        message: format!("expected a folder path, found {}", kind(item)),
                    });
                };
                let p = PathBuf::from(p);
                out.push(match (&base, p.is_relative()) {
                    (Some(b), true) => b.join(p),
                    _ => p,
                });
            }
        }
        Ok(out)
    }

    /// `SecGraph.Retries`: how many times at most a failed request is sent again (0 to 20; see
    /// [`crate::retry::RetryOptions::with_retries`]). msticpy has no such key and ignores the `SecGraph` section.
    pub fn retries(&self) -> Result<Option<u32>> {
        let Some(section) = self.section(&["SecGraph"])? else {
            return Ok(None);
        };
        match section.get("Retries") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 20) => Ok(n.as_u64().map(|n| n as u32)),
            Some(other) => Err(Error::Setting {
                origin: self.origin(),
                setting: "SecGraph.Retries".into(),
                message: format!(
                    "expected a whole number from 0 to 20, found {}",
                    crate::error::clean(&other.to_string(), 40)
                ),
            }),
        }
    }

    /// `msticpy.http_timeout` in seconds (at most [`MAX_HTTP_TIMEOUT_SECS`]) (a number; the per-phase form's largest value).
    pub fn http_timeout(&self) -> Result<Option<f64>> {
        let Some(m) = self.section(&["msticpy"])? else { return Ok(None) };
        let bad = |v: &Value| Error::Setting {
            origin: self.origin(),
            setting: "msticpy.http_timeout".into(),
            message: format!(
                "expected a positive number of seconds or a mapping of phases to seconds, found {}",
                kind(v)
            ),
        };
        let in_range = |f: f64| {
            if f.is_finite() && f <= MAX_HTTP_TIMEOUT_SECS {
                Ok(f)
            } else {
                Err(Error::Setting {
                    origin: self.origin(),
                    setting: "msticpy.http_timeout".into(),
                    message: format!("{f} seconds is out of range (at most {MAX_HTTP_TIMEOUT_SECS}, one hour)"),
                })
            }
        };
        match m.get("http_timeout") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| *f > 0.0)
                .ok_or_else(|| bad(&Value::Number(n.clone())))
                .and_then(|f| in_range(f).map(Some)),
            Some(Value::Object(o)) => {
                let mut max: Option<f64> = None;
                for v in o.values() {
                    let f = in_range(v.as_f64().filter(|f| *f > 0.0).ok_or_else(|| bad(v))?)?;
                    max = Some(max.map_or(f, |m| m.max(f)));
                }
                Ok(max)
            }
            Some(Value::Array(a)) => {
                let mut max: Option<f64> = None;
                for v in a {
                    let f = in_range(v.as_f64().filter(|f| *f > 0.0).ok_or_else(|| bad(v))?)?;
                    max = Some(max.map_or(f, |m| m.max(f)));
                }
                Ok(max)
            }
            Some(other) => Err(bad(other)),
        }
    }
}

/// A list of names, or one name, or a comma-separated string.
fn string_list(v: Option<&Value>) -> std::result::Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(s
            .split([',', ' '])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("expected names, found {}", kind(x)))
            })
            .collect(),
        Some(other) => Err(format!("expected a name or a list of names, found {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads an `Args` value: a scalar, `{EnvironmentVar: NAME}` or `{KeyVault: ...}`. Null means "not set".
fn secret_ref(v: &Value) -> std::result::Result<Option<SecretRef>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::String(s) => SecretRef::Literal(Secret::new(s.clone())),
        Value::Number(n) => SecretRef::Literal(Secret::new(n.to_string())),
        Value::Bool(b) => SecretRef::Literal(Secret::new(if *b { "True" } else { "False" })),
        Value::Object(o) if o.len() == 1 => {
            let (k, inner) = o.iter().next().ok_or("empty mapping")?;
            match k.as_str() {
                "EnvironmentVar" => match inner {
                    Value::String(n) if !n.trim().is_empty() => SecretRef::EnvVar(n.trim().to_string()),
                    _ => return Err("EnvironmentVar needs the name of an environment variable".into()),
                },
                "KeyVault" => match inner {
                    Value::Null => SecretRef::KeyVault(String::new()),
                    Value::String(n) => SecretRef::KeyVault(n.trim().to_string()),
                    _ => return Err("KeyVault takes nothing, 'default', a secret name or 'vault/secret'".into()),
                },
                other => {
                    return Err(format!(
                        "unknown value form '{other}'; expected a plain value, EnvironmentVar or KeyVault"
                    ));
                }
            }
        }
        Value::Object(_) => return Err("expected a plain value or a mapping with one key, EnvironmentVar or KeyVault".into()),
        Value::Array(_) => return Err("expected a plain value, found a list".into()),
    }))
}

/// Parses YAML with limits that stop alias bombs and runaway nesting but accept ordinary merge keys, and errors
/// that never quote the text: a line and column and the parser's complaint, with any quoted scalar masked, since
/// the lines near a mistake may hold a secret.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    let mut options = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    // Many `<<: *base` merges of one anchor are normal; the total of replayed events below bounds an alias bomb.
    budget.enforce_alias_anchor_ratio = false;
    budget.max_depth = 64;
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 200_000;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error_text(&e.to_string()))
}

/// The first line of a YAML error, with quoted text masked and parser-option hints removed.
pub(crate) fn yaml_error_text(full: &str) -> String {
    let first = full.lines().next().unwrap_or("invalid YAML");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = first.split(", set DuplicateKeyPolicy").next().unwrap_or(first);
    let mut out = String::with_capacity(first.len());
    let mut in_quote: Option<char> = None;
    for c in first.chars() {
        match (in_quote, c) {
            (None, '"' | '`') => {
                in_quote = Some(c);
                out.push(c);
                out.push('…');
            }
            (Some(q), c) if c == q => {
                in_quote = None;
                out.push(c);
            }
            (Some(_), _) => {}
            (None, c) => out.push(c),
        }
    }
    crate::error::clean(&out, 300)
}
