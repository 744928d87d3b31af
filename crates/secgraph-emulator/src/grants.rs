//! The grants Entra ID has handed out and must remember: pending device codes, authorization codes, refresh tokens
//! (and whether they were rotated or revoked) and client-assertion ids already seen. Owned by the shared state;
//! read and changed by the `entra` endpoints.

use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
/// Where a device code stands.
pub(crate) enum DeviceStatus {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

/// A device code waiting to be approved and redeemed.
#[derive(Debug, Clone)]
pub(crate) struct DeviceGrant {
    pub(crate) user_code: String,
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) expires_at: i64,
    pub(crate) interval: u64,
    pub(crate) last_poll: Option<Instant>,
    pub(crate) status: DeviceStatus,
}

/// An authorization code issued by `/authorize`.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<String>,
    pub(crate) user_oid: String,
    pub(crate) scope: String,
    pub(crate) expires_at: i64,
    pub(crate) used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// A refresh token's life: in use, replaced by its successor, or revoked.
pub(crate) enum RefreshState {
    Active,
    Rotated,
    Revoked,
}

/// What a refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct RefreshRecord {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) user_oid: String,
    pub(crate) scope: String,
    pub(crate) state: RefreshState,
}

/// Pending device codes, issued authorization codes, refresh tokens and seen assertion ids.
#[derive(Debug, Default)]
pub struct AuthStore {
    pub(crate) device: HashMap<String, DeviceGrant>,
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) refresh: HashMap<String, RefreshRecord>,
    pub(crate) jtis: HashMap<String, i64>,
}
