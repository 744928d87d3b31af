//! Data that changes while a client reads it, as a real tenant's does: existing alerts updated (status, assignee,
//! classification; `lastUpdateDateTime` moves, and their incident's and legacy twin's with them) and new alerts
//! arriving (joining an existing incident). Seeded: the same seed and the same sequence of calls give the same
//! changes.
//!
//! The paging model is Graph's: a skip token is a position. Without `$orderby` a position is an index in the
//! collection (new alerts are appended; updated ones stay where they are), so an export that pages while alerts
//! change sees each item once and the new ones at the end. With `$orderby` the position is an offset among the
//! sorted hits: an item whose sort key changes mid-export moves, and can appear again on a later page or be missed —
//! as with Graph, an incremental export must filter on `lastUpdateDateTime` and de-duplicate by id.

use super::*;

/// What one batch of changes did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChurnReport {
    /// Ids of the alerts updated (an alert updated twice is listed twice).
    pub updated: Vec<String>,
    /// Ids of the new alerts.
    pub created: Vec<String>,
    /// When the changes were made (their `lastUpdateDateTime`).
    pub at: String,
}

/// Rates for `--churn`: new alerts and updates per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChurnSpec {
    /// New alerts per second.
    pub new_per_s: f64,
    /// Updates of existing alerts per second.
    pub update_per_s: f64,
}

impl ChurnSpec {
    /// Parses `new=50/s,update=20/s` (either part may be left out; `/s` is optional).
    pub fn parse(s: &str) -> Result<ChurnSpec, String> {
        let mut spec = ChurnSpec {
            new_per_s: 0.0,
            update_per_s: 0.0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("churn '{part}': expected new=N/s or update=N/s"))?;
            let n: f64 = v
                .trim()
                .trim_end_matches("/s")
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite() && *n >= 0.0 && *n <= 100_000.0)
                .ok_or_else(|| format!("churn '{part}': '{v}' is not a rate between 0 and 100000 per second"))?;
            match k.trim() {
                "new" => spec.new_per_s = n,
                "update" | "updates" => spec.update_per_s = n,
                other => return Err(format!("churn '{part}': unknown kind '{other}' (new, update)")),
            }
        }
        Ok(spec)
    }
}

impl Dataset {
    /// Applies `updates` updates to existing alerts and adds `new` alerts, all timed `now`.
    pub fn churn(&mut self, rng: &mut Rng, new: usize, updates: usize, now: DateTime<Utc>) -> ChurnReport {
        let at = graph_time(now);
        let mut report = ChurnReport {
            at: at.clone(),
            ..Default::default()
        };
        for _ in 0..updates {
            if self.alerts_v2.is_empty() {
                break;
            }
            let i = rng.below(self.alerts_v2.len() as u64) as usize;
            let (status, legacy_status) = *rng.pick(&[("inProgress", "inProgress"), ("resolved", "resolved"), ("new", "newAlert")]);
            let analyst = *rng.pick(ANALYSTS);
            let alert = &mut self.alerts_v2[i];
            alert["status"] = json!(status);
            alert["assignedTo"] = json!(analyst);
            if status == "resolved" {
                alert["classification"] = json!(rng.pick(&["truePositive", "falsePositive", "informationalExpectedActivity"]));
                alert["resolvedDateTime"] = json!(at);
            }
            alert["lastUpdateDateTime"] = json!(at);
            let id = alert["id"].as_str().unwrap_or_default().to_string();
            let incident = alert["incidentId"].as_str().unwrap_or_default().to_string();
            self.alert_changed(i);
            if let Some(l) = self.legacy_alerts.get_mut(i) {
                l["status"] = json!(legacy_status);
                l["assignedTo"] = json!(analyst);
                l["lastModifiedDateTime"] = json!(at);
            }
            self.touch_incident(&incident, &at);
            report.updated.push(id);
        }
        for _ in 0..new {
            let facts = AlertFacts::draw(rng, &self.entities, now);
            // A new alert joins one of the newest incidents (incidents gain alerts as attacks go on).
            let k = self.incident_ids.len();
            let incident = match k {
                0 => 1000,
                _ => self.incident_ids[k - 1 - rng.below(k.min(5) as u64) as usize],
            };
            let core = AlertCore::draw(rng, facts, incident, now);
            report.created.push(core.id());
            self.push_alert(core);
            self.touch_incident(&incident.to_string(), &at);
        }
        self.changes += 1;
        report
    }

    /// Adds an alert that a custom detection raised at `now`: drawn like a new alert (it joins one of the newest
    /// incidents), then given `fields` (title, severity, detection source, evidence…). Returns its id.
    pub fn raise_alert(&mut self, rng: &mut Rng, now: DateTime<Utc>, fields: &serde_json::Map<String, Value>) -> String {
        let facts = AlertFacts::draw(rng, &self.entities, now);
        let k = self.incident_ids.len();
        let incident = match k {
            0 => 1000,
            _ => self.incident_ids[k - 1 - rng.below(k.min(5) as u64) as usize],
        };
        let core = AlertCore::draw(rng, facts, incident, now);
        let id = core.id();
        self.push_alert(core);
        let pos = self.alerts_v2.len() - 1;
        let at = graph_time(now);
        if let Value::Object(o) = &mut *self.alerts_v2[pos] {
            o.extend(fields.clone());
            o.insert("createdDateTime".into(), json!(at));
            o.insert("lastUpdateDateTime".into(), json!(at));
        }
        self.alert_changed(pos);
        self.touch_incident(&incident.to_string(), &at);
        id
    }

    /// Moves an incident's `lastUpdateDateTime` to `at`.
    fn touch_incident(&mut self, id: &str, at: &str) {
        if let Some(pos) = self.incident_position(id) {
            self.incidents[pos]["lastUpdateDateTime"] = json!(at);
            self.incident_changed(pos);
        }
    }
}
