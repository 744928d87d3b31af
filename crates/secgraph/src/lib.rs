//! # secgraph
//!
//! A query provider for the Microsoft Graph Security API, compatible with msticpy's `SecurityGraph` provider: it
//! reads the same `msticpyconfig.yaml`, connects the same ways, and runs the same YAML query templates — then pages
//! through every result and hands rows to a sink (a table, JSON lines, CSV).
//!
//! Data flows one way: [`settings`] → secret resolution → [`credential`] → [`graph`] client and pager →
//! [`sink`]. [`QueryProvider`] is the facade over all of it.
//!
//! Architecture invariants: the library never prints, reads the terminal or exits; it never knows the emulator
//! exists (the emulator is reached only through ordinary settings: a custom cloud's metadata URL and an extra
//! trusted CA); no secret appears in any `Debug`, `Display`, log line or error.

pub mod certificate;
pub mod cloud;
pub mod connect;
pub mod credential;
pub mod delegated;
pub mod error;
pub mod graph;
pub mod http;
pub mod keyvault;
pub mod private_file;
pub mod provider;
pub mod query;
pub mod secret;
pub mod settings;
pub mod sink;
pub mod token_cache;
pub mod updates;

pub use connect::{ConnectOptions, Connection, ConnectionInfo};
pub use error::{Error, ErrorKind, Result};
pub use provider::QueryProvider;
pub use secret::Secret;
