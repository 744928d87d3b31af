//! msticpy: `connect(tenant_id=…, client_id=…, client_secret=…)` and `connect("tenant_id=…;client_id=…;…")` —
//! keyword arguments override the file's values; a connection string replaces its provider section.
//!
//! `cargo run -p secgraph --example connect_options`

mod common;

use secgraph::config::{ConfigSource, Settings};
use secgraph::{ConnectOptions, QueryProvider, Secret};
use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = common::start(false).await?;
    let settings = Settings::load(&demo.settings_path, ConfigSource::Explicit)?;
    let keywords = ConnectOptions {
        tenant_id: Some(DEMO_TENANT_ID.into()),
        client_id: Some(DEMO_CLIENT_ID.into()),
        client_secret: Some(Secret::new(DEMO_CLIENT_SECRET)),
        ..Default::default()
    };
    let p = QueryProvider::connect(Some(&settings), &keywords).await?;
    println!("keywords:          {} roles", p.info().roles.len());
    // Quotes around values are removed (msticpy kept them and sent 'tenant' to Entra).
    let string = ConnectOptions {
        connection_string: Some(Secret::new(format!(
            "tenant_id='{DEMO_TENANT_ID}'; client_id={DEMO_CLIENT_ID}; client_secret=\"{DEMO_CLIENT_SECRET}\""
        ))),
        ..Default::default()
    };
    let p = QueryProvider::connect(Some(&settings), &string).await?;
    println!("connection string: {} ({})", p.info().source, p.info().tenant_id);
    Ok(())
}
