//! Settings: where secgraph's configuration comes from and what it says — msticpy's `msticpyconfig.yaml` (its
//! discovery, provider instances and their `Args`, the `Azure`, `KeyVault` and `msticpy` sections), connection
//! strings, and the national or custom cloud they name.
//!
//! Invariant: nothing here does I/O beyond reading the one settings file (and, for a custom cloud, the caller fetches
//! the metadata document); secrets are only *referenced* here and resolved when a connection needs them.

mod cloud;
mod connection_string;
mod settings;

pub use cloud::Cloud;
pub use connection_string::parse_connection_string;
pub(crate) use settings::parse_yaml;
pub use settings::{
    AzureSettings, ConfigSource, KeyVaultSettings, MAX_HTTP_TIMEOUT_SECS, ProviderArgs, ProxySettings, SearchPaths, SecretRef, Settings,
    normalise_arg_name,
};
