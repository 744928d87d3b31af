//! The tools: their JSON schemas (from the library's query metadata) and what each does. Every result is a JSON
//! document that names its `source` (the query and the tenants), with strings cleaned and rows capped.

use super::Inner;
use rmcp::model::{Tool, ToolAnnotations};
use secgraph::Row;
use secgraph::graph::{Target as ItemKind, Update};
use secgraph::output::RowSink;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A failure the assistant should read (returned as a tool error, not a protocol error).
pub(crate) struct ToolError(pub(crate) String);

impl From<secgraph::Error> for ToolError {
    fn from(e: secgraph::Error) -> Self {
        ToolError(e.to_string())
    }
}

type Out = Result<Value, ToolError>;

/// Rows counted past `max_rows` before a result says "more than".
const COUNT_CAP: usize = 10_000;
/// Longest string value returned.
const MAX_TEXT: usize = 2000;
/// Alerts `summarize` reads at most.
const SUMMARY_CAP: usize = 50_000;

fn schema(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

fn tool(name: &'static str, description: &'static str, input: Value, read_only: bool) -> Tool {
    let mut a = ToolAnnotations::new();
    a.read_only_hint = Some(read_only);
    a.destructive_hint = Some(false);
    a.open_world_hint = Some(true);
    Tool::new(name, description, schema(input)).with_annotations(a)
}

/// The tools this server offers (write tools only with `--allow-writes`).
pub(crate) fn definitions(inner: &Inner) -> Vec<Tool> {
    let names: Vec<String> = inner.store.all().iter().map(|q| q.full_name()).collect();
    let tenants: Vec<Value> = inner.tenants.iter().map(|t| json!(t.name)).collect();
    let tenant_list = json!({"type": "array", "items": {"type": "string"}, "description": format!(
        "Tenants to read, by name or id (default: all {}): {}", inner.tenants.len(),
        tenants.iter().filter_map(|t| t.as_str()).take(20).collect::<Vec<_>>().join(", "))});
    let one_tenant = json!({"type": "string", "description": "The tenant (name or id); default: the first that has it"});
    let max_rows = json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": inner.max_rows,
        "description": "Rows returned at most (the total is counted and reported)"});
    let time = |d: &str| json!({"type": "string", "description": format!("{d}: ISO 8601, 'now', or an offset such as -7d, -2h@h")});
    let mut out = vec![
        tool(
            "list_queries",
            "The query library: name, description, language (OData or KQL) and ATT&CK techniques. Filter by text and/or technique.",
            json!({"type": "object", "properties": {
                "text": {"type": "string", "description": "Only queries whose name or description contains this"},
                "technique": {"type": "string", "description": "Only queries tagged with this ATT&CK technique (T1059 matches T1059.001)"}},
                "additionalProperties": false}),
            true,
        ),
        tool(
            "describe_query",
            "One query: its description, language, text and the JSON schema of its parameters.",
            json!({"type": "object", "properties": {"name": {"type": "string", "enum": names, "description": "Family.name"}},
                "required": ["name"], "additionalProperties": false}),
            true,
        ),
        tool(
            "run_query",
            "Run a library query (see describe_query for its parameters) against the tenants; returns at most max_rows rows with the total.",
            json!({"type": "object", "properties": {
                "name": {"type": "string", "enum": names, "description": "Family.name"},
                "parameters": {"type": "object", "description": "The query's parameters (describe_query gives their schema)", "additionalProperties": true},
                "tenants": tenant_list, "max_rows": max_rows},
                "required": ["name"], "additionalProperties": false}),
            true,
        ),
        tool(
            "run_hunting",
            "Run an advanced hunting KQL query over a time range (default the last 7 days); the KQL is checked before it is sent.",
            json!({"type": "object", "properties": {
                "query": {"type": "string", "description": "KQL, e.g. DeviceProcessEvents | where FileName =~ 'powershell.exe' | take 50"},
                "start": time("Start of the range (default -7d)"), "end": time("End of the range (default now)"),
                "tenants": tenant_list, "max_rows": max_rows},
                "required": ["query"], "additionalProperties": false}),
            true,
        ),
        tool(
            "get_alert",
            "One alert (alerts_v2) by id, with its evidence summarised.",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "tenant": one_tenant},
                "required": ["id"], "additionalProperties": false}),
            true,
        ),
        tool(
            "get_incident",
            "One incident by id, with its alerts and their evidence summarised.",
            json!({"type": "object", "properties": {"id": {"type": "string"}, "tenant": one_tenant},
                "required": ["id"], "additionalProperties": false}),
            true,
        ),
        tool(
            "summarize",
            "Alert counts by severity, status and service source over a time range (default the last 7 days), per tenant.",
            json!({"type": "object", "properties": {"start": time("Start (default -7d)"), "end": time("End (default now)"), "tenants": tenant_list},
                "additionalProperties": false}),
            true,
        ),
    ];
    if inner.allow_writes {
        let confirm = json!({"type": "string", "description": "The token the planning call returned: sends the change"});
        let common = |extra: Value| {
            let mut p = json!({"id": {"type": "string"}, "tenant": one_tenant, "confirm": confirm,
                "status": {"type": "string"}, "classification": {"type": "string"}, "determination": {"type": "string"},
                "assigned_to": {"type": "string", "description": "User principal name; empty unassigns"}});
            if let (Some(p), Value::Object(e)) = (p.as_object_mut(), extra) {
                p.extend(e);
            }
            json!({"type": "object", "properties": p, "required": ["id"], "additionalProperties": false})
        };
        out.push(tool(
            "update_alert",
            "Change an alert's status, classification, determination or assignee. Without confirm: the planned request and a confirm token; call again with the same arguments and confirm to send it.",
            common(json!({})),
            false,
        ));
        out.push(tool(
            "update_incident",
            "Change an incident's status, classification, determination, assignee or tags. Without confirm: the plan and a confirm token.",
            common(json!({"tags": {"type": "array", "items": {"type": "string"}}})),
            false,
        ));
        out.push(tool(
            "add_comment",
            "Add a comment to an alert or an incident. Without confirm: the plan and a confirm token.",
            json!({"type": "object", "properties": {
                "kind": {"type": "string", "enum": ["alert", "incident"]}, "id": {"type": "string"},
                "comment": {"type": "string"}, "tenant": one_tenant, "confirm": confirm},
                "required": ["kind", "id", "comment"], "additionalProperties": false}),
            false,
        ));
    }
    out
}

/// Runs tool `name` with `args`.
pub(crate) async fn call(inner: &Inner, name: &str, args: Map<String, Value>) -> Out {
    match name {
        "list_queries" => Ok(json!({"queries": catalogue(inner, text(&args, "text"), text(&args, "technique"))})),
        "describe_query" => describe(inner, &args),
        "run_query" => run_query(inner, &args).await,
        "run_hunting" => run_hunting(inner, &args).await,
        "get_alert" => get_item(inner, &args, false).await,
        "get_incident" => get_item(inner, &args, true).await,
        "summarize" => summarize(inner, &args).await,
        "update_alert" | "update_incident" | "add_comment" if inner.allow_writes => write(inner, name, args).await,
        other => Err(ToolError(format!("no tool named {other}"))),
    }
}

fn text<'a>(args: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    args.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The query catalogue, optionally filtered.
pub(crate) fn catalogue(inner: &Inner, text: Option<&str>, technique: Option<&str>) -> Vec<Value> {
    inner
        .store
        .all()
        .iter()
        .filter(|q| {
            text.is_none_or(|t| {
                let t = t.to_lowercase();
                q.full_name().to_lowercase().contains(&t) || q.description.to_lowercase().contains(&t)
            })
        })
        .filter(|q| {
            technique.is_none_or(|t| {
                q.tags
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(t) || g.to_uppercase().starts_with(&format!("{}.", t.to_uppercase())))
            })
        })
        .map(|q| {
            json!({"name": q.full_name(), "description": q.description, "language": q.language.name(),
                "techniques": q.tags.iter().filter(|t| secgraph::rules::file::is_technique(t)).collect::<Vec<_>>(),
                "parameters": q.parameters.iter().map(|p| p.name.clone()).collect::<Vec<_>>()})
        })
        .collect()
}

fn describe(inner: &Inner, args: &Map<String, Value>) -> Out {
    let name = text(args, "name").ok_or_else(|| ToolError("name is required".into()))?;
    let q = inner.store.get(name)?;
    Ok(
        json!({"name": q.full_name(), "description": q.description, "language": q.language.name(),
        "query": q.query, "techniques": q.tags, "parameters": q.parameters_schema()}),
    )
}

/// The tenants `args["tenants"]` names (by name or id, case-insensitively), or all.
fn chosen<'a>(inner: &'a Inner, args: &Map<String, Value>) -> Result<Vec<&'a super::Tenant>, ToolError> {
    let wanted: Vec<String> = match args.get("tenants") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_lowercase).collect(),
        Some(Value::String(s)) => s.split(',').map(|t| t.trim().to_lowercase()).collect(),
        _ => Vec::new(),
    };
    if wanted.is_empty() {
        return Ok(inner.tenants.iter().collect());
    }
    let found: Vec<&super::Tenant> = inner
        .tenants
        .iter()
        .filter(|t| wanted.contains(&t.name.to_lowercase()) || wanted.contains(&t.id.to_lowercase()))
        .collect();
    if found.is_empty() {
        let names: Vec<&str> = inner.tenants.iter().map(|t| t.name.as_str()).collect();
        return Err(ToolError(format!("no such tenant; served: {}", names.join(", "))));
    }
    Ok(found)
}

fn max_rows(inner: &Inner, args: &Map<String, Value>) -> usize {
    args.get("max_rows")
        .and_then(Value::as_u64)
        .map_or(inner.max_rows, |n| n.clamp(1, 1000) as usize)
}

/// A value made safe to return: strings cleaned and capped; objects and arrays as compact JSON text, capped.
fn cell(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(secgraph::clean(s, MAX_TEXT)),
        Value::Array(_) | Value::Object(_) => Value::String(secgraph::clean(&v.to_string(), MAX_TEXT)),
        other => other.clone(),
    }
}

/// Keeps the first `keep` rows (with the tenant's id) and counts the rest up to [`COUNT_CAP`].
struct Capture<'a> {
    rows: &'a mut Vec<(String, Value)>,
    keep: usize,
    total: &'a mut usize,
    tenant: String,
}

impl RowSink for Capture<'_> {
    fn page(&mut self, rows: Vec<Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        for r in rows {
            *self.total += 1;
            if self.rows.len() < self.keep {
                self.rows.push((self.tenant.clone(), r.to_value()));
            }
        }
        Ok(if *self.total >= COUNT_CAP {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        })
    }
}

/// The result document: source, total, rows as a compact table (columns + arrays).
fn table(source: Value, columns: &[String], rows: Vec<(String, Value)>, total: usize, keep: usize, failures: Vec<Value>) -> Value {
    let mut cols = vec!["TenantId".to_string()];
    cols.extend(columns.iter().cloned());
    if columns.is_empty() {
        for (_, r) in &rows {
            for k in r.as_object().into_iter().flat_map(|o| o.keys()) {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let data: Vec<Value> = rows
        .iter()
        .map(|(tenant, r)| {
            Value::Array(
                cols.iter()
                    .map(|c| if c == "TenantId" { json!(tenant) } else { cell(&lookup(r, c)) })
                    .collect(),
            )
        })
        .collect();
    let truncated = total > data.len();
    let mut doc = json!({"source": source, "total": if total >= COUNT_CAP { json!(format!("at least {COUNT_CAP}")) } else { json!(total) },
        "returned": data.len(), "truncated": truncated, "columns": cols, "rows": data});
    if truncated {
        doc["note"] = json!(format!(
            "only the first {} of the rows are returned (max_rows={keep}): narrow the time range or add parameters",
            data.len()
        ));
    }
    if !failures.is_empty() {
        doc["failed_tenants"] = Value::Array(failures);
    }
    doc
}

/// A dotted path (`evidence.0.x` not supported: top-level and nested object keys only).
fn lookup(v: &Value, path: &str) -> Value {
    let mut cur = v;
    for k in path.split('.') {
        cur = &cur[k];
    }
    cur.clone()
}

fn source(query: &str, tenants: &[&super::Tenant]) -> Value {
    json!({"query": query, "tenants": tenants.iter().map(|t| json!({"name": t.name, "id": t.id, "instance": t.instance})).collect::<Vec<_>>()})
}

fn params_of(args: &Map<String, Value>) -> Vec<(String, String)> {
    let Some(Value::Object(p)) = args.get("parameters") else {
        return Vec::new();
    };
    p.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            Some((k.clone(), text))
        })
        .collect()
}

async fn run_query(inner: &Inner, args: &Map<String, Value>) -> Out {
    let name = text(args, "name").ok_or_else(|| ToolError("name is required".into()))?;
    let template = inner.store.get(name)?;
    let rendered = template.render_strict(&params_of(args), chrono::Utc::now())?;
    let tenants = chosen(inner, args)?;
    let keep = max_rows(inner, args);
    let (mut rows, mut total, mut failures) = (Vec::new(), 0usize, Vec::new());
    for t in &tenants {
        let mut sink = Capture {
            rows: &mut rows,
            keep,
            total: &mut total,
            tenant: t.id.clone(),
        };
        if let Err(e) = t.provider.run_rendered(&rendered, &mut sink).await {
            failures.push(json!({"tenant": t.name, "error": inner.safe(&e.to_string())}));
        }
        if total >= COUNT_CAP {
            break;
        }
    }
    if failures.len() == tenants.len() {
        return Err(ToolError(format!("every tenant failed: {}", Value::Array(failures))));
    }
    let mut columns: Vec<String> = template.table_columns.clone();
    if template.language == secgraph::query::Language::OData && !columns.iter().any(|c| c == "id") {
        columns.insert(0, "id".into());
    }
    Ok(table(
        source(&template.full_name(), &tenants),
        &columns,
        rows,
        total,
        keep,
        failures,
    ))
}

async fn run_hunting(inner: &Inner, args: &Map<String, Value>) -> Out {
    let kql = text(args, "query").ok_or_else(|| ToolError("query is required".into()))?;
    if let Err(e) = secgraph::kql::parse_query(kql) {
        return Err(ToolError(format!(
            "the KQL does not parse: {} (line {}, column {}); nothing was sent",
            e.message, e.line, e.column
        )));
    }
    let now = chrono::Utc::now();
    let start = secgraph::query::parse_time(text(args, "start").unwrap_or("-7d"), now)?;
    let end = secgraph::query::parse_time(text(args, "end").unwrap_or("now"), now)?;
    if start >= end {
        return Err(ToolError("start must be before end".into()));
    }
    let timespan = format!(
        "{}/{}",
        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let tenants = chosen(inner, args)?;
    let keep = max_rows(inner, args);
    let (mut rows, mut total, mut failures) = (Vec::new(), 0usize, Vec::new());
    for t in &tenants {
        let mut sink = Capture {
            rows: &mut rows,
            keep,
            total: &mut total,
            tenant: t.id.clone(),
        };
        if let Err(e) = t.provider.hunt(kql, Some(&timespan), &mut sink).await {
            failures.push(json!({"tenant": t.name, "error": inner.safe(&e.to_string())}));
        }
    }
    if failures.len() == tenants.len() {
        return Err(ToolError(format!("every tenant failed: {}", Value::Array(failures))));
    }
    let mut doc = table(source("advanced hunting", &tenants), &[], rows, total, keep, failures);
    doc["source"]["timespan"] = json!(timespan);
    Ok(doc)
}

/// One piece of evidence in a few fields.
fn evidence_summary(e: &Value) -> Value {
    let kind = e["@odata.type"]
        .as_str()
        .unwrap_or_default()
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut out = json!({"type": kind, "verdict": cell(&e["verdict"]), "remediationStatus": cell(&e["remediationStatus"])});
    for (k, path) in [
        ("device", "deviceDnsName"),
        ("account", "userAccount.accountName"),
        ("upn", "userAccount.userPrincipalName"),
        ("file", "fileDetails.fileName"),
        ("sha256", "fileDetails.sha256"),
        ("process", "processCommandLine"),
        ("ip", "ipAddress"),
        ("url", "url"),
        ("mailbox", "primaryAddress"),
        ("subject", "subject"),
    ] {
        let v = lookup(e, path);
        if !v.is_null() {
            out[k] = cell(&v);
        }
    }
    out
}

fn alert_summary(a: &Value) -> Value {
    let mut out = Map::new();
    for k in [
        "id",
        "title",
        "severity",
        "status",
        "classification",
        "determination",
        "category",
        "serviceSource",
        "detectionSource",
        "createdDateTime",
        "lastUpdateDateTime",
        "incidentId",
        "assignedTo",
        "description",
        "recommendedActions",
    ] {
        out.insert(k.into(), cell(&a[k]));
    }
    out.insert(
        "mitreTechniques".into(),
        a["mitreTechniques"]
            .clone()
            .as_array()
            .map(|x| Value::Array(x.iter().map(cell).collect()))
            .unwrap_or(Value::Null),
    );
    let evidence: Vec<Value> = a["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .take(50)
        .map(evidence_summary)
        .collect();
    out.insert("evidence".into(), Value::Array(evidence));
    Value::Object(out)
}

async fn get_item(inner: &Inner, args: &Map<String, Value>, incident: bool) -> Out {
    let id = text(args, "id").ok_or_else(|| ToolError("id is required".into()))?;
    let safe_id = secgraph::graph::segment(id);
    let path = if incident {
        format!("/security/incidents/{safe_id}?$expand=alerts")
    } else {
        format!("/security/alerts_v2/{safe_id}")
    };
    let mut scope = Map::new();
    if let Some(t) = text(args, "tenant") {
        scope.insert("tenants".into(), json!([t]));
    }
    let mut last = None;
    for t in chosen(inner, &scope)? {
        match t.provider.get(&path).await {
            Ok(v) => {
                let item = if incident {
                    let mut out = Map::new();
                    for k in [
                        "id",
                        "displayName",
                        "severity",
                        "status",
                        "classification",
                        "determination",
                        "assignedTo",
                        "createdDateTime",
                        "lastUpdateDateTime",
                        "incidentWebUrl",
                        "summary",
                    ] {
                        out.insert(k.into(), cell(&v[k]));
                    }
                    out.insert(
                        "customTags".into(),
                        v["customTags"]
                            .as_array()
                            .map(|x| Value::Array(x.iter().map(cell).collect()))
                            .unwrap_or(Value::Null),
                    );
                    let alerts: Vec<Value> = v["alerts"].as_array().into_iter().flatten().take(50).map(alert_summary).collect();
                    out.insert("alerts".into(), Value::Array(alerts));
                    Value::Object(out)
                } else {
                    alert_summary(&v)
                };
                let what = if incident { "incident" } else { "alert" };
                return Ok(
                    json!({"source": {"item": format!("{what} {}", secgraph::clean(id, 200)), "tenant": {"name": t.name, "id": t.id, "instance": t.instance}}, what: item}),
                );
            }
            Err(e) if e.http_status() == Some(404) => last = Some(e),
            Err(e) => return Err(ToolError(format!("{}: {}", t.name, e))),
        }
    }
    Err(ToolError(
        last.map_or_else(|| "not found".into(), |e| format!("not found in any tenant: {e}")),
    ))
}

async fn summarize(inner: &Inner, args: &Map<String, Value>) -> Out {
    let mut params = Map::new();
    params.insert("start".into(), json!(text(args, "start").unwrap_or("-7d")));
    params.insert("end".into(), json!(text(args, "end").unwrap_or("now")));
    let template = inner.store.get("Alerts.list")?;
    let rendered = template.render_strict(
        &params_of(&Map::from_iter([("parameters".to_string(), Value::Object(params))])),
        chrono::Utc::now(),
    )?;
    let tenants = chosen(inner, args)?;
    let mut per_tenant = Vec::new();
    for t in &tenants {
        let mut counts = Counts::default();
        let result = t.provider.run_rendered(&rendered, &mut counts).await;
        per_tenant.push(match result {
            Ok(_) => json!({"tenant": {"name": t.name, "id": t.id}, "alerts": counts.total,
                "complete": counts.total < SUMMARY_CAP, "bySeverity": counts.severity, "byStatus": counts.status, "byServiceSource": counts.source}),
            Err(e) => json!({"tenant": {"name": t.name, "id": t.id}, "error": inner.safe(&e.to_string())}),
        });
    }
    Ok(
        json!({"source": {"query": "Alerts.list", "range": {"start": rendered_param(args, "start", "-7d"), "end": rendered_param(args, "end", "now")}}, "tenants": per_tenant}),
    )
}

fn rendered_param(args: &Map<String, Value>, k: &str, default: &str) -> String {
    secgraph::clean(text(args, k).unwrap_or(default), 100)
}

#[derive(Default)]
struct Counts {
    total: usize,
    severity: std::collections::BTreeMap<String, usize>,
    status: std::collections::BTreeMap<String, usize>,
    source: std::collections::BTreeMap<String, usize>,
}

impl RowSink for Counts {
    fn page(&mut self, rows: Vec<Row>) -> secgraph::Result<std::ops::ControlFlow<()>> {
        for r in rows {
            let v = r.to_value();
            self.total += 1;
            let key = |k: &str| secgraph::clean(v[k].as_str().unwrap_or("unknown"), 100);
            *self.severity.entry(key("severity")).or_default() += 1;
            *self.status.entry(key("status")).or_default() += 1;
            *self.source.entry(key("serviceSource")).or_default() += 1;
        }
        Ok(if self.total >= SUMMARY_CAP {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        })
    }
}

/// The write tools: plan (with a confirm token), or with `confirm` the change itself.
async fn write(inner: &Inner, tool: &str, mut args: Map<String, Value>) -> Out {
    let confirm = args.remove("confirm").and_then(|v| v.as_str().map(str::to_string));
    let id = text(&args, "id").ok_or_else(|| ToolError("id is required".into()))?.to_string();
    let kind = match tool {
        "update_alert" => ItemKind::Alert,
        "update_incident" => ItemKind::Incident,
        _ => match text(&args, "kind") {
            Some("alert") => ItemKind::Alert,
            Some("incident") => ItemKind::Incident,
            _ => return Err(ToolError("kind must be alert or incident".into())),
        },
    };
    let tags: Vec<String> = args
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let update = Update::from_text(
        kind,
        text(&args, "status"),
        text(&args, "classification"),
        text(&args, "determination"),
        args.get("assigned_to").and_then(Value::as_str),
        text(&args, "comment"),
        &tags,
    )?;
    let mut scope = Map::new();
    if let Some(t) = text(&args, "tenant") {
        scope.insert("tenants".into(), json!([t]));
    }
    let tenants = chosen(inner, &scope)?;
    let [t] = tenants.as_slice() else {
        return Err(ToolError(format!(
            "name the tenant (tenant: one of {}): a write goes to one tenant",
            inner.tenants.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    };
    let planned = secgraph::describe_plan(kind, &id, &update)?;
    let Some(token) = confirm else {
        let token = inner.pending.plan(tool, &args);
        return Ok(
            json!({"source": {"tenant": {"name": t.name, "id": t.id}}, "planned": planned.iter().map(|p| secgraph::clean(p, MAX_TEXT)).collect::<Vec<_>>(),
            "confirm": token, "sent": false,
            "note": "nothing was sent: call this tool again with the same arguments and confirm set to this token to send it"}),
        );
    };
    inner.pending.take(&token, tool, &args).map_err(ToolError)?;
    let item = t.provider.update(kind, &id, &update).await?;
    let summary = if kind == ItemKind::Alert {
        alert_summary(&item)
    } else {
        json!({"id": cell(&item["id"]), "status": cell(&item["status"]), "lastUpdateDateTime": cell(&item["lastUpdateDateTime"])})
    };
    Ok(json!({"source": {"tenant": {"name": t.name, "id": t.id}}, "sent": planned, "item": summary}))
}
