//! Shared state of a running emulator.

use crate::EmulatorConfig;
use crate::data::Dataset;
use crate::directory::Directory;
use crate::grants::AuthStore;
use crate::hunting::value::KTable;
use crate::tokens::{GRAPH_APP_ID, TokenIssuer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// The ids of one request: our `request-id` and the caller's `client-request-id`, if it sent one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String, pub Option<String>);

#[derive(Debug)]
pub struct AppState {
    pub base_url: String,
    pub config: EmulatorConfig,
    pub directory: Directory,
    pub issuer: TokenIssuer,
    /// The first tenant's data (the demo tenant's): `--alerts` alerts from `--seed`, changed by churn.
    pub home: Arc<TenantData>,
    /// Every other tenant's own data, seeded from the tenant id on its first request (see [`AppState::data`]).
    pub others: Mutex<HashMap<String, Arc<TenantData>>>,
    pub auth: Mutex<AuthStore>,
    pub vaults: RwLock<Vec<crate::vaults::Vault>>,
    /// Advanced-hunting calls and CPU used, per tenant (see [`crate::hunting::quota`]).
    pub hunting_usage: crate::hunting::quota::Usage,
    /// Each vault's own origin (`https://127.0.0.1:PORT`, no path), by lower-case vault name: a vault is served at
    /// the root of its own listener, as a real vault URL has no path.
    pub vault_origins: std::collections::HashMap<String, String>,
    /// The seeded generator for changes (`POST /_emulator/churn`, `--churn`).
    pub churn_rng: std::sync::Mutex<crate::data::Rng>,
    /// What requests arrived (for tests that check what a client called, or did not).
    pub seen: RequestLog,
    /// Requests to the security collections, per app and tenant (`--requests-per-minute`).
    pub rate: crate::rate::RequestRate,
    /// The emulator's clock: real time moved by what `POST /_emulator/clock` advanced it by.
    pub clock: Clock,
}

/// The emulator's clock: the real time plus an offset tests move forward (`POST /_emulator/clock`,
/// [`crate::Emulator::advance_clock`]), so that ingestion lag, token expiry and `--follow` intervals are tested in
/// seconds. Changes, writes and tokens are stamped by it.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl Clock {
    /// The emulator's time now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// The emulator's time now, in Unix seconds (token lifetimes).
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves the clock forward by `by`; returns the new time.
    pub fn advance(&self, by: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 4);
        self.offset_ms.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
        self.now()
    }
}

/// How long advanced hunting's tables may lag data that `--churn` keeps changing.
pub const HUNTING_INGESTION_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// Advanced hunting's tables and the dataset change they reflect.
#[derive(Debug)]
pub struct HuntingTables {
    changes: u64,
    built: std::time::Instant,
    tables: Arc<HashMap<String, KTable>>,
}

/// One tenant's data: its dataset and the hunting tables derived from it.
#[derive(Debug)]
pub struct TenantData {
    /// The alerts, incidents, legacy alerts and secure scores.
    pub dataset: RwLock<Dataset>,
    /// Advanced-hunting tables, built from the dataset on the first hunting query (most runs never ask, and they
    /// are as large as the alerts themselves) and rebuilt when the data has changed since (see
    /// [`TenantData::hunting_tables`]).
    hunting: Mutex<Option<HuntingTables>>,
    /// Custom detection rules (`/security/rules/detectionRules`), in creation order.
    pub detection_rules: Mutex<DetectionRules>,
    /// Audit log searches and identity accounts' state (`graph::investigate`).
    pub investigation: Mutex<Investigation>,
}

/// A tenant's audit log searches and the state identity actions changed.
#[derive(Debug, Default)]
pub struct Investigation {
    /// Audit log queries, as created (with `createdDateTime`, from which their status follows).
    pub audit_queries: Vec<serde_json::Value>,
    /// Identity accounts changed by `invokeAction`, by account id.
    pub accounts: HashMap<String, AccountState>,
}

/// What identity actions did to an account.
#[derive(Debug, Default, Clone)]
pub struct AccountState {
    /// Whether the account may sign in (`disable` / `enable`).
    pub enabled: bool,
    /// `forcePasswordReset`.
    pub password_reset_required: bool,
    /// `markUserAsCompromised`.
    pub compromised: bool,
    /// When sessions were last revoked (`revokeAllSessions`, `requireUserToSignInAgain`).
    pub sessions_revoked: Option<String>,
}

/// A tenant's custom detection rules: the resources as the service stores them, and the next id to give.
#[derive(Debug, Default)]
pub struct DetectionRules {
    /// The rules, oldest first.
    pub items: Vec<serde_json::Value>,
    /// The id the next created rule gets (numeric, as Defender's).
    pub next_id: u64,
    /// The last run each rule has had, by rule id (runs counted from its creation; see `detections`).
    pub processed: HashMap<String, i64>,
    /// What the rules have alerted on: rule id, `ReportId` and entity, so a row raises one alert.
    pub raised: std::collections::HashSet<String>,
}

impl TenantData {
    /// Data made of `dataset`.
    pub fn new(dataset: Dataset) -> Arc<TenantData> {
        Arc::new(TenantData {
            dataset: RwLock::new(dataset),
            hunting: Mutex::new(None),
            detection_rules: Mutex::new(DetectionRules {
                items: Vec::new(),
                next_id: 1,
                ..Default::default()
            }),
            investigation: Mutex::new(Investigation::default()),
        })
    }

    /// The advanced-hunting tables as of the dataset's last change: built on first use, rebuilt by the first
    /// hunting query after an update, a comment or churn — at once after changes applied through the API or
    /// `POST /_emulator/churn`, and at most every [`HUNTING_INGESTION_DELAY`] while `--churn` changes the data
    /// continuously (Defender's tables, too, lag the alerts by minutes of ingestion).
    pub fn hunting_tables(&self, config: &EmulatorConfig) -> Arc<HashMap<String, KTable>> {
        let mut cache = self.hunting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Ok(ds) = self.dataset.read() else {
            return Arc::default();
        };
        if let Some(c) = cache.as_ref() {
            let fresh = c.changes == ds.changes || (config.churn.is_some() && c.built.elapsed() < HUNTING_INGESTION_DELAY);
            if fresh {
                return c.tables.clone();
            }
        }
        let tables = Arc::new(crate::hunting::build_tables(&ds, config.seed));
        *cache = Some(HuntingTables {
            changes: ds.changes,
            built: std::time::Instant::now(),
            tables: tables.clone(),
        });
        tables
    }
}

/// The seed of a tenant's own data: the emulator's seed mixed with the tenant id (lower case), so each tenant's
/// data is distinct and the same in every run.
pub fn tenant_seed(seed: u64, tenant_id: &str) -> u64 {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{seed}/{}", tenant_id.to_ascii_lowercase()).as_bytes());
    u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
}

impl AppState {
    /// The data of tenant `tid` (a directory id from a token): the first tenant's is [`AppState::home`]; any other
    /// tenant's is seeded from its id on first use (`--alerts-per-tenant`, else `--alerts`, alerts ending at the
    /// same instant as the first tenant's).
    pub fn data(&self, tid: &str) -> Arc<TenantData> {
        let home_id = self.directory.tenants.first().map(|t| t.id.as_str()).unwrap_or_default();
        if tid.is_empty() || tid.eq_ignore_ascii_case(home_id) {
            return self.home.clone();
        }
        let key = tid.to_ascii_lowercase();
        let mut others = self.others.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = others.get(&key) {
            return d.clone();
        }
        let now = match self.home.dataset.read() {
            Ok(ds) => ds.generated_at,
            Err(p) => p.into_inner().generated_at,
        };
        let alerts = self.config.alerts_per_tenant.unwrap_or(self.config.alerts);
        let d = TenantData::new(Dataset::generate_for(&key, tenant_seed(self.config.seed, &key), alerts, now));
        others.insert(key, d.clone());
        d
    }

    /// Audiences that identify Graph: its public URL, its app id, and the emulator's own root.
    pub fn graph_audiences(&self) -> Vec<String> {
        vec!["https://graph.microsoft.com".into(), GRAPH_APP_ID.into(), self.base_url.clone()]
    }

    /// Access-token lifetime: the configured one, else 60–90 minutes like Entra.
    pub fn token_lifetime_secs(&self) -> i64 {
        match self.config.token_lifetime {
            Some(d) => d.as_secs() as i64,
            None => 3600 + (uuid::Uuid::new_v4().as_u128() % 1800) as i64,
        }
    }
}

/// What requests arrived, for tests.
#[derive(Debug, Default)]
pub struct RequestLog {
    /// Requests seen per path.
    pub paths: Mutex<std::collections::HashMap<String, usize>>,
    /// The latest requests' paths and decoded queries (at most [`crate::QUERIES_KEPT`]): what a client asked for (a
    /// filter it pushed to the service).
    pub queries: Mutex<std::collections::VecDeque<String>>,
}
