//! Threat intelligence enrichment of alerts and incidents (`--enrich ti`, Python `enrich="ti"`): every IP address,
//! URL host and file hash in a row's evidence (an incident's: its alerts' evidence) is looked up in Defender Threat
//! Intelligence — a host's reputation, and the articles that cite the indicator — and the row gains a `ti` object:
//! `verdict` (the worst classification among its indicators), `indicators` (each with its kind, classification and
//! score), `articles` (titles of articles citing any of them) and `status`.
//!
//! One [`Enrichment`] serves a whole process and every tenant in it (TI's answers are Microsoft's, the same for every
//! tenant): each indicator is looked up once — concurrent tenants wait for the one lookup in flight — and kept in a
//! cache file for [`CACHE_TTL`] across runs. Lookups have their own request budget ([`TI_PER_MINUTE`]). A tenant
//! without TI access (the service's 403) is told once, with a warning, and its rows are returned unenriched with
//! `ti.status` saying why: enrichment never fails the query.

use crate::error::{Error, Result};
use crate::graph::{GraphClient, Page, Pages};
use crate::row::Row;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a looked-up indicator is kept.
pub const CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// TI requests a minute the enrichment sends at most, all tenants together (bursts of as many).
pub const TI_PER_MINUTE: u32 = 120;
/// Indicators looked up per row at most (the rest are listed without a lookup).
const PER_ROW: usize = 25;

/// What TI said of one indicator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Known {
    kind: String,
    classification: String,
    score: Option<u64>,
    articles: Vec<String>,
    fetched: i64,
}

/// Threat intelligence enrichment: the shared cache, the in-flight lookups and the budget.
pub struct Enrichment {
    path: Option<PathBuf>,
    cache: Mutex<HashMap<String, Known>>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Known>>>>,
    unlicensed: Mutex<HashSet<String>>,
    budget: tokio::sync::Mutex<(f64, std::time::Instant)>,
    per_minute: u32,
    lookups: std::sync::atomic::AtomicUsize,
    /// Lookups not yet written to the cache file.
    unsaved: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Enrichment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrichment")
            .field("path", &self.path)
            .field("per_minute", &self.per_minute)
            .finish()
    }
}

impl Enrichment {
    /// Enrichment with its cache in `path` (`None`: in memory only), at most `per_minute` TI requests a minute.
    pub fn new(path: Option<PathBuf>, per_minute: u32) -> Enrichment {
        let now = chrono::Utc::now().timestamp();
        let cache: HashMap<String, Known> = path
            .as_ref()
            .and_then(|p| crate::local_file::read(p, 64 << 20).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let fresh = cache
            .into_iter()
            .filter(|(_, k)| now - k.fetched < CACHE_TTL.as_secs() as i64)
            .collect();
        Enrichment {
            path,
            cache: Mutex::new(fresh),
            inflight: Mutex::new(HashMap::new()),
            unlicensed: Mutex::new(HashSet::new()),
            budget: tokio::sync::Mutex::new((f64::from(per_minute.max(1)), std::time::Instant::now())),
            per_minute: per_minute.max(1),
            lookups: std::sync::atomic::AtomicUsize::new(0),
            unsaved: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The default: the cache file `ti_cache.json` in the per-user cache folder, [`TI_PER_MINUTE`].
    pub fn shared_default() -> Enrichment {
        Enrichment::new(Some(crate::private_file::cache_dir().join("ti_cache.json")), TI_PER_MINUTE)
    }

    /// Indicators looked up on the service so far (each once).
    pub fn lookups(&self) -> usize {
        self.lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes the cache file (atomically) when lookups were made since it was last written; a failure is logged,
    /// never fatal.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        if !self.unsaved.swap(false, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let Ok(cache) = self.cache.lock() else { return };
        let text = serde_json::to_vec(&*cache).unwrap_or_default();
        drop(cache);
        let write = || -> std::io::Result<()> {
            let dir = path.parent().map(PathBuf::from).unwrap_or_default();
            std::fs::create_dir_all(&dir)?;
            let tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::fs::write(tmp.path(), &text)?;
            tmp.persist(path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(error = %e, "cannot keep the threat intelligence cache");
        }
    }

    async fn spend(&self) {
        loop {
            let wait = {
                let mut b = self.budget.lock().await;
                let cap = f64::from(self.per_minute);
                let refill = b.1.elapsed().as_secs_f64() * cap / 60.0;
                b.0 = (b.0 + refill).min(cap);
                b.1 = std::time::Instant::now();
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - b.0) * 60.0 / cap)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// What TI knows of `indicator` (looked up at most once per process and cache lifetime). `Err` only for a
    /// tenant without TI access.
    async fn lookup(&self, graph: &GraphClient, indicator: &str, kind: &str) -> Result<Known> {
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(indicator).cloned()) {
            return Ok(k);
        }
        let cell = {
            let mut m = self.inflight.lock().map_err(|_| Error::Query {
                message: "enrichment lock poisoned".into(),
            })?;
            m.entry(indicator.to_string()).or_default().clone()
        };
        let known = cell
            .get_or_try_init(|| async {
                let k = self.fetch(graph, indicator, kind).await?;
                self.lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.unsaved.store(true, std::sync::atomic::Ordering::Release);
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(indicator.to_string(), k.clone());
                }
                Ok::<_, Error>(k)
            })
            .await?;
        Ok(known.clone())
    }

    async fn fetch(&self, graph: &GraphClient, indicator: &str, kind: &str) -> Result<Known> {
        let enc = crate::graph::segment;
        let (mut classification, mut score) = ("none".to_string(), None);
        if kind != "hash" {
            self.spend().await;
            let url = graph.url_for(&format!("/security/threatIntelligence/hosts/{}/reputation", enc(indicator)))?;
            match graph.send_json(reqwest::Method::GET, &url, None).await {
                Ok(v) => {
                    classification = v["classification"].as_str().unwrap_or("unknown").to_string();
                    score = v["score"].as_u64();
                }
                Err(e) if e.http_status() == Some(404) => classification = "unknown".into(),
                Err(e) => return Err(e),
            }
        }
        self.spend().await;
        let search = format!(
            "/security/threatIntelligence/articles?$search=\"{}\"&$top=10",
            indicator.replace('"', "")
        );
        let articles = graph.send_json(reqwest::Method::GET, &graph.url_for(&search)?, None).await?["value"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["title"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        Ok(Known {
            kind: kind.into(),
            classification,
            score,
            articles,
            fetched: chrono::Utc::now().timestamp(),
        })
    }

    /// `pages` with each row enriched, for the tenant `tenant` of `graph`.
    pub fn pages(self: &Arc<Self>, graph: GraphClient, tenant: String, pages: Pages) -> Pages {
        let me = self.clone();
        Pages::new(pages.then(move |page| {
            let (me, graph, tenant) = (me.clone(), graph.clone(), tenant.clone());
            async move {
                let mut page = page?;
                let mut rows = Vec::with_capacity(page.rows.len());
                for r in std::mem::take(&mut page.rows) {
                    rows.push(me.row(&graph, &tenant, r).await);
                }
                me.save();
                Ok::<Page, Error>(Page { rows, ..page })
            }
        }))
    }

    async fn row(&self, graph: &GraphClient, tenant: &str, row: Row) -> Row {
        let mut v = row.to_value();
        let indicators = indicators_of(&v);
        let unlicensed = self.unlicensed.lock().map(|u| u.contains(tenant)).unwrap_or(false);
        let mut found = Vec::new();
        let mut articles: Vec<String> = Vec::new();
        let mut status = "ok".to_string();
        for (ind, kind) in indicators.iter().take(PER_ROW) {
            let cached = self.cache.lock().ok().and_then(|c| c.get(ind).cloned());
            let known = match cached {
                Some(k) => Some(k),
                None if unlicensed || status != "ok" => None,
                None => match self.lookup(graph, ind, kind).await {
                    Ok(k) => Some(k),
                    Err(e) if e.http_status() == Some(403) => {
                        let first = self.unlicensed.lock().map(|mut u| u.insert(tenant.to_string())).unwrap_or(false);
                        if first {
                            tracing::warn!(tenant = %tenant, "this tenant has no Threat Intelligence access (403): its alerts are returned without TI enrichment");
                        }
                        status = "skipped: this tenant has no Threat Intelligence access".into();
                        None
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, indicator = %ind, error = %e, "a threat intelligence lookup failed; the row is returned without it");
                        status = format!("partial: {}", crate::error::clean(&e.to_string(), 200));
                        None
                    }
                },
            };
            if unlicensed && status == "ok" {
                status = "skipped: this tenant has no Threat Intelligence access".into();
            }
            match known {
                Some(k) => {
                    for a in &k.articles {
                        if !articles.contains(a) {
                            articles.push(a.clone());
                        }
                    }
                    found.push(json!({"indicator": ind, "kind": k.kind, "classification": k.classification, "score": k.score}));
                }
                None => found.push(json!({"indicator": ind, "kind": kind, "classification": null, "score": null})),
            }
        }
        let rank = |c: &str| match c {
            "malicious" => 4,
            "suspicious" => 3,
            "neutral" => 2,
            "unknown" => 1,
            _ => 0,
        };
        let verdict = found
            .iter()
            .filter_map(|f| f["classification"].as_str())
            .max_by_key(|c| rank(c))
            .map(str::to_string);
        if let Value::Object(m) = &mut v {
            m.insert(
                "ti".into(),
                json!({"verdict": verdict, "indicators": found, "articles": articles, "status": status}),
            );
        }
        Row::from_value(&v)
    }
}

impl Drop for Enrichment {
    fn drop(&mut self) {
        self.save();
    }
}

/// The indicators in a row's evidence (an incident's: its alerts'), each with its kind (`ip`, `host`, `hash`), once.
pub fn indicators_of(row: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |v: &str, kind: &str| {
        let v = v.trim();
        if !v.is_empty() && !out.iter().any(|(x, _)| x.eq_ignore_ascii_case(v)) {
            out.push((v.to_string(), kind.to_string()));
        }
    };
    let mut evidence: Vec<&Value> = row["evidence"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    for a in row["alerts"].as_array().into_iter().flatten() {
        evidence.extend(a["evidence"].as_array().into_iter().flatten());
    }
    for e in evidence {
        let t = e["@odata.type"].as_str().unwrap_or_default();
        if t.ends_with("ipEvidence") {
            if let Some(ip) = e["ipAddress"].as_str() {
                add(ip, "ip");
            }
        } else if t.ends_with("urlEvidence") {
            if let Some(host) = e["url"]
                .as_str()
                .and_then(|u| url::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_string))
            {
                let kind = if host.parse::<std::net::IpAddr>().is_ok() { "ip" } else { "host" };
                add(&host, kind);
            }
        } else if let Some(h) = e["fileDetails"]["sha256"].as_str().or_else(|| e["imageFile"]["sha256"].as_str()) {
            add(h, "hash");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_come_from_alert_and_incident_evidence_once() {
        let alert = json!({"evidence": [
            {"@odata.type": "#microsoft.graph.security.ipEvidence", "ipAddress": "203.0.113.5"},
            {"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "https://bad.example/x"},
            {"@odata.type": "#microsoft.graph.security.urlEvidence", "url": "http://203.0.113.5/y"},
            {"@odata.type": "#microsoft.graph.security.fileEvidence", "fileDetails": {"sha256": "abc"}},
            {"@odata.type": "#microsoft.graph.security.deviceEvidence", "deviceDnsName": "ws1"}]});
        assert_eq!(
            indicators_of(&alert),
            [
                ("203.0.113.5".into(), "ip".into()),
                ("bad.example".into(), "host".into()),
                ("abc".into(), "hash".into())
            ]
        );
        let incident = json!({"alerts": [alert]});
        assert_eq!(indicators_of(&incident).len(), 3);
    }
}
