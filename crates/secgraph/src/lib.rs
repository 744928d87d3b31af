//! # secgraph
//!
//! A query provider for the Microsoft Graph Security API, compatible with msticpy's `SecurityGraph` provider: it
//! reads the same `msticpyconfig.yaml`, connects the same ways, and runs the same YAML query templates — then pages
//! through every result and hands rows to a sink (a table, JSON lines, CSV).
//!
//! Data flows one way: [`config`] → secret resolution ([`keyvault`]) → [`auth`] → [`graph`] client and pager →
//! [`output`]. [`QueryProvider`] is the facade over all of it.
//!
//! Architecture invariants: the library never prints, reads the terminal or exits; it never knows the emulator
//! exists (the emulator is reached only through ordinary settings: a custom cloud's metadata URL and an extra
//! trusted CA); no secret appears in any `Debug`, `Display`, log line or error.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod auth;
pub mod config;
pub mod connect;
mod error;
pub mod graph;
mod http;
pub mod keyvault;
pub mod output;
mod private_file;
mod provider;
pub mod query;
mod secret;

pub use connect::{ConnectOptions, Connection, ConnectionInfo};
pub use error::{ApiError, AuthError, Error, ErrorKind, Result};
pub use http::HttpOptions;
pub use provider::{QueryProvider, describe_plan};
pub use secret::Secret;
