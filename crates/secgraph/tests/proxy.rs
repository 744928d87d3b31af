//! `msticpy.Proxies.https` applies to every request the library makes: a loopback CONNECT proxy sees them all, with
//! the configured credentials (the password from an environment variable).

use base64::Engine;
use secgraph::config::Settings;
use secgraph::{ConnectOptions, QueryProvider};
use secgraph_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal CONNECT proxy on loopback that records each tunnel's target and Proxy-Authorization.
async fn start_proxy() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(client);
                let mut request = String::new();
                let mut auth = String::new();
                reader.read_line(&mut request).await.ok()?;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line
                        .strip_prefix("proxy-authorization: ")
                        .or_else(|| line.strip_prefix("Proxy-Authorization: "))
                    {
                        auth = v.trim().to_string();
                    }
                }
                let target = request.split_whitespace().nth(1)?.to_string();
                log.lock().ok()?.push((target.clone(), auth));
                // Loopback only: the proxy never dials anywhere else.
                if !target.starts_with("127.0.0.1:") {
                    return None;
                }
                let mut upstream = tokio::net::TcpStream::connect(&target).await.ok()?;
                let mut client = reader.into_inner();
                client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await.ok()?;
                Some(())
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn every_request_goes_through_the_configured_proxy() {
    let emu = Emulator::start(EmulatorConfig {
        alerts: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let (proxy, seen) = start_proxy().await;
    // SAFETY: only this test reads this variable.
    unsafe { std::env::set_var("SECGRAPH_TEST_PROXY_PASSWORD", "proxy-pass-123") };
    let text = format!(
        "{}msticpy:\n  Proxies:\n    https:\n      Url: '{proxy}'\n      UserName: hunter\n      Password: {{EnvironmentVar: SECGRAPH_TEST_PROXY_PASSWORD}}\n",
        emu.msticpy_config()
    );
    let s = Settings::from_yaml(&text, "proxy.yaml").unwrap();
    let p = QueryProvider::connect(Some(&s), &ConnectOptions::default()).await.unwrap();
    let mut rows: Vec<Value> = Vec::new();
    p.run("Alerts.list", &[("start".into(), "-31d".into())], &mut rows).await.unwrap();
    assert_eq!(rows.len(), 5);
    let seen = seen.lock().unwrap().clone();
    let authority = emu.base_url().trim_start_matches("https://");
    assert!(!seen.is_empty());
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("hunter:proxy-pass-123")
    );
    for (target, auth) in &seen {
        assert_eq!(target, authority, "every tunnel leads to the emulator");
        assert_eq!(auth, &want, "with the configured credentials");
    }
    assert!(!format!("{p:?}").contains("proxy-pass-123"));
}
