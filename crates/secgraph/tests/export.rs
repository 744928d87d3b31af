//! Incremental export against the emulator with changes applied between and during runs: every version once, the
//! dataset's latest version per id equal to what the emulator holds, ties at the watermark, recovery of an
//! interrupted commit, and shrinking pages when Graph fails heavy pages.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use secgraph::export::{ExportOptions, Root, Stream, compact, export_stream};
use secgraph::{ConnectOptions, QueryProvider, Row};
use secgraph_emulator::faults::FaultSpec;
use secgraph_emulator::{Emulator, EmulatorConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

async fn setup(alerts: usize, faults: Option<&str>) -> (Emulator, secgraph::config::Settings, reqwest::Client) {
    start(EmulatorConfig {
        alerts,
        faults: faults.map(|f| FaultSpec::parse(f).unwrap()),
        ..Default::default()
    })
    .await
}

/// An emulator, its settings, and an HTTP client that trusts it.
async fn start(config: EmulatorConfig) -> (Emulator, secgraph::config::Settings, reqwest::Client) {
    let emu = Emulator::start(config).await.unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    (emu, s, http)
}

/// An emulator of 60 alerts whose changes reach reads `lag` after their time.
async fn lagged(lag: std::time::Duration) -> (Emulator, secgraph::config::Settings, reqwest::Client) {
    start(EmulatorConfig {
        alerts: 60,
        ingestion_lag: Some(lag),
        ..Default::default()
    })
    .await
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
                let r = export_stream(p, name, stream.clone(), &opts).await;
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
    let counts = compact(&Root::local(root.path())).await.unwrap();
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

/// Azurite (the Azure Storage emulator, from npm; `scripts/test` installs it under `.tools/azurite`), on an ephemeral
/// loopback port, in memory, telemetry off. Stopped when dropped.
struct Azurite {
    child: std::process::Child,
    port: u16,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azurite's documented development account (public, in Microsoft's docs; not a secret).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn azurite() -> Azurite {
    use std::io::BufRead;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::env::var_os("AZURITE_BLOB")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".tools/azurite/node_modules/.bin/azurite-blob"));
    assert!(
        bin.exists(),
        "Azurite is not installed at {}: scripts/test installs it (npm install --prefix .tools/azurite azurite@3), or set AZURITE_BLOB",
        bin.display()
    );
    let mut child = std::process::Command::new(&bin)
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--disableTelemetry",
        ])
        .arg("--skipApiVersionCheck")
        // Azurite writes a debug log and settings into its working folder: a temporary one.
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(port) = line.split("listens on http://127.0.0.1:").nth(1) {
                let _ = tx.send(port.trim().parse::<u16>().ok());
            }
        }
    });
    let port = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .ok()
        .flatten()
        .expect("Azurite did not say which port it listens on");
    Azurite { child, port }
}

impl Azurite {
    fn options(&self) -> Vec<(String, String)> {
        [
            ("azure_storage_account_name", AZURITE_ACCOUNT.to_string()),
            ("azure_storage_account_key", AZURITE_KEY.to_string()),
            (
                "azure_storage_endpoint",
                format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port),
            ),
            ("allow_http", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Creates a container (Shared Key signed, as Azure documents it for the emulator's path-style URLs).
    async fn create_container(&self, name: &str) {
        use base64::Engine as _;
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY).unwrap();
        let signature = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, to_sign.as_bytes()));
        let r = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}/{name}?restype=container", self.port))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("authorization", format!("SharedKey {AZURITE_ACCOUNT}:{signature}"))
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap_or_default());
    }
}

/// HMAC-SHA256 (RFC 2104), for the one signed request the test makes itself.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let hashed;
    let key = if key.len() > 64 {
        hashed = Sha256::digest(key);
        &hashed[..]
    } else {
        key
    };
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

/// Copies every object under an object-store root into a local folder, to read it as the local tests do.
async fn download(root: &Root, into: &Path) {
    for rel in secgraph_list(root).await {
        let dest = rel.split('/').fold(into.to_path_buf(), |p, part| p.join(part));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, secgraph_get(root, &rel).await).unwrap();
    }
}

/// Every object under an object-store root (relative names), listed with `object_store` directly.
async fn secgraph_list(root: &Root) -> Vec<String> {
    use futures_util::TryStreamExt;
    let Root::Object { store, prefix, .. } = root else {
        panic!("an object root")
    };
    let skip = prefix.parts().count();
    let metas: Vec<object_store::ObjectMeta> = store.list(Some(prefix)).try_collect().await.unwrap();
    let mut out: Vec<String> = metas
        .iter()
        .map(|m| {
            m.location
                .parts()
                .skip(skip)
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    out.sort();
    out
}

async fn secgraph_get(root: &Root, rel: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt as _;
    let Root::Object { store, prefix, .. } = root else {
        panic!("an object root")
    };
    let path = object_store::path::Path::from(format!("{}/{rel}", prefix.as_ref()));
    store.get(&path).await.unwrap().bytes().await.unwrap().to_vec()
}

/// The Azure Blob path: the same export into Azurite and into a local folder gives the same versions, files are
/// committed (no `.pending` left), runs resume from the checkpoints kept in the container, and compact writes the
/// current state there.
#[tokio::test]
async fn an_azure_blob_root_holds_the_same_dataset_as_a_local_one() {
    let az = azurite();
    az.create_container("lake").await;
    let (emu, s, http) = setup(120, None).await;
    let local = tempfile::tempdir().unwrap();
    let remote = Root::parse("az://lake/security", &az.options()).unwrap();
    let p = connect(&s, "Default").await;
    for round in 0..2 {
        for stream in Stream::ALL {
            for opts in [ExportOptions::new(local.path()), ExportOptions::with_root(remote.clone())] {
                let r = export_stream(&p, "Default", stream.clone(), &opts).await;
                assert_eq!(r.error, None, "round {round} {} into {:?}", stream.name(), opts.root);
                assert!(round == 1 || r.new_versions > 0);
            }
        }
        churn(&emu, &http, 4, 10).await;
    }
    let (l, r) = (compact(&Root::local(local.path())).await.unwrap(), compact(&remote).await.unwrap());
    assert_eq!(l, r);
    let copy = tempfile::tempdir().unwrap();
    download(&remote, copy.path()).await;
    for stream in ["alerts_v2", "incidents"] {
        let (a, b) = (versions(local.path(), stream), versions(copy.path(), stream));
        assert!(!a.is_empty() && b.values().all(|n| *n == 1));
        assert_eq!(
            a.keys().collect::<BTreeSet<_>>(),
            b.keys().collect::<BTreeSet<_>>(),
            "{stream}: the same versions in both roots"
        );
        assert_eq!(
            versions(&local.path().join("current"), stream),
            versions(&copy.path().join("current"), stream)
        );
    }
    let names = secgraph_list(&remote).await;
    assert!(
        names.iter().any(|n| n.starts_with("_checkpoints/stream=alerts_v2/tenant=")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.ends_with(".pending") || n.ends_with(".partial")),
        "{names:?}"
    );
}

/// When even the smallest pages keep failing (the emulator fails every incidents request covering more than 8 days,
/// as a big tenant's heavy `$expand` pages do), the run splits its time window until the pieces pass, and stores
/// every version once.
#[tokio::test]
async fn heavy_time_ranges_failing_with_500_make_the_export_split_its_window() {
    let (_emu, s, _http) = setup(120, Some("incidents:500@wide=8d")).await;
    let root = tempfile::tempdir().unwrap();
    let p = connect(&s, "Default").await;
    let mut opts = ExportOptions::new(root.path());
    opts.page_size = 20;
    opts.since = Some(chrono::Utc::now() - chrono::Duration::days(15));
    let r = export_stream(&p, "Default", Stream::Incidents, &opts).await;
    assert_eq!(r.error, None);
    assert!(r.splits >= 1, "{r:?}");
    assert!(r.shrinks >= 1, "{r:?}");
    let stored = versions(root.path(), "incidents");
    assert!(stored.values().all(|n| *n == 1), "a version stored twice");
    // Every incident updated in the last 15 days is there (and nothing older: `since`).
    // (Read back in 5-day windows: the fault fails wider reads.)
    let since = opts.since.unwrap();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for k in 0..3 {
        let from = (since + chrono::Duration::days(5 * k)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let to = match k {
            2 => String::new(),
            _ => format!(
                " and lastUpdateDateTime lt {}",
                (since + chrono::Duration::days(5 * (k + 1))).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        };
        want.extend(current(&p, &format!("/security/incidents?$top=50&$filter=lastUpdateDateTime ge {from}{to}")).await);
    }
    assert!(!want.is_empty());
    assert_eq!(latest(&stored, &p.info().tenant_id), want);
    // The next run reads from its watermark: a narrow window, no split needed.
    let again = export_stream(&p, "Default", Stream::Incidents, &opts).await;
    assert_eq!((again.error, again.splits, again.new_versions), (None, 0, 0));
}

/// A named advanced-hunting query as a stream: its rows stored once (keyed by content and Timestamp), typed by the
/// reply's schema, the next run adding nothing; an aggregate query (no Timestamp) is refused, saying why.
#[tokio::test]
async fn a_hunting_query_exports_as_a_stream_of_rows_kept_once() {
    let (_emu, s, _http) = setup(60, None).await;
    let root = tempfile::tempdir().unwrap();
    let p = connect(&s, "Default").await;
    let name = "HuntProcess.lsass_dump_command";
    let stream = Stream::parse(&format!("hunting:{name}")).unwrap();
    let opts = ExportOptions::new(root.path());
    let r = export_stream(&p, "Default", stream.clone(), &opts).await;
    assert_eq!(r.error, None);
    let mut direct: Vec<serde_json::Value> = Vec::new();
    let range = [("start".to_string(), "-30d".to_string()), ("end".to_string(), "now".to_string())];
    p.run(name, &range, &mut direct).await.unwrap();
    assert!(!direct.is_empty());
    assert_eq!(r.new_versions, direct.len());
    // Typed as the reply declared: Timestamp is a UTC timestamp column.
    let dir = root.path().join(format!("stream=hunting.{name}"));
    let mut rows = 0;
    for f in files(&dir) {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap()).unwrap();
        let field = reader.schema().field_with_name("Timestamp").unwrap().clone();
        assert!(
            matches!(field.data_type(), arrow_schema::DataType::Timestamp(_, Some(_))),
            "{field:?}"
        );
        rows += reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum::<usize>();
    }
    assert_eq!(rows, direct.len());
    let again = export_stream(&p, "Default", stream, &opts).await;
    assert_eq!((again.error, again.new_versions), (None, 0));
    let agg = export_stream(&p, "Default", Stream::parse("hunting:HuntNetwork.beaconing").unwrap(), &opts).await;
    assert!(agg.error.as_deref().is_some_and(|e| e.contains("no Timestamp column")), "{agg:?}");
}

/// A second writer of the same (root, stream, tenant) fails at once with a message naming the tenant and the lock,
/// and changes nothing; when the first is done, the next run goes on as usual.
#[tokio::test]
async fn a_second_writer_of_a_tenant_and_stream_fails_at_once_naming_the_lock() {
    let (_emu, s, _http) = setup(60, None).await;
    let root = tempfile::tempdir().unwrap();
    let opts = ExportOptions::new(root.path());
    let p = connect(&s, "Default").await;
    let tenant = secgraph::export::tenant_key(p.info());
    let first = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(first.error, None);
    let before = versions(root.path(), "alerts_v2");

    let held = secgraph::export::Lease::acquire(&Root::local(root.path()), "alerts_v2", &tenant)
        .await
        .unwrap();
    // Left by a run that is (as far as anyone can tell) still writing: the second writer must not touch it.
    let dir = root.path().join(&first.files[0]).parent().unwrap().to_path_buf();
    std::fs::write(dir.join("part-0-inflight.parquet.pending"), b"in flight").unwrap();
    let second = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    let e = second.error.expect("the second writer is refused");
    assert!(
        e.contains(&tenant) && e.contains("_locks/stream=alerts_v2") && e.contains("held by process"),
        "{e}"
    );
    assert!(
        dir.join("part-0-inflight.parquet.pending").exists(),
        "the refused writer deleted a live writer's file"
    );
    // Another stream of the same tenant is not held.
    let other = export_stream(&p, "Default", Stream::Incidents, &opts).await;
    assert_eq!(other.error, None);

    held.release().await;
    let third = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(third.error, None);
    assert!(
        !dir.join("part-0-inflight.parquet.pending").exists(),
        "recovery under the lock removes it"
    );
    assert_eq!(versions(root.path(), "alerts_v2"), before);
}

/// Chaos: changes between rounds, three exports of one root at once in every round (25 rounds), then two clean
/// runs: every version the service ever showed is stored exactly once, and the losers were told of the lock.
async fn three_writers_at_once(root: Root, local: Option<&Path>) {
    let (emu, s, http) = setup(80, None).await;
    let p = connect(&s, "Default").await;
    let opts = ExportOptions::with_root(root.clone());
    let mut truth: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut refused = 0;
    for round in 0..25 {
        if round > 0 {
            churn(&emu, &http, 2, 4).await;
        }
        for (id, t) in current(&p, "/security/alerts_v2").await {
            truth.insert((id, t));
        }
        let names = ["writer0", "writer1", "writer2"];
        let reports = futures_util::future::join_all(names.iter().map(|n| export_stream(&p, n, Stream::AlertsV2, &opts))).await;
        for r in &reports {
            if let Some(e) = &r.error {
                assert!(
                    e.contains("_locks/stream=alerts_v2") && e.contains("another export is writing"),
                    "{e}"
                );
                refused += 1;
            }
        }
        assert!(reports.iter().any(|r| r.error.is_none()), "round {round}: every writer failed");
    }
    for _ in 0..2 {
        let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
        assert_eq!(r.error, None);
    }
    let dir = match local {
        Some(d) => d.to_path_buf(),
        None => {
            let d = tempfile::tempdir().unwrap().keep();
            download(&root, &d).await;
            d
        }
    };
    let stored = versions(&dir, "alerts_v2");
    assert!(stored.values().all(|n| *n == 1), "a version stored twice");
    let stored: BTreeSet<(String, i64)> = stored.into_keys().map(|(_, id, t)| (id, t)).collect();
    assert_eq!(stored, truth, "the dataset differs from every version the service showed");
    assert!(refused > 0, "no round had two writers at once: the chaos test tested nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_exports_of_one_root_store_every_version_once() {
    let dir = tempfile::tempdir().unwrap();
    three_writers_at_once(Root::local(dir.path()), Some(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_exports_of_one_azure_root_store_every_version_once() {
    let az = azurite();
    az.create_container("chaos").await;
    let root = Root::parse("az://chaos/security", &az.options()).unwrap();
    three_writers_at_once(root, None).await;
}

/// A checkpoint is input: a pending path out of its folder, a watermark that is not a time or is in the future, are
/// refused with a message naming the checkpoint; nothing outside the root is touched.
#[tokio::test]
async fn tampered_checkpoints_are_refused() {
    let (_emu, s, _http) = setup(30, None).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let opts = ExportOptions::new(&root);
    let p = connect(&s, "Default").await;
    let tenant = secgraph::export::tenant_key(p.info());
    assert_eq!(export_stream(&p, "Default", Stream::AlertsV2, &opts).await.error, None);
    let cp = root.join(format!("_checkpoints/stream=alerts_v2/tenant={tenant}.json"));
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    let victim = dir.path().join("outside/victim");
    std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
    std::fs::write(&victim, b"mine").unwrap();
    std::fs::write(dir.path().join("outside/victim.pending"), b"evil").unwrap();

    let cases: [(&str, serde_json::Value, &str); 4] = [
        (
            "path escape",
            serde_json::json!({"pending": ["../outside/victim"]}),
            "not a data file",
        ),
        (
            "watermark text",
            serde_json::json!({"watermark": "2026-01-01T00:00:00Z or severity eq 'high'"}),
            "is not a time",
        ),
        (
            "future watermark",
            serde_json::json!({"watermark": "2999-01-01T00:00:00Z"}),
            "in the future",
        ),
        ("not JSON", serde_json::json!(null), "not readable"),
    ];
    for (what, patch, want) in cases {
        let mut state = good.clone();
        if patch.is_null() {
            std::fs::write(&cp, b"{ half").unwrap();
        } else {
            for (k, v) in patch.as_object().unwrap() {
                state[k] = v.clone();
            }
            std::fs::write(&cp, serde_json::to_vec(&state).unwrap()).unwrap();
        }
        let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
        let e = r.error.unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(e.contains(want) && e.contains("_checkpoints/stream=alerts_v2"), "{what}: {e}");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"mine", "a file outside the root was replaced");
}

/// A checkpoint lost over an existing dataset stops the run (nothing stored twice); rebuilding it from the data
/// goes on without storing anything twice.
#[tokio::test]
async fn a_lost_checkpoint_is_detected_and_can_be_rebuilt_from_the_data() {
    let (emu, s, http) = setup(60, None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ExportOptions::new(dir.path());
    let p = connect(&s, "Default").await;
    let tenant = secgraph::export::tenant_key(p.info());
    assert_eq!(export_stream(&p, "Default", Stream::AlertsV2, &opts).await.error, None);
    let want = versions(dir.path(), "alerts_v2");
    std::fs::remove_file(dir.path().join(format!("_checkpoints/stream=alerts_v2/tenant={tenant}.json"))).unwrap();

    let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    let e = r.error.expect("a missing checkpoint over data is refused");
    assert!(e.contains("is missing") && e.contains("rebuild"), "{e}");
    assert_eq!(versions(dir.path(), "alerts_v2"), want, "the refused run wrote something");

    opts.missing_checkpoint = secgraph::export::MissingCheckpoint::Rebuild;
    churn(&emu, &http, 3, 3).await;
    let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(r.error, None);
    let after = versions(dir.path(), "alerts_v2");
    assert!(after.values().all(|n| *n == 1), "rebuilding stored a version twice");
    assert!(after.len() >= want.len() + 3, "the changes after the rebuild were stored");
    let service = current(&p, "/security/alerts_v2").await;
    assert_eq!(latest(&after, &tenant), service);
}

/// The same tenant named three ways (lower-case GUID, upper-case GUID, domain) is one partition, one checkpoint.
#[tokio::test]
async fn one_tenant_spelled_three_ways_is_one_partition() {
    let (_emu, s, _http) = setup(40, None).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = ExportOptions::new(dir.path());
    let p = connect(&s, "Default").await;
    let guid = p.info().tenant_id.clone();
    let mut first = None;
    for spelled in [
        guid.to_ascii_lowercase(),
        guid.to_ascii_uppercase(),
        secgraph_emulator::directory::DEMO_TENANT_DOMAIN.to_string(),
    ] {
        let o = ConnectOptions {
            instance: Some("Default".into()),
            tenant_id: Some(spelled.clone()),
            requests_per_minute: Some((100_000, 100_000)),
            ..Default::default()
        };
        let q = QueryProvider::connect(Some(&s), &o).await.unwrap();
        let r = export_stream(&q, "Default", Stream::AlertsV2, &opts).await;
        assert_eq!(r.error, None, "{spelled}");
        assert_eq!(r.tenant_id, guid.to_ascii_lowercase(), "{spelled}");
        if first.is_none() {
            first = Some(r.new_versions);
        } else {
            assert_eq!(r.new_versions, 0, "{spelled}: stored again");
        }
    }
    let tenants: BTreeSet<String> = versions(dir.path(), "alerts_v2").into_keys().map(|(t, _, _)| t).collect();
    assert_eq!(tenants.len(), 1, "{tenants:?}");
}

/// `compact` reads committed files still named `.pending`, and fails, naming it, on a folder it cannot read.
#[tokio::test]
async fn compact_is_complete_or_fails() {
    let (_emu, s, _http) = setup(50, None).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = ExportOptions::new(dir.path());
    let p = connect(&s, "Default").await;
    let tenant = secgraph::export::tenant_key(p.info());
    let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(r.error, None);
    // As if the run had died between its commit and its renames.
    let cp = dir.path().join(format!("_checkpoints/stream=alerts_v2/tenant={tenant}.json"));
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    state["pending"] = serde_json::json!(r.files);
    std::fs::write(&cp, serde_json::to_vec(&state).unwrap()).unwrap();
    for f in &r.files {
        std::fs::rename(dir.path().join(f), dir.path().join(format!("{f}.pending"))).unwrap();
    }
    let counts = compact(&Root::local(dir.path())).await.unwrap();
    assert_eq!(counts["alerts_v2"], 50, "committed pending files are compacted");

    // An unreadable folder is an error, not a smaller result. (Root ignores permissions; skip the check then.)
    let date_dir = dir.path().join(&r.files[0]).parent().unwrap().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&date_dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read_dir(&date_dir).is_ok();
    let result = compact(&Root::local(dir.path())).await;
    std::fs::set_permissions(&date_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if !readable {
        let e = result.unwrap_err().to_string();
        assert!(e.contains("cannot list") && e.contains("date="), "{e}");
    }
}

/// Graph's ingestion lag at its real size (15 minutes), with the emulator's clock moved between runs: a change is not
/// there at 14 minutes, is there at 16; it is stored once, counted late, and the overlap grows past the lag (the
/// export keeps time by the service's clock, from its replies' `Date`).
#[tokio::test]
async fn a_fifteen_minute_ingestion_lag_with_the_clock_moved_between_runs() {
    let (emu, s, http) = lagged(std::time::Duration::from_secs(15 * 60)).await;
    let root = tempfile::tempdir().unwrap();
    let opts = ExportOptions::new(root.path());
    let p = connect(&s, "Default").await;
    assert_eq!(export_stream(&p, "Default", Stream::AlertsV2, &opts).await.error, None);
    churn(&emu, &http, 3, 5).await;
    emu.advance_clock(std::time::Duration::from_secs(14 * 60));
    let before = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(before.error, None);
    emu.advance_clock(std::time::Duration::from_secs(2 * 60));
    let after = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(after.error, None);
    assert!(after.late_versions >= 8, "{after:?}");
    assert!(after.overlap_secs >= 15 * 60, "the overlap covers the lag: {after:?}");
    let stored = versions(root.path(), "alerts_v2");
    assert!(stored.values().all(|n| *n == 1), "a version stored twice");
    let tenant = secgraph::export::tenant_key(p.info());
    assert_eq!(latest(&stored, &tenant), current(&p, "/security/alerts_v2").await);
}
