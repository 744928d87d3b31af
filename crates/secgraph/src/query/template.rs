//! msticpy query template files and the store that holds them.
//!
//! A file has `metadata` (data environments, families), `defaults.parameters`, and `sources` (one entry a query,
//! with `description`, `args.query` and `parameters` merged over the defaults). Placeholders `{name}` are replaced
//! by rendered parameter values; `{{` and `}}` are literal braces.
//!
//! Escaping follows the query language: a value placed inside an OData string literal (`'…'`) has `'` doubled; inside
//! a KQL string literal (`"…"` or `'…'`) it is backslash-escaped. So a value can never change a query's structure. A
//! value outside quotes (such as `path`, `add_query_items`, or the KQL of `Hunting.run`) is inserted as written, by
//! design. Times render as `2024-05-01T00:00:00Z` in OData and `datetime(2024-05-01T00:00:00Z)` in KQL.
//!
//! Extensions over msticpy (msticpy ignores them; its own files load unchanged):
//! - a parameter's `format` applies only to a non-empty value, so an optional clause disappears when its parameter
//!   is empty;
//! - `{or:a,b,c}` / `{and:a,b,c}` join the formatted clauses of the non-empty parameters among `a, b, c` with
//!   `or`/`and` in parentheses, and fail naming them when all are empty;
//! - `args.language: kql` (or file `metadata.query_language: kql`) makes a query an advanced-hunting query, sent as a
//!   POST to `/security/runHuntingQuery` with a Timespan of `{start}/{end}` when it has those parameters;
//! - `metadata.table_columns` lists the columns a terminal table shows first.

use super::time_expr::{odata_time, parse_time};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Data environments whose files this provider reads.
const ENVIRONMENTS: &[&str] = &["securitygraph", "microsoftgraph", "securitygraphapi", "m365d", "microsoftdefender"];

/// Largest template file accepted.
const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The language a query is written in, which decides escaping and how it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// An OData path and query, sent as a GET relative to the versioned Graph root.
    OData,
    /// KQL, sent as a POST to `/security/runHuntingQuery`.
    Kql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// A parameter's type, as msticpy's query files spell it.
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
    fn parse(s: &str) -> Option<ParamType> {
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

enum Raw {
    Text(String),
    Json(Value),
}

/// A parameter value rendered for the query's language, before placement.
#[derive(Debug, Clone)]
enum Rendered {
    /// Plain text (strings): escaped when placed inside a literal.
    Text(String),
    /// Already query syntax (numbers, times, booleans, quoted lists): placed as is.
    Syntax(String),
}

/// Where a placeholder sits in the query text, which decides how a value is escaped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Outside any string: the value is query syntax, inserted as written (by design: `path`, `add_query_items`).
    Bare,
    /// OData `'…'`: `'` is doubled.
    ODataSingle,
    /// OData `"…"` (msticpy's older files): not a string to OData, so a value may hold neither quote.
    ODataDouble,
    /// KQL `"…"` or `'…'`: backslash escapes.
    Kql(char),
    /// KQL verbatim `@"…"` / `@'…'`: the quote is doubled, a backslash is literal, no line breaks.
    KqlVerbatim(char),
    /// KQL multi-line ```` ```…``` ````: nothing can be escaped, so a value may not hold three backticks.
    KqlBackticks,
}

/// Escapes `s` for `ctx`, or says why it cannot be placed there.
fn escape(ctx: Context, s: &str) -> std::result::Result<String, String> {
    Ok(match ctx {
        Context::Bare => s.to_string(),
        Context::ODataSingle => s.replace('\'', "''"),
        Context::ODataDouble => {
            if s.contains(['"', '\'']) {
                return Err(
                    "the value holds a quote, and it sits inside double quotes, which OData cannot escape \
                            (write the template with single quotes: '{name}')"
                        .into(),
                );
            }
            s.to_string()
        }
        Context::Kql(_) => s
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\'', "\\'")
            .replace('\n', "\\n")
            .replace('\r', "\\r"),
        Context::KqlVerbatim(q) => {
            if s.contains(['\n', '\r']) {
                return Err("the value holds a line break, which a KQL verbatim string (@'…') cannot".into());
            }
            s.replace(q, &format!("{q}{q}"))
        }
        Context::KqlBackticks => {
            // A trailing backtick would join the closing ``` and end the string early.
            if s.contains("```") || s.ends_with('`') {
                return Err(
                    "the value holds ``` (or ends with a backtick), which would end a KQL multi-line string and cannot be escaped".into(),
                );
            }
            s.to_string()
        }
    })
}

impl Rendered {
    fn is_empty(&self) -> bool {
        match self {
            Rendered::Text(s) | Rendered::Syntax(s) => s.is_empty(),
        }
    }

    fn place(&self, lang: Language, format: Option<&str>, outer: Context) -> std::result::Result<String, String> {
        let text = |ctx: Context| match self {
            Rendered::Text(s) => escape(ctx, s),
            Rendered::Syntax(s) => Ok(s.clone()),
        };
        match format {
            Some(f) if !self.is_empty() => {
                // The format string decides where the value sits: inside its own quotes or not.
                match substitute(lang, f, &|_, ctx| text(if ctx == Context::Bare { outer } else { ctx })) {
                    Ok(v) => Ok(v),
                    Err(e) if e.contains("value holds") => Err(e),
                    Err(_) => Ok(f.replace("{}", &text(outer)?)),
                }
            }
            Some(_) => Ok(String::new()),
            None => text(outer),
        }
    }
}

fn render_value(p: &Parameter, raw: Raw, lang: Language, now: DateTime<Utc>) -> Result<Rendered> {
    let bad = |m: String| Error::Query {
        message: format!("parameter '{}' ({}): {m}", p.name, p.kind.name()),
    };
    let text = match &raw {
        Raw::Text(s) => Some(s.clone()),
        Raw::Json(Value::Null) => Some(String::new()),
        Raw::Json(Value::String(s)) => Some(s.clone()),
        Raw::Json(Value::Number(n)) => Some(n.to_string()),
        Raw::Json(Value::Bool(b)) => Some(b.to_string()),
        Raw::Json(_) => None,
    };
    let empty = |t: &str| t.trim().is_empty();
    Ok(match p.kind {
        ParamType::Str => Rendered::Text(text.ok_or_else(|| bad("expected text".into()))?),
        ParamType::Int => {
            let t = text.ok_or_else(|| bad("expected a whole number".into()))?;
            Rendered::Syntax(if empty(&t) {
                String::new()
            } else {
                t.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("'{t}' is not a whole number")))?
                    .to_string()
            })
        }
        ParamType::Float => {
            let t = text.ok_or_else(|| bad("expected a number".into()))?;
            Rendered::Syntax(if empty(&t) {
                String::new()
            } else {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| bad(format!("'{t}' is not a number")))?
                    .to_string()
            })
        }
        ParamType::Bool => {
            let t = text.ok_or_else(|| bad("expected true or false".into()))?;
            Rendered::Syntax(match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => "true".into(),
                "false" | "no" | "0" => "false".into(),
                "" => String::new(),
                _ => return Err(bad(format!("'{t}' is not true or false"))),
            })
        }
        ParamType::Datetime => {
            let t = text.ok_or_else(|| bad("expected a time".into()))?;
            if empty(&t) && matches!(raw, Raw::Text(_)) {
                // Given, but empty (`--start ''`): a mistake, not "no time"; leaving it out is how to say that.
                return Err(bad("the value is empty; give a time such as -7d, now or 2024-05-01".into()));
            } else if empty(&t) {
                Rendered::Syntax(String::new())
            } else {
                let iso = odata_time(parse_time(&t, now).map_err(|e| bad(e.to_string()))?);
                Rendered::Syntax(match lang {
                    Language::OData => iso,
                    Language::Kql => format!("datetime({iso})"),
                })
            }
        }
        ParamType::List => {
            let items: Vec<String> = match raw {
                Raw::Json(Value::Array(a)) => a.iter().map(crate::output::cell_text).collect(),
                _ => text
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            };
            Rendered::Syntax(
                items
                    .iter()
                    .map(|i| match lang {
                        Language::OData => format!("'{}'", i.replace('\'', "''")),
                        Language::Kql => format!("\"{}\"", escape(Context::Kql('"'), i).unwrap_or_default()),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        }
    })
}

/// Replaces `{name}` placeholders (and `{}` when `name` is empty) using `f(name, context)`, where the context says
/// which kind of string literal (if any) the placeholder sits in. `{{` and `}}` are literal braces.
/// `{or:a,b}`/`{and:a,b}` are passed to `f` whole.
fn substitute(
    lang: Language,
    text: &str,
    f: &dyn Fn(&str, Context) -> std::result::Result<String, String>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(text.len() + 32);
    let mut ctx = Context::Bare;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|(_, c)| *c);
        match c {
            '{' if next == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if next == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &text[i + 1..];
                let end = rest.find('}').ok_or_else(|| format!("unclosed '{{' at offset {i}"))?;
                let name = &rest[..end];
                if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | ',' | ' '))
                {
                    return Err(format!("invalid placeholder '{{{name}}}' at offset {i}"));
                }
                out.push_str(&f(name, ctx).map_err(|m| if name.is_empty() { m } else { format!("parameter '{name}': {m}") })?);
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => return Err(format!("unmatched '}}' at offset {i} (write '}}}}' for a literal brace)")),
            _ => {
                out.push(c);
                ctx = match (lang, ctx, c) {
                    (Language::OData, Context::Bare, '\'') => Context::ODataSingle,
                    (Language::OData, Context::Bare, '"') => Context::ODataDouble,
                    (Language::OData, Context::ODataSingle, '\'') | (Language::OData, Context::ODataDouble, '"') => Context::Bare,
                    (Language::Kql, Context::Bare, '@') if matches!(next, Some('\'' | '"')) => {
                        let (_, q) = chars.next().unwrap_or((i, '"'));
                        out.push(q);
                        Context::KqlVerbatim(q)
                    }
                    (Language::Kql, Context::Bare, '`') if text[i..].starts_with("```") => {
                        out.push_str("``");
                        chars.next();
                        chars.next();
                        Context::KqlBackticks
                    }
                    (Language::Kql, Context::KqlBackticks, '`') if text[i..].starts_with("```") => {
                        out.push_str("``");
                        chars.next();
                        chars.next();
                        Context::Bare
                    }
                    (Language::Kql, Context::Bare, '\'' | '"') => Context::Kql(c),
                    (Language::Kql, Context::Kql(_), '\\') => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                        ctx
                    }
                    (Language::Kql, Context::Kql(q), c) | (Language::Kql, Context::KqlVerbatim(q), c) if c == q => Context::Bare,
                    (_, ctx, _) => ctx,
                };
            }
        }
    }
    Ok(out)
}

/// Splits `or:a,b` into the joiner and the parameter names.
fn group(name: &str) -> Option<(&'static str, Vec<&str>)> {
    let (op, rest) = name.split_once(':')?;
    let joiner = match op.trim() {
        "or" => " or ",
        "and" => " and ",
        _ => return None,
    };
    Some((joiner, rest.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()))
}

impl QueryTemplate {
    /// `family.name`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.family, self.name)
    }

    /// A parameter by name or alias.
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters
            .iter()
            .find(|p| p.name == name || p.aliases.iter().any(|a| a == name))
    }

    /// Checks that every placeholder names a parameter (done when a file is loaded).
    fn check(&self) -> std::result::Result<(), String> {
        substitute(self.language, &self.query, &|n, _| {
            let names: Vec<&str> = match group(n) {
                Some((_, names)) if !names.is_empty() => names,
                Some(_) => return Err(format!("empty group {{{n}}}")),
                None => vec![n],
            };
            for name in names {
                if self.parameter(name).is_none() {
                    return Err(format!("query '{}' uses {{{name}}}, which is not one of its parameters", self.name));
                }
            }
            Ok(String::new())
        })
        .map(|_| ())
    }

    /// Renders the query with `values` (parameter name or alias → value as text); defaults fill the rest.
    pub fn render(&self, values: &[(String, String)], now: DateTime<Utc>) -> Result<RenderedQuery> {
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in values {
            let Some(p) = self.parameter(k) else {
                let names: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
                let hint = closest(k, &names).map(|c| format!(" Did you mean '{c}'?")).unwrap_or_default();
                return Err(Error::Query {
                    message: format!(
                        "{} has no parameter '{k}'.{hint} Parameters: {}",
                        self.full_name(),
                        names.join(", ")
                    ),
                });
            };
            if given.insert(p.name.as_str(), v.as_str()).is_some() {
                return Err(Error::Query {
                    message: format!("parameter '{}' given more than once", p.name),
                });
            }
        }
        let missing: Vec<&str> = self
            .parameters
            .iter()
            .filter(|p| p.required() && !given.contains_key(p.name.as_str()))
            .map(|p| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::Query {
                message: format!("{} needs parameter(s): {}", self.full_name(), missing.join(", ")),
            });
        }
        let mut rendered: BTreeMap<&str, Rendered> = BTreeMap::new();
        for p in &self.parameters {
            let raw = match given.get(p.name.as_str()) {
                Some(v) => Raw::Text(v.to_string()),
                None => Raw::Json(p.default.clone().unwrap_or(Value::Null)),
            };
            rendered.insert(&p.name, render_value(p, raw, self.language, now)?);
        }
        let lang = self.language;
        let place = |name: &str, ctx: Context| -> std::result::Result<String, String> {
            let p = self
                .parameter(name)
                .ok_or_else(|| format!("the query uses {{{name}}}, which is not one of its parameters"))?;
            let r = rendered.get(p.name.as_str()).ok_or("unrendered parameter")?;
            r.place(lang, p.format.as_deref(), ctx).map_err(|m| {
                format!(
                    "parameter '{}': {}",
                    p.name,
                    m.trim_start_matches(&format!("parameter '{}': ", p.name))
                )
            })
        };
        let text = substitute(lang, &self.query, &|name, ctx| match group(name) {
            None => place(name, ctx),
            Some((joiner, names)) => {
                let parts = names.iter().map(|n| place(n, ctx)).collect::<std::result::Result<Vec<_>, _>>()?;
                let parts: Vec<String> = parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
                // Always parenthesised: a clause may itself contain `or`.
                match parts.len() {
                    0 => Err(format!("give at least one of: {}", names.join(", "))),
                    _ => Ok(format!("({})", parts.join(joiner))),
                }
            }
        })
        .map_err(|m| Error::Query {
            message: format!("{}: {m}", self.full_name()),
        })?;
        let timespan = match (lang, rendered.get("start"), rendered.get("end")) {
            (Language::Kql, Some(_), Some(_)) => {
                let iso = |n: &str| -> Result<Option<String>> {
                    let p = self.parameter(n).ok_or_else(|| Error::Query {
                        message: format!("no parameter {n}"),
                    })?;
                    let raw = match given.get(n) {
                        Some(v) => v.to_string(),
                        None => p.default.as_ref().map(crate::output::cell_text).unwrap_or_default(),
                    };
                    Ok(if raw.trim().is_empty() {
                        None
                    } else {
                        Some(odata_time(parse_time(&raw, now)?))
                    })
                };
                match (iso("start")?, iso("end")?) {
                    (Some(s), Some(e)) => Some(format!("{s}/{e}")),
                    (Some(s), None) => Some(s),
                    _ => None,
                }
            }
            _ => None,
        };
        let max_rows = match &self.max_rows {
            None => None,
            Some(m) => match m.trim().parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => match rendered.get(m.trim()) {
                    Some(Rendered::Syntax(v)) | Some(Rendered::Text(v)) => v.trim().parse::<usize>().ok(),
                    None => {
                        return Err(Error::Query {
                            message: format!("{}: metadata.max_rows names no parameter '{m}'", self.full_name()),
                        });
                    }
                },
            },
        };
        let match_evidence = match &self.match_evidence {
            None => None,
            Some(p) => Some(given.get(p.as_str()).map(|v| v.to_string()).ok_or_else(|| Error::Query {
                message: format!("{}: give {p}", self.full_name()),
            })?),
        };
        Ok(RenderedQuery {
            name: self.full_name(),
            language: lang,
            text: text.trim().to_string(),
            timespan,
            max_rows,
            match_evidence,
        })
    }
}

/// The closest of `names` to `s` by edit distance, when it is close enough to be a likely typo.
fn closest<'a>(s: &str, names: &[&'a str]) -> Option<&'a str> {
    fn dist(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let s = s.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (dist(&s, &n.to_ascii_lowercase()), *n))
        .filter(|(d, n)| *d <= (n.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

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
    })
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
    ("secure_score.yaml", include_str!("builtin/secure_score.yaml")),
];

impl QueryStore {
    /// A store holding the built-in queries.
    pub fn builtin() -> Result<QueryStore> {
        let mut s = QueryStore::default();
        for (name, text) in BUILTIN_FILES {
            s.add_file(text, &format!("built-in:{name}"))?;
        }
        Ok(s)
    }

    /// Adds the queries of one YAML file. Returns the names it overrode. A file for another data environment adds
    /// nothing.
    pub fn add_file(&mut self, text: &str, origin: &str) -> Result<Vec<String>> {
        if text.len() > MAX_FILE_BYTES {
            return Err(Error::Query {
                message: format!("{origin}: query file larger than {MAX_FILE_BYTES} bytes"),
            });
        }
        let doc: FileDoc = crate::config::parse_yaml(text).map_err(|e| Error::Query {
            message: format!("{origin}: {e}"),
        })?;
        let envs: Vec<String> = doc.metadata.data_environments.iter().map(|e| e.to_ascii_lowercase()).collect();
        if !envs.iter().any(|e| ENVIRONMENTS.contains(&e.as_str())) {
            return Ok(vec![]);
        }
        let file_language = doc.metadata.query_language.clone();
        let family = doc.metadata.data_families.first().cloned().ok_or_else(|| Error::Query {
            message: format!("{origin}: metadata.data_families is empty"),
        })?;
        let bad = |m: String| Error::Query {
            message: format!("{origin}: {m}"),
        };
        let mut defaults = Vec::new();
        for (n, v) in doc.defaults.unwrap_or_default().parameters {
            defaults.push(parse_parameter(&n, &v).map_err(bad)?);
        }
        let mut overridden = Vec::new();
        for (name, src) in doc.sources {
            let mut params = defaults.clone();
            for (n, v) in &src.parameters {
                let p = parse_parameter(n, v).map_err(|m| bad(format!("query '{name}': {m}")))?;
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
        Ok(overridden)
    }

    /// Adds every `*.yaml`/`*.yml` file in `dir` (sorted by name). Returns (file, overridden names) pairs.
    pub fn add_dir(&mut self, dir: &std::path::Path) -> Result<Vec<(String, Vec<String>)>> {
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
            let text = crate::http::read_local_file(&f, MAX_FILE_BYTES as u64)
                .and_then(|b| String::from_utf8(b).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")))
                .map_err(|e| Error::Query {
                    message: format!("cannot read {}: {e}", f.display()),
                })?;
            let o = self.add_file(&text, &f.display().to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap()
    }

    const FILE: &str = r#"
metadata:
  version: 1
  data_environments: [SecurityGraph]
  data_families: [Test]
defaults:
  parameters:
    start: {description: from, type: datetime, default: -1d}
sources:
  q:
    description: test
    args:
      query: "/security/alerts?$filter=createdDateTime ge {start} and title eq '{title}'{sev} {{x}}"
    parameters:
      title: {description: t, type: str, aliases: [name]}
      sev: {description: s, type: list, default: '', format: " and severity in ({})"}
"#;

    #[test]
    fn renders_and_escapes_literals() {
        let mut s = QueryStore::default();
        s.add_file(FILE, "test").unwrap();
        let q = s.get("q").unwrap();
        let r = q.render(&[("name".into(), "x') or true or ('".into())], now()).unwrap();
        assert_eq!(
            r.text,
            "/security/alerts?$filter=createdDateTime ge 2024-05-09T12:00:00Z and title eq 'x'') or true or (''' {x}"
        );
        let r = q
            .render(&[("title".into(), "a".into()), ("sev".into(), "high,o'k".into())], now())
            .unwrap();
        assert!(r.text.ends_with("title eq 'a' and severity in ('high', 'o''k') {x}"), "{}", r.text);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut s = QueryStore::default();
        s.add_file(FILE, "test").unwrap();
        let q = s.get("Test.q").unwrap();
        let e = q.render(&[], now()).unwrap_err().to_string();
        assert!(e.contains("needs parameter(s): title"), "{e}");
        let e = q.render(&[("titel".into(), "a".into())], now()).unwrap_err().to_string();
        assert!(e.contains("Did you mean 'title'"), "{e}");
        let e = q
            .render(&[("title".into(), "a".into()), ("start".into(), "soon".into())], now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("Accepted:"), "{e}");
        let e = s.get("qq").unwrap_err().to_string();
        assert!(e.contains("Did you mean 'Test.q'"), "{e}");
        let bad = FILE.replace("{sev}", "{nope}");
        let e = QueryStore::default().add_file(&bad, "bad.yaml").unwrap_err().to_string();
        assert!(e.contains("bad.yaml") && e.contains("{nope}"), "{e}");
        let e = QueryStore::default()
            .add_file("metadata: [1\n", "broken.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken.yaml") && e.contains("line"), "{e}");
    }

    #[test]
    fn other_environments_are_skipped_and_overrides_reported() {
        let mut s = QueryStore::default();
        assert!(s.add_file(&FILE.replace("SecurityGraph", "MSSentinel"), "x").unwrap().is_empty());
        assert!(s.all().is_empty());
        s.add_file(FILE, "a").unwrap();
        assert_eq!(s.add_file(FILE, "b").unwrap(), vec!["Test.q".to_string()]);
        assert_eq!(s.get("Test.q").unwrap().origin, "b");
    }

    #[test]
    fn builtins_load() {
        let s = QueryStore::builtin().unwrap();
        assert!(s.get("SecurityGraphAlert.list_alerts").is_ok());
        assert!(s.get("Alerts.list").is_ok());
    }
}
