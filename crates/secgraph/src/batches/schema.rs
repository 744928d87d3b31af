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

/// Columns of a threat intelligence host (`hostname` or `ipAddress`).
pub const TI_HOST: &[(&str, Kind)] = &[("id", Text), ("firstSeenDateTime", Time), ("lastSeenDateTime", Time)];

/// Columns of a host's reputation (`hostReputation`).
pub const TI_REPUTATION: &[(&str, Kind)] = &[("id", Text), ("classification", Enum), ("score", Int), ("rules", Json)];

/// Columns of a host's whois record (`whoisRecord`).
pub const TI_WHOIS: &[(&str, Kind)] = &[
    ("id", Text),
    ("domainStatus", Text),
    ("registrar.name", Text),
    ("registrant.name", Text),
    ("registrant.organization", Text),
    ("registrant.countryOrRegion", Text),
    ("nameservers", Json),
    ("firstSeenDateTime", Time),
    ("lastSeenDateTime", Time),
    ("lastUpdateDateTime", Time),
    ("expirationDateTime", Time),
    ("host.id", Text),
];

/// Columns of passive DNS records (`passiveDnsRecord`).
pub const TI_PASSIVE_DNS: &[(&str, Kind)] = &[
    ("id", Text),
    ("recordType", Enum),
    ("artifact.id", Text),
    ("parentHost.id", Text),
    ("collectedDateTime", Time),
    ("firstSeenDateTime", Time),
    ("lastSeenDateTime", Time),
];

/// Columns of a host's SSL certificates (`hostSslCertificate`).
pub const TI_SSL: &[(&str, Kind)] = &[
    ("id", Text),
    ("sslCertificate.sha1", Text),
    ("sslCertificate.subject.commonName", Text),
    ("sslCertificate.issuer.commonName", Text),
    ("sslCertificate.issueDateTime", Time),
    ("sslCertificate.expirationDateTime", Time),
    ("firstSeenDateTime", Time),
    ("lastSeenDateTime", Time),
    ("host.id", Text),
];

/// Columns of threat intelligence articles (`article`).
pub const TI_ARTICLE: &[(&str, Kind)] = &[
    ("id", Text),
    ("title", Text),
    ("summary.content", Text),
    ("createdDateTime", Time),
    ("lastUpdatedDateTime", Time),
    ("isFeatured", Bool),
    ("tags", TextList),
    ("imageUrl", Text),
];

/// Columns of an article's indicators (`articleIndicator`).
pub const TI_INDICATOR: &[(&str, Kind)] = &[("id", Text), ("source", Enum), ("artifact.id", Text)];

/// Columns of intel profiles (`intelligenceProfile`).
pub const TI_PROFILE: &[(&str, Kind)] = &[
    ("id", Text),
    ("title", Text),
    ("kind", Enum),
    ("aliases", TextList),
    ("targets", TextList),
    ("firstActiveDateTime", Time),
    ("summary.content", Text),
    ("tradecraft.content", Text),
    ("countriesOrRegionsOfOrigin", Json),
];

/// Columns of a vulnerability (`vulnerability`).
pub const TI_VULNERABILITY: &[(&str, Kind)] = &[
    ("id", Text),
    ("severity", Enum),
    ("cvss3Summary.score", Float),
    ("description.content", Text),
    ("publishedDateTime", Time),
    ("lastModifiedDateTime", Time),
    ("exploitsAvailable", Bool),
    ("activeExploitsObserved", Bool),
    ("commonWeaknessEnumerationIds", TextList),
];

/// Columns of unified audit log records (`auditLogRecord`).
pub const AUDIT_RECORD: &[(&str, Kind)] = &[
    ("id", Text),
    ("createdDateTime", Time),
    ("auditLogRecordType", Enum),
    ("operation", Text),
    ("service", Enum),
    ("userPrincipalName", Text),
    ("userId", Text),
    ("userType", Enum),
    ("clientIp", Text),
    ("objectId", Text),
    ("organizationId", Text),
    ("administrativeUnits", TextList),
    ("auditData", Json),
];

/// Columns of Defender for Identity health issues (`healthIssue`).
pub const HEALTH_ISSUE: &[(&str, Kind)] = &[
    ("id", Text),
    ("displayName", Text),
    ("healthIssueType", Enum),
    ("severity", Enum),
    ("status", Enum),
    ("createdDateTime", Time),
    ("lastModifiedDateTime", Time),
    ("domainNames", TextList),
    ("sensorDNSNames", TextList),
    ("issueTypeId", Text),
    ("description", Text),
    ("recommendations", TextList),
    ("recommendedActionCommands", TextList),
    ("additionalInformation", TextList),
];

/// Columns of Defender for Identity sensors (`sensor`).
pub const SENSOR: &[(&str, Kind)] = &[
    ("id", Text),
    ("displayName", Text),
    ("sensorType", Enum),
    ("deploymentStatus", Enum),
    ("healthStatus", Enum),
    ("openHealthIssuesCount", Int),
    ("domainName", Text),
    ("version", Text),
    ("createdDateTime", Time),
    ("settings", Json),
];

/// Columns of identity accounts (`identityAccounts`).
pub const IDENTITY_ACCOUNT: &[(&str, Kind)] = &[
    ("id", Text),
    ("displayName", Text),
    ("domain", Text),
    ("isEnabled", Bool),
    ("onPremisesSecurityIdentifier", Text),
    ("cloudSecurityIdentifier", Text),
    ("accounts", Json),
];

/// The entity schema of a path under `/security/threatIntelligence`, `/security/auditLog` or
/// `/security/identities` (segments after `security`).
fn nested(segments: &[&str]) -> Option<&'static [(&'static str, Kind)]> {
    Some(match segments {
        ["threatIntelligence", "hosts", _] => TI_HOST,
        ["threatIntelligence", "hosts", _, "reputation"] => TI_REPUTATION,
        ["threatIntelligence", "hosts", _, "whois"] => TI_WHOIS,
        ["threatIntelligence", "hosts", _, "passiveDns"] => TI_PASSIVE_DNS,
        ["threatIntelligence", "hosts", _, "sslCertificates"] => TI_SSL,
        ["threatIntelligence", "articles"] | ["threatIntelligence", "articles", _] => TI_ARTICLE,
        ["threatIntelligence", "articles", _, "indicators"] => TI_INDICATOR,
        ["threatIntelligence", "intelProfiles", ..] => TI_PROFILE,
        ["threatIntelligence", "vulnerabilities", ..] => TI_VULNERABILITY,
        ["auditLog", "queries", _, "records"] => AUDIT_RECORD,
        ["identities", "healthIssues", ..] => HEALTH_ISSUE,
        ["identities", "sensors", ..] => SENSOR,
        ["identities", "identityAccounts", ..] => IDENTITY_ACCOUNT,
        _ => return None,
    })
}

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
        "threatIntelligence" | "auditLog" | "identities" => {
            let path = path.split(['?', '#']).next().unwrap_or_default();
            let segments: Vec<&str> = path
                .split('/')
                .skip_while(|s| *s != "security")
                .skip(1)
                .filter(|s| !s.is_empty())
                .collect();
            nested(&segments)
        }
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
