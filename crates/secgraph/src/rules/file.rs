//! Rule files: one rule a file, or many under `rules:`. YAML with friendly names that mirror Graph's
//! `detectionRule`:
//!
//! ```yaml
//! key: encoded-powershell          # stable key: how the rule is found again in every tenant
//! name: Encoded PowerShell         # displayName
//! enabled: true                    # isEnabled (default true)
//! period: 1H                       # 0 (continuous, NRT), 1H, 3H, 12H, 24H
//! query: |                         # KQL; must return Timestamp, ReportId and each impacted asset's column
//!   DeviceProcessEvents
//!   | where ProcessCommandLine has "-enc"
//!   | project Timestamp, ReportId, DeviceId, DeviceName
//! alert:
//!   title: Encoded PowerShell on {{DeviceName}}
//!   description: PowerShell started with an encoded command.
//!   severity: medium               # informational, low, medium, high
//!   category: Execution
//!   techniques: [T1059.001]
//!   recommendedActions: Check the decoded command.
//!   impactedAssets:
//!     - {type: device, identifier: deviceId}
//! responseActions: []              # Graph's responseAction objects, as they are
//! tags: [hunting]
//! ```
//!
//! Every problem is reported with the file, the line and the field; all problems of a folder at once.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The schedule periods Defender offers: `0` (continuous, near real time), every 1, 3, 12 or 24 hours.
pub const PERIODS: &[&str] = &["0", "1H", "3H", "12H", "24H"];
/// Alert severities a rule may raise.
pub const SEVERITIES: &[&str] = &["informational", "low", "medium", "high"];
/// Columns every detection's query must return (Defender's requirement).
pub const REQUIRED_COLUMNS: &[&str] = &["Timestamp", "ReportId"];

/// Impacted asset kinds and the identifiers (result columns, camelCase) each may name, as Graph documents them.
pub const ASSET_IDENTIFIERS: &[(&str, &[&str])] = &[
    (
        "device",
        &[
            "deviceId",
            "deviceName",
            "remoteDeviceName",
            "targetDeviceName",
            "destinationDeviceName",
        ],
    ),
    (
        "user",
        &[
            "accountObjectId",
            "accountSid",
            "accountUpn",
            "accountName",
            "accountDomain",
            "accountId",
            "requestAccountSid",
            "requestAccountName",
            "requestAccountDomain",
            "recipientObjectId",
            "processAccountObjectId",
            "initiatingAccountSid",
            "initiatingProcessAccountUpn",
            "initiatingAccountName",
            "initiatingAccountDomain",
            "servicePrincipalId",
            "servicePrincipalName",
            "targetAccountUpn",
        ],
    ),
    (
        "mailbox",
        &[
            "accountUpn",
            "fileOwnerUpn",
            "initiatingProcessAccountUpn",
            "lastModifyingAccountUpn",
            "targetAccountUpn",
            "senderFromAddress",
            "senderDisplayName",
            "recipientEmailAddress",
            "senderMailFromAddress",
        ],
    ),
];

/// One custom detection rule as kept in Git.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Rule {
    /// The stable key: letters, digits, `.`, `_`, `-` (at most 64), unique in a folder.
    pub key: String,
    /// The display name.
    pub name: String,
    /// Whether the rule runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `0`, `1H`, `3H`, `12H` or `24H` (`NRT` is read as `0`).
    #[serde(deserialize_with = "text_or_number")]
    pub period: String,
    /// The KQL.
    pub query: String,
    /// The alert the rule raises.
    pub alert: AlertTemplate,
    /// Graph `responseAction` objects (isolate device, collect investigation package, …), passed through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_actions: Vec<Value>,
    /// Labels kept with the rule (in its key line on the service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The alert a rule raises (Graph's `alertTemplate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AlertTemplate {
    /// The alert's title.
    pub title: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// `informational`, `low`, `medium` or `high`.
    pub severity: String,
    /// The alert category (`Execution`, `CredentialAccess`, …).
    pub category: String,
    /// MITRE ATT&CK technique ids (`T1059.001`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub techniques: Vec<String>,
    /// What the analyst should do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_actions: Option<String>,
    /// The entities the alert is about: each names a column the query returns.
    pub impacted_assets: Vec<Asset>,
}

/// An impacted asset: a kind and the result column (camelCase) that identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// `device`, `user` or `mailbox`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The column, camelCase as Graph names it (`deviceId` for the `DeviceId` column).
    pub identifier: String,
}

impl Rule {
    /// The period as Graph spells it (`NRT` is `0`).
    pub fn graph_period(&self) -> String {
        if self.period.eq_ignore_ascii_case("nrt") {
            "0".into()
        } else {
            self.period.clone()
        }
    }
}

impl Asset {
    /// The result column it names (`deviceId` → `DeviceId`).
    pub fn column(&self) -> String {
        let mut c = self.identifier.clone();
        if let Some(f) = c.get_mut(..1) {
            f.make_ascii_uppercase();
        }
        c
    }
}

fn yes() -> bool {
    true
}

fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        S(String),
        N(u64),
    }
    Ok(match T::deserialize(d)? {
        T::S(s) => s,
        T::N(n) => n.to_string(),
    })
}

/// The largest rule file read (a rule is a few kilobytes).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// A rule and where it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RuleFile {
    /// The rule.
    pub rule: Rule,
    /// Its file.
    pub path: PathBuf,
    /// The line its definition starts on.
    pub line: usize,
}

#[derive(Deserialize)]
struct Many {
    rules: Vec<serde_saphyr::Spanned<Rule>>,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    rules: Option<serde::de::IgnoredAny>,
}

/// Loads the rules of a file or of every `*.yaml`/`*.yml` file in a folder (sorted, not recursive), each checked
/// ([`check`]). All problems are collected; any problem fails the load with every one of them listed.
pub fn load(path: &Path) -> Result<Vec<RuleFile>> {
    let files = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| read_error(path, &e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_path_buf()]
    };
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    for f in &files {
        let text = crate::local_file::read(f, MAX_FILE_BYTES)
            .and_then(|b| String::from_utf8(b).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")))
            .map_err(|e| Error::ConfigParse {
                origin: f.display().to_string(),
                message: format!("cannot read the rule file: {e}"),
            })?;
        match parse(&text, f) {
            Ok(found) => {
                for r in found {
                    problems.extend(check(&r, &text));
                    rules.push(r);
                }
            }
            Err(p) => problems.push(p),
        }
    }
    let mut seen: std::collections::HashMap<String, &RuleFile> = Default::default();
    for r in &rules {
        if let Some(first) = seen.insert(r.rule.key.to_ascii_lowercase(), r) {
            problems.push(format!(
                "{}:{}: key: '{}' is also the key of the rule at {}:{} (keys are unique)",
                r.path.display(),
                r.line,
                r.rule.key,
                first.path.display(),
                first.line
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::ConfigParse {
            origin: path.display().to_string(),
            message: format!("{} problem(s) in the rule files:\n  {}", problems.len(), problems.join("\n  ")),
        });
    }
    Ok(rules)
}

fn read_error(path: &Path, e: &std::io::Error) -> Error {
    Error::ConfigParse {
        origin: path.display().to_string(),
        message: format!("cannot read the rules folder: {e}"),
    }
}

/// The rules of one file's text (one rule, or many under `rules:`), or the problem, as `file:line: message`.
pub fn parse(text: &str, path: &Path) -> std::result::Result<Vec<RuleFile>, String> {
    let at = |e: &serde_saphyr::Error| {
        let line = e.location().map_or(0, |l| l.line() as usize);
        // The first line of the message, without its own "error: line N column M:" (the file and line lead).
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let msg = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
            Some((_, rest)) => rest,
            None => first,
        };
        format!("{}:{line}: {}", path.display(), crate::error::clean(msg, 300))
    };
    let probe: Probe = serde_saphyr::from_str(text).map_err(|e| at(&e))?;
    if probe.rules.is_some() {
        let many: Many = serde_saphyr::from_str(text).map_err(|e| at(&e))?;
        Ok(many
            .rules
            .into_iter()
            .map(|s| RuleFile {
                line: s.referenced.line() as usize,
                rule: s.value,
                path: path.to_path_buf(),
            })
            .collect())
    } else {
        let rule: Rule = serde_saphyr::from_str(text).map_err(|e| at(&e))?;
        Ok(vec![RuleFile {
            rule,
            path: path.to_path_buf(),
            line: 1,
        }])
    }
}

/// The line of `field` (a dotted path; its last part is searched) at or after the rule's first line.
fn line_of(text: &str, from: usize, field: &str) -> usize {
    let last = field.rsplit('.').next().unwrap_or(field);
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.starts_with(&format!("{last}:")) || t.starts_with(&format!("{{{last}:"))
        })
        .map_or(from, |(i, _)| i + 1)
}

/// The problems of one rule (empty when it is fine), each `file:line: field: message`. `text` is its file's text
/// (for lines).
pub fn check(r: &RuleFile, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |field: &str, line: Option<usize>, msg: String| {
        let line = line.unwrap_or_else(|| line_of(text, r.line, field));
        out.push(format!("{}:{line}: {field}: {msg}", r.path.display()));
    };
    let rule = &r.rule;
    let key_ok =
        !rule.key.is_empty() && rule.key.len() <= 64 && rule.key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !key_ok {
        say(
            "key",
            None,
            format!("'{}' is not a key: 1 to 64 letters, digits, '.', '_' or '-'", rule.key),
        );
    }
    for t in &rule.tags {
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')) {
            say("tags", None, format!("'{t}' is not a tag: letters, digits, '.', '_', '-' or ':'"));
        }
    }
    if rule.name.trim().is_empty() {
        say("name", None, "is required".into());
    }
    if !PERIODS.contains(&rule.period.as_str()) && !rule.period.eq_ignore_ascii_case("nrt") {
        say(
            "period",
            None,
            format!(
                "'{}' is not a period: one of {} (0 is continuous, NRT)",
                rule.period,
                PERIODS.join(", ")
            ),
        );
    }
    if rule.alert.title.trim().is_empty() {
        say("alert.title", None, "is required".into());
    }
    if !SEVERITIES.contains(&rule.alert.severity.as_str()) {
        say(
            "alert.severity",
            None,
            format!("'{}' is not a severity: one of {}", rule.alert.severity, SEVERITIES.join(", ")),
        );
    }
    if rule.alert.category.trim().is_empty() {
        say("alert.category", None, "is required".into());
    }
    for t in &rule.alert.techniques {
        if !is_technique(t) {
            say(
                "alert.techniques",
                None,
                format!("'{t}' is not a MITRE ATT&CK technique id (T1059 or T1059.001)"),
            );
        }
    }
    if rule.alert.impacted_assets.is_empty() {
        say("alert.impactedAssets", None, "at least one impacted asset is required".into());
    }
    for a in &rule.alert.impacted_assets {
        match ASSET_IDENTIFIERS.iter().find(|(k, _)| *k == a.kind) {
            None => say(
                "alert.impactedAssets",
                None,
                format!("type '{}' is not one of device, user, mailbox", a.kind),
            ),
            Some((_, ids)) if !ids.contains(&a.identifier.as_str()) => say(
                "alert.impactedAssets",
                None,
                format!(
                    "'{}' is not an identifier of a {} asset: one of {}",
                    a.identifier,
                    a.kind,
                    ids.join(", ")
                ),
            ),
            _ => {}
        }
    }
    for (problem, line_in_query) in query_problems(rule) {
        let line = line_in_query.map(|l| line_of(text, r.line, "query") + l);
        say("query", line, problem);
    }
    out
}

/// What keeps a rule's query from being a detection, each with its line within the query when known: it must
/// parse, must not aggregate, and must return [`REQUIRED_COLUMNS`] and each impacted asset's column (when the text
/// decides; columns a Defender table passes through are the service's to check).
pub fn query_problems(rule: &Rule) -> Vec<(String, Option<usize>)> {
    let q = match secgraph_kql::parse_query(&rule.query) {
        Ok(q) => q,
        Err(e) => {
            // An error at the very end (a trailing newline) is shown on the query's last line.
            let lines = super::graph::normalise_query(&rule.query).lines().count().max(1);
            return vec![(
                format!(
                    "the KQL does not parse: {} (line {}, column {} of the query)",
                    e.message, e.line, e.column
                ),
                Some(e.line.min(lines)),
            )];
        }
    };
    let shape = secgraph_kql::shape::shape(&q);
    let mut out = Vec::new();
    if let Some(op) = shape.aggregated_by {
        out.push((
            format!("'{op}' makes rows into groups: a detection returns one row per event (with Timestamp and ReportId)"),
            None,
        ));
        return out;
    }
    let assets = rule.alert.impacted_assets.iter().map(Asset::column);
    for c in REQUIRED_COLUMNS.iter().map(|c| c.to_string()).chain(assets) {
        if shape.has(&c) == Some(false) {
            out.push((format!("the query does not return the {c} column, which a detection needs"), None));
        }
    }
    out
}

/// Whether `t` is a MITRE ATT&CK technique id: `T1059` or `T1059.001`.
pub fn is_technique(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 5
        && b[0] == b'T'
        && b[1..5].iter().all(u8::is_ascii_digit)
        && (b.len() == 5 || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
}
