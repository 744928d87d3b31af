//! Plans and applies: what would change in a tenant so that its rules are the folder's, and carrying it out.
//!
//! A plan compares rules by key (see [`super::graph::KEY_LINE`]): a key only in the folder is a create; in both and
//! different, an update listing the fields that differ (a rule edited in the portal shows here as drift); in both
//! and equal, unchanged; a managed rule whose key left the folder is a delete with `prune`, else kept and shown.
//! Rules without a key line are never touched. Applying reads each rule again before updating or deleting it and
//! stops that change when its `lastModifiedDateTime` moved since the plan (someone edited it meanwhile).

use super::file::{Rule, RuleFile};
pub use super::graph::RemoteRule;
use crate::QueryProvider;
use crate::error::{Error, Result};
use crate::fanout::Target;
use serde::Serialize;
use serde_json::Value;

/// The collection's path under the Graph root.
pub const RULES_PATH: &str = "/security/rules/detectionRules";

/// What a plan does with one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Action {
    /// Only in the folder: created.
    Create,
    /// In both, different: updated (drift, or an edit in the folder).
    Update,
    /// Managed, its key gone from the folder, and `prune` given: deleted.
    Delete,
    /// In both, equal.
    Unchanged,
    /// Managed, its key gone from the folder, no `prune`: kept.
    Kept,
    /// On the service without a key line: not secgraph's, left alone.
    Unmanaged,
}

impl Action {
    /// Whether applying it changes the tenant.
    pub fn changes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }

    /// Its name, as plans print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
            Action::Kept => "kept",
            Action::Unmanaged => "unmanaged",
        }
    }
}

/// One field that differs: the service's value and the folder's, as text (lists and objects as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldDiff {
    /// The field, as the file names it (`query`, `alert.severity`, …).
    pub field: String,
    /// What the tenant has (`None` for a create).
    pub remote: Option<String>,
    /// What the folder has (`None` for a delete).
    pub local: Option<String>,
}

/// What the plan does with one rule of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// The rule's key (empty for an unmanaged rule).
    pub key: String,
    /// Its display name.
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// Its id in the tenant, when it exists there.
    pub id: Option<String>,
    /// The `lastModifiedDateTime` the plan saw (an update or delete checks it again).
    pub last_modified: Option<String>,
    /// The fields that differ (every field for a create or delete).
    pub fields: Vec<FieldDiff>,
    /// The folder's rule, for a create or update.
    #[serde(skip)]
    pub rule: Option<Rule>,
}

/// A value as compact JSON text (lists and objects in plans).
fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn fields_of(r: &Rule) -> Vec<(&'static str, String)> {
    vec![
        ("name", r.name.clone()),
        ("enabled", r.enabled.to_string()),
        ("period", r.graph_period()),
        ("query", super::graph::normalise_query(&r.query)),
        ("alert.title", r.alert.title.clone()),
        ("alert.description", r.alert.description.clone()),
        ("alert.severity", r.alert.severity.clone()),
        ("alert.category", r.alert.category.clone()),
        ("alert.techniques", json_text(&r.alert.techniques)),
        ("alert.recommendedActions", r.alert.recommended_actions.clone().unwrap_or_default()),
        ("alert.impactedAssets", json_text(&r.alert.impacted_assets)),
        ("responseActions", json_text(&r.response_actions)),
        ("tags", json_text(&r.tags)),
    ]
}

/// The fields where `remote` and `local` differ.
pub fn diff(remote: Option<&Rule>, local: Option<&Rule>) -> Vec<FieldDiff> {
    let r = remote.map(fields_of);
    let l = local.map(fields_of);
    let names = r
        .as_ref()
        .or(l.as_ref())
        .map(|f| f.iter().map(|(n, _)| *n).collect::<Vec<_>>())
        .unwrap_or_default();
    names
        .into_iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let rv = r.as_ref().map(|f| f[i].1.clone());
            let lv = l.as_ref().map(|f| f[i].1.clone());
            (rv != lv).then(|| FieldDiff {
                field: n.to_string(),
                remote: rv,
                local: lv,
            })
        })
        .collect()
}

/// The plan for one tenant: its rules (`remote`) made the folder's (`local`). Two rules of the tenant with one key
/// are an error (which one would the folder's rule be?).
pub fn plan(local: &[RuleFile], remote: &[RemoteRule], prune: bool) -> Result<Vec<Change>> {
    let mut by_key: std::collections::HashMap<String, &RemoteRule> = Default::default();
    for r in remote.iter().filter(|r| r.managed) {
        if let Some(other) = by_key.insert(r.rule.key.to_ascii_lowercase(), r) {
            return Err(Error::Query {
                message: format!(
                    "rules {} and {} of the tenant both carry key '{}': delete or re-key one of them first",
                    other.id, r.id, r.rule.key
                ),
            });
        }
    }
    let mut out = Vec::new();
    for l in local {
        let rule = &l.rule;
        let change = match by_key.remove(&rule.key.to_ascii_lowercase()) {
            None => Change {
                key: rule.key.clone(),
                name: rule.name.clone(),
                action: Action::Create,
                id: None,
                last_modified: None,
                fields: diff(None, Some(rule)),
                rule: Some(rule.clone()),
            },
            Some(r) => {
                let fields = diff(Some(&r.rule), Some(rule));
                Change {
                    key: rule.key.clone(),
                    name: rule.name.clone(),
                    action: if fields.is_empty() { Action::Unchanged } else { Action::Update },
                    id: Some(r.id.clone()),
                    last_modified: r.last_modified.clone(),
                    fields,
                    rule: Some(rule.clone()),
                }
            }
        };
        out.push(change);
    }
    let mut left: Vec<&RemoteRule> = by_key.into_values().collect();
    left.sort_by(|a, b| a.rule.key.cmp(&b.rule.key));
    for r in left {
        out.push(Change {
            key: r.rule.key.clone(),
            name: r.rule.name.clone(),
            action: if prune { Action::Delete } else { Action::Kept },
            id: Some(r.id.clone()),
            last_modified: r.last_modified.clone(),
            fields: if prune { diff(Some(&r.rule), None) } else { Vec::new() },
            rule: None,
        });
    }
    for r in remote.iter().filter(|r| !r.managed) {
        out.push(Change {
            key: String::new(),
            name: r.rule.name.clone(),
            action: Action::Unmanaged,
            id: Some(r.id.clone()),
            last_modified: r.last_modified.clone(),
            fields: Vec::new(),
            rule: None,
        });
    }
    Ok(out)
}

/// The tenant's rules, as the service holds them (every page).
pub async fn list(p: &QueryProvider) -> Result<Vec<RemoteRule>> {
    let g = p.graph();
    let mut url = g.url_for(RULES_PATH)?;
    let mut out = Vec::new();
    for _ in 0..g.limits().max_pages.max(1) {
        let v = g.send_json(reqwest::Method::GET, &url, None).await?;
        out.extend(v["value"].as_array().into_iter().flatten().map(super::graph::from_graph));
        match v["@odata.nextLink"].as_str() {
            Some(next) => {
                url = url::Url::parse(next).map_err(|e| Error::Paging {
                    message: format!("the next link of the rules is not a URL: {e}"),
                })?;
                g.check_target(&url)?;
            }
            None => break,
        }
    }
    Ok(out)
}

/// One rule, by id.
pub async fn get(p: &QueryProvider, id: &str) -> Result<RemoteRule> {
    let g = p.graph();
    let url = g.url_for(&format!("{RULES_PATH}/{}", crate::graph::segment(id)))?;
    Ok(super::graph::from_graph(&g.send_json(reqwest::Method::GET, &url, None).await?))
}

/// Takes on rules made elsewhere (no key line): each gets a key from its name (made unique among the tenant's
/// keys), written into the rule on the service as its key line (one update each). Returns the tenant's rules, all
/// managed.
pub async fn adopt(p: &QueryProvider, mut remote: Vec<RemoteRule>) -> Result<Vec<RemoteRule>> {
    let g = p.graph();
    let mut keys: std::collections::HashSet<String> = remote
        .iter()
        .filter(|r| r.managed)
        .map(|r| r.rule.key.to_ascii_lowercase())
        .collect();
    for r in remote.iter_mut().filter(|r| !r.managed) {
        let base = super::graph::key_from_name(&r.rule.name);
        let mut key = base.clone();
        let mut n = 2;
        while !keys.insert(key.clone()) {
            key = format!("{base}-{n}");
            n += 1;
        }
        r.rule.key = key;
        let url = g.url_for(&format!("{RULES_PATH}/{}", crate::graph::segment(&r.id)))?;
        let body = serde_json::json!({"queryCondition": {"queryText": super::graph::query_text(&r.rule)}});
        let v = g.send_json(reqwest::Method::PATCH, &url, Some(&body)).await?;
        *r = super::graph::from_graph(&v);
    }
    Ok(remote)
}

/// What applying one change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// Carried out.
    Done,
    /// Nothing to do (unchanged, kept, unmanaged), or a dry run.
    Skipped,
    /// Not carried out: the rule changed on the service since the plan (by whom, when).
    Conflict(String),
    /// The service refused it (the error).
    Failed(String),
}

/// A change and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Applied {
    /// The change.
    pub change: Change,
    /// What happened.
    pub outcome: Outcome,
    /// The rule's id after it (a create's new id).
    pub id: Option<String>,
}

/// Carries out a tenant's plan: creates, then updates, then deletes. Each update or delete reads the rule again
/// first and is not made when it changed since the plan. A refusal of the whole tenant (403: the app may not write
/// rules; 401) stops it with that error; any other refusal is that change's outcome.
pub async fn apply(p: &QueryProvider, plan: Vec<Change>) -> Result<Vec<Applied>> {
    let g = p.graph();
    let mut out = Vec::new();
    for change in plan {
        let id = change.id.clone();
        let result = match (change.action, &change.rule, &change.id) {
            (Action::Create, Some(rule), _) => {
                let url = g.url_for(RULES_PATH)?;
                g.send_json(reqwest::Method::POST, &url, Some(&super::graph::to_graph(rule)))
                    .await
                    .map(|v| Ok((Outcome::Done, super::graph::from_graph(&v).id)))
            }
            (Action::Update | Action::Delete, _, Some(id)) => update_or_delete(p, &change, id).await,
            _ => Ok(Ok((Outcome::Skipped, id.clone().unwrap_or_default()))),
        };
        let (outcome, new_id) = match result {
            Ok(Ok((o, i))) => (o, Some(i).filter(|i| !i.is_empty())),
            Ok(Err(o)) => (o, id),
            Err(e) if matches!(e.http_status(), Some(401 | 403)) => return Err(e),
            Err(e) => (Outcome::Failed(crate::error::clean(&e.to_string(), 500)), id),
        };
        out.push(Applied {
            change,
            outcome,
            id: new_id,
        });
    }
    Ok(out)
}

type Step = std::result::Result<(Outcome, String), Outcome>;

async fn update_or_delete(p: &QueryProvider, change: &Change, id: &str) -> Result<Step> {
    let g = p.graph();
    let now = get(p, id).await?;
    if now.last_modified != change.last_modified {
        return Ok(Err(Outcome::Conflict(format!(
            "changed on the service since the plan (last modified {} by {}): plan again",
            now.last_modified.as_deref().unwrap_or("?"),
            now.last_modified_by.as_deref().unwrap_or("?")
        ))));
    }
    let url = g.url_for(&format!("{RULES_PATH}/{}", crate::graph::segment(id)))?;
    match (change.action, &change.rule) {
        (Action::Update, Some(rule)) => {
            g.send_json(reqwest::Method::PATCH, &url, Some(&super::graph::to_graph(rule)))
                .await?;
        }
        _ => {
            g.send_json(reqwest::Method::DELETE, &url, None::<&Value>).await?;
        }
    }
    Ok(Ok((Outcome::Done, id.to_string())))
}

/// One tenant's result of a run over many.
#[derive(Debug)]
#[non_exhaustive]
pub struct TenantResult<T> {
    /// The instance it was reached through.
    pub instance: String,
    /// Its name in the tenants file, else the instance.
    pub name: String,
    /// Its directory id, when signed in (else as configured).
    pub tenant_id: Option<String>,
    /// What the operation gave, or why it failed (sign-in included).
    pub result: Result<T>,
}

/// Runs `op` against each target (signed in to first), a few tenants at once, in the order given; a tenant's
/// failure is its result, never the run's.
pub async fn across<T, F, Fut>(
    settings: Option<&crate::config::Settings>,
    targets: &[Target],
    options: &crate::ConnectOptions,
    op: F,
) -> Vec<TenantResult<T>>
where
    F: Fn(QueryProvider) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures_util::StreamExt;
    let op = &op;
    futures_util::stream::iter(targets.iter().cloned())
        .map(|t| async move {
            let connected = QueryProvider::connect(settings, &t.connect_options(options)).await;
            let configured = t.tenant.as_ref().map(|e| e.tenant.clone());
            match connected {
                Ok(p) => {
                    let tenant_id = p.info().directory_id.clone().or(configured);
                    TenantResult {
                        instance: t.instance.clone(),
                        name: t.label().to_string(),
                        tenant_id,
                        result: op(p).await,
                    }
                }
                Err(e) => TenantResult {
                    instance: t.instance.clone(),
                    name: t.label().to_string(),
                    tenant_id: configured,
                    result: Err(e),
                },
            }
        })
        .buffered(crate::fanout::TENANTS_IN_FLIGHT)
        .collect()
        .await
}

/// A rule as one flat row (list outputs: the CLI's JSON, Python's DataFrame).
pub fn rule_row(r: &RemoteRule) -> Value {
    serde_json::json!({
        "id": r.id, "key": r.rule.key, "managed": r.managed, "name": r.rule.name, "enabled": r.rule.enabled,
        "period": r.rule.period, "severity": r.rule.alert.severity, "lastRunStatus": r.last_run_status,
        "lastRunDateTime": r.last_run, "failureReason": r.failure_reason, "lastModifiedDateTime": r.last_modified,
        "lastModifiedBy": r.last_modified_by,
    })
}

impl Change {
    /// The change as one flat row: key, rule (its name), action, id, fields.
    pub fn row(&self) -> Value {
        serde_json::json!({"key": self.key, "rule": self.name, "action": self.action.as_str(), "id": self.id, "fields": self.fields})
    }
}

impl Applied {
    /// The change's row with its outcome (`done`, `skipped`, `conflict`, `failed`), the reason, and the id after.
    pub fn row(&self) -> Value {
        let (outcome, reason) = match &self.outcome {
            Outcome::Done => ("done", None),
            Outcome::Skipped => ("skipped", None),
            Outcome::Conflict(w) => ("conflict", Some(w.clone())),
            Outcome::Failed(w) => ("failed", Some(w.clone())),
        };
        let mut row = self.change.row();
        row["outcome"] = outcome.into();
        row["reason"] = reason.into();
        row["id"] = self.id.clone().into();
        row
    }
}

impl<T> TenantResult<T> {
    /// The tenant's columns of a row: `TenantId`, `Tenant` (its name), `Instance`.
    pub fn columns(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("TenantId".into(), self.tenant_id.clone().into());
        m.insert("Tenant".into(), self.name.clone().into());
        m.insert("Instance".into(), self.instance.clone().into());
        m
    }

    /// `row` with the tenant's columns first.
    pub fn tag(&self, row: Value) -> Value {
        let mut m = self.columns();
        if let Value::Object(o) = row {
            m.extend(o);
        }
        Value::Object(m)
    }
}
