//! Write-back: status, classification, determination, assignee and comments on alerts (v2), incidents and legacy
//! alerts. Values are checked against the documented enums before anything is sent.

use crate::error::{Error, Result};
use serde_json::{Map, Value, json};

/// What to update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
}

/// The requests an update makes, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The PATCH body, if any property changes.
    pub patch: Option<Map<String, Value>>,
    /// The comment POST body (alerts_v2 and incidents).
    pub comment: Option<Value>,
}

/// Declares a Graph enumeration: variants with Graph's spelling, an `Other` arm that keeps values this version does
/// not know (Graph adds members over time; `unknownFutureValue`), strict `FromStr` for user input (case-insensitive;
/// the error lists the values), `Display` and serde as Graph spells it. (`Other` rather than `Unknown`, because
/// `unknown` is itself a member of several of Graph's enumerations.)
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know, as Graph sent it.
            Other(String),
        }

        impl $name {
            /// Every known value, as Graph spells it.
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            /// As Graph spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }

            /// Reads a value as Graph sends it; one this version does not know is kept as [`Self::Other`].
            pub fn from_graph(s: &str) -> $name {
                s.parse().unwrap_or_else(|_| $name::Other(s.to_string()))
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            /// Reads a value a user typed (any case); an unknown value is an error listing the known ones.
            fn from_str(s: &str) -> Result<$name> {
                $(if s.trim().eq_ignore_ascii_case($text) {
                    return Ok($name::$variant);
                })+
                Err(Error::Query {
                    message: format!(
                        "'{}' is not a valid {}; one of: {}",
                        crate::error::clean(s, 60),
                        $field,
                        $name::VALUES.join(", ")
                    ),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::from_graph(&s))
            }
        }
    };
}

vocabulary!(
    /// The `status` of an alerts_v2 alert.
    AlertStatus, "status" {
        /// `new`
        New = "new",
        /// `inProgress`
        InProgress = "inProgress",
        /// `resolved`
        Resolved = "resolved",
    }
);

vocabulary!(
    /// The `status` of an incident.
    IncidentStatus, "status" {
        /// `active`
        Active = "active",
        /// `inProgress`
        InProgress = "inProgress",
        /// `resolved`
        Resolved = "resolved",
        /// `awaitingAction`
        AwaitingAction = "awaitingAction",
        /// `redirected`
        Redirected = "redirected",
    }
);

vocabulary!(
    /// The `status` of a legacy alert.
    LegacyAlertStatus, "status" {
        /// `newAlert`
        NewAlert = "newAlert",
        /// `inProgress`
        InProgress = "inProgress",
        /// `resolved`
        Resolved = "resolved",
    }
);

vocabulary!(
    /// The `classification` of an alerts_v2 alert or an incident.
    Classification, "classification" {
        /// `unknown` (Graph's own member, not an unrecognised value).
        Unknown = "unknown",
        /// `falsePositive`
        FalsePositive = "falsePositive",
        /// `truePositive`
        TruePositive = "truePositive",
        /// `informationalExpectedActivity`
        InformationalExpectedActivity = "informationalExpectedActivity",
    }
);

vocabulary!(
    /// The `determination` of an alerts_v2 alert or an incident.
    Determination, "determination" {
        /// `unknown`
        Unknown = "unknown",
        /// `apt`
        Apt = "apt",
        /// `malware`
        Malware = "malware",
        /// `securityPersonnel`
        SecurityPersonnel = "securityPersonnel",
        /// `securityTesting`
        SecurityTesting = "securityTesting",
        /// `unwantedSoftware`
        UnwantedSoftware = "unwantedSoftware",
        /// `other` (Graph's member)
        OtherDetermination = "other",
        /// `multiStagedAttack`
        MultiStagedAttack = "multiStagedAttack",
        /// `compromisedAccount`
        CompromisedAccount = "compromisedAccount",
        /// `phishing`
        Phishing = "phishing",
        /// `maliciousUserActivity`
        MaliciousUserActivity = "maliciousUserActivity",
        /// `notMalicious`
        NotMalicious = "notMalicious",
        /// `notEnoughDataToValidate`
        NotEnoughDataToValidate = "notEnoughDataToValidate",
        /// `confirmedActivity`
        ConfirmedActivity = "confirmedActivity",
        /// `lineOfBusinessApplication`
        LineOfBusinessApplication = "lineOfBusinessApplication",
    }
);

vocabulary!(
    /// The `feedback` of a legacy alert (its classification).
    Feedback, "feedback" {
        /// `unknown`
        Unknown = "unknown",
        /// `truePositive`
        TruePositive = "truePositive",
        /// `falsePositive`
        FalsePositive = "falsePositive",
        /// `benignPositive`
        BenignPositive = "benignPositive",
    }
);

/// A new status, in the vocabulary of the item it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// For an alerts_v2 alert.
    Alert(AlertStatus),
    /// For an incident.
    Incident(IncidentStatus),
    /// For a legacy alert.
    LegacyAlert(LegacyAlertStatus),
}

impl Status {
    /// Reads a status a user typed, in the vocabulary of `target`.
    pub fn parse(target: Target, s: &str) -> Result<Status> {
        Ok(match target {
            Target::Alert => Status::Alert(s.parse()?),
            Target::Incident => Status::Incident(s.parse()?),
            Target::LegacyAlert => Status::LegacyAlert(s.parse()?),
        })
    }

    fn target(&self) -> Target {
        match self {
            Status::Alert(_) => Target::Alert,
            Status::Incident(_) => Target::Incident,
            Status::LegacyAlert(_) => Target::LegacyAlert,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Status::Alert(s) => s.as_str(),
            Status::Incident(s) => s.as_str(),
            Status::LegacyAlert(s) => s.as_str(),
        }
    }
}

/// The changes to make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Update {
    /// New `status`.
    pub status: Option<Status>,
    /// New `classification` (alerts_v2, incidents).
    pub classification: Option<Classification>,
    /// New `determination` (alerts_v2, incidents).
    pub determination: Option<Determination>,
    /// New `feedback` (legacy alerts' classification).
    pub feedback: Option<Feedback>,
    /// `Some("")` unassigns.
    pub assigned_to: Option<String>,
    /// A comment to add.
    pub comment: Option<String>,
    /// Tags to set (legacy alerts) or custom tags (incidents).
    pub tags: Vec<String>,
}

impl Update {
    /// An update from what a user typed, checked against `target`'s vocabularies. For a legacy alert a
    /// classification is its `feedback` (`informationalExpectedActivity` is sent as `benignPositive`).
    #[allow(clippy::too_many_arguments)]
    pub fn from_text(
        target: Target,
        status: Option<&str>,
        classification: Option<&str>,
        determination: Option<&str>,
        assigned_to: Option<&str>,
        comment: Option<&str>,
        tags: &[String],
    ) -> Result<Update> {
        let (classification, feedback) = match (target, classification) {
            (_, None) => (None, None),
            (Target::LegacyAlert, Some(c)) => {
                let f = match c.parse::<Classification>() {
                    Ok(Classification::InformationalExpectedActivity) => Feedback::BenignPositive,
                    Ok(other) => other.as_str().parse()?,
                    Err(_) => c.parse()?,
                };
                (None, Some(f))
            }
            (_, Some(c)) => (Some(c.parse()?), None),
        };
        Ok(Update {
            status: status.map(|s| Status::parse(target, s)).transpose()?,
            classification,
            determination: determination.map(str::parse).transpose()?,
            feedback,
            assigned_to: assigned_to.map(str::to_string),
            comment: comment.map(str::to_string),
            tags: tags.to_vec(),
        })
    }

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
            if s.target() != target {
                return Err(Error::Query {
                    message: format!("status '{}' is for another kind of item", s.as_str()),
                });
            }
            m.insert("status".into(), json!(s.as_str()));
        }
        match (target, &self.classification, &self.feedback) {
            (Target::LegacyAlert, Some(_), _) => {
                return Err(Error::Query {
                    message: "legacy alerts take feedback, not classification".into(),
                });
            }
            (Target::LegacyAlert, None, Some(f)) => {
                m.insert("feedback".into(), json!(f));
            }
            (_, _, Some(_)) => {
                return Err(Error::Query {
                    message: "only legacy alerts take feedback; use classification".into(),
                });
            }
            (_, Some(c), None) => {
                m.insert("classification".into(), json!(c));
            }
            (_, None, None) => {}
        }
        if let Some(d) = &self.determination {
            if target == Target::LegacyAlert {
                return Err(Error::Query {
                    message: "legacy alerts have no determination; use --classification (sent as feedback)".into(),
                });
            }
            m.insert("determination".into(), json!(d));
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

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    #[test]
    fn user_input_is_strict_and_graph_replies_are_kept() {
        assert_eq!("TRUEPOSITIVE".parse::<Classification>().unwrap(), Classification::TruePositive);
        let e = "closed".parse::<AlertStatus>().unwrap_err().to_string();
        assert!(e.contains("not a valid status") && e.contains("inProgress"), "{e}");
        // A member Graph added later is kept, not refused, when read from a reply.
        let v: Determination = serde_json::from_value(serde_json::json!("aNewKind")).unwrap();
        assert_eq!(v, Determination::Other("aNewKind".into()));
        assert_eq!(serde_json::to_value(&v).unwrap(), "aNewKind");
        assert_eq!(serde_json::to_value(Determination::NotMalicious).unwrap(), "notMalicious");
        assert_eq!(IncidentStatus::from_graph("awaitingAction"), IncidentStatus::AwaitingAction);
    }

    #[test]
    fn legacy_classification_becomes_feedback() {
        let u = Update::from_text(
            Target::LegacyAlert,
            Some("resolved"),
            Some("informationalExpectedActivity"),
            None,
            None,
            None,
            &[],
        )
        .unwrap();
        let plan = u.plan(Target::LegacyAlert).unwrap();
        let patch = plan.patch.unwrap();
        assert_eq!(patch["feedback"], "benignPositive");
        assert_eq!(patch["status"], "resolved");
        // A status from another vocabulary is refused for the target it does not belong to.
        assert!(Update::from_text(Target::LegacyAlert, Some("new"), None, None, None, None, &[]).is_err());
        let u = Update::from_text(Target::Alert, Some("new"), None, None, None, None, &[]).unwrap();
        assert!(u.plan(Target::Incident).is_err());
    }
}
