//! What a query is: its language, its parameters and their types, a template, and a rendered query ready to send.

use serde_json::Value;

/// The language a query is written in, which decides escaping and how it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Language {
    /// An OData path and query, sent as a GET relative to the versioned Graph root.
    OData,
    /// KQL, sent as a POST to `/security/runHuntingQuery`.
    Kql,
    /// A unified audit log search: the parameters written as an OData-style filter on audit log queries
    /// (`filterStartDateTime eq … and operationFilters in ('…')`), run as the service's asynchronous search (create,
    /// poll, page the records; see [`crate::audit`]).
    AuditLog,
}

impl Language {
    /// The language whose syntax and escaping the query text follows (an audit log search: OData's).
    pub fn syntax(self) -> Language {
        match self {
            Language::AuditLog => Language::OData,
            l => l,
        }
    }

    /// `odata`, `kql` or `auditlog`.
    pub fn name(self) -> &'static str {
        match self {
            Language::OData => "odata",
            Language::Kql => "kql",
            Language::AuditLog => "auditlog",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// A parameter's type, as msticpy's query files spell it.
#[non_exhaustive]
pub enum ParamType {
    /// `str`: text, escaped where it sits.
    Str,
    /// `int`.
    Int,
    /// `float`.
    Float,
    /// `bool`.
    Bool,
    /// `datetime`: any time expression.
    Datetime,
    /// `list`: comma-separated, each item quoted.
    List,
}

impl ParamType {
    pub(super) fn parse(s: &str) -> Option<ParamType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "str" | "string" => ParamType::Str,
            "int" | "integer" => ParamType::Int,
            "float" | "double" => ParamType::Float,
            "bool" | "boolean" => ParamType::Bool,
            "datetime" | "date" => ParamType::Datetime,
            "list" => ParamType::List,
            _ => return None,
        })
    }

    /// The name msticpy uses.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Str => "str",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::Bool => "bool",
            ParamType::Datetime => "datetime",
            ParamType::List => "list",
        }
    }
}

/// One query parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The name used in `{name}` placeholders.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Its type.
    pub kind: ParamType,
    /// The default, when the parameter is optional.
    pub default: Option<Value>,
    /// Other names it may be given by.
    pub aliases: Vec<String>,
    /// `'...{}...'`: how a non-empty value is written into the query.
    pub format: Option<String>,
    /// The values it may take (`allowed:` in the file; empty: any). Checked before sending, in any case, and
    /// written as listed here (Graph compares enumerations case-sensitively).
    pub allowed: Vec<String>,
}

impl Parameter {
    /// Whether the query needs it (no default).
    pub fn required(&self) -> bool {
        self.default.is_none()
    }
}

/// A named query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTemplate {
    /// The data family, e.g. `SecurityGraphAlert` or `Alerts`.
    pub family: String,
    /// The query's name within its family.
    pub name: String,
    /// What it returns.
    pub description: String,
    /// The query text with `{placeholders}`: an OData path relative to the versioned Graph root, or KQL.
    pub query: String,
    /// OData or KQL.
    pub language: Language,
    /// Its parameters (defaults merged).
    pub parameters: Vec<Parameter>,
    /// Columns shown first in a terminal table.
    pub table_columns: Vec<String>,
    /// `metadata.tags`: free-form labels; the hunting library tags each query with the MITRE ATT&CK techniques it
    /// helps find (`T1059.001`). `secgraph queries FILTER` matches them.
    pub tags: Vec<String>,
    /// `metadata.max_rows`: a number, or the name of the parameter that gives it; paging stops there.
    pub max_rows: Option<String>,
    /// `metadata.match_evidence`: a parameter whose value must appear in a row's alerts' evidence (client-side filter).
    pub match_evidence: Option<String>,
    /// Where the query was defined (file path or `built-in:<file>`).
    pub origin: String,
}

/// A query ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedQuery {
    /// `family.name`.
    pub name: String,
    /// OData or KQL.
    pub language: Language,
    /// OData: the path and query, not yet URL-encoded. KQL: the query text.
    pub text: String,
    /// KQL: the hunting Timespan (ISO 8601 interval), when the query has a time range.
    pub timespan: Option<String>,
    /// Stop after this many rows (no further pages are fetched).
    pub max_rows: Option<usize>,
    /// Keep only rows whose alerts' evidence names this value (client-side; see [`evidence_names`]).
    pub match_evidence: Option<String>,
}

impl RenderedQuery {
    /// A raw Graph path (`/security/alerts_v2?$top=5`) as a query. A `$top` a person writes means "this many rows",
    /// as Graph PowerShell's `-Top` does: it caps the rows (one request) unless `all` asks for every page, `$top`
    /// then being the page size.
    ///
    /// ```
    /// use secgraph::query::RenderedQuery;
    /// assert_eq!(RenderedQuery::raw("/security/alerts_v2?$top=5", false).max_rows, Some(5));
    /// assert_eq!(RenderedQuery::raw("/security/alerts_v2?$top=5", true).max_rows, None);
    /// assert_eq!(RenderedQuery::raw("/security/alerts_v2", false).max_rows, None);
    /// ```
    pub fn raw(path: &str, all: bool) -> RenderedQuery {
        let top = path.split_once('?').and_then(|(_, q)| {
            crate::graph::split_query(q).into_iter().find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("$top")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            })
        });
        RenderedQuery {
            name: "exec".into(),
            language: Language::OData,
            text: path.to_string(),
            timespan: None,
            max_rows: if all { None } else { top },
            match_evidence: None,
        }
    }
}

/// Whether any evidence of any alert in `row["alerts"]` names `value`: a string field equal to it (ignoring case),
/// or a host name whose FQDN starts with `value.`.
pub fn evidence_names(row: &Value, value: &str) -> bool {
    fn walk(v: &Value, needle: &str) -> bool {
        match v {
            Value::String(s) => {
                s.eq_ignore_ascii_case(needle) || s.to_ascii_lowercase().starts_with(&format!("{}.", needle.to_ascii_lowercase()))
            }
            Value::Array(a) => a.iter().any(|x| walk(x, needle)),
            Value::Object(m) => m.iter().any(|(k, x)| !k.starts_with('@') && walk(x, needle)),
            _ => false,
        }
    }
    let needle = value.trim();
    !needle.is_empty()
        && row
            .get("alerts")
            .and_then(Value::as_array)
            .is_some_and(|alerts| alerts.iter().any(|a| a.get("evidence").is_some_and(|e| walk(e, needle))))
}

impl RenderedQuery {
    /// The request as a person would write it: `GET /security/…` or `POST /security/runHuntingQuery {…}`.
    pub fn describe(&self) -> String {
        match self.language {
            Language::OData => format!("GET {}", self.text),
            Language::AuditLog => match crate::audit::search_body(&self.text) {
                Ok(body) => format!("POST /security/auditLog/queries {body}, then GET …/records"),
                Err(e) => format!("(an audit log search that cannot be sent: {e})"),
            },
            Language::Kql => {
                let mut body = serde_json::json!({"Query": self.text});
                if let Some(t) = &self.timespan {
                    body["Timespan"] = Value::String(t.clone());
                }
                format!("POST /security/runHuntingQuery {body}")
            }
        }
    }
}
