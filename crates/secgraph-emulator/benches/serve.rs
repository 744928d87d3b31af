//! How fast the emulator serves alerts: the server runs on a single-threaded runtime (one core), a client on
//! another thread pages through `alerts_v2` with `$top=1000` and counts alerts and bytes. Figures go to
//! docs/PERFORMANCE.md. Run: `cargo bench -p secgraph-emulator --bench serve`; `BENCH_ALERTS` sets the dataset
//! size, `BENCH_ROUNDS` the rounds, `BENCH_FILTER` an OData `$filter` (e.g. `severity eq 'high'`). The process's
//! peak resident memory (server and client together) is printed at the end. `BENCH_SINCE_HOURS=N` filters on
//! `lastUpdateDateTime ge` N hours ago (the time index's case, as an incremental export asks).

use secgraph_emulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Emulator, EmulatorConfig};
use serde_json::Value;
use std::time::Instant;

/// The `@odata.nextLink` of a page, read from the envelope before `value`.
fn next_link(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let key = "\"@odata.nextLink\":\"";
    let start = text.find(key)? + key.len();
    let end = text[start..].find('"')? + start;
    Some(text[start..end].replace("\\/", "/"))
}

/// Top-level items of `value`: counted by the alert ids' prefix, cheap and exact for this dataset.
fn count_items(body: &[u8]) -> usize {
    // `str::matches` uses a two-way search: the count must not be what limits the measurement.
    std::str::from_utf8(body).map_or(0, |t| t.matches("\"#microsoft.graph.security.alert\"").count())
}

fn main() {
    let alerts: usize = std::env::var("BENCH_ALERTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let since = std::env::var("BENCH_SINCE_HOURS").ok().and_then(|v| v.parse::<i64>().ok());
    let filter = match since {
        Some(h) => Some(format!(
            "lastUpdateDateTime ge {}",
            (chrono::Utc::now() - chrono::Duration::hours(h)).format("%Y-%m-%dT%H:%M:%SZ")
        )),
        None => std::env::var("BENCH_FILTER").ok().filter(|f| !f.is_empty()),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    // The server: one thread, one core.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let t = Instant::now();
            let emu = Emulator::start(EmulatorConfig {
                alerts,
                ..Default::default()
            })
            .await
            .expect("emulator");
            let ready = t.elapsed().as_secs_f64();
            let rss = proc_status_kib("VmRSS:") / 1024;
            eprintln!("seeded {alerts} alerts: ready in {ready:.2}s, resident {rss} MiB");
            // The server's own cost: every alert written as JSON on this one core, no network or TLS.
            let ds = emu.dataset();
            let t = Instant::now();
            let mut buf = Vec::with_capacity(4 << 20);
            let mut written = 0usize;
            for item in &ds.alerts_v2 {
                item.write_json(&mut buf);
                if buf.len() > 4 << 20 {
                    written += buf.len();
                    buf.clear();
                }
            }
            written += buf.len();
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "wrote {alerts} alerts ({:.1} MB) in {secs:.3}s on one core = {:.0} alerts/s",
                written as f64 / 1e6,
                alerts as f64 / secs
            );
            drop(ds);
            tx.send((emu.base_url().to_string(), emu.ca_pem().expect("ca"), ready, rss))
                .expect("send");
            std::future::pending::<()>().await;
            drop(emu);
        });
    });
    let (base, ca, ready, ready_rss) = rx.recv().expect("emulator started");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let c = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("ca")])
            .http2_adaptive_window(std::env::var_os("BENCH_ADAPTIVE").is_some())
            .build()
            .expect("client");
        let tok: Value = c
            .post(format!("{base}/{DEMO_TENANT_ID}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token json");
        let tok = tok["access_token"].as_str().expect("access_token").to_string();
        let mut best = f64::MAX;
        let (mut matched, mut page_count) = (0usize, 0usize);
        for round in 0..rounds {
            let t = Instant::now();
            let (mut n, mut bytes, mut pages) = (0usize, 0usize, 0usize);
            let mut url = Some(match &filter {
                None => format!("{base}/v1.0/security/alerts_v2?$top=1000"),
                Some(f) => format!("{base}/v1.0/security/alerts_v2?$top=1000&$filter={}", f.replace(' ', "%20").replace('\'', "%27")),
            });
            while let Some(u) = url.take() {
                let body = c.get(&u).bearer_auth(&tok).send().await.expect("page").bytes().await.expect("body");
                bytes += body.len();
                pages += 1;
                // Only the envelope is read (the next link comes before `value`): this measures the server, not a
                // client's JSON parsing.
                n += count_items(&body);
                url = next_link(&body);
            }
            let secs = t.elapsed().as_secs_f64();
            best = best.min(secs);
            (matched, page_count) = (n, pages);
            eprintln!(
                "round {round}: {n} alerts, {pages} pages, {:.1} MB in {secs:.3}s = {:.0} alerts/s",
                bytes as f64 / 1e6,
                n as f64 / secs
            );
        }
        let peak_kib = proc_status_kib("VmHWM:");
        println!(
            "{{\"alerts\": {alerts}, \"ready_s\": {ready:.2}, \"ready_rss_mib\": {ready_rss}, \"filter\": {:?}, \"matched\": {matched}, \"pages\": {page_count}, \"best_s\": {best:.3}, \"matched_per_s\": {:.0}, \"pages_per_s\": {:.1}, \"peak_rss_mib\": {}}}",
            filter.as_deref().unwrap_or(""),
            matched as f64 / best,
            page_count as f64 / best,
            peak_kib / 1024
        );
    });
}

/// A figure from /proc/self/status in KiB (`VmRSS:` now, `VmHWM:` the peak); 0 where there is none.
fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
