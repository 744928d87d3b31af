//! # secgraph-emulator
//!
//! A local, offline emulator of the services a Microsoft Graph Security client talks to: Entra ID's token and
//! discovery endpoints, the Graph security endpoints (alerts_v2, incidents, legacy alerts) with real OData `$filter`
//! evaluation and `@odata.nextLink` paging, and an Azure Resource Manager cloud-metadata document that lets any client
//! reach it through ordinary custom-cloud settings. It serves HTTPS on loopback with a CA generated at start.
//!
//! It exists so that users can test notebooks and pipelines without a tenant, and so that every secgraph test runs
//! against something that behaves like the real services, including their errors.
//!
//! ```no_run
//! # async fn demo() -> Result<(), secgraph_emulator::StartError> {
//! let emu = secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig::default()).await?;
//! println!("listening on {}; trust {}", emu.base_url(), emu.ca_path().display());
//! # Ok(()) }
//! ```
//!
//! Invariant: this crate never depends on the `secgraph` client library, and the library never depends on it.

// Request helpers return ready-made error replies (`Response`); the size only matters on error paths.
#![allow(clippy::result_large_err)]
#![deny(missing_docs)]

pub mod data;
mod detections;
pub mod directory;
mod entra;
pub mod faults;
mod grants;
mod graph;
pub mod hunting;
pub mod keyvault;
pub mod odata;
mod rate;
mod reply;
mod state;
mod tls;
mod tokens;
mod updates;
mod vaults;

use axum::{
    Router,
    extract::{Query, Request, State},
    http::{HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;
use state::{AppState, RequestId};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use data::Dataset;
pub use directory::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};

/// How to start an emulator. `Default` gives an ephemeral port on 127.0.0.1, 500 alerts, seed 42.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free one. Only loopback addresses are accepted.
    pub bind: SocketAddr,
    /// Number of alerts to seed (incidents and legacy alerts follow from them).
    pub alerts: usize,
    /// Seed for the dataset.
    pub seed: u64,
    /// Fixed access-token lifetime; `None` gives Entra's randomised 60–90 minutes.
    pub token_lifetime: Option<Duration>,
    /// Page size used when a request has no `$top` (capped by each endpoint's limit); `None` uses each endpoint's own.
    pub page_size: Option<usize>,
    /// Directory where the CA certificate (`ca.pem`) and the demo app's client certificate and key are written;
    /// `None` makes a temporary one.
    pub state_dir: Option<PathBuf>,
    /// Tenants, users and apps; `None` gives the demo directory.
    pub directory: Option<directory::Directory>,
    /// Key Vaults and their secrets; `None` gives the demo vaults.
    pub vaults: Option<Vec<keyvault::Vault>>,
    /// Faults to inject (see [`faults`]); `None` serves every request honestly.
    pub faults: Option<faults::FaultSpec>,
    /// Sign every device-code and browser sign-in in as this user (UPN) without a page visit.
    pub auto_approve: Option<String>,
    /// Polling interval the device-code endpoint asks for.
    pub device_code_interval: Duration,
    /// How long a device code stays valid.
    pub device_code_lifetime: Duration,
    /// How long an authorization code stays valid.
    pub auth_code_lifetime: Duration,
    /// Changes applied while serving (new alerts and updates per second); `POST /_emulator/churn` applies them on
    /// demand either way.
    pub churn: Option<data::ChurnSpec>,
    /// The instant the seeded data ends at (its 30 days lead up to it); default: the time the emulator starts.
    /// A fixed instant makes the whole dataset reproducible (golden files, documentation examples).
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Advanced hunting's per-tenant limits (calls a minute, CPU per 15 minutes, result size); default the
    /// service's. Test suites that send many hunting queries raise `calls_per_minute`.
    pub hunting_quota: hunting::quota::HuntingQuota,
    /// When a page carries `@odata.nextLink`: always (default), never (full pages with no next link, as alerts_v2
    /// has been seen to answer), or only when the request has a `$filter`.
    pub next_links: NextLinks,
    /// The largest `$skip` accepted (a larger one is refused with HTTP 400 and the service's message); `None`: only
    /// the legacy API's 500.
    pub max_skip: Option<usize>,
    /// The largest `$top` accepted, below each endpoint's own (2,000 alerts, 50 incidents, 1,000 legacy alerts).
    pub max_top: Option<usize>,
    /// A new or updated alert or incident becomes visible to reads only this long after its `lastUpdateDateTime`
    /// (by the emulator's clock), as items reach Graph minutes after they change.
    pub ingestion_lag: Option<Duration>,
    /// Customer tenants of an MSSP set-up (see [`directory::customers`]): each with its own data, most consented to
    /// the MSSP's multi-tenant app ([`directory::MSSP_CLIENT_ID`]); 0 (default) adds none.
    pub tenants: usize,
    /// Alerts seeded in each tenant other than the first; `None`: as many as [`EmulatorConfig::alerts`].
    pub alerts_per_tenant: Option<usize>,
    /// Requests a minute each app may send to each tenant's alerts and incidents (Graph's documented 150; more
    /// are answered 429 with `Retry-After`); `None` does not limit.
    pub requests_per_minute: Option<u32>,
}

/// The tenants file of an MSSP set-up, as CSV: `tenant,name,tags` (tags separated by `;`).
pub fn tenants_csv(customers: &[directory::Customer]) -> String {
    let mut s = String::from("tenant,name,tags\n");
    for c in customers {
        s.push_str(&format!("{},{},{}\n", c.tenant_id, c.name, c.tags.join(";")));
    }
    s
}

/// When a collection page carries `@odata.nextLink` (see [`EmulatorConfig::next_links`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NextLinks {
    /// Whenever there is more, as Graph documents.
    #[default]
    Always,
    /// Never: a full page and no next link, as elastic/integrations#20234 met on alerts_v2.
    Never,
    /// Only for requests with a `$filter`.
    WhenFiltered,
}

impl std::str::FromStr for NextLinks {
    type Err = String;
    fn from_str(s: &str) -> Result<NextLinks, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(NextLinks::Always),
            "never" => Ok(NextLinks::Never),
            "when-filtered" | "when_filtered" => Ok(NextLinks::WhenFiltered),
            other => Err(format!("'{other}': expected always, never or when-filtered")),
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            alerts: 500,
            seed: 42,
            token_lifetime: None,
            page_size: None,
            state_dir: None,
            directory: None,
            vaults: None,
            faults: None,
            auto_approve: None,
            churn: None,
            as_of: None,
            hunting_quota: Default::default(),
            next_links: NextLinks::Always,
            max_skip: None,
            max_top: None,
            ingestion_lag: None,
            tenants: 0,
            alerts_per_tenant: None,
            requests_per_minute: None,
            device_code_interval: Duration::from_secs(5),
            device_code_lifetime: Duration::from_secs(900),
            auth_code_lifetime: Duration::from_secs(600),
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address is not a loopback one.
    #[error("refusing to listen on {0}: the emulator serves loopback addresses only (127.0.0.0/8 or ::1)")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The CA certificate or the demo app's key could not be written.
    #[error("cannot write emulator state to {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Keys or certificates could not be generated.
    #[error("cannot generate emulator keys: {0}")]
    Crypto(String),
}

/// A running emulator. Dropping it (or calling [`Emulator::shutdown`]) stops the server.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    base_url: String,
    ca_path: PathBuf,
    client_cert_path: PathBuf,
    client_key_path: PathBuf,
    state: Arc<AppState>,
    handle: axum_server::Handle<SocketAddr>,
    customers: Vec<directory::Customer>,
    tenants_path: Option<PathBuf>,
    _tempdir: Option<TempDir>,
}

/// A temporary state directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Emulator {
    /// Generates keys and data, binds the listener and starts serving on the current Tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, StartError> {
        if !config.bind.ip().is_loopback() {
            return Err(StartError::NotLoopback(config.bind));
        }
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let pki = tls::Pki::generate(&[]).map_err(|e| StartError::Crypto(e.to_string()))?;
        let issuer = tokens::TokenIssuer::generate().map_err(StartError::Crypto)?;

        let listener = std::net::TcpListener::bind(config.bind).map_err(|source| StartError::Bind { addr: config.bind, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Bind { addr: config.bind, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr: config.bind, source })?;
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        let base_url = format!("https://{host}:{}", addr.port());

        let (dir, tempdir) = match &config.state_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "secgraph-emulator-{}-{}",
                    std::process::id(),
                    uuid::Uuid::new_v4().simple()
                ));
                (d.clone(), Some(TempDir(d)))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|source| StartError::State { path: dir.clone(), source })?;
        let ca_path = dir.join("ca.pem");
        let write = |path: &Path, text: &str| {
            std::fs::write(path, text).map_err(|source| StartError::State {
                path: path.to_path_buf(),
                source,
            })
        };
        write(&ca_path, &pki.ca_pem)?;
        let customers = directory::customers(config.tenants, config.seed);
        let tenants_path = if config.tenants > 0 {
            let p = dir.join("tenants.csv");
            write(&p, &tenants_csv(&customers))?;
            Some(p)
        } else {
            None
        };

        // The demo app also signs in with a certificate: generate one, register it, and hand its files to clients.
        let mut directory = config.directory.clone().unwrap_or_default();
        directory.add_customers(&customers);
        let (client_cert_pem, client_key_pem) = tls::client_certificate().map_err(|e| StartError::Crypto(e.to_string()))?;
        let client_cert_path = dir.join("client-cert.pem");
        let client_key_path = dir.join("client-key.pem");
        write(&client_cert_path, &client_cert_pem)?;
        write(&client_key_path, &client_key_pem)?;
        restrict(&client_key_path);
        let registered = directory::AppCertificate::from_pem(&client_cert_pem).map_err(StartError::Crypto)?;
        for t in &mut directory.tenants {
            for a in &mut t.apps {
                if a.client_id == DEMO_CLIENT_ID {
                    a.certificates.push(registered.clone());
                }
            }
        }

        let home_tenant = directory.tenants.first().map(|t| t.id.clone()).unwrap_or_default();
        let dataset = Dataset::generate_for(
            &home_tenant,
            config.seed,
            config.alerts,
            config.as_of.unwrap_or_else(chrono::Utc::now),
        );
        let vaults = config.vaults.clone().unwrap_or_else(|| keyvault::demo_vaults(&directory));
        // Each vault at the root of its own origin (own port, same CA), as `https://{vault}.vault.azure.net/` is.
        let mut vault_listeners = Vec::new();
        let mut vault_origins = std::collections::HashMap::new();
        for v in &vaults {
            let l = std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).map_err(|source| StartError::Bind { addr, source })?;
            l.set_nonblocking(true).map_err(|source| StartError::Bind { addr, source })?;
            let a = l.local_addr().map_err(|source| StartError::Bind { addr, source })?;
            vault_origins.insert(v.name.to_ascii_lowercase(), format!("https://{host}:{}", a.port()));
            vault_listeners.push((v.name.clone(), l, a));
        }
        let state = Arc::new(AppState {
            clock: Default::default(),
            base_url: base_url.clone(),
            config: config.clone(),
            directory,
            issuer,
            home: state::TenantData::new(dataset),
            others: Default::default(),
            rate: Default::default(),
            auth: Default::default(),
            vaults: RwLock::new(vaults),
            hunting_usage: Default::default(),
            vault_origins,
            churn_rng: std::sync::Mutex::new(data::Rng::new(config.seed ^ 0x00c4_a21e)),
            seen: Default::default(),
        });
        if let Some(spec) = config.churn {
            tokio::spawn(churn_loop(Arc::downgrade(&state), spec));
        }

        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(pki.server_cert_pem.into_bytes(), pki.server_key_pem.into_bytes())
            .await
            .map_err(|e| StartError::Crypto(format!("TLS configuration: {e}")))?;
        let handle = axum_server::Handle::new();
        // TCP_NODELAY, as Microsoft's front doors do: without it a small reply waits out the client's delayed ACK
        // (40 ms on Linux) behind Nagle's algorithm, which made every request of a cold CLI run 40 ms slower.
        let acceptor = || axum_server::tls_rustls::RustlsAcceptor::new(tls.clone()).acceptor(axum_server::accept::NoDelayAcceptor::new());
        let server = axum_server::from_tcp(listener)
            .map_err(|source| StartError::Bind { addr, source })?
            .acceptor(acceptor())
            .handle(handle.clone());
        let faults = Arc::new(faults::Faults::new(config.faults.clone().unwrap_or_default(), config.seed));
        for (name, l, a) in vault_listeners {
            let server = axum_server::from_tcp(l)
                .map_err(|source| StartError::Bind { addr: a, source })?
                .acceptor(acceptor())
                .handle(handle.clone());
            let app = vault_router(state.clone(), faults.clone(), name);
            tokio::spawn(async move {
                if let Err(e) = server.serve(app.into_make_service()).await {
                    tracing::error!(error = %e, "vault server stopped");
                }
            });
        }
        let app = router(state.clone(), faults);
        tokio::spawn(async move {
            if let Err(e) = server.serve(app.into_make_service()).await {
                tracing::error!(error = %e, "emulator server stopped");
            }
        });
        tracing::info!(%base_url, "emulator listening");
        Ok(Emulator {
            addr,
            base_url,
            ca_path,
            client_cert_path,
            client_key_path,
            state,
            handle,
            customers,
            tenants_path,
            _tempdir: tempdir,
        })
    }

    /// `https://127.0.0.1:PORT` — the root of every emulated service.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Path of the PEM file holding the emulator's CA certificate.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The demo app's client certificate (PEM), registered on it for certificate sign-in.
    pub fn client_certificate_path(&self) -> &Path {
        &self.client_cert_path
    }

    /// The private key (PKCS#8 PEM, owner-only file) of the demo app's client certificate.
    pub fn client_key_path(&self) -> &Path {
        &self.client_key_path
    }

    /// Approves (or declines) a pending device-code sign-in as a seeded user, as the verification page would.
    pub fn approve_device_code(&self, user_code: &str, user: &str, approve: bool) -> Result<String, String> {
        entra::decide_device(&self.state, user_code, user, approve)
    }

    /// The URL of a seeded vault, as a Key Vault client takes it: its own origin, `https://127.0.0.1:PORT` (no
    /// path, as a real vault's). The path form `{base_url}/kv/{name}` is served too, like a private endpoint.
    pub fn vault_url(&self, name: &str) -> String {
        match self.state.vault_origins.get(&name.to_ascii_lowercase()) {
            Some(o) => o.clone(),
            None => format!("{}/kv/{name}", self.base_url),
        }
    }

    /// Moves the emulator's clock forward (see `POST /_emulator/clock`); returns its new time.
    pub fn advance_clock(&self, by: Duration) -> chrono::DateTime<chrono::Utc> {
        self.state.clock.advance(by)
    }

    /// How many of the latest requests (the last [`QUERIES_KEPT`]) had a path and decoded query holding `text`
    /// (e.g. `severity in ('high')`): what a client asked the service to filter.
    pub fn requests_with(&self, text: &str) -> usize {
        self.state
            .seen
            .queries
            .lock()
            .map(|q| q.iter().filter(|u| u.contains(text)).count())
            .unwrap_or(0)
    }

    /// How many requests arrived at paths ending with `suffix` (e.g. `/oauth2/v2.0/devicecode`), for tests that
    /// must show a client did not call an endpoint.
    pub fn requests_to(&self, suffix: &str) -> usize {
        self.state
            .seen
            .paths
            .lock()
            .map(|p| p.iter().filter(|(k, _)| k.ends_with(suffix)).map(|(_, n)| *n).sum())
            .unwrap_or(0)
    }

    /// The CA certificate (PEM) that clients must trust.
    pub fn ca_pem(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.ca_path)
    }

    /// A copy of the seeded data, for tests that compare results with what was seeded.
    pub fn dataset(&self) -> Dataset {
        match self.state.home.dataset.read() {
            Ok(d) => d.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Signs an access token for a seeded app with an arbitrary lifetime (negative = already expired), as the token
    /// endpoint would. For tests of token expiry.
    pub fn mint_app_token(&self, tenant: &str, client_id: &str, lifetime_secs: i64) -> Option<String> {
        let t = self.state.directory.tenant(tenant)?;
        let app = t.app(client_id)?;
        let now = chrono::Utc::now().timestamp();
        let issued = now.min(now + lifetime_secs) - 60;
        let claims = tokens::AccessClaims::app(t, app, &self.base_url, issued, now + lifetime_secs, "minted".into());
        self.state.issuer.sign(&claims).ok()
    }

    /// A msticpyconfig.yaml that points a client at this emulator through ordinary settings: the ARM metadata URL of
    /// a custom cloud, the CA to trust, and the demo app's credentials in the default `MicrosoftGraph` instance plus
    /// named instances for the other seeded tenant and for an app without granted roles.
    pub fn msticpy_config(&self) -> String {
        let q = |p: &Path| p.display().to_string().replace('\'', "''");
        let (base, tenant, client) = (&self.base_url, DEMO_TENANT_ID, DEMO_CLIENT_ID);
        let mut y = String::new();
        y.push_str("# Written by `secgraph emulator --write-config`: points msticpy-style clients at the local emulator.\n");
        y.push_str("# The secrets below are the emulator's public demo credentials; they open nothing else.\n");
        y.push_str(&format!(
            "Azure:\n  cloud: global\n  resource_manager_url: '{base}/'\n  keyvault_url: '{base}/kv/{{vault}}/'\n  ca_certificates:\n    - '{}'\n",
            q(&self.ca_path)
        ));
        // Each vault at its own origin (secgraph reads `keyvault_urls` first; other clients take a vault's URL).
        let mut names: Vec<&String> = self.state.vault_origins.keys().collect();
        names.sort();
        if !names.is_empty() {
            y.push_str("  keyvault_urls:\n");
            for n in names {
                y.push_str(&format!("    {n}: '{}/'\n", self.state.vault_origins[n]));
            }
        }
        y.push_str(&format!(
            "KeyVault:\n  VaultName: demo-vault\n  TenantId: {tenant}\n  AuthnType: devicecode\n  UseKeyring: false\n"
        ));
        y.push_str("DataProviders:\n");
        let instance = |name: &str, args: &[(&str, String)]| {
            let mut s = format!("  {name}:\n    Args:\n");
            for (k, v) in args {
                s.push_str(&format!("      {k}: {v}\n"));
            }
            s
        };
        let ids = |t: &str, c: &str| vec![("TenantId", t.to_string()), ("ClientId", c.to_string())];
        let with = |mut v: Vec<(&'static str, String)>, extra: &[(&'static str, String)]| {
            v.extend_from_slice(extra);
            v
        };
        y.push_str(&instance(
            "MicrosoftGraph",
            &with(ids(tenant, client), &[("ClientSecret", DEMO_CLIENT_SECRET.into())]),
        ));
        y.push_str(&instance(
            "MicrosoftGraph-Certificate",
            &with(
                ids(tenant, client),
                &[
                    ("Certificate", format!("'{}'", q(&self.client_cert_path))),
                    ("PrivateKey", format!("'{}'", q(&self.client_key_path))),
                ],
            ),
        ));
        y.push_str(&instance(
            "MicrosoftGraph-Delegated",
            &with(ids(tenant, client), &[("UserName", directory::DEMO_ANALYST.into())]),
        ));
        y.push_str(&instance(
            "MicrosoftGraph-KeyVault",
            &with(ids(tenant, client), &[("ClientSecret", "{KeyVault: }".into())]),
        ));
        y.push_str(&instance(
            "MicrosoftGraph-Fabrikam",
            &with(
                ids(directory::SECOND_TENANT_ID, directory::SECOND_CLIENT_ID),
                &[("ClientSecret", "fabrikam-demo-secret".into())],
            ),
        ));
        y.push_str(&instance(
            "MicrosoftGraph-NoRoles",
            &with(
                ids(tenant, directory::NO_ROLES_CLIENT_ID),
                &[("ClientSecret", "no-roles-secret".into())],
            ),
        ));
        if let Some(p) = &self.tenants_path {
            // The MSSP: one multi-tenant app, its home tenant, and the customers' tenants file.
            y.push_str(&instance(
                "MicrosoftGraph-MSSP",
                &with(
                    ids(tenant, directory::MSSP_CLIENT_ID),
                    &[
                        ("ClientSecret", directory::MSSP_CLIENT_SECRET.into()),
                        ("Tenants", format!("'{}'", q(p))),
                    ],
                ),
            ));
        }
        y
    }

    /// The customer tenants (`EmulatorConfig::tenants`), in order.
    pub fn customers(&self) -> &[directory::Customer] {
        &self.customers
    }

    /// The tenants file written for the customers (`tenants.csv` in the state directory), if there are any.
    pub fn tenants_path(&self) -> Option<&Path> {
        self.tenants_path.as_deref()
    }

    /// A copy of tenant `tenant_id`'s data (seeded on first use, as a request would).
    pub fn tenant_dataset(&self, tenant_id: &str) -> Dataset {
        let data = self.state.data(tenant_id);
        match data.dataset.read() {
            Ok(d) => d.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Sets properties of an alert (alerts_v2) of tenant `tenant_id` (`None`: the first tenant) as a data source
    /// could have written them — for instance a title carrying an attacker's text, to test what a downstream tool
    /// (an AI assistant's MCP server) does with it. Bumps `lastUpdateDateTime` as any change does. Returns whether
    /// the alert exists.
    pub fn set_alert_fields(&self, tenant_id: Option<&str>, id: &str, fields: &serde_json::Map<String, serde_json::Value>) -> bool {
        let data = self.state.data(tenant_id.unwrap_or(""));
        let mut ds = match data.dataset.write() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        let Some(pos) = ds.alerts_v2.iter().position(|a| a.id().as_deref() == Some(id)) else {
            return false;
        };
        let now = data::graph_time(self.state.clock.now());
        if let serde_json::Value::Object(obj) = &mut *ds.alerts_v2[pos] {
            obj.extend(fields.clone());
            obj.insert("lastUpdateDateTime".into(), serde_json::Value::String(now));
        }
        ds.alert_changed(pos);
        true
    }

    /// Stops accepting connections and lets in-flight requests finish (up to one second).
    pub fn shutdown(&self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Makes a file readable by its owner only (private keys).
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// One vault at the root of its own listener: `/secrets`, `/secrets/{name}`, `/secrets/{name}/{version}`.
fn vault_router(state: Arc<AppState>, faults: Arc<faults::Faults>, vault: String) -> Router {
    let v = Arc::new(vault);
    Router::new()
        .route("/secrets", get(keyvault::own_list_secrets))
        .route("/secrets/", get(keyvault::own_list_secrets))
        .route("/secrets/{name}", get(keyvault::own_get_secret))
        .route("/secrets/{name}/", get(keyvault::own_get_secret))
        .route("/secrets/{name}/{version}", get(keyvault::own_get_secret_version))
        .fallback(not_found)
        .layer(axum::Extension(keyvault::VaultName(v)))
        .layer(middleware::from_fn_with_state(faults, faults::inject))
        .layer(middleware::from_fn_with_state(state.clone(), request_ids))
        .with_state(state)
}

fn router(state: Arc<AppState>, faults: Arc<faults::Faults>) -> Router {
    Router::new()
        .route("/metadata/endpoints", get(arm_metadata))
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(entra::devicecode))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(entra::authorize_get).post(entra::authorize_post),
        )
        .route("/devicelogin", get(entra::devicelogin_page).post(entra::devicelogin_submit))
        .route("/_emulator/devicecode", post(entra::admin_device))
        .route("/_emulator/revoke", post(entra::admin_revoke))
        .route("/_emulator/churn", post(admin_churn))
        .route("/_emulator/clock", post(admin_clock))
        .route("/kv/{vault}/secrets", get(keyvault::list_secrets))
        .route("/kv/{vault}/secrets/", get(keyvault::list_secrets))
        .route("/kv/{vault}/secrets/{name}", get(keyvault::get_secret))
        .route("/kv/{vault}/secrets/{name}/", get(keyvault::get_secret))
        .route("/kv/{vault}/secrets/{name}/{version}", get(keyvault::get_secret_version))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(entra::openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(entra::keys))
        .route("/{version}/security/runHuntingQuery", post(graph::run_hunting_query))
        .route(
            "/{version}/security/rules/detectionRules",
            get(graph::rules::list).post(graph::rules::create),
        )
        .route(
            "/{version}/security/rules/detectionRules/{id}",
            get(graph::rules::get_one).patch(graph::rules::update).delete(graph::rules::delete),
        )
        .merge(graph::investigate::routes())
        .route("/{version}/security/{collection}", get(graph::list))
        .route("/{version}/security/{collection}/{id}", get(graph::get_one).patch(updates::patch))
        .route("/{version}/security/{collection}/{id}/comments", post(updates::post_comment))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(faults, faults::inject))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_REQUESTS)),
            limit_concurrency,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), request_ids))
        .with_state(state)
}

/// `POST /_emulator/churn` `{"new": 3, "update": 5}`: applies that many changes now and says which alerts changed.
async fn admin_churn(State(st): State<Arc<AppState>>, axum::Json(req): axum::Json<ChurnRequest>) -> Response {
    if req.new > 100_000 || req.update > 100_000 {
        return (StatusCode::BAD_REQUEST, "at most 100000 changes per request").into_response();
    }
    match apply_churn(&st, req.new, req.update) {
        Some(r) => axum::Json(r).into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "dataset lock poisoned").into_response(),
    }
}

/// `POST /_emulator/clock` `{"advance": "20m"}` (units s, m, h, d): moves the emulator's clock forward; answers
/// `{"now": "…"}`.
async fn admin_clock(State(st): State<Arc<AppState>>, axum::Json(req): axum::Json<ClockRequest>) -> Response {
    match parse_duration(&req.advance) {
        Some(by) => axum::Json(serde_json::json!({"now": st.clock.advance(by).to_rfc3339()})).into_response(),
        None => (StatusCode::BAD_REQUEST, "advance: expected a duration such as 30s, 20m, 2h or 1d").into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ClockRequest {
    advance: String,
}

/// `30s`, `20m`, `2h`, `1d` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

#[derive(serde::Deserialize)]
struct ChurnRequest {
    #[serde(default)]
    new: usize,
    #[serde(default)]
    update: usize,
}

fn apply_churn(st: &AppState, new: usize, update: usize) -> Option<data::ChurnReport> {
    let mut rng = st.churn_rng.lock().ok()?;
    let mut ds = st.home.dataset.write().ok()?;
    Some(ds.churn(&mut rng, new, update, st.clock.now()))
}

/// `--churn`: applies changes ten times a second at the configured rates, until the emulator is dropped.
async fn churn_loop(state: std::sync::Weak<AppState>, spec: data::ChurnSpec) {
    let (mut new_due, mut update_due) = (0.0f64, 0.0f64);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let Some(st) = state.upgrade() else { return };
        new_due += spec.new_per_s / 10.0;
        update_due += spec.update_per_s / 10.0;
        let (n, u) = (new_due.floor(), update_due.floor());
        if n >= 1.0 || u >= 1.0 {
            apply_churn(&st, n as usize, u as usize);
            new_due -= n;
            update_due -= u;
        }
    }
}

async fn not_found(axum::Extension(rid): axum::Extension<RequestId>, uri: axum::http::Uri) -> Response {
    reply::graph_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("Resource not found for the segment '{}'.", uri.path()),
        &rid,
    )
}

/// Requests whose path and query the emulator keeps for [`Emulator::requests_with`].
pub const QUERIES_KEPT: usize = 20_000;

/// Largest request body accepted (token forms, PATCH bodies and hunting queries are all small).
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Requests served at once; more wait for a turn.
const MAX_CONCURRENT_REQUESTS: usize = 256;

async fn limit_concurrency(State(sem): State<Arc<tokio::sync::Semaphore>>, req: Request, next: Next) -> Response {
    match sem.acquire().await {
        Ok(_permit) => next.run(req).await,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Gives every request a `request-id`, echoes `client-request-id`, and logs one line per request (no bodies).
async fn request_ids(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    if let Ok(mut seen) = st.seen.paths.lock() {
        *seen.entry(req.uri().path().to_string()).or_default() += 1;
    }
    if let Ok(mut q) = st.seen.queries.lock() {
        if q.len() >= QUERIES_KEPT {
            q.pop_front();
        }
        let query = percent_encoding::percent_decode_str(req.uri().query().unwrap_or("")).decode_utf8_lossy();
        q.push_back(format!("{}?{}", req.uri().path(), query.replace('+', " ")));
    }
    let rid = uuid::Uuid::new_v4().to_string();
    let client = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(str::to_string);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    req.extensions_mut().insert(RequestId(rid.clone(), client.clone()));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("request-id", v.clone());
        h.insert("x-ms-request-id", v);
    }
    if let Some(v) = client.as_deref().and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("client-request-id", v);
    }
    // The service's time, by the emulator's clock (clients that follow the service's clock see it move).
    if let Ok(v) = HeaderValue::from_str(&st.clock.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
        h.insert(axum::http::header::DATE, v);
    }
    tracing::info!(%method, %path, status = resp.status().as_u16(), request_id = %rid, "request");
    resp
}

#[derive(serde::Deserialize)]
struct ArmQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// Azure Resource Manager's cloud metadata document (`/metadata/endpoints`), describing the emulator as a custom
/// cloud: an object for `latest` and versions before 2019-05-01, a list of clouds for later dated versions.
async fn arm_metadata(
    State(st): State<Arc<AppState>>,
    axum::Extension(rid): axum::Extension<RequestId>,
    Query(q): Query<ArmQuery>,
) -> Response {
    let Some(v) = q.api_version else {
        return reply::graph_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
            &rid,
        );
    };
    let base = &st.base_url;
    let host = base.trim_start_matches("https://");
    let cloud = json!({
        "name": "SecgraphEmulator",
        "portal": base,
        "resourceManager": format!("{base}/"),
        "authentication": {
            "loginEndpoint": format!("{base}/"),
            "audiences": [format!("{base}/")],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "graph": format!("{base}/"),
        "graphAudience": format!("{base}/"),
        "microsoftGraphResourceId": format!("{base}/"),
        "media": format!("{base}/"),
        "suffixes": {
            "keyVaultDns": format!("vault.{host}"),
            "storage": format!("storage.{host}"),
            "sqlServerHostname": format!("sql.{host}"),
        },
    });
    // As ARM answers: `latest` and versions before 2019-05-01 describe the one cloud (an object: msticpy reads
    // `["authentication"]["loginEndpoint"]` from `latest`); dated versions from 2019-05-01 list every cloud.
    let dated = v.len() == 10 && chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").is_ok();
    if v.eq_ignore_ascii_case("latest") || (dated && v.as_str() < "2019-05-01") {
        axum::Json(cloud).into_response()
    } else if dated {
        axum::Json(json!([cloud])).into_response()
    } else {
        reply::graph_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("The api-version '{v}' is invalid. The supported versions are 'latest' and dates such as '2022-09-01'."),
            &rid,
        )
    }
}
