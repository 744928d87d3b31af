//! Incremental export against the emulator with changes applied between and during runs: every version once, the
//! dataset's latest version per id equal to what the emulator holds, ties at the watermark, recovery of an
//! interrupted commit, and shrinking pages when Graph fails heavy pages.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use secgraph::export::{ExportOptions, Stream, compact, export_stream};
use secgraph::{ConnectOptions, QueryProvider, Row};
use secgraph_emulator::faults::FaultSpec;
use secgraph_emulator::{Emulator, EmulatorConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

async fn setup(alerts: usize, faults: Option<&str>) -> (Emulator, secgraph::config::Settings, reqwest::Client) {
    let emu = Emulator::start(EmulatorConfig {
        alerts,
        faults: faults.map(|f| FaultSpec::parse(f).unwrap()),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    (emu, s, http)
}

async fn churn(emu: &Emulator, http: &reqwest::Client, new: usize, update: usize) {
    let r = http
        .post(format!("{}/_emulator/churn", emu.base_url()))
        .json(&serde_json::json!({"new": new, "update": update}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn connect(s: &secgraph::config::Settings, instance: &str) -> QueryProvider {
    let o = ConnectOptions {
        instance: Some(instance.into()),
        requests_per_minute: Some((100_000, 100_000)),
        ..Default::default()
    };
    QueryProvider::connect(Some(s), &o).await.unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every stored version of a stream: (tenant, id, lastUpdateDateTime in µs), with how many times each is stored.
fn versions(root: &Path, stream: &str) -> BTreeMap<(String, String, i64), usize> {
    let mut out = BTreeMap::new();
    for f in files(&root.join(format!("stream={stream}"))) {
        assert!(f.extension().is_some_and(|e| e == "parquet"), "left behind: {}", f.display());
        let tenant = f
            .components()
            .find_map(|c| c.as_os_str().to_str()?.strip_prefix("tenant=").map(str::to_string))
            .unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b: RecordBatch = b.unwrap();
            let ids = b.column_by_name("id").unwrap().as_string::<i32>().clone();
            let ts = b
                .column_by_name("lastUpdateDateTime")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            for i in 0..b.num_rows() {
                *out.entry((tenant.clone(), ids.value(i).to_string(), ts.value(i))).or_insert(0) += 1;
            }
        }
    }
    out
}

/// What the service holds now: id → lastUpdateDateTime (µs).
async fn current(p: &QueryProvider, path: &str) -> BTreeMap<String, i64> {
    let mut rows: Vec<Row> = Vec::new();
    p.exec(path, &mut rows).await.unwrap();
    rows.iter()
        .map(|r| {
            let v = r.to_value();
            let t = chrono::DateTime::parse_from_rfc3339(v["lastUpdateDateTime"].as_str().unwrap()).unwrap();
            (v["id"].as_str().unwrap().to_string(), t.timestamp_micros())
        })
        .collect()
}

fn latest(v: &BTreeMap<(String, String, i64), usize>, tenant: &str) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (t, id, ts) in v.keys() {
        if t == tenant {
            let e = out.entry(id.clone()).or_insert(*ts);
            *e = (*e).max(*ts);
        }
    }
    out
}

#[tokio::test]
async fn two_tenants_with_changes_keep_every_version_once_and_the_latest_equals_the_service() {
    let (emu, s, http) = setup(150, None).await;
    let root = tempfile::tempdir().unwrap();
    let opts = ExportOptions::new(root.path());
    let tenants = [connect(&s, "Default").await, connect(&s, "Fabrikam").await];
    let mut expected_versions: BTreeSet<(String, String, i64)> = BTreeSet::new();

    for round in 0..4 {
        // Every version that exists at the run's start must end up stored.
        for p in &tenants {
            for (id, ts) in current(p, "/security/alerts_v2?$top=500").await {
                expected_versions.insert((p.info().tenant_id.clone(), id, ts));
            }
        }
        for (p, name) in tenants.iter().zip(["Default", "Fabrikam"]) {
            for stream in Stream::ALL {
                let r = export_stream(p, name, stream, &opts).await;
                assert_eq!(r.error, None, "round {round} {name} {}", stream.name());
                if round == 3 && stream == Stream::AlertsV2 {
                    assert_eq!(r.new_versions, 0, "no change since the last run: nothing new");
                }
            }
        }
        if round < 2 {
            // Changes between runs: new alerts, updates (several at one instant: ties at the next watermark).
            churn(&emu, &http, 5, 12).await;
        }
    }
    let stored = versions(root.path(), "alerts_v2");
    assert!(stored.values().all(|n| *n == 1), "a version stored twice");
    let stored_keys: BTreeSet<_> = stored.keys().cloned().collect();
    assert!(
        expected_versions.is_subset(&stored_keys),
        "a version that existed at a run's start is missing"
    );
    for p in &tenants {
        let now = current(p, "/security/alerts_v2?$top=500").await;
        assert_eq!(
            latest(&stored, &p.info().tenant_id),
            now,
            "latest version per id = the service's state"
        );
    }
    let incidents = versions(root.path(), "incidents");
    assert!(!incidents.is_empty() && incidents.values().all(|n| *n == 1));

    // compact: one row per id, the latest.
    let counts = compact(root.path()).unwrap();
    let current_rows = versions(&root.path().join("current"), "alerts_v2");
    assert_eq!(counts["alerts_v2"], current_rows.len());
    for p in &tenants {
        let now = current(p, "/security/alerts_v2?$top=500").await;
        assert_eq!(latest(&current_rows, &p.info().tenant_id), now);
        assert_eq!(current_rows.keys().filter(|(t, _, _)| *t == p.info().tenant_id).count(), now.len());
    }
}

#[tokio::test]
async fn changes_during_a_run_are_caught_by_that_run_or_the_next() {
    let (emu, s, http) = setup(400, Some("alerts_v2:slow-first-byte(30)")).await;
    let root = tempfile::tempdir().unwrap();
    let mut opts = ExportOptions::new(root.path());
    opts.page_size = 20;
    let p = connect(&s, "Default").await;
    let run = export_stream(&p, "Default", Stream::AlertsV2, &opts);
    let changes = async {
        for _ in 0..6 {
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
            churn(&emu, &http, 2, 6).await;
        }
    };
    let (r, ()) = tokio::join!(run, changes);
    assert_eq!(r.error, None);
    let r2 = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(r2.error, None);
    let stored = versions(root.path(), "alerts_v2");
    assert!(stored.values().all(|n| *n == 1));
    assert_eq!(
        latest(&stored, &p.info().tenant_id),
        current(&p, "/security/alerts_v2?$top=1000").await
    );
}

#[tokio::test]
async fn an_interrupted_commit_is_finished_and_uncommitted_files_are_removed() {
    let (_emu, s, _http) = setup(60, None).await;
    let root = tempfile::tempdir().unwrap();
    let opts = ExportOptions::new(root.path());
    let p = connect(&s, "Default").await;
    let tenant = p.info().tenant_id.clone();
    let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(r.error, None);
    let want = versions(root.path(), "alerts_v2");

    // As if a run had committed its checkpoint and died before renaming its files: the next run renames them.
    let cp = root.path().join(format!("_checkpoints/stream=alerts_v2/tenant={tenant}.json"));
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    let first = r.files[0].clone();
    std::fs::rename(root.path().join(&first), root.path().join(format!("{first}.pending"))).unwrap();
    state["pending"] = serde_json::json!([first]);
    std::fs::write(&cp, serde_json::to_vec(&state).unwrap()).unwrap();
    // And as if another had died before committing: its pending and temporary files are removed.
    let dir = root.path().join(&r.files[1]).parent().unwrap().to_path_buf();
    std::fs::write(dir.join("part-0-crashed.parquet.pending"), b"half").unwrap();
    std::fs::write(dir.join(".secgraph-x.partial"), b"half").unwrap();

    let again = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(again.error, None);
    assert_eq!(versions(root.path(), "alerts_v2"), want);
}

#[tokio::test]
async fn heavy_pages_failing_with_500_make_the_export_shrink_and_finish() {
    let (_emu, s, _http) = setup(120, Some("incidents:500@first=3")).await;
    let root = tempfile::tempdir().unwrap();
    let p = connect(&s, "Default").await;
    let r = export_stream(&p, "Default", Stream::Incidents, &ExportOptions::new(root.path())).await;
    assert_eq!(r.error, None);
    assert_eq!(r.shrinks, 1);
    assert_eq!(r.page_size, 500);
    let stored = versions(root.path(), "incidents");
    assert_eq!(
        latest(&stored, &p.info().tenant_id),
        current(&p, "/security/incidents?$top=50").await
    );
}
