//! Write-back: status, classification, determination, assignee and comments on alerts (v2), incidents and legacy
//! alerts. Values are checked against the documented enums before anything is sent.

use crate::error::{Error, Result};
use serde_json::{Map, Value, json};

/// What to update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `/security/alerts_v2/{id}`
    Alert,
    /// `/security/incidents/{id}`
    Incident,
    /// `/security/alerts/{id}` (legacy, retired in 2026)
    LegacyAlert,
}

impl Target {
    /// The item's path under the Graph root.
    pub fn path(self, id: &str) -> String {
        let coll = match self {
            Target::Alert => "alerts_v2",
            Target::Incident => "incidents",
            Target::LegacyAlert => "alerts",
        };
        format!(
            "/security/{coll}/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        )
    }

    fn statuses(self) -> &'static [&'static str] {
        match self {
            Target::Alert => &["new", "inProgress", "resolved"],
            Target::Incident => &["active", "inProgress", "resolved", "awaitingAction", "redirected"],
            Target::LegacyAlert => &["newAlert", "inProgress", "resolved"],
        }
    }
}

/// alerts_v2 and incident `classification` values.
pub const CLASSIFICATIONS: &[&str] = &["unknown", "falsePositive", "truePositive", "informationalExpectedActivity"];
/// alerts_v2 and incident `determination` values.
pub const DETERMINATIONS: &[&str] = &[
    "unknown",
    "apt",
    "malware",
    "securityPersonnel",
    "securityTesting",
    "unwantedSoftware",
    "other",
    "multiStagedAttack",
    "compromisedAccount",
    "phishing",
    "maliciousUserActivity",
    "notMalicious",
    "notEnoughDataToValidate",
    "confirmedActivity",
    "lineOfBusinessApplication",
];
/// Legacy alerts take `feedback` instead of classification.
pub const FEEDBACK: &[&str] = &["unknown", "truePositive", "falsePositive", "benignPositive"];

/// The changes, as a user gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// New `status`.
    pub status: Option<String>,
    /// New `classification` (alerts_v2, incidents).
    pub classification: Option<String>,
    /// New `determination` (alerts_v2, incidents).
    pub determination: Option<String>,
    /// `Some("")` unassigns.
    pub assigned_to: Option<String>,
    /// A comment to add.
    pub comment: Option<String>,
    /// Tags to set (legacy alerts) or custom tags (incidents).
    pub tags: Vec<String>,
}

fn canonical(field: &str, value: &str, allowed: &[&str]) -> Result<String> {
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value.trim()))
        .map(|a| a.to_string())
        .ok_or_else(|| Error::Query {
            message: format!("'{value}' is not a valid {field}; one of: {}", allowed.join(", ")),
        })
}

/// The requests an update makes, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The PATCH body, if any property changes.
    pub patch: Option<Map<String, Value>>,
    /// The comment POST body (alerts_v2 and incidents).
    pub comment: Option<Value>,
}

impl Update {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Update::default()
    }

    /// Validates and builds the requests. For legacy alerts the caller adds `vendorInformation`.
    pub fn plan(&self, target: Target) -> Result<Plan> {
        if self.is_empty() {
            return Err(Error::Query {
                message: "nothing to update: give --status, --classification, --determination, --assigned-to, --tag or --comment".into(),
            });
        }
        let mut m = Map::new();
        if let Some(s) = &self.status {
            m.insert("status".into(), json!(canonical("status", s, target.statuses())?));
        }
        match (target, &self.classification) {
            (Target::LegacyAlert, Some(c)) => {
                m.insert("feedback".into(), json!(canonical("feedback", c, FEEDBACK)?));
            }
            (_, Some(c)) => {
                m.insert("classification".into(), json!(canonical("classification", c, CLASSIFICATIONS)?));
            }
            (_, None) => {}
        }
        if let Some(d) = &self.determination {
            if target == Target::LegacyAlert {
                return Err(Error::Query {
                    message: "legacy alerts have no determination; use --classification (sent as feedback)".into(),
                });
            }
            m.insert("determination".into(), json!(canonical("determination", d, DETERMINATIONS)?));
        }
        if let Some(a) = &self.assigned_to {
            m.insert("assignedTo".into(), if a.is_empty() { Value::Null } else { json!(a) });
        }
        if !self.tags.is_empty() {
            match target {
                Target::Incident => m.insert("customTags".into(), json!(self.tags)),
                Target::LegacyAlert => m.insert("tags".into(), json!(self.tags)),
                Target::Alert => {
                    return Err(Error::Query {
                        message: "alerts_v2 alerts have no tags; tag the incident instead".into(),
                    });
                }
            };
        }
        let mut comment = None;
        if let Some(c) = self.comment.as_ref().filter(|c| !c.trim().is_empty()) {
            match target {
                Target::LegacyAlert => {
                    m.insert("comments".into(), json!([c]));
                }
                _ => comment = Some(json!({"@odata.type": "microsoft.graph.security.alertComment", "comment": c})),
            }
        }
        Ok(Plan {
            patch: if m.is_empty() { None } else { Some(m) },
            comment,
        })
    }
}
