//! A [`Rule`] as Graph's `detectionRule` and back, and as its file's YAML.
//!
//! The rule's key and tags travel in the rule itself, as the first line of its query — a KQL comment Defender
//! keeps and runs past: `// secgraph-rule: key=encoded-powershell tags=hunting,edr`. A rule on the service
//! without that line is not managed by secgraph: plans show it, and nothing touches it.

use super::file::{AlertTemplate, Asset, Rule};
use serde_json::{Value, json};

/// The start of the line that carries a rule's key.
pub const KEY_LINE: &str = "// secgraph-rule:";

/// The query text sent for a rule: its key line, then its query.
pub fn query_text(rule: &Rule) -> String {
    let mut line = format!("{KEY_LINE} key={}", rule.key);
    if !rule.tags.is_empty() {
        line.push_str(&format!(" tags={}", rule.tags.join(",")));
    }
    format!("{line}\n{}", normalise_query(&rule.query))
}

/// A query compared as text: line ends trimmed, no trailing empty lines.
pub fn normalise_query(q: &str) -> String {
    let lines: Vec<&str> = q.lines().map(str::trim_end).collect();
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |i| i + 1);
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(end);
    lines[start..end].join("\n")
}

fn odata_type(kind: &str) -> String {
    let t = match kind {
        "user" => "impactedUserAsset",
        "mailbox" => "impactedMailboxAsset",
        _ => "impactedDeviceAsset",
    };
    format!("#microsoft.graph.security.{t}")
}

/// The `detectionRule` body a create or update sends (period `NRT` as `0`).
pub fn to_graph(rule: &Rule) -> Value {
    let a = &rule.alert;
    let period = rule.graph_period();
    json!({
        "displayName": rule.name,
        "isEnabled": rule.enabled,
        "queryCondition": {"queryText": query_text(rule)},
        "schedule": {"period": period},
        "detectionAction": {
            "alertTemplate": {
                "title": a.title,
                "description": a.description,
                "severity": a.severity,
                "category": a.category,
                "recommendedActions": a.recommended_actions,
                "mitreTechniques": a.techniques,
                "impactedAssets": a.impacted_assets.iter().map(|x| json!({"@odata.type": odata_type(&x.kind), "identifier": x.identifier})).collect::<Vec<_>>(),
            },
            "organizationalScope": null,
            "responseActions": rule.response_actions,
        },
    })
}

/// A rule as the service holds it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RemoteRule {
    /// Its id in the tenant.
    pub id: String,
    /// The rule, as a file would hold it (`key` empty when it carries no key line).
    pub rule: Rule,
    /// Whether it carries a key line (secgraph manages it).
    pub managed: bool,
    /// `lastModifiedDateTime`, as sent (compared before an update).
    pub last_modified: Option<String>,
    /// `lastModifiedBy`.
    pub last_modified_by: Option<String>,
    /// `lastRunDetails.status` (`completed`, `failed`, `running`, …), if it has run.
    pub last_run_status: Option<String>,
    /// `lastRunDetails.lastRunDateTime`.
    pub last_run: Option<String>,
    /// `lastRunDetails.failureReason`.
    pub failure_reason: Option<String>,
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Reads a `detectionRule` as the service sent it.
pub fn from_graph(v: &Value) -> RemoteRule {
    let text = v["queryCondition"]["queryText"].as_str().unwrap_or_default();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (key, tags, query, managed) = match first.trim().strip_prefix(KEY_LINE) {
        Some(meta) => {
            let mut key = String::new();
            let mut tags = Vec::new();
            for part in meta.split_whitespace() {
                if let Some(k) = part.strip_prefix("key=") {
                    key = k.to_string();
                } else if let Some(t) = part.strip_prefix("tags=") {
                    tags = t.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
                }
            }
            (key, tags, rest.to_string(), true)
        }
        None => (String::new(), Vec::new(), text.to_string(), false),
    };
    let t = &v["detectionAction"]["alertTemplate"];
    let strings = |x: &Value| {
        x.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let assets = t["impactedAssets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    let ty = x["@odata.type"].as_str().unwrap_or_default();
                    let kind = if ty.ends_with("UserAsset") {
                        "user"
                    } else if ty.ends_with("MailboxAsset") {
                        "mailbox"
                    } else {
                        "device"
                    };
                    Asset {
                        kind: kind.into(),
                        identifier: x["identifier"].as_str().unwrap_or_default().into(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let rule = Rule {
        key,
        name: v["displayName"].as_str().unwrap_or_default().into(),
        enabled: v["isEnabled"].as_bool().unwrap_or(true),
        period: match &v["schedule"]["period"] {
            Value::Number(n) => n.to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        },
        query: normalise_query(&query) + "\n",
        alert: AlertTemplate {
            title: t["title"].as_str().unwrap_or_default().into(),
            description: t["description"].as_str().unwrap_or_default().into(),
            severity: t["severity"].as_str().unwrap_or_default().into(),
            category: t["category"].as_str().unwrap_or_default().into(),
            techniques: strings(&t["mitreTechniques"]),
            recommended_actions: s(&t["recommendedActions"]).filter(|s| !s.is_empty()),
            impacted_assets: assets,
        },
        response_actions: v["detectionAction"]["responseActions"].as_array().cloned().unwrap_or_default(),
        tags,
    };
    RemoteRule {
        id: match &v["id"] {
            Value::Number(n) => n.to_string(),
            other => other.as_str().unwrap_or_default().to_string(),
        },
        rule,
        managed,
        last_modified: s(&v["lastModifiedDateTime"]),
        last_modified_by: s(&v["lastModifiedBy"]),
        last_run_status: s(&v["lastRunDetails"]["status"]),
        last_run: s(&v["lastRunDetails"]["lastRunDateTime"]),
        failure_reason: s(&v["lastRunDetails"]["failureReason"]),
    }
}

/// A rule's file text: stable field order, the query as a literal block, so that `git diff` shows what changed.
pub fn to_yaml(rule: &Rule) -> String {
    let mut r = rule.clone();
    r.query = normalise_query(&r.query) + "\n";
    let mut text = serde_saphyr::to_string(&r).unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A file name for a rule: its key, `.yaml`.
pub fn file_name(rule: &Rule) -> String {
    format!("{}.yaml", rule.key)
}

/// A key for a rule that has none (pulled from the service without a key line): its name, lower case, with runs of
/// other characters as `-`.
pub fn key_from_name(name: &str) -> String {
    let mut k = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            k.push(c.to_ascii_lowercase());
        } else if !k.ends_with('-') && !k.is_empty() {
            k.push('-');
        }
    }
    let k = k.trim_end_matches('-').chars().take(64).collect::<String>();
    if k.is_empty() { "rule".into() } else { k }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            key: "enc-ps".into(),
            name: "Encoded PowerShell".into(),
            enabled: true,
            period: "1H".into(),
            query: "DeviceProcessEvents\n| where X == 1   \n| project Timestamp, ReportId, DeviceId\n\n".into(),
            alert: AlertTemplate {
                title: "t".into(),
                description: "d".into(),
                severity: "medium".into(),
                category: "Execution".into(),
                techniques: vec!["T1059.001".into()],
                recommended_actions: None,
                impacted_assets: vec![Asset {
                    kind: "device".into(),
                    identifier: "deviceId".into(),
                }],
            },
            response_actions: vec![],
            tags: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn a_rule_round_trips_through_graph_with_its_key_and_tags() {
        let r = rule();
        let mut v = to_graph(&r);
        assert!(
            v["queryCondition"]["queryText"]
                .as_str()
                .unwrap()
                .starts_with("// secgraph-rule: key=enc-ps tags=a,b\nDeviceProcessEvents")
        );
        v["id"] = json!("7");
        let back = from_graph(&v);
        assert!(back.managed);
        assert_eq!(back.id, "7");
        let mut expected = r.clone();
        expected.query = normalise_query(&r.query) + "\n";
        assert_eq!(back.rule, expected);
    }

    #[test]
    fn a_rule_without_a_key_line_is_unmanaged() {
        let v = json!({"id": 3, "displayName": "Portal rule", "queryCondition": {"queryText": "DeviceEvents | take 1"}});
        let r = from_graph(&v);
        assert!(!r.managed);
        assert_eq!(r.rule.key, "");
        assert_eq!(r.id, "3");
        assert_eq!(key_from_name("Portal rule: (v2)"), "portal-rule-v2");
    }

    #[test]
    fn yaml_round_trips() {
        let r = rule();
        let text = to_yaml(&r);
        let back = super::super::file::parse(&text, std::path::Path::new("x.yaml")).unwrap();
        assert_eq!(back[0].rule.query, normalise_query(&r.query) + "\n");
        assert_eq!(back[0].rule.alert, r.alert);
        assert!(text.contains("query: |"), "{text}");
    }
}
