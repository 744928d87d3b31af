//! The seeded dataset: alerts (v2), incidents grouping them, and the same alerts in the legacy
//! `microsoft.graph.alert` shape, all derived from one seed so that every view is consistent.
//!
//! Timestamps are spread over the 30 days before `now`; everything else depends only on the seed.

mod alerts;
mod churn;
mod detections;
mod entities;
mod incidents;
mod item;
mod legacy;
mod secure_scores;

use alerts::*;
pub use churn::{ChurnReport, ChurnSpec};
use detections::*;
pub use entities::{Device, Entities, FileInfo, RemoteIp, User};
use incidents::*;
pub use item::Item;
use legacy::*;
use secure_scores::*;

use crate::directory::DEMO_TENANT_ID;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// SplitMix64: small, fast and reproducible, which is all seeded demo data needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }
    pub fn guid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    }
}

/// Formats a timestamp the way Graph does: UTC with seven fractional digits.
pub fn graph_time(t: DateTime<Utc>) -> String {
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

/// Everything the Graph endpoints serve.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub alerts_v2: Vec<Item>,
    pub incidents: Vec<Item>,
    pub legacy_alerts: Vec<Item>,
    /// One secure score a day for the last 30 days, newest first.
    pub secure_scores: Vec<Item>,
    pub control_profiles: Vec<Item>,
    pub entities: Entities,
    pub generated_at: DateTime<Utc>,
}

/// What one alert is about, kept so the other views (legacy, hunting) can be derived consistently.
struct AlertFacts {
    created: DateTime<Utc>,
    device: usize,
    user: usize,
    ips: Vec<usize>,
    file: usize,
    url: usize,
}

impl Dataset {
    /// Generates `alerts` alerts (and their incidents) from `seed`, timed in the 30 days before `now`.
    pub fn generate(seed: u64, alerts: usize, now: DateTime<Utc>) -> Dataset {
        let mut rng = Rng::new(seed);
        let entities = Entities::generate(&mut rng);
        let window_ms = 30 * 24 * 3600 * 1000u64;
        let mut facts: Vec<AlertFacts> = (0..alerts)
            .map(|_| AlertFacts {
                created: now - Duration::milliseconds(1 + rng.below(window_ms - 3_600_000) as i64 + 600_000),
                device: rng.below(entities.devices.len() as u64) as usize,
                user: rng.below(entities.users.len() as u64) as usize,
                ips: vec![
                    rng.below(entities.ips.len() as u64) as usize,
                    rng.below(entities.ips.len() as u64) as usize,
                ],
                file: rng.below(entities.files.len() as u64) as usize,
                url: rng.below(entities.urls.len() as u64) as usize,
            })
            .collect();
        facts.sort_by_key(|f| f.created);

        let mut alerts_v2 = Vec::with_capacity(alerts);
        let mut legacy = Vec::with_capacity(alerts);
        let mut incidents = Vec::new();
        let mut i = 0;
        let mut incident_no = 1000u64;
        while i < facts.len() {
            let group = (1 + rng.below(4) as usize).min(facts.len() - i);
            incident_no += 1 + rng.below(3);
            let incident_id = incident_no.to_string();
            let mut members = Vec::new();
            for f in &facts[i..i + group] {
                let d = rng.pick(DETECTIONS);
                let alert = build_alert(&mut rng, d, f, &entities, &incident_id, now);
                // Legacy alerts (a retired API, rarely read) are kept as bytes only.
                legacy.push(Item::compact(build_legacy(&mut rng, d, f, &alert, &entities)));
                members.push(alert.clone());
                // Alerts are kept as their bytes: served as they are, parsed only for what needs a value.
                alerts_v2.push(Item::compact(alert));
            }
            incidents.push(build_incident(&mut rng, &incident_id, &members));
            i += group;
        }
        let (secure_scores, control_profiles) = secure_scores(&mut rng, now);
        let items = |v: Vec<Value>| v.into_iter().map(Item::new).collect();
        Dataset {
            alerts_v2,
            incidents: items(incidents),
            legacy_alerts: legacy,
            secure_scores: items(secure_scores),
            control_profiles: items(control_profiles),
            entities,
            generated_at: now,
        }
    }
}
