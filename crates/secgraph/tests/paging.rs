//! Never silently short: with an emulator that sends full pages and no `@odata.nextLink` (as alerts_v2 has been seen
//! to), every path — a named query, `exec` of a collection, `--split-by` slices, a two-tenant fan-out and an export —
//! returns exactly the ids the same seeded dataset returns with next links; ties at one instant lose and repeat
//! nothing; a `$skip` cap is never exceeded.

use secgraph::export::{ExportOptions, Stream, export_stream};
use secgraph::output::RowSink;
use secgraph::{ConnectOptions, QueryProvider, Row};
use secgraph_emulator::{Emulator, EmulatorConfig, NextLinks};
use std::collections::BTreeMap;

/// Collects every row's id, counting repeats.
#[derive(Default)]
struct Ids(BTreeMap<String, usize>);

impl RowSink for Ids {
    fn page(&mut self, rows: Vec<Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        for r in rows {
            // Across tenants an id is the tenant's: the fan-out tags each row with its TenantId.
            let tenant = r
                .to_value()
                .get("TenantId")
                .and_then(|t| t.as_str().map(str::to_string))
                .unwrap_or_default();
            *self.0.entry(format!("{tenant}/{}", r.id().unwrap_or_default())).or_insert(0) += 1;
        }
        Ok(std::ops::ControlFlow::Continue(()))
    }
}

impl Ids {
    fn once(&self) -> bool {
        self.0.values().all(|n| *n == 1)
    }
}

async fn emulator(next_links: NextLinks, as_of: chrono::DateTime<chrono::Utc>) -> (Emulator, secgraph::config::Settings) {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 5000,
        as_of: Some(as_of),
        next_links,
        max_skip: Some(500),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = secgraph::config::Settings::from_yaml(&emu.msticpy_config(), "emulator.yaml").unwrap();
    (emu, s)
}

async fn connect(s: &secgraph::config::Settings, instance: &str) -> QueryProvider {
    let o = ConnectOptions {
        instance: Some(instance.into()),
        requests_per_minute: Some((100_000, 100_000)),
        ..Default::default()
    };
    QueryProvider::connect(Some(s), &o).await.unwrap()
}

/// What each path returns from one emulator.
async fn every_path(s: &secgraph::config::Settings) -> Vec<(&'static str, Ids)> {
    let p = connect(s, "Default").await;
    let mut out = Vec::new();
    let start = [("start".to_string(), "-31d".to_string())];

    let mut ids = Ids::default();
    p.run("Alerts.list", &start, &mut ids).await.unwrap();
    out.push(("Alerts.list", ids));

    let mut ids = Ids::default();
    p.exec("/security/alerts_v2", &mut ids).await.unwrap();
    out.push(("exec /security/alerts_v2", ids));

    let mut ids = Ids::default();
    p.exec("/security/alerts_v2?$filter=severity eq 'high'&$top=300", &mut ids)
        .await
        .unwrap(); // every page: exec is the library's all-pages call
    out.push(("exec filtered, $top=300", ids));

    let mut ids = Ids::default();
    let now = chrono::Utc::now();
    p.run_split(
        "Alerts.list",
        &[],
        (now - chrono::Duration::days(31), now),
        chrono::Duration::days(7),
        3,
        &mut ids,
    )
    .await
    .unwrap();
    out.push(("Alerts.list --split-by 7d", ids));

    let mut ids = Ids::default();
    let q = p.render("Incidents.list", &start).unwrap();
    let providers = secgraph::fanout::connect_instances(
        Some(s),
        &["Default".into(), "Fabrikam".into()],
        &ConnectOptions {
            requests_per_minute: Some((100_000, 100_000)),
            ..Default::default()
        },
    )
    .await;
    secgraph::fanout::fan_out(providers, &q, &mut ids).await.unwrap();
    out.push(("Incidents.list over two tenants", ids));

    let dir = tempfile::tempdir().unwrap();
    let mut opts = ExportOptions::new(dir.path());
    opts.page_size = 700;
    let r = export_stream(&p, "Default", Stream::AlertsV2, &opts).await;
    assert_eq!(r.error, None);
    let mut ids = Ids::default();
    for (id, n) in versions(dir.path()) {
        ids.0.insert(format!("/{id}"), n);
    }
    out.push(("export alerts_v2", ids));
    out
}

/// Ids stored by an export, counted.
fn versions(root: &std::path::Path) -> BTreeMap<String, usize> {
    use arrow_array::cast::AsArray;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.join("stream=alerts_v2")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                for b in reader {
                    let b = b.unwrap();
                    let ids = b.column_by_name("id").unwrap().as_string::<i32>().clone();
                    for i in 0..b.num_rows() {
                        *out.entry(ids.value(i).to_string()).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_pages_without_next_links_are_read_to_the_end_on_every_path() {
    let as_of = chrono::Utc::now();
    let (_with, s_with) = emulator(NextLinks::Always, as_of).await;
    let (_without, s_without) = emulator(NextLinks::Never, as_of).await;
    let want = every_path(&s_with).await;
    let got = every_path(&s_without).await;
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        assert!(w.0.len() > 300, "{name}: the reference run found only {} ids", w.0.len());
        assert!(g.once(), "{name}: an id delivered twice");
        assert_eq!(
            g.0.keys().collect::<Vec<_>>(),
            w.0.keys().collect::<Vec<_>>(),
            "{name}: without next links {} ids, with them {}",
            g.0.len(),
            w.0.len()
        );
    }
}

/// Many alerts at one instant (a burst the service stamped alike), read in pages smaller than the burst without next
/// links: each once, none lost, and no `$skip` past the service's cap.
#[tokio::test]
async fn ties_at_one_instant_lose_and_repeat_nothing() {
    let as_of = chrono::Utc::now();
    let (emu, s) = emulator(NextLinks::Never, as_of).await;
    let ca = reqwest::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    // 450 new alerts in one burst share their creation instant.
    let r = http
        .post(format!("{}/_emulator/churn", emu.base_url()))
        .json(&serde_json::json!({"new": 450, "update": 0}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let p = connect(&s, "Default").await;
    let mut all = Ids::default();
    p.exec("/security/alerts_v2?$top=2000", &mut all).await.unwrap();
    let mut paged = Ids::default();
    p.exec("/security/alerts_v2?$top=100", &mut paged).await.unwrap();
    assert!(paged.once(), "an id delivered twice");
    assert_eq!(paged.0.len(), 5450, "every alert, the burst included");
    assert_eq!(paged.0.keys().collect::<Vec<_>>(), all.0.keys().collect::<Vec<_>>());
}

/// A total that is a multiple of the page size: the last page is full and has no next link, as any last page. The
/// run checks with one request past it (here refused: `$skip` over the service's cap) and ends — nothing read twice.
#[tokio::test]
async fn a_full_last_page_after_next_links_ends_the_run_without_reading_again() {
    let (emu, s) = emulator(NextLinks::Always, chrono::Utc::now()).await;
    let p = connect(&s, "Default").await;
    let before = emu.requests_to("/security/alerts_v2");
    let mut ids = Ids::default();
    let summary = p.exec("/security/alerts_v2?$top=500", &mut ids).await.unwrap();
    assert_eq!((summary.rows, summary.pages, summary.duplicates), (5000, 10, 0));
    assert!(ids.once());
    // Ten pages and the one check past the last.
    assert_eq!(emu.requests_to("/security/alerts_v2") - before, 11);
}
