//! The examples in docs/CONFIGURATION.md, run against the emulator.

use secgraph::config::{ConfigSource, Settings};
use secgraph::{ConnectOptions, QueryProvider};
use secgraph_emulator::directory::DEMO_ANALYST;
use secgraph_emulator::{DEMO_CLIENT_SECRET, Emulator, EmulatorConfig};
use serde_json::Value;

fn examples() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIGURATION.md")).unwrap();
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter_map(|b| b.strip_prefix("# example: ").map(|rest| rest.split_once('\n').unwrap()))
        .map(|(name, body)| (name.to_string(), body.to_string()))
        .collect()
}

#[tokio::test]
async fn every_documented_example_connects() {
    let ex = examples();
    let names: Vec<&str> = ex.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["minimal", "keyvault", "multi-instance", "custom-cloud"]);
    let emu = Emulator::start(EmulatorConfig {
        alerts: 5,
        auto_approve: Some(DEMO_ANALYST.into()),
        device_code_interval: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = emu.msticpy_config();
    let azure = &base[base.find("Azure:").unwrap()..base.find("KeyVault:").unwrap()];
    // SAFETY: only this test in this binary reads these variables.
    unsafe {
        std::env::set_var("SECGRAPH_GRAPH_SECRET", DEMO_CLIENT_SECRET);
        std::env::set_var("SECGRAPH_FABRIKAM_SECRET", "fabrikam-demo-secret");
    }
    std::fs::copy(emu.ca_path(), dir.path().join("contoso-cloud-ca.pem")).unwrap();
    for (name, body) in ex {
        // Point the example at the emulator: its cloud metadata and CA, as a user of a private cloud would.
        let text = if body.contains("Azure:") {
            body.replace("https://management.contoso-cloud.example/", &format!("{}/", emu.base_url()))
        } else {
            format!("{azure}{body}")
        };
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &text).unwrap();
        let s = Settings::load(&path, ConfigSource::Explicit).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut instances: Vec<Option<String>> = if s.has_default_instance() { vec![None] } else { vec![] };
        instances.extend(s.instances().into_iter().map(Some));
        assert!(!instances.is_empty(), "{name}");
        for i in instances {
            let opts = ConnectOptions {
                instance: i.clone(),
                token_cache: Some(dir.path().join("tokens.json")),
                secret_cache: Some(dir.path().join("secrets.json")),
                prompt: Some(std::sync::Arc::new(Quiet)),
                ..Default::default()
            };
            let p = QueryProvider::connect(Some(&s), &opts)
                .await
                .unwrap_or_else(|e| panic!("{name} {i:?}: {e}"));
            let mut rows: Vec<Value> = Vec::new();
            p.run("Alerts.list", &[("start".into(), "-31d".into())], &mut rows)
                .await
                .unwrap_or_else(|e| panic!("{name} {i:?}: {e}"));
        }
    }
}

/// The emulator approves sign-ins on its own; the user is shown nothing.
#[derive(Debug)]
struct Quiet;
impl secgraph::auth::SignInPrompt for Quiet {
    fn device_code(&self, _message: &str) {}
    fn open_browser(&self, _url: &str) {}
}
