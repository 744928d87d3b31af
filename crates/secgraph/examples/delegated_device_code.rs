//! msticpy: `connect(delegated_auth=True, auth_type="device")` — sign in as a user with a device code. The
//! message the user must see goes through a `SignInPrompt`; the token is cached and the second connect asks nothing.
//! (Here the emulator approves the sign-in on its own, as the demo analyst.)
//!
//! `cargo run -p secgraph --example delegated_device_code`

mod common;

use secgraph::auth::{AuthType, SignInPrompt};
use secgraph::config::{ConfigSource, Settings};
use secgraph::{ConnectOptions, QueryProvider};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Shows the device-code message on stderr and counts how often a user was asked.
#[derive(Debug, Default)]
struct Terminal(AtomicUsize);

impl SignInPrompt for Terminal {
    fn device_code(&self, message: &str) {
        self.0.fetch_add(1, Ordering::SeqCst);
        eprintln!("{message}");
    }
    fn open_browser(&self, url: &str) {
        self.0.fetch_add(1, Ordering::SeqCst);
        eprintln!("open {url}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = common::start(true).await?;
    let settings = Settings::load(&demo.settings_path, ConfigSource::Explicit)?;
    let cache = tempfile::tempdir()?;
    let prompt = Arc::new(Terminal::default());
    let options = ConnectOptions {
        instance: Some("Delegated".into()),
        auth_type: Some(AuthType::Device),
        prompt: Some(prompt.clone()),
        token_cache: Some(cache.path().join("tokens.json")),
        ..Default::default()
    };
    for _ in 0..2 {
        let p = QueryProvider::connect(Some(&settings), &options).await?;
        println!(
            "signed in as {:?} with {} delegated scopes",
            p.info().account,
            p.info().scopes.len()
        );
    }
    println!("the user was asked {} time(s)", prompt.0.load(Ordering::SeqCst));
    Ok(())
}
