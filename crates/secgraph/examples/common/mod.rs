//! Shared by the examples: the local emulator started in-process, and a settings file pointing at it — the same
//! kind of `msticpyconfig.yaml` a real tenant needs, with a custom cloud and an extra trusted CA.

use secgraph_emulator::{Emulator, EmulatorConfig};

/// A running emulator and the settings file written for it (removed when dropped).
pub struct Demo {
    /// Serving until dropped.
    #[allow(dead_code)]
    pub emulator: Emulator,
    pub settings_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts the emulator; `auto_approve` completes user sign-ins as the demo analyst.
pub async fn start(auto_approve: bool) -> Result<Demo, Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig {
        auto_approve: auto_approve.then(|| secgraph_emulator::directory::DEMO_ANALYST.to_string()),
        device_code_interval: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let settings_path = dir.path().join("msticpyconfig.yaml");
    std::fs::write(&settings_path, emulator.msticpy_config())?;
    Ok(Demo {
        emulator,
        settings_path,
        _dir: dir,
    })
}
