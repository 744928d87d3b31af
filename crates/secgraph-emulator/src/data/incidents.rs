//! Incidents that group alerts. An incident is kept as the summary of its alerts it is built from.

use super::*;

/// What an incident is made from: a summary of its alerts at the time it was seeded.
#[derive(Debug, Clone)]
pub struct IncidentCore {
    pub(super) id: u64,
    pub(super) created: DateTime<Utc>,
    pub(super) updated: DateTime<Utc>,
    severity: u8,
    status: &'static str,
    /// The first alert's classification and determination, when every alert is resolved.
    outcome: Option<(&'static str, &'static str)>,
    assigned: Option<&'static str>,
    /// Detections of the member alerts, in order.
    detections: Box<[u8]>,
    custom_tag: bool,
}

impl IncidentCore {
    pub(super) fn new(rng: &mut Rng, id: u64, alerts: &[AlertCore]) -> IncidentCore {
        let all_resolved = alerts.iter().all(|a| a.status() == "resolved");
        let status = if all_resolved {
            "resolved"
        } else if alerts.iter().any(|a| a.status() == "inProgress") {
            "inProgress"
        } else {
            "active"
        };
        IncidentCore {
            id,
            created: alerts.first().map_or_else(Utc::now, |a| a.facts.created),
            updated: alerts.iter().map(|a| a.last_update).max().unwrap_or_else(Utc::now),
            severity: alerts.iter().map(|a| a.severity).max().unwrap_or(1),
            status,
            outcome: match (all_resolved, alerts.first()) {
                (true, Some(a)) => Some((a.classification(), a.determination())),
                _ => None,
            },
            assigned: alerts.iter().find_map(AlertCore::assigned_to),
            detections: alerts.iter().map(|a| a.detection).collect(),
            custom_tag: rng.below(4) == 0,
        }
    }

    /// The incident's id (a number, as text).
    pub fn id(&self) -> String {
        self.id.to_string()
    }

    fn classification(&self) -> &'static str {
        self.outcome.map_or("unknown", |o| o.0)
    }
    fn determination(&self) -> &'static str {
        self.outcome.map_or("unknown", |o| o.1)
    }

    /// The named top-level properties (those `$filter` and `$orderby` read), without building the incident.
    pub(super) fn property(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id()),
            "assignedTo" => json!(self.assigned),
            "classification" => json!(self.classification()),
            "determination" => json!(self.determination()),
            "createdDateTime" => json!(graph_time(self.created)),
            "lastUpdateDateTime" => json!(graph_time(self.updated)),
            "severity" => json!(SEVERITIES[self.severity as usize]),
            "status" => json!(self.status),
            _ => return None,
        })
    }

    pub(super) fn build(&self, tenant: &str) -> Value {
        let id = self.id();
        let detections: Vec<&Detection> = self
            .detections
            .iter()
            .map(|d| &DETECTIONS[*d as usize % DETECTIONS.len()])
            .collect();
        let mut categories: Vec<&str> = detections.iter().map(|d| d.category).collect();
        categories.dedup();
        let name = match detections.as_slice() {
            [one] => format!("{} on one endpoint", one.title),
            _ => format!("Multi-stage incident involving {} on multiple endpoints", categories.join(" & ")),
        };
        json!({
            "@odata.type": "#microsoft.graph.security.incident",
            "id": id,
            "incidentWebUrl": format!("https://security.microsoft.com/incidents/{id}?tid={tenant}"),
            "redirectIncidentId": null,
            "displayName": name,
            "tenantId": tenant,
            "createdDateTime": graph_time(self.created),
            "lastUpdateDateTime": graph_time(self.updated),
            "assignedTo": self.assigned,
            "classification": self.classification(),
            "determination": self.determination(),
            "status": self.status,
            "severity": SEVERITIES[self.severity as usize],
            "customTags": if self.custom_tag { json!(["demo"]) } else { json!([]) },
            "comments": [],
            "systemTags": [],
            "summary": null,
            "description": format!("{} correlated alert(s).", self.detections.len()),
            "resolvingComment": null,
            "lastModifiedBy": "API-App:secgraph-emulator",
        })
    }
}
