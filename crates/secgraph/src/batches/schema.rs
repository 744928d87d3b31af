//! The columns of each Graph security entity, from Graph's documented types, and the mapping of advanced hunting's
//! column types. A column is a dotted name (nested objects flattened as pandas' `json_normalize` names them) and a
//! [`Kind`].

/// How a column is stored in Arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `Utf8`.
    Text,
    /// A string from an open vocabulary (severity, status…): `Dictionary(Int32, Utf8)`, any value kept.
    Enum,
    /// `Timestamp(Microsecond, "UTC")`, from ISO 8601 text (Graph's seven fractional digits cut to six).
    Time,
    /// `Int64`.
    Int,
    /// `Float64`.
    Float,
    /// `Boolean`.
    Bool,
    /// `List(Utf8)`: a list of strings (tags, MITRE techniques).
    TextList,
    /// `Utf8` holding JSON text: lists of objects (evidence, comments, states), free-form dictionaries
    /// (`additionalData`, `customDetails`) and hunting's `Dynamic`. A JSON string is stored as its content.
    Json,
}

use Kind::*;

/// Columns of alerts_v2 (`microsoft.graph.security.alert`).
pub const ALERT_V2: &[(&str, Kind)] = &[
    ("id", Text),
    ("providerAlertId", Text),
    ("incidentId", Text),
    ("status", Enum),
    ("severity", Enum),
    ("classification", Enum),
    ("determination", Enum),
    ("serviceSource", Enum),
    ("detectionSource", Enum),
    ("productName", Enum),
    ("detectorId", Text),
    ("tenantId", Text),
    ("title", Text),
    ("description", Text),
    ("recommendedActions", Text),
    ("category", Enum),
    ("assignedTo", Text),
    ("alertWebUrl", Text),
    ("incidentWebUrl", Text),
    ("actorDisplayName", Text),
    ("threatDisplayName", Text),
    ("threatFamilyName", Text),
    ("mitreTechniques", TextList),
    ("createdDateTime", Time),
    ("lastUpdateDateTime", Time),
    ("resolvedDateTime", Time),
    ("firstActivityDateTime", Time),
    ("lastActivityDateTime", Time),
    ("alertPolicyId", Text),
    ("systemTags", TextList),
    ("comments", Json),
    ("customDetails", Json),
    ("additionalData", Json),
    ("evidence", Json),
];

/// Columns of incidents (`microsoft.graph.security.incident`); `alerts` (with `$expand=alerts`) as JSON text.
pub const INCIDENT: &[(&str, Kind)] = &[
    ("id", Text),
    ("displayName", Text),
    ("tenantId", Text),
    ("status", Enum),
    ("severity", Enum),
    ("classification", Enum),
    ("determination", Enum),
    ("assignedTo", Text),
    ("createdDateTime", Time),
    ("lastUpdateDateTime", Time),
    ("incidentWebUrl", Text),
    ("redirectIncidentId", Text),
    ("customTags", TextList),
    ("systemTags", TextList),
    ("summary", Text),
    ("description", Text),
    ("resolvingComment", Text),
    ("lastModifiedBy", Text),
    ("comments", Json),
    ("alerts", Json),
];

/// Columns of legacy alerts (`microsoft.graph.alert`, retired in 2026): vendorInformation flattened, the state lists
/// as JSON text.
pub const LEGACY_ALERT: &[(&str, Kind)] = &[
    ("id", Text),
    ("title", Text),
    ("description", Text),
    ("category", Text),
    ("severity", Enum),
    ("status", Enum),
    ("feedback", Enum),
    ("confidence", Int),
    ("assignedTo", Text),
    ("azureTenantId", Text),
    ("azureSubscriptionId", Text),
    ("createdDateTime", Time),
    ("eventDateTime", Time),
    ("lastModifiedDateTime", Time),
    ("closedDateTime", Time),
    ("vendorInformation.provider", Enum),
    ("vendorInformation.providerVersion", Text),
    ("vendorInformation.subProvider", Text),
    ("vendorInformation.vendor", Enum),
    ("recommendedActions", TextList),
    ("tags", TextList),
    ("comments", TextList),
    ("detectionIds", TextList),
    ("incidentIds", TextList),
    ("sourceMaterials", TextList),
    ("userStates", Json),
    ("hostStates", Json),
    ("fileStates", Json),
    ("networkConnections", Json),
    ("processes", Json),
    ("registryKeyStates", Json),
    ("malwareStates", Json),
    ("triggers", Json),
    ("cloudAppStates", Json),
    ("historyStates", Json),
    ("securityResources", Json),
    ("vulnerabilityStates", Json),
];

/// Columns of secure scores.
pub const SECURE_SCORE: &[(&str, Kind)] = &[
    ("id", Text),
    ("azureTenantId", Text),
    ("createdDateTime", Time),
    ("currentScore", Float),
    ("maxScore", Float),
    ("activeUserCount", Int),
    ("licensedUserCount", Int),
    ("enabledServices", TextList),
    ("averageComparativeScores", Json),
    ("controlScores", Json),
    ("vendorInformation.provider", Enum),
    ("vendorInformation.providerVersion", Text),
    ("vendorInformation.subProvider", Text),
    ("vendorInformation.vendor", Enum),
];

/// The entity schema for a Graph path (`/security/alerts_v2?…`, `…/incidents/{id}`, full URLs too): the collection
/// segment after `security` decides. `None` for other paths (their columns come from the data).
///
/// ```
/// use secgraph::batches::schema::{for_path, ALERT_V2, INCIDENT};
/// assert_eq!(for_path("/security/alerts_v2?$top=5"), Some(ALERT_V2));
/// assert_eq!(for_path("https://graph.microsoft.com/v1.0/security/incidents/7?$expand=alerts"), Some(INCIDENT));
/// assert_eq!(for_path("/users"), None);
/// ```
pub fn for_path(path: &str) -> Option<&'static [(&'static str, Kind)]> {
    match collection(path)? {
        "alerts_v2" => Some(ALERT_V2),
        "incidents" => Some(INCIDENT),
        "alerts" => Some(LEGACY_ALERT),
        "secureScores" => Some(SECURE_SCORE),
        _ => None,
    }
}

/// The security collection a path reads: the segment after `security` (`alerts_v2`, `incidents`, …).
pub fn collection(path: &str) -> Option<&str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/').skip_while(|s| *s != "security").nth(1)
}

/// The kind for an advanced-hunting column type (`DateTime`, `Int64`, `Dynamic`, …; case-insensitive). Unknown
/// types are kept as JSON text.
pub fn hunting_kind(graph_type: &str) -> Kind {
    match graph_type.to_ascii_lowercase().as_str() {
        "datetime" => Time,
        "int64" | "int32" | "int" | "long" => Int,
        "double" | "real" | "decimal" | "float" => Float,
        "boolean" | "bool" => Bool,
        "string" | "guid" => Text,
        _ => Json,
    }
}
