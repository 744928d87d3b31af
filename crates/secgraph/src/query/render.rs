//! Rendering a template: each value rendered for its type and the query's language, then escaped for where its
//! placeholder sits (OData `'…'`/`"…"`, KQL `"…"`/`'…'`/`@'…'`/```` ```…``` ````), `{or:…}` groups, the hunting
//! Timespan, `max_rows` and the evidence match.

use super::model::{Language, ParamType, Parameter, QueryTemplate, RenderedQuery};
use super::suggest::{closest, typo_of};
use super::time_expr::{odata_time, parse_time};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

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
    // A value outside the declared ones: said before anything is sent, with the closest one.
    let allowed = |v: &str| -> Result<String> {
        if p.allowed.is_empty() || v.trim().is_empty() {
            return Ok(v.to_string());
        }
        if let Some(a) = p.allowed.iter().find(|a| a.eq_ignore_ascii_case(v.trim())) {
            return Ok(a.clone());
        }
        let names: Vec<&str> = p.allowed.iter().map(String::as_str).collect();
        let hint = closest(v.trim(), &names)
            .map(|c| format!(" Did you mean '{c}'?"))
            .unwrap_or_default();
        Err(bad(format!(
            "'{}' is not one of its values: {}.{hint}",
            crate::error::clean(v, 60),
            names.join(", ")
        )))
    };
    Ok(match p.kind {
        ParamType::Str => Rendered::Text(allowed(&text.ok_or_else(|| bad("expected text".into()))?)?),
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
                    Language::OData | Language::AuditLog => iso,
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
            let items = items.iter().map(|i| allowed(i)).collect::<Result<Vec<String>>>()?;
            Rendered::Syntax(
                items
                    .iter()
                    .map(|i| match lang {
                        Language::OData | Language::AuditLog => format!("'{}'", i.replace('\'', "''")),
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
                let mut value = f(name, ctx).map_err(|m| if name.is_empty() { m } else { format!("parameter '{name}': {m}") })?;
                // msticpy's KQL files wrap time parameters themselves (`datetime({start})`): give them the bare time.
                if lang == Language::Kql
                    && ctx == Context::Bare
                    && out.trim_end().ends_with("datetime(")
                    && let Some(inner) = value.strip_prefix("datetime(").and_then(|v| v.strip_suffix(')'))
                {
                    value = inner.to_string();
                }
                out.push_str(&value);
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
    /// Its parameters as a JSON Schema object (what a tool-calling client is told): each parameter's type
    /// (`datetime` as a time expression string, `list` as an array of strings), description, default and allowed
    /// values; parameters without a default are required.
    pub fn parameters_schema(&self) -> serde_json::Value {
        use serde_json::json;
        let mut props = serde_json::Map::new();
        let mut required = Vec::new();
        for p in &self.parameters {
            let mut s = match p.kind {
                ParamType::Int => json!({"type": "integer"}),
                ParamType::Float => json!({"type": "number"}),
                ParamType::Bool => json!({"type": "boolean"}),
                ParamType::List => json!({"type": "array", "items": {"type": "string"}}),
                ParamType::Datetime => json!({"type": "string", "description": format!(
                    "{} (a time: ISO 8601, 'now', or an offset such as -7d, -2h@h)", p.description)}),
                ParamType::Str => json!({"type": "string"}),
            };
            if p.kind != ParamType::Datetime && !p.description.is_empty() {
                s["description"] = json!(p.description);
            }
            if !p.allowed.is_empty() {
                let values = json!(p.allowed);
                if p.kind == ParamType::List {
                    s["items"]["enum"] = values;
                } else {
                    s["enum"] = values;
                }
            }
            match &p.default {
                Some(d) if !d.is_null() => s["default"] = d.clone(),
                Some(_) => {}
                None => required.push(p.name.clone()),
            }
            props.insert(p.name.clone(), s);
        }
        json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
    }

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
    pub(super) fn check(&self) -> std::result::Result<(), String> {
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

    /// Names in `values` that are not parameters (or aliases) of this query, each with the closest declared name.
    pub fn unknown_parameters(&self, values: &[(String, String)]) -> Vec<(String, Option<String>)> {
        let names: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
        values
            .iter()
            .filter(|(k, _)| self.parameter(k).is_none())
            .map(|(k, _)| (k.clone(), closest(k, &names).map(str::to_string)))
            .collect()
    }

    /// Renders the query with `values` (parameter name or alias → value as text); defaults fill the rest. Names the
    /// query does not declare are ignored with a warning, as msticpy ignores them (its pivot functions pass many) —
    /// except a near-miss of a declared name (`sevrity`), which is an error naming it; [`QueryTemplate::render_strict`]
    /// refuses every undeclared name.
    pub fn render(&self, values: &[(String, String)], now: DateTime<Utc>) -> Result<RenderedQuery> {
        self.render_with(values, now, false)
    }

    /// Like [`QueryTemplate::render`], but a name the query does not declare is an error (with "did you mean").
    pub fn render_strict(&self, values: &[(String, String)], now: DateTime<Utc>) -> Result<RenderedQuery> {
        self.render_with(values, now, true)
    }

    /// The values given, by declared name: aliases resolved, a name given twice refused, an undeclared one
    /// ignored with a warning (msticpy's convention) unless `strict` or it is a near-miss of a declared name.
    fn given<'v>(&'v self, values: &'v [(String, String)], strict: bool) -> Result<BTreeMap<&'v str, &'v str>> {
        let mut given: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in values {
            let Some(p) = self.parameter(k) else {
                let names: Vec<&str> = self.parameters.iter().map(|p| p.name.as_str()).collect();
                let suggestion = closest(k, &names);
                // A near-miss of a declared name is a mistake, never an unfiltered result.
                let typo = typo_of(k, &names);
                if !strict && typo.is_none() {
                    tracing::warn!(query = %self.full_name(), parameter = %crate::error::clean(k, 100), suggestion = ?suggestion, "parameter not declared by the query: ignored");
                    continue;
                }
                let hint = suggestion.map(|c| format!(" Did you mean '{c}'?")).unwrap_or_default();
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
        Ok(given)
    }

    fn render_with(&self, values: &[(String, String)], now: DateTime<Utc>, strict: bool) -> Result<RenderedQuery> {
        let given = self.given(values, strict)?;
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
            rendered.insert(&p.name, render_value(p, raw, self.language.syntax(), now)?);
        }
        // An audit log search is written (and escaped) as an OData filter.
        let lang = self.language.syntax();
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
        // A range that ends before it starts matches nothing: say so instead of sending it.
        if let (Some(ps), Some(pe)) = (self.parameter("start"), self.parameter("end"))
            && ps.kind == ParamType::Datetime
            && pe.kind == ParamType::Datetime
        {
            let value = |p: &Parameter| -> Option<String> {
                let raw = match given.get(p.name.as_str()) {
                    Some(v) => v.to_string(),
                    None => p.default.as_ref().map(crate::output::cell_text)?,
                };
                (!raw.trim().is_empty()).then_some(raw)
            };
            if let (Some(s), Some(e)) = (value(ps), value(pe))
                && let (Ok(st), Ok(en)) = (parse_time(&s, now), parse_time(&e, now))
                && st > en
            {
                return Err(Error::Query {
                    message: format!(
                        "{}: start ({}) is later than end ({}); nothing can match",
                        self.full_name(),
                        odata_time(st),
                        odata_time(en)
                    ),
                });
            }
        }
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
            language: self.language,
            text: text.trim().to_string(),
            timespan,
            max_rows,
            match_evidence,
        })
    }
}
