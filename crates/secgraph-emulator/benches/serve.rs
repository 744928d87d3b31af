//! How fast the emulator serves alerts: the server runs on a single-threaded runtime (one core), a client on
//! another thread pages through `alerts_v2` with `$top=1000` and counts alerts and bytes. Figures go to
//! docs/PERFORMANCE.md. Run: `cargo bench -p secgraph-emulator --bench serve`.

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
    let pat: &[u8] = b"\"#microsoft.graph.security.alert\"";
    body.windows(pat.len()).filter(|w| *w == pat).count()
}

fn main() {
    let alerts: usize = std::env::var("BENCH_ALERTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
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
            eprintln!("seeded {alerts} alerts in {:.2}s", t.elapsed().as_secs_f64());
            tx.send((emu.base_url().to_string(), emu.ca_pem().expect("ca"))).expect("send");
            std::future::pending::<()>().await;
            drop(emu);
        });
    });
    let (base, ca) = rx.recv().expect("emulator started");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let c = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).expect("ca")])
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
        for round in 0..rounds {
            let t = Instant::now();
            let (mut n, mut bytes, mut pages) = (0usize, 0usize, 0usize);
            let mut url = Some(format!("{base}/v1.0/security/alerts_v2?$top=1000"));
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
            eprintln!(
                "round {round}: {n} alerts, {pages} pages, {:.1} MB in {secs:.3}s = {:.0} alerts/s",
                bytes as f64 / 1e6,
                n as f64 / secs
            );
        }
        println!(
            "{{\"alerts\": {alerts}, \"best_s\": {best:.3}, \"alerts_per_s\": {:.0}}}",
            alerts as f64 / best
        );
    });
}
