//! `secgraph export` as a process: stopped at 20 seeded points of its progress (as SIGKILL would) and run again, the dataset equals an
//! uninterrupted run's; shards 0/2 and 1/2 together equal an unsharded run; the summary file.

mod common;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use common::{BIN, emulator};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn export(cfg: &Path, root: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .args(["--instance", "Default,Fabrikam", "export", "--root"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap()
}

/// Every file of the dataset proper: folders named `_…` (checkpoints, locks, quarantine) are skipped, as Hive,
/// Spark and DuckDB skip them.
fn parquet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('_') {
            continue;
        }
        if p.is_dir() {
            parquet_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every stored row: (stream, tenant, id, lastUpdateDateTime µs) → times stored. Fails on any stray file.
fn dataset(root: &Path) -> BTreeMap<(String, String, String, i64), usize> {
    let mut files = Vec::new();
    parquet_files(root, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        assert!(f.extension().is_some_and(|e| e == "parquet"), "stray file {}", f.display());
        let part = |key: &str| {
            f.components()
                .find_map(|c| c.as_os_str().to_str()?.strip_prefix(key).map(str::to_string))
                .unwrap()
        };
        let (stream, tenant) = (part("stream="), part("tenant="));
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = b.column_by_name("id").unwrap().as_string::<i32>().clone();
            let ts = b
                .column_by_name("lastUpdateDateTime")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            for i in 0..b.num_rows() {
                *out.entry((stream.clone(), tenant.clone(), ids.value(i).to_string(), ts.value(i)))
                    .or_insert(0) += 1;
            }
        }
    }
    out
}

/// The dataset an uninterrupted export of the emulator writes (two tenants × two streams), checked against the run's
/// own summary.
fn uninterrupted(dir: &Path, cfg: &Path) -> BTreeMap<(String, String, String, i64), usize> {
    let whole = dir.join("whole");
    let summary = dir.join("summary.json");
    let out = export(cfg, &whole, &["--summary", summary.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = dataset(&whole);
    assert!(want.len() > 500 && want.values().all(|n| *n == 1));
    let reports: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 4, "two tenants × two streams");
    let new: u64 = reports.iter().map(|r| r["new_versions"].as_u64().unwrap()).sum();
    assert_eq!(new as usize, want.len());
    want
}

/// An export into `root` stopped (aborted, as `kill -9` would: no destructor, no flush) the `nth` time it reaches a
/// named point of its progress (see `secgraph::export`'s crash points). Fails when the run ends before that point:
/// a crash point that is never reached tests nothing.
fn crash_at(cfg: &Path, root: &Path, point: &str, nth: usize) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .args(["--instance", "Default,Fabrikam", "export", "--page-size", "25", "--root"])
        .arg(root)
        .env("SECGRAPH_EXPORT_CRASH_AT", format!("{point}#{nth}"))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(6),
        "the run was to abort at {point}#{nth}, but ended with {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Five seeded crashes at named points of the export's progress into one root, then a run to the end: the dataset
/// equals an uninterrupted run's (no version lost or stored twice). The points are chosen so each is reached
/// whatever came before: every run takes each (tenant, stream) lock, reads at least one page of each and commits
/// each; a fresh root's first run also stages and renames files.
fn killed_five_times_then_rerun(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "250"]);
    let want = uninterrupted(dir.path(), &cfg);
    let root = dir.path().join("killed");
    let mut seed = seed;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 33) % n) as usize
    };
    // Reached by the first run of a fresh root (two tenants × two streams, 250 alerts in pages of 25).
    let first: [(&str, usize); 5] = [
        ("page", 1 + next(12)),
        ("staged", 1 + next(6)),
        ("committed", 1 + next(4)),
        ("renamed", 1 + next(4)),
        ("locked", 1 + next(4)),
    ];
    let (point, nth) = first[next(5)];
    crash_at(&cfg, &root, point, nth);
    // Reached by any run: four locks, at least four pages, four commits.
    for _ in 0..4 {
        let point = ["locked", "page", "committed"][next(3)];
        crash_at(&cfg, &root, point, 1 + next(4));
    }
    let out = export(&cfg, &root, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(dataset(&root), want, "the dataset after crashes differs from an uninterrupted run");
}

// 20 seeded kill points in all, as four tests of five (they run in parallel).
#[test]
fn killed_at_any_point_then_rerun_equals_an_uninterrupted_run_a() {
    killed_five_times_then_rerun(0x5eed);
}

#[test]
fn killed_at_any_point_then_rerun_equals_an_uninterrupted_run_b() {
    killed_five_times_then_rerun(0x5eed_0001);
}

#[test]
fn killed_at_any_point_then_rerun_equals_an_uninterrupted_run_c() {
    killed_five_times_then_rerun(0x5eed_0002);
}

#[test]
fn killed_at_any_point_then_rerun_equals_an_uninterrupted_run_d() {
    killed_five_times_then_rerun(0x5eed_0003);
}

#[test]
fn shards_add_up_to_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "250"]);
    let want = uninterrupted(dir.path(), &cfg);
    // Shards: 0/2 then 1/2 into one root equal the unsharded run.
    let sharded = dir.path().join("sharded");
    for k in ["0/2", "1/2"] {
        let out = export(&cfg, &sharded, &["--shard", k]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(dataset(&sharded), want);
    let bad = export(&cfg, &sharded, &["--shard", "2/2"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn follow_runs_again_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "60"]);
    let root = dir.path().join("lake");
    let summary = dir.path().join("summary.json");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["export", "--stream", "alerts_v2", "--follow", "1s", "--root"])
        .arg(&root)
        .arg("--summary")
        .arg(&summary)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a second round in the summary, then ask it to stop.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rounds = std::fs::read(&summary)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if rounds >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no second round");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    let reports: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports[0]["new_versions"], 60);
    assert!(
        reports[1..].iter().all(|r| r["new_versions"] == 0),
        "later rounds found nothing new"
    );
    assert_eq!(dataset(&root).len(), 60);
}

/// Two processes exporting the same tenant and stream into one root: the second fails at once (exit 6) with a
/// message naming the tenant and the lock, and leaves the first's files alone; after the first dies (SIGKILL,
/// while holding the lock), the next run completes the dataset exactly.
#[test]
fn a_second_process_on_the_same_tenant_fails_fast_naming_the_lock() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "120"]);
    let root = dir.path().join("lake");
    let run = |extra_env: Option<(&str, &str)>| {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(&cfg)
            .args(["export", "--stream", "alerts_v2", "--page-size", "20", "--root"])
            .arg(&root);
        if let Some((k, v)) = extra_env {
            c.env(k, v);
        }
        c
    };
    // The first stops after its third page, holding the lock, with staged files on disk.
    let mut first = run(Some(("SECGRAPH_EXPORT_PAUSE_AT", "page#3")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(first.stderr.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the first export ended before pausing").unwrap();
        if line.contains("paused at page#3") {
            break;
        }
    }
    let before: Vec<PathBuf> = {
        let mut v = Vec::new();
        parquet_files(&root, &mut v);
        v
    };
    let second = run(None).output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("another export is writing stream alerts_v2 of tenant")
            && stderr.contains("_locks/stream=alerts_v2/tenant=")
            && stderr.contains(&format!("process {}", first.id())),
        "{stderr}"
    );
    let after: Vec<PathBuf> = {
        let mut v = Vec::new();
        parquet_files(&root, &mut v);
        v
    };
    assert_eq!(before, after, "the refused process changed the dataset");

    first.kill().unwrap(); // SIGKILL: the OS releases its lock
    first.wait().unwrap();
    let third = run(None).output().unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    let stored = dataset(&root);
    assert_eq!(stored.len(), 120);
    assert!(stored.values().all(|n| *n == 1));
}

/// Credentials in an object-store root URL (user info, a SAS query) never reach stderr, at any verbosity.
#[test]
fn credentials_in_a_root_url_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "5"]);
    for root in [
        "https://user:PASSWORD1@acct.blob.core.windows.net/lake",
        "https://127.0.0.1:9/devstoreaccount1/lake?sv=2024-01-01&sp=rw&sig=SECRETSIG1",
        "s3://bucket/lake?X-Amz-Signature=SECRETSIG1",
    ] {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["-vvv", "export", "--stream", "alerts_v2", "--root", root])
            .env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{root}: {stderr}");
        assert!(!stderr.contains("PASSWORD1") && !stderr.contains("SECRETSIG1"), "{root}: {stderr}");
    }
}

/// An unattended export of every instance (stdin closed, nobody to sign in): the tenants that sign in alone are
/// exported; the instances that need a person (Key Vault's device code, a delegated user) fail at once, named, and
/// the run ends partial (exit 8) instead of waiting.
#[test]
fn an_unattended_export_of_every_instance_never_waits_for_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "40"]);
    let root = dir.path().join("lake");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["--all-instances", "export", "--root"])
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    for instance in ["KeyVault", "Delegated"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("{instance} alerts_v2: FAILED")) && l.contains("must sign in")),
            "{instance}: {stderr}"
        );
    }
    let tenants: std::collections::BTreeSet<String> = dataset(&root).into_keys().map(|(_, t, _, _)| t).collect();
    assert_eq!(tenants.len(), 2, "the demo tenant and Fabrikam: {tenants:?}");
}

/// SIGTERM during a run ends it at once (the run in hand is abandoned, not finished); the next run completes the
/// dataset as if nothing had happened.
#[test]
fn sigterm_during_a_run_ends_it_promptly_and_the_next_run_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // The first alerts request takes 60 s to answer: a run stuck on a slow tenant.
    let (_emu, cfg) = emulator(
        dir.path(),
        &["--alerts", "60", "--faults", "alerts_v2:slow-first-byte(60000)@first=1"],
    );
    let root = dir.path().join("lake");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["export", "--stream", "incidents,alerts_v2", "--root"])
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the incidents stream is committed, so the run is inside the slow alerts request.
    let cp = root.join("_checkpoints/stream=incidents");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&cp).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "the incidents stream never committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Far below the 60 s the slow request would take: the signal abandoned it.
    assert!(took < Duration::from_secs(20), "took {took:?}: {stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("abandoned"), "{stderr}");
    let again = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["export", "--stream", "incidents,alerts_v2", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let stored = dataset(&root);
    assert!(stored.values().all(|n| *n == 1));
    assert_eq!(stored.keys().filter(|(s, ..)| s == "alerts_v2").count(), 60);
}

/// A tenants file drives the export: shards of it add up to the unsharded run; a tenant that cannot be read fails by
/// name while the others are exported (exit 8); a tenant added to the file starts its own checkpoint; one removed
/// keeps its data untouched.
#[test]
fn a_tenants_file_exports_each_tenant_once_sharded_or_not_and_follows_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, cfg) = emulator(dir.path(), &["--tenants", "6", "--alerts", "30", "--alerts-per-tenant", "20"]);
    let mssp = |root: &Path, extra: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["--instance", "MSSP", "export", "--root"])
            .arg(root)
            .args(extra)
            .output()
            .unwrap()
    };
    let whole = dir.path().join("whole");
    let out = mssp(&whole, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("Customer 0005"), "the tenant without roles is named: {stderr}");
    let unsharded = dataset(&whole);
    let tenants: std::collections::BTreeSet<&String> = unsharded.keys().map(|(_, t, _, _)| t).collect();
    assert_eq!(tenants.len(), 5, "six customers, one without roles");
    let sharded_root = dir.path().join("sharded");
    for shard in ["0/2", "1/2"] {
        let out = mssp(&sharded_root, &["--shard", shard]);
        assert!(
            matches!(out.status.code(), Some(0) | Some(8)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(dataset(&sharded_root), unsharded);
    drop(emu);

    // The file changes: a tenant added starts from nothing, a tenant removed is left as it is.
    let (_emu, cfg) = emulator(
        &dir.path().join("again"),
        &["--tenants", "6", "--alerts", "30", "--alerts-per-tenant", "20"],
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    let csv_path = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tenants: '").and_then(|p| p.strip_suffix('\'')))
        .unwrap()
        .to_string();
    let all: Vec<String> = std::fs::read_to_string(&csv_path)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    let file = dir.path().join("mine.csv");
    let root = dir.path().join("lake");
    let run = |rows: &[&String]| {
        let body: Vec<&str> = rows.iter().map(|r| r.as_str()).collect();
        std::fs::write(&file, format!("tenant,name,tags\n{}\n", body.join("\n"))).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["--instance", "MSSP", "--tenants"])
            .arg(&file)
            .args(["export", "--root"])
            .arg(&root)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        dataset(&root)
    };
    let id = |row: &String| row.split(',').next().unwrap().to_string();
    let two = run(&[&all[0], &all[1]]);
    let first_tenants: std::collections::BTreeSet<String> = two.keys().map(|(_, t, _, _)| t.clone()).collect();
    assert_eq!(first_tenants, [id(&all[0]), id(&all[1])].into_iter().collect());
    let three = run(&[&all[0], &all[1], &all[2]]);
    let added: Vec<_> = three.keys().filter(|(_, t, _, _)| *t == id(&all[2])).collect();
    assert!(!added.is_empty(), "the added tenant is exported");
    assert!(
        root.join(format!("_checkpoints/stream=alerts_v2/tenant={}.json", id(&all[2])))
            .exists()
    );
    let kept = run(&[&all[1], &all[2]]);
    assert_eq!(kept, three, "removing a tenant from the file leaves its data as it was");
}
