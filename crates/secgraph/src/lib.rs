//! # secgraph
//!
//! A query provider for the Microsoft Graph Security API, compatible with msticpy's `SecurityGraph` provider: it
//! reads the same `msticpyconfig.yaml`, connects the same ways, and runs the same YAML query templates — then pages
//! through every result (alerts_v2, incidents, advanced hunting, secure scores, the legacy alerts) and hands the rows
//! to you: as a `Send` stream of pages, or pushed into a sink (a table, JSON lines, CSV).
//!
//! Data flows one way: [`config`] → secret resolution ([`keyvault`]) → [`auth`] → [`graph`] client and pager →
//! [`output`]. [`QueryProvider`] is the facade over all of it; [`connect`] holds the steps it takes.
//!
//! Architecture invariants: the library never prints, reads the terminal or exits; it never knows the emulator
//! exists (the emulator is reached only through ordinary settings: a custom cloud's metadata URL and an extra
//! trusted CA); no secret appears in any `Debug`, `Display`, log line or error.
//!
//! # Guide: msticpy's scenarios, in order
//!
//! Every example below runs against the local emulator (`secgraph-emulator`, started in-process and hidden from the
//! example), whose `msticpy_config()` writes the same kind of settings file you would write for a real tenant.
//!
//! ## A settings file, and connect with no arguments
//!
//! msticpy: `qry_prov = QueryProvider("SecurityGraph"); qry_prov.connect()`. The file is found as msticpy finds it
//! (`--config`, `$MSTICPYCONFIG`, `./msticpyconfig.yaml`, `~/.msticpy/msticpyconfig.yaml`); its
//! `DataProviders.MicrosoftGraph.Args` say who signs in.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emu = secgraph_emulator::Emulator::start(Default::default()).await?;
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("msticpyconfig.yaml");
//! # std::fs::write(&path, emu.msticpy_config())?;
//! use secgraph::config::{SearchPaths, Settings};
//! use secgraph::{ConnectOptions, QueryProvider};
//!
//! let settings = Settings::discover(&SearchPaths::from_env(Some(path)))?;
//! let provider = QueryProvider::connect(settings.as_ref(), &ConnectOptions::default()).await?;
//! println!("{} as {:?}", provider.info().tenant_id, provider.info().auth);
//!
//! // A named instance: DataProviders.MicrosoftGraph-Fabrikam (msticpy: connect(instance="Fabrikam")).
//! let fabrikam = ConnectOptions { instance: Some("Fabrikam".into()), ..Default::default() };
//! let other = QueryProvider::connect(settings.as_ref(), &fabrikam).await?;
//! assert_ne!(other.info().tenant_id, provider.info().tenant_id);
//! # Ok(()) }
//! ```
//!
//! ## Keyword overrides and connection strings
//!
//! msticpy: `connect(tenant_id=..., client_id=..., client_secret=...)` or `connect("tenant_id=…;client_id=…;…")`.
//! Options override single values of the settings; a connection string replaces the provider section.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emu = secgraph_emulator::Emulator::start(Default::default()).await?;
//! # let settings = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml")?;
//! # let (tenant, client, secret) = (secgraph_emulator::DEMO_TENANT_ID, secgraph_emulator::DEMO_CLIENT_ID, secgraph_emulator::DEMO_CLIENT_SECRET);
//! use secgraph::{ConnectOptions, QueryProvider, Secret};
//!
//! let by_keyword = ConnectOptions {
//!     tenant_id: Some(tenant.into()),
//!     client_id: Some(client.into()),
//!     client_secret: Some(Secret::new(secret)),
//!     ..Default::default()
//! };
//! QueryProvider::connect(Some(&settings), &by_keyword).await?;
//!
//! let by_string = ConnectOptions {
//!     connection_string: Some(Secret::new(format!("tenant_id={tenant};client_id={client};client_secret='{secret}'"))),
//!     ..Default::default()
//! };
//! QueryProvider::connect(Some(&settings), &by_string).await?;
//! # Ok(()) }
//! ```
//!
//! ## Signing in as a user: browser (the default) or device code
//!
//! A `UserName` in the settings (msticpy: or `delegated_auth=True`) signs in as that user. The browser flow opens the
//! sign-in page; the device-code flow shows a code to enter elsewhere. What the user must see goes through your
//! [`auth::SignInPrompt`]; tokens are cached (an owner-only file) and renewed silently on later connects. Without a
//! prompt, a sign-in that needs the user fails at once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emu = secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig {
//! #     auto_approve: Some(secgraph_emulator::directory::DEMO_ANALYST.into()),
//! #     device_code_interval: std::time::Duration::from_secs(1),
//! #     ..Default::default()
//! # }).await?;
//! # let settings = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml")?;
//! # let dir = tempfile::tempdir()?;
//! use secgraph::auth::{AuthType, SignInPrompt};
//! use secgraph::{ConnectOptions, QueryProvider};
//! use std::sync::Arc;
//!
//! #[derive(Debug)]
//! struct Show;
//! impl SignInPrompt for Show {
//!     fn device_code(&self, message: &str) { eprintln!("{message}") }
//!     fn open_browser(&self, url: &str) { eprintln!("open {url}") }
//! }
//!
//! let options = ConnectOptions {
//!     instance: Some("Delegated".into()),
//!     auth_type: Some(AuthType::Device),
//!     prompt: Some(Arc::new(Show)),
//!     token_cache: Some(dir.path().join("tokens.json")),
//!     ..Default::default()
//! };
//! let provider = QueryProvider::connect(Some(&settings), &options).await?;
//! println!("signed in as {:?}", provider.info().account);
//! # Ok(()) }
//! ```
//!
//! ## Secrets held in Key Vault
//!
//! Any value may be `{KeyVault: name}` (or `vault/name`, or empty for msticpy's default name, here
//! `DataProviders-MicrosoftGraph-KeyVault-Args-ClientSecret`); secrets are fetched at connect time, only those the
//! connection uses, signing in to Key Vault as `KeyVault.AuthnType` says (here `devicecode`, so the prompt is used).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emu = secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig {
//! #     auto_approve: Some(secgraph_emulator::directory::DEMO_ANALYST.into()),
//! #     device_code_interval: std::time::Duration::from_secs(1),
//! #     ..Default::default()
//! # }).await?;
//! # let settings = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml")?;
//! # let dir = tempfile::tempdir()?;
//! # #[derive(Debug)]
//! # struct Show;
//! # impl secgraph::auth::SignInPrompt for Show {
//! #     fn device_code(&self, message: &str) { eprintln!("{message}") }
//! #     fn open_browser(&self, url: &str) { eprintln!("open {url}") }
//! # }
//! // DataProviders.MicrosoftGraph-KeyVault.Args.ClientSecret is `{KeyVault: }`.
//! let options = secgraph::ConnectOptions {
//!     instance: Some("KeyVault".into()),
//!     prompt: Some(std::sync::Arc::new(Show)),
//!     token_cache: Some(dir.path().join("tokens.json")),
//!     ..Default::default()
//! };
//! let provider = secgraph::QueryProvider::connect(Some(&settings), &options).await?;
//! assert_eq!(provider.info().source, "DataProviders.MicrosoftGraph-KeyVault");
//! # Ok(()) }
//! ```
//!
//! ## Listing and running queries
//!
//! msticpy: `qry_prov.list_queries()`, `qry_prov.SecurityGraph.list_alerts(start=…, end=…)`. Queries are msticpy
//! YAML templates (the built-ins plus `QueryDefinitions` folders). Results come as a `Send` stream of pages
//! ([`graph::Pages`]) or pushed into a sink ([`output::RowSink`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let emu = secgraph_emulator::Emulator::start(Default::default()).await?;
//! # let settings = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml")?;
//! # let provider = secgraph::QueryProvider::connect(Some(&settings), &Default::default()).await?;
//! use futures_util::StreamExt;
//! use secgraph::output::Table;
//!
//! for q in provider.queries().all().iter().filter(|q| q.family == "Alerts") {
//!     println!("{} — {}", q.full_name(), q.description);
//! }
//! // Pushed into a table (flattened like pandas.json_normalize):
//! let mut table = Table::new();
//! provider.run("Alerts.list", &[("start".into(), "-7d".into())], &mut table).await?;
//! // Or pulled page by page, from any task:
//! let q = provider.render("Incidents.list", &[])?;
//! let mut pages = provider.pages(&q)?;
//! let rows = tokio::spawn(async move {
//!     let mut n = 0;
//!     while let Some(page) = pages.next().await {
//!         n += page?.rows.len();
//!     }
//!     Ok::<_, secgraph::Error>(n)
//! })
//! .await??;
//! println!("{} alerts, {rows} incidents", table.len());
//! # Ok(()) }
//! ```
//!
//! See also `docs/MIGRATING.md` (each msticpy snippet beside its secgraph equivalent) and `examples/`.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod audit;
pub mod auth;
pub mod batches;
pub mod config;
pub mod connect;
mod context;
pub mod enrich;
mod environment;
mod error;
pub mod export;
pub mod fanout;
pub mod graph;
mod http;
pub mod identity;
pub mod keyvault;
mod local_file;
pub mod output;
mod private_file;
mod provider;
pub mod query;
pub mod retry;
mod row;
pub mod rules;
mod secret;
pub mod tenants;

pub use connect::{ConnectOptions, Connection, ConnectionInfo};
pub use environment::Environment;
pub use error::{ApiError, AuthError, BoxError, Error, ErrorKind, Result, clean};
pub use http::HttpOptions;
pub use provider::{QueryProvider, describe_plan};
pub use row::Row;
/// The KQL subset's parser and shapes (the `secgraph-kql` crate), for checking KQL before it is sent.
pub use secgraph_kql as kql;
pub use secret::Secret;
