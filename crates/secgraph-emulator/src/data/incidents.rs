//! Incidents that group alerts.

use super::*;

pub(super) fn build_incident(rng: &mut Rng, id: &str, alerts: &[Value]) -> Value {
    let sev_rank = |s: &str| SEVERITIES.iter().position(|x| *x == s).unwrap_or(0);
    let severity = alerts
        .iter()
        .filter_map(|a| a["severity"].as_str())
        .max_by_key(|s| sev_rank(s))
        .unwrap_or("low");
    let created = alerts.first().and_then(|a| a["createdDateTime"].as_str()).unwrap_or_default();
    let updated = alerts
        .iter()
        .filter_map(|a| a["lastUpdateDateTime"].as_str())
        .max()
        .unwrap_or(created);
    let all_resolved = alerts.iter().all(|a| a["status"] == "resolved");
    let status = if all_resolved {
        "resolved"
    } else if alerts.iter().any(|a| a["status"] == "inProgress") {
        "inProgress"
    } else {
        "active"
    };
    let (classification, determination) = if all_resolved {
        (alerts[0]["classification"].clone(), alerts[0]["determination"].clone())
    } else {
        (json!("unknown"), json!("unknown"))
    };
    let mut categories: Vec<&str> = alerts.iter().filter_map(|a| a["category"].as_str()).collect();
    categories.dedup();
    let name = if alerts.len() == 1 {
        format!("{} on one endpoint", alerts[0]["title"].as_str().unwrap_or("Alert"))
    } else {
        format!("Multi-stage incident involving {} on multiple endpoints", categories.join(" & "))
    };
    json!({
        "@odata.type": "#microsoft.graph.security.incident",
        "id": id,
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{id}?tid={DEMO_TENANT_ID}"),
        "redirectIncidentId": null,
        "displayName": name,
        "tenantId": DEMO_TENANT_ID,
        "createdDateTime": created,
        "lastUpdateDateTime": updated,
        "assignedTo": alerts.iter().find_map(|a| a["assignedTo"].as_str()),
        "classification": classification,
        "determination": determination,
        "status": status,
        "severity": severity,
        "customTags": if rng.below(4) == 0 { json!(["demo"]) } else { json!([]) },
        "comments": [],
        "systemTags": [],
        "summary": null,
        "description": format!("{} correlated alert(s).", alerts.len()),
        "resolvingComment": null,
        "lastModifiedBy": "API-App:secgraph-emulator",
    })
}
