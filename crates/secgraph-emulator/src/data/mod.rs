//! The seeded dataset: alerts (v2), incidents grouping them, and the same alerts in the legacy
//! `microsoft.graph.alert` shape, all derived from one seed so that every view is consistent.
//!
//! Timestamps are spread over the 30 days before `now`; everything else depends only on the seed.

mod alerts;
mod churn;
mod detections;
mod entities;
mod incidents;
mod index;
mod item;
mod jw;
mod legacy;
mod secure_scores;

pub use alerts::AlertCore;
use alerts::*;
pub use churn::{ChurnReport, ChurnSpec};
use detections::*;
pub use entities::{Device, Entities, FileInfo, RemoteIp, User};
pub use incidents::IncidentCore;
pub use index::{Range as TimeRange, TimeIndex, ticks};
pub use item::{Item, Recipe};
use secure_scores::*;

use crate::directory::DEMO_TENANT_ID;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// SplitMix64: small, fast and reproducible, which is all seeded demo data needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
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
    /// One of `items` (not empty), uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// `len` random hex digits.
    pub fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }
    /// A random version-4 GUID.
    pub fn guid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
    }
}

/// Formats a timestamp the way Graph does (shared with the KQL values).
pub use secgraph_kql::value::graph_time;

/// Everything the Graph endpoints serve.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The alerts (alerts_v2), oldest first.
    pub alerts_v2: Vec<Item>,
    /// The incidents, by id.
    pub incidents: Vec<Item>,
    /// The legacy alerts, one per alert (the same event in the retired API's shape).
    pub legacy_alerts: Vec<Item>,
    /// One secure score a day for the last 30 days, newest first.
    pub secure_scores: Vec<Item>,
    /// Secure score control profiles.
    pub control_profiles: Vec<Item>,
    /// The people, machines, files, addresses and URLs the alerts are about.
    pub entities: Arc<Entities>,
    /// The instant the seeded 30 days end at.
    pub generated_at: DateTime<Utc>,
    /// Creation and update times of the alerts, by position, for time-range filters.
    pub alerts_index: TimeIndex,
    /// The same for incidents.
    pub incidents_index: TimeIndex,
    /// Incident ids by position (ascending: incidents are never added after seeding).
    incident_ids: Vec<u64>,
    /// Positions of each incident's alerts (`$expand=alerts`).
    incident_alerts: HashMap<u64, Vec<u32>>,
    /// How many times the data changed since it was seeded (updates, comments, churn): views derived from it
    /// (advanced hunting's tables) know when to rebuild.
    pub changes: u64,
}

impl Dataset {
    /// Generates `alerts` alerts (and their incidents) from `seed`, timed in the 30 days before `now`.
    ///
    /// Items are kept as recipes (see [`Item`]): seeding a million alerts takes about a second and a few hundred
    /// megabytes, and every view (alerts, legacy twins, incidents, hunting tables) is derived from the same cores.
    pub fn generate(seed: u64, alerts: usize, now: DateTime<Utc>) -> Dataset {
        Dataset::generate_for(DEMO_TENANT_ID, seed, alerts, now)
    }

    /// [`Dataset::generate`] for the tenant `tenant_id`: every item's `tenantId` (and the links that carry it) names
    /// it. Two tenants given two seeds have distinct data (ids, counts, severities, titles).
    pub fn generate_for(tenant_id: &str, seed: u64, alerts: usize, now: DateTime<Utc>) -> Dataset {
        let mut rng = Rng::new(seed);
        let entities = Arc::new(Entities {
            tenant_id: tenant_id.to_ascii_lowercase(),
            ..Entities::generate(&mut rng)
        });
        let window_ms = 30 * 24 * 3600 * 1000u64;
        let mut facts: Vec<AlertFacts> = (0..alerts)
            .map(|_| {
                let created = now - Duration::milliseconds(1 + rng.below(window_ms - 3_600_000) as i64 + 600_000);
                AlertFacts::draw(&mut rng, &entities, created)
            })
            .collect();
        facts.sort_by_key(|f| f.created);

        let mut ds = Dataset {
            alerts_v2: Vec::with_capacity(alerts),
            incidents: Vec::with_capacity(alerts / 2),
            legacy_alerts: Vec::with_capacity(alerts),
            secure_scores: vec![],
            control_profiles: vec![],
            entities: entities.clone(),
            generated_at: now,
            alerts_index: TimeIndex::default(),
            incidents_index: TimeIndex::default(),
            incident_ids: Vec::with_capacity(alerts / 2),
            incident_alerts: HashMap::with_capacity(alerts / 2),
            changes: 0,
        };
        let mut i = 0;
        let mut incident_no = 1000u64;
        let mut group: Vec<AlertCore> = Vec::with_capacity(4);
        while i < facts.len() {
            let size = (1 + rng.below(4) as usize).min(facts.len() - i);
            incident_no += 1 + rng.below(3);
            group.clear();
            group.extend(facts[i..i + size].iter().map(|f| AlertCore::draw(&mut rng, *f, incident_no, now)));
            let incident = IncidentCore::new(&mut rng, incident_no, &group);
            ds.incidents_index.push(incident.created, incident.updated);
            ds.incidents.push(Item::generated(Recipe::incident(&entities, incident)));
            ds.incident_ids.push(incident_no);
            for core in group.drain(..) {
                ds.push_alert(core);
            }
            i += size;
        }
        let (secure_scores, control_profiles) = secure_scores(&mut rng, now, &entities.tenant_id);
        let items = |v: Vec<Value>| v.into_iter().map(Item::new).collect();
        ds.secure_scores = items(secure_scores);
        ds.control_profiles = items(control_profiles);
        ds
    }

    /// Appends an alert (and its legacy twin) made from `core`.
    fn push_alert(&mut self, core: AlertCore) {
        let pos = self.alerts_v2.len() as u32;
        self.incident_alerts.entry(core.incident).or_default().push(pos);
        self.alerts_index.push(core.facts.created, core.last_update);
        self.legacy_alerts
            .push(Item::generated(Recipe::legacy(&self.entities, core.clone())));
        self.alerts_v2.push(Item::generated(Recipe::alert(&self.entities, core)));
    }

    /// The position of the incident with this id.
    pub fn incident_position(&self, id: &str) -> Option<usize> {
        let n: u64 = id.parse().ok()?;
        self.incident_ids.binary_search(&n).ok()
    }

    /// The alerts of an incident, in collection order.
    pub fn incident_alerts(&self, id: &str) -> impl Iterator<Item = &Item> {
        let positions = id.parse::<u64>().ok().and_then(|n| self.incident_alerts.get(&n));
        positions.into_iter().flatten().filter_map(|p| self.alerts_v2.get(*p as usize))
    }

    /// Re-reads the times of the alert at `pos` into the index (after a write).
    pub fn alert_changed(&mut self, pos: usize) {
        self.changes += 1;
        if let Some(item) = self.alerts_v2.get(pos) {
            self.alerts_index.reread(pos, item);
        }
    }

    /// Re-reads the times of the incident at `pos` into the index (after a write).
    pub fn incident_changed(&mut self, pos: usize) {
        self.changes += 1;
        if let Some(item) = self.incidents.get(pos) {
            self.incidents_index.reread(pos, item);
        }
    }
}
