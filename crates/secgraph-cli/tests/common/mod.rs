//! What the CLI's test files share: the binary, and the emulator run as a separate process.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_secgraph");

pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `secgraph emulator --write-config` and waits until the settings file exists.
pub fn emulator(dir: &Path, extra: &[&str]) -> (Running, std::path::PathBuf) {
    let cfg = dir.join("emulator.yaml");
    let child = Command::new(BIN)
        .args(["emulator", "--write-config"])
        .arg(&cfg)
        // Other behaviour than the request rate is under test: the rate is tested on its own.
        .args(["--requests-per-minute", "100000"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cfg.exists() {
        assert!(Instant::now() < deadline, "emulator did not write its settings");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    (running, cfg)
}
