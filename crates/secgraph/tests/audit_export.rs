//! The unified audit log as an export stream (its own test binary: the audit searches' ids are kept under the
//! process's cache folder, which this test points at a folder of its own).

use secgraph::{ConnectOptions, QueryProvider};
use secgraph_emulator::{Emulator, EmulatorConfig};
use std::sync::Arc;

#[tokio::test]
async fn the_audit_log_exports_each_record_once() {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 30,
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    let emu = Arc::new(emu);
    // The service's searches take seconds of its clock: move the clock on while the export waits.
    let ticker = {
        let emu = emu.clone();
        tokio::spawn(async move {
            loop {
                emu.advance_clock(std::time::Duration::from_secs(3));
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: see the audit search test; this binary's tests keep the audit state under their own cache folders.
    unsafe { std::env::set_var("XDG_CACHE_HOME", cache.path()) };
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    let mut opts = secgraph::export::ExportOptions::new(dir.path());
    opts.since = Some(chrono::Utc::now() - chrono::Duration::days(40));
    let stream = secgraph::export::Stream::parse("auditlog").unwrap();
    let first = secgraph::export::export_stream(&p, "Default", stream.clone(), &opts).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(first.new_versions >= 90, "every record of the stories: {}", first.new_versions);
    let second = secgraph::export::export_stream(&p, "Default", stream, &opts).await;
    ticker.abort();
    assert!(second.error.is_none(), "{:?}", second.error);
    assert_eq!(second.new_versions, 0, "nothing stored twice");
    assert!(second.already_stored > 0, "the overlap read them again");
}
