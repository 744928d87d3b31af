//! Custom detection rules at work: an enabled rule runs at every period boundary after its creation, by the
//! emulator's clock, over the tenant's hunting tables for the period's lookback (Defender's: 1H → 4 hours, 3H → 12
//! hours, 12H → 48 hours, 24H → 30 days; continuous rules every 15 minutes over the last hour), and each row it
//! returns that it has not alerted on before (its `ReportId` and first impacted asset) raises an alert in
//! alerts_v2: the rule's title, description, severity, category and techniques, `detectionSource:
//! customDetection`, the rule's `detectorId`, and the asset as evidence. Runs are caught up when a tenant's alerts or
//! incidents are read, so a rule applied through the API produces alerts the same API reads back.

use crate::state::AppState;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

/// Runs caught up at most per rule and read (older ones are skipped, as a service that was down would).
const MAX_RUNS: i64 = 8;

fn schedule(period: &str) -> Option<(Duration, Duration)> {
    Some(match period {
        "0" => (Duration::minutes(15), Duration::hours(1)),
        "1H" => (Duration::hours(1), Duration::hours(4)),
        "3H" => (Duration::hours(3), Duration::hours(12)),
        "12H" => (Duration::hours(12), Duration::hours(48)),
        "24H" => (Duration::hours(24), Duration::days(30)),
        _ => return None,
    })
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// The evidence for one result row: the rule's first impacted asset, from its column.
fn evidence(rule: &Value, row: &Map<String, Value>) -> (String, Value) {
    let asset = &rule["detectionAction"]["alertTemplate"]["impactedAssets"][0];
    let identifier = asset["identifier"].as_str().unwrap_or_default();
    let mut column = identifier.to_string();
    if let Some(f) = column.get_mut(..1) {
        f.make_ascii_uppercase();
    }
    let value = row.get(&column).and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = asset["@odata.type"].as_str().unwrap_or_default();
    let ev = if kind.ends_with("UserAsset") {
        json!({"@odata.type": "#microsoft.graph.security.userEvidence", "roles": ["compromised"], "verdict": "suspicious",
            "userAccount": {identifier: value}})
    } else if kind.ends_with("MailboxAsset") {
        json!({"@odata.type": "#microsoft.graph.security.mailboxEvidence", "roles": [], "verdict": "suspicious", "primaryAddress": value})
    } else {
        json!({"@odata.type": "#microsoft.graph.security.deviceEvidence", "roles": [], "verdict": "suspicious",
            "mdeDeviceId": row.get("DeviceId").cloned().unwrap_or(Value::Null),
            "deviceDnsName": row.get("DeviceName").cloned().unwrap_or(Value::Null)})
    };
    (value, ev)
}

/// Catches up the due runs of tenant `tid`'s enabled rules, raising their alerts.
pub fn run_due(st: &AppState, tid: &str) {
    let data = st.data(tid);
    let Ok(mut rules) = data.detection_rules.lock() else { return };
    if !rules.items.iter().any(|r| r["isEnabled"].as_bool().unwrap_or(true)) {
        return;
    }
    let now = st.clock.now();
    for i in 0..rules.items.len() {
        let rule = rules.items[i].clone();
        let (Some(created), Some((every, lookback))) = (
            time(&rule["createdDateTime"]),
            schedule(rule["schedule"]["period"].as_str().unwrap_or_default()),
        ) else {
            continue;
        };
        if !rule["isEnabled"].as_bool().unwrap_or(true) {
            continue;
        }
        let rid = rule["id"].as_str().unwrap_or_default().to_string();
        let done = rules.processed.get(&rid).copied().unwrap_or(0);
        let due = (now - created).num_seconds() / every.num_seconds().max(1);
        if due <= done {
            continue;
        }
        let query = rule["queryCondition"]["queryText"].as_str().unwrap_or_default().to_string();
        for run in (done + 1).max(due - MAX_RUNS + 1)..=due {
            let at = created + every * run as i32;
            let span = format!("{}/{}", (at - lookback).to_rfc3339(), at.to_rfc3339());
            let tables = data.hunting_tables(&st.config);
            let Ok(outcome) = crate::hunting::execute(&tables, &query, Some(&span), at) else {
                continue;
            };
            let Ok(table) = outcome.result else { continue };
            for row in &table.rows {
                let obj: Map<String, Value> = table.columns.iter().zip(row).map(|((n, _), v)| (n.clone(), v.to_json())).collect();
                let (entity, ev) = evidence(&rule, &obj);
                let key = format!("{}|{entity}", obj.get("ReportId").map(Value::to_string).unwrap_or_default());
                if !rules.raised.insert(format!("{rid}|{key}")) {
                    continue;
                }
                let t = &rule["detectionAction"]["alertTemplate"];
                let mut fields = Map::new();
                for (k, v) in [
                    ("title", t["title"].clone()),
                    ("description", t["description"].clone()),
                    ("severity", t["severity"].clone()),
                    ("category", t["category"].clone()),
                    ("recommendedActions", t["recommendedActions"].clone()),
                    ("mitreTechniques", t["mitreTechniques"].clone()),
                    ("detectionSource", json!("customDetection")),
                    ("serviceSource", json!("microsoftDefenderXDR")),
                    ("detectorId", rule["detectorId"].clone()),
                    ("status", json!("new")),
                    ("classification", Value::Null),
                    ("determination", Value::Null),
                    ("assignedTo", Value::Null),
                    ("evidence", json!([ev])),
                ] {
                    fields.insert(k.into(), v);
                }
                let Ok(mut ds) = data.dataset.write() else { return };
                let mut rng = match st.churn_rng.lock() {
                    Ok(r) => r,
                    Err(p) => p.into_inner(),
                };
                ds.raise_alert(&mut rng, at, &fields);
            }
        }
        rules.processed.insert(rid, due);
    }
}
