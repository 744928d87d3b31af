//! The fetch-only floor for scripts/bench-results.sh: the least a client can do to read every page of a Graph
//! collection — one token request, then one reqwest client (one connection, HTTP/2 as negotiated) following
//! `@odata.nextLink`, each page's items skipped unparsed. Nothing is written. What secgraph adds on top of this
//! (decoding, de-duplication, writing the output) is what the benchmark measures against it.
//!
//! ```text
//! cargo run --release -p secgraph --example fetch_floor -- BASE_URL CA_PEM TENANT CLIENT_ID CLIENT_SECRET PATH
//! ```
//! Prints the pages and items read and the bytes received.

use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
struct Page {
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
    value: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, ca, tenant, client_id, secret, path] = args.as_slice() else {
        return Err("usage: fetch_floor BASE_URL CA_PEM TENANT CLIENT_ID CLIENT_SECRET PATH".into());
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca)?)?;
    let http = reqwest::Client::builder().tls_certs_only([ca]).build()?;
    let token: Token = http
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let (mut pages, mut items, mut bytes) = (0usize, 0usize, 0usize);
    let mut url = Some(format!("{base}/v1.0{path}"));
    while let Some(u) = url {
        let body = http
            .get(&u)
            .bearer_auth(&token.access_token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let page: Page = serde_json::from_slice(&body)?;
        pages += 1;
        items += page.value.len();
        bytes += body.len();
        url = page.next;
    }
    println!("{pages} pages, {items} items, {bytes} bytes");
    Ok(())
}
