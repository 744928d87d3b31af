//! msticpy: `qry_prov.connect()` and `qry_prov.connect(instance="Fabrikam")` — the settings file's default
//! provider section, then a named instance (`DataProviders.MicrosoftGraph-Fabrikam`).
//!
//! `cargo run -p secgraph --example connect_instance`

mod common;

use secgraph::config::{SearchPaths, Settings};
use secgraph::{ConnectOptions, QueryProvider};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = common::start(false).await?;
    // As msticpy does: --config, $MSTICPYCONFIG, ./msticpyconfig.yaml, ~/.msticpy/msticpyconfig.yaml.
    let settings = Settings::discover(&SearchPaths::from_env(Some(demo.settings_path.clone())))?;
    for instance in [None, Some("Fabrikam")] {
        let options = ConnectOptions {
            instance: instance.map(str::to_string),
            ..Default::default()
        };
        let p = QueryProvider::connect(settings.as_ref(), &options).await?;
        let info = p.info();
        println!(
            "{:<40} tenant {} app {} ({})",
            info.source,
            info.tenant_id,
            info.client_id,
            info.auth.describe()
        );
    }
    Ok(())
}
