//! The query store: msticpy YAML files (built-in, settings folders, `--queries`), loaded and checked, looked up by
//! `family.name` or bare name.

use super::model::{Language, ParamType, Parameter, QueryTemplate};
use super::suggest::closest;
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Data environments whose queries are OData paths on Graph's security API.
const ODATA_ENVIRONMENTS: &[&str] = &["securitygraph", "microsoftgraph", "securitygraphapi"];
/// Data environments whose queries are KQL, run through Graph's `runHuntingQuery` (msticpy's M365D, M365DGraph and
/// MDE/MDATP providers' files, and ours).
const HUNTING_ENVIRONMENTS: &[&str] = &["m365d", "m365dgraph", "mde", "mdatp", "graphhunting", "microsoftdefender"];

/// What became of one query file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Its queries were added.
    Loaded {
        /// Names (`family.name`) whose earlier definitions this file replaced.
        overridden: Vec<String>,
    },
    /// The file is for data environments this provider does not serve (why, in one line).
    Skipped(String),
}

/// Largest template file accepted.
const MAX_FILE_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
struct FileDoc {
    metadata: FileMeta,
    #[serde(default)]
    defaults: Option<DefaultsDoc>,
    #[serde(default)]
    sources: BTreeMap<String, SourceDoc>,
}

#[derive(Deserialize)]
struct FileMeta {
    #[serde(default)]
    data_environments: Vec<String>,
    #[serde(default)]
    data_families: Vec<String>,
    #[serde(default)]
    query_language: Option<String>,
}

#[derive(Deserialize, Default)]
struct DefaultsDoc {
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct SourceDoc {
    #[serde(default)]
    description: String,
    #[serde(default)]
    metadata: Option<Value>,
    args: ArgsDoc,
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct ArgsDoc {
    /// Kept as a value so that a number or a list (`query: 5`) is refused, not turned into text.
    query: Value,
    #[serde(default)]
    language: Option<String>,
}

fn parse_language(s: Option<&str>) -> std::result::Result<Language, String> {
    match s.map(|x| x.trim().to_ascii_lowercase()).as_deref() {
        None | Some("odata") => Ok(Language::OData),
        Some("kql") | Some("kusto") => Ok(Language::Kql),
        Some("auditlog") | Some("audit_log") => Ok(Language::AuditLog),
        Some(other) => Err(format!("unknown query language '{other}' (odata or kql)")),
    }
}

fn parse_parameter(name: &str, v: &Value) -> std::result::Result<Parameter, String> {
    let Value::Object(m) = v else {
        return Err(format!("parameter '{name}' must be a mapping"));
    };
    let ty = m
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("parameter '{name}' has no type"))?;
    let kind = ParamType::parse(ty)
        .ok_or_else(|| format!("parameter '{name}' has unknown type '{ty}' (str, int, float, bool, datetime, list)"))?;
    let aliases = match m.get("aliases") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(_) => return Err(format!("parameter '{name}': aliases must be a list of names")),
    };
    Ok(Parameter {
        name: name.to_string(),
        description: m.get("description").and_then(Value::as_str).unwrap_or_default().trim().to_string(),
        kind,
        default: m.get("default").cloned(),
        aliases,
        format: m.get("format").and_then(Value::as_str).map(str::to_string),
        allowed: match m.get("allowed") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.iter().map(crate::output::cell_text).filter(|v| !v.is_empty()).collect(),
            Some(_) => return Err(format!("parameter '{name}': allowed must be a list of values")),
        },
    })
}

/// msticpy's provider supplies both ends of a query's time range when the caller gives none (its default
/// `QueryTime(units="day")`: one day before now to one day after); a `start`/`end` date-time without a default takes
/// the same here, so msticpy's files run as they do there.
fn msticpy_time_default(mut p: Parameter) -> Parameter {
    if p.kind == ParamType::Datetime && p.default.is_none() {
        match p.name.as_str() {
            "start" => p.default = Some(Value::String("-1d".into())),
            "end" => p.default = Some(Value::String("1d".into())),
            _ => {}
        }
    }
    p
}

/// All known queries, by `family.name`.
#[derive(Debug, Clone, Default)]
pub struct QueryStore {
    queries: Vec<QueryTemplate>,
}

/// The built-in query files, embedded in the binary.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("security_graph_alert.yaml", include_str!("builtin/security_graph_alert.yaml")),
    ("alerts.yaml", include_str!("builtin/alerts.yaml")),
    ("incidents.yaml", include_str!("builtin/incidents.yaml")),
    ("hunting.yaml", include_str!("builtin/hunting.yaml")),
    // The hunting library: one file per family.
    ("hunt_process.yaml", include_str!("builtin/hunt_process.yaml")),
    ("hunt_network.yaml", include_str!("builtin/hunt_network.yaml")),
    ("hunt_file.yaml", include_str!("builtin/hunt_file.yaml")),
    ("hunt_persistence.yaml", include_str!("builtin/hunt_persistence.yaml")),
    ("hunt_credential.yaml", include_str!("builtin/hunt_credential.yaml")),
    ("hunt_logon.yaml", include_str!("builtin/hunt_logon.yaml")),
    ("hunt_identity.yaml", include_str!("builtin/hunt_identity.yaml")),
    ("hunt_email.yaml", include_str!("builtin/hunt_email.yaml")),
    ("hunt_cloud.yaml", include_str!("builtin/hunt_cloud.yaml")),
    ("secure_score.yaml", include_str!("builtin/secure_score.yaml")),
    // Beyond alerts: threat intelligence, the unified audit log, Defender for Identity.
    ("threat_intel.yaml", include_str!("builtin/threat_intel.yaml")),
    ("audit_log.yaml", include_str!("builtin/audit_log.yaml")),
    ("identity.yaml", include_str!("builtin/identity.yaml")),
];

impl QueryStore {
    /// The built-in queries plus the folders the settings name (`QueryDefinitions.Custom`, msticpy's key), with what
    /// became of each file (queries it overrode, or why it was skipped) for the caller to report.
    pub fn with_settings(settings: Option<&crate::config::Settings>) -> Result<(QueryStore, Vec<(String, FileOutcome)>)> {
        let mut store = QueryStore::builtin()?;
        let mut files = Vec::new();
        if let Some(s) = settings {
            for dir in s.query_folders()? {
                files.extend(store.add_dir(&dir)?);
            }
        }
        Ok((store, files))
    }

    /// A store holding the built-in queries.
    pub fn builtin() -> Result<QueryStore> {
        let mut s = QueryStore::default();
        for (name, text) in BUILTIN_FILES {
            s.add_file(text, &format!("built-in:{name}"))?;
        }
        Ok(s)
    }

    /// Adds the queries of one YAML file. Returns the names it overrode. A file for another data environment adds
    /// nothing ([`QueryStore::load_file`] says why).
    pub fn add_file(&mut self, text: &str, origin: &str) -> Result<Vec<String>> {
        Ok(match self.load_file(text, origin)? {
            FileOutcome::Loaded { overridden } => overridden,
            FileOutcome::Skipped(_) => vec![],
        })
    }

    /// Adds the queries of one YAML file, or says why it was skipped.
    ///
    /// The file's `data_environments` decide how its queries run: OData environments (SecurityGraph,
    /// MicrosoftGraph) are Graph paths; hunting environments (M365D, M365DGraph, MDE, MDATP, GraphHunting) are KQL
    /// for `runHuntingQuery` — unless the file or query names its language. A `start`/`end` date-time parameter
    /// without a default takes msticpy's default query time (one day before now, one day after), as msticpy does.
    pub fn load_file(&mut self, text: &str, origin: &str) -> Result<FileOutcome> {
        if text.len() > MAX_FILE_BYTES {
            return Err(Error::Query {
                message: format!("{origin}: query file larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        let doc: FileDoc = crate::config::parse_yaml(text).map_err(|e| Error::Query {
            message: format!("{origin}: {e}"),
        })?;
        let envs: Vec<String> = doc.metadata.data_environments.iter().map(|e| e.to_ascii_lowercase()).collect();
        let odata = envs.iter().any(|e| ODATA_ENVIRONMENTS.contains(&e.as_str()));
        let hunting = envs.iter().any(|e| HUNTING_ENVIRONMENTS.contains(&e.as_str()));
        if !odata && !hunting {
            let listed = match doc.metadata.data_environments.as_slice() {
                [] => "no data_environments".to_string(),
                e => format!("data_environments {}", e.join(", ")),
            };
            return Ok(FileOutcome::Skipped(format!(
                "{listed}: not served by this provider (it runs SecurityGraph/MicrosoftGraph OData and M365D/M365DGraph/MDE hunting queries)"
            )));
        }
        // The language a query is written in: its own, its file's, else what its environments run.
        let file_language = doc
            .metadata
            .query_language
            .clone()
            .or_else(|| (hunting && !odata).then(|| "kql".to_string()));
        let family = doc.metadata.data_families.first().cloned().ok_or_else(|| Error::Query {
            message: format!("{origin}: metadata.data_families is empty"),
        })?;
        let bad = |m: String| Error::Query {
            message: format!("{origin}: {m}"),
        };
        let mut defaults = Vec::new();
        for (n, v) in doc.defaults.unwrap_or_default().parameters {
            defaults.push(msticpy_time_default(parse_parameter(&n, &v).map_err(bad)?));
        }
        let mut overridden = Vec::new();
        for (name, src) in doc.sources {
            let mut params = defaults.clone();
            for (n, v) in &src.parameters {
                let p = msticpy_time_default(parse_parameter(n, v).map_err(|m| bad(format!("query '{name}': {m}")))?);
                match params.iter_mut().find(|x| x.name == p.name) {
                    Some(slot) => *slot = p,
                    None => params.push(p),
                }
            }
            let table_columns = src
                .metadata
                .as_ref()
                .and_then(|m| m.get("table_columns"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let tags = src
                .metadata
                .as_ref()
                .and_then(|m| m.get("tags"))
                .and_then(Value::as_array)
                .map(|a| a.iter().map(crate::output::cell_text).collect())
                .unwrap_or_default();
            let max_rows = src.metadata.as_ref().and_then(|m| m.get("max_rows")).map(crate::output::cell_text);
            let match_evidence = src
                .metadata
                .as_ref()
                .and_then(|m| m.get("match_evidence"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let language = parse_language(src.args.language.as_deref().or(file_language.as_deref()))
                .map_err(|m| bad(format!("query '{name}': {m}")))?;
            let q = QueryTemplate {
                family: family.clone(),
                name: name.clone(),
                description: src.description.trim().to_string(),
                query: match &src.args.query {
                    Value::String(q) if !q.trim().is_empty() => q.trim().to_string(),
                    Value::String(_) => return Err(bad(format!("query '{name}': args.query is empty"))),
                    other => {
                        return Err(bad(format!(
                            "query '{name}': args.query must be text, found {}",
                            match other {
                                Value::Number(_) => "a number",
                                Value::Bool(_) => "a boolean",
                                Value::Array(_) => "a list",
                                Value::Object(_) => "a mapping",
                                _ => "nothing",
                            }
                        )));
                    }
                },
                language,
                parameters: params,
                table_columns,
                tags,
                max_rows,
                match_evidence,
                origin: origin.to_string(),
            };
            // Check placeholders now, so a broken file fails when loaded rather than when run.
            q.check().map_err(bad)?;
            let full = q.full_name();
            if let Some(pos) = self.queries.iter().position(|x| x.full_name() == full) {
                tracing::info!(query = %full, by = %origin, was = %self.queries[pos].origin, "query overridden");
                overridden.push(full);
                self.queries[pos] = q;
            } else {
                self.queries.push(q);
            }
        }
        Ok(FileOutcome::Loaded { overridden })
    }

    /// Adds every `*.yaml`/`*.yml` file in `dir` (sorted by name). Returns what became of each file.
    pub fn add_dir(&mut self, dir: &std::path::Path) -> Result<Vec<(String, FileOutcome)>> {
        let rd = std::fs::read_dir(dir).map_err(|e| Error::Query {
            message: format!("cannot read query folder {}: {e}", dir.display()),
        })?;
        let mut files: Vec<std::path::PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let text = crate::local_file::read(&f, MAX_FILE_BYTES as u64)
                .and_then(|b| String::from_utf8(b).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")))
                .map_err(|e| Error::Query {
                    message: format!("cannot read {}: {e}", f.display()),
                })?;
            let o = self.load_file(&text, &f.display().to_string())?;
            out.push((f.display().to_string(), o));
        }
        Ok(out)
    }

    /// Every query, in load order.
    pub fn all(&self) -> &[QueryTemplate] {
        &self.queries
    }

    /// Finds a query by `family.name`, or by bare name when only one family has it.
    pub fn get(&self, name: &str) -> Result<&QueryTemplate> {
        if let Some(q) = self.queries.iter().find(|q| q.full_name().eq_ignore_ascii_case(name)) {
            return Ok(q);
        }
        let by_name: Vec<&QueryTemplate> = self.queries.iter().filter(|q| q.name.eq_ignore_ascii_case(name)).collect();
        match by_name.as_slice() {
            [one] => Ok(one),
            [] => {
                // Suggest by full name, else by the bare name (answering with the full name).
                let full: Vec<String> = self.queries.iter().map(|q| q.full_name()).collect();
                let full_refs: Vec<&str> = full.iter().map(String::as_str).collect();
                let bare: Vec<&str> = self.queries.iter().map(|q| q.name.as_str()).collect();
                let suggestion = closest(name, &full_refs).map(str::to_string).or_else(|| {
                    closest(name, &bare)
                        .and_then(|b| self.queries.iter().find(|q| q.name == b))
                        .map(|q| q.full_name())
                });
                let hint = suggestion.map(|c| format!(" Did you mean '{c}'?")).unwrap_or_default();
                Err(Error::Query {
                    message: format!("no query named '{name}'.{hint} Run `secgraph queries` to list them."),
                })
            }
            many => Err(Error::Query {
                message: format!(
                    "'{name}' is ambiguous: {}",
                    many.iter().map(|q| q.full_name()).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }
}
