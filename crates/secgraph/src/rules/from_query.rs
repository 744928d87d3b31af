//! A hunting-library query made into a detection rule: its KQL (parameters rendered), with the columns a detection
//! needs — `Timestamp`, `ReportId` and the impacted entity's id — added to each `project` of the main pipeline
//! that lacks them; its ATT&CK tags as techniques. A query that cannot be a detection is refused with the reason:
//! an OData query, an aggregate (`summarize`, `distinct`, `count`), a table without `ReportId`, a pipeline built
//! on a `let` statement's table.

use super::file::{AlertTemplate, Asset, Rule};
use crate::error::{Error, Result};
use crate::query::{Language, QueryTemplate, RenderedQuery};

/// The impacted entity a table's rows identify: (column, asset kind, identifier).
fn entity_of(table: &str) -> Option<(&'static str, &'static str, &'static str)> {
    if table.starts_with("Device") {
        Some(("DeviceId", "device", "deviceId"))
    } else if table.starts_with("Email") || table == "UrlClickEvents" {
        Some(("RecipientEmailAddress", "mailbox", "recipientEmailAddress"))
    } else if table.starts_with("Identity") || table == "CloudAppEvents" || table.starts_with("AADSignIn") {
        Some(("AccountObjectId", "user", "accountObjectId"))
    } else {
        None
    }
}

/// The alert category a hunting family's detections belong to.
fn category_of(family: &str) -> &'static str {
    match family {
        "HuntCredential" => "CredentialAccess",
        "HuntEmail" => "InitialAccess",
        "HuntPersistence" => "Persistence",
        "HuntNetwork" => "CommandAndControl",
        "HuntLogon" | "HuntIdentity" => "LateralMovement",
        "HuntCloud" => "Exfiltration",
        _ => "Execution",
    }
}

fn refuse(name: &str, why: impl std::fmt::Display) -> Error {
    Error::Query {
        message: format!("{name} cannot be a detection rule: {why}"),
    }
}

/// The rule for `template` rendered as `rendered`, or why it cannot be one.
pub fn from_query(template: &QueryTemplate, rendered: &RenderedQuery) -> Result<Rule> {
    let name = template.full_name();
    if template.language != Language::Kql {
        return Err(refuse(&name, "it is an OData query; a detection runs advanced hunting KQL"));
    }
    let text = rendered.text.as_str();
    let q = secgraph_kql::parse_query(text).map_err(|e| refuse(&name, format!("its KQL does not parse: {e}")))?;
    let shape = secgraph_kql::shape::shape(&q);
    if let Some(op) = shape.aggregated_by {
        return Err(refuse(
            &name,
            format!("it aggregates ('{op}'): a detection returns one row per event, with Timestamp and ReportId"),
        ));
    }
    if q.lets.iter().any(|(n, _)| *n == q.table) {
        return Err(refuse(
            &name,
            format!(
                "its pipeline starts from the let statement '{}': add Timestamp, ReportId and the entity's id to it, then write the rule by hand",
                q.table
            ),
        ));
    }
    let Some((entity, kind, identifier)) = entity_of(&q.table) else {
        return Err(refuse(
            &name,
            format!(
                "its table {} has no ReportId or no entity to raise an alert on (Device*, Email*, Identity* and CloudAppEvents do)",
                q.table
            ),
        ));
    };
    let needed = ["Timestamp", "ReportId", entity];
    let stages = secgraph_kql::parse::top_level_stages(text).map_err(|e| refuse(&name, e))?;
    let mut out = text.to_string();
    // From the last stage back, so earlier ranges stay valid.
    for (range, stage) in stages.iter().zip(&q.stages).rev() {
        let secgraph_kql::parse::Stage::Project(cols) = stage else {
            continue;
        };
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|c| !cols.iter().any(|(n, _)| n.eq_ignore_ascii_case(c)))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let body = &text[range.clone()];
        let end = range.start + body.trim_end().len();
        let last_line = text[..end].rsplit('\n').next().unwrap_or_default();
        let sep = if last_line.contains("//") { "\n    , " } else { ", " };
        out.insert_str(end, &format!("{sep}{}", missing.join(", ")));
    }
    let rule = Rule {
        key: name.to_ascii_lowercase().replace(['.', '_'], "-"),
        name: name.clone(),
        enabled: true,
        period: "24H".into(),
        query: super::graph::normalise_query(&out) + "\n",
        alert: AlertTemplate {
            title: template
                .description
                .split(". ")
                .next()
                .unwrap_or(&name)
                .trim_end_matches('.')
                .chars()
                .take(200)
                .collect(),
            description: template.description.clone(),
            severity: "medium".into(),
            category: category_of(&template.family).into(),
            techniques: template.tags.iter().filter(|t| super::file::is_technique(t)).cloned().collect(),
            recommended_actions: None,
            impacted_assets: vec![Asset {
                kind: kind.into(),
                identifier: identifier.into(),
            }],
        },
        response_actions: Vec::new(),
        tags: vec![format!("from:{name}")],
    };
    let problems = super::file::query_problems(&rule);
    if let Some((p, _)) = problems.first() {
        return Err(refuse(&name, p));
    }
    Ok(rule)
}
