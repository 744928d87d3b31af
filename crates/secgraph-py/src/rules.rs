//! Detection rules for Python (`qp.rules`): the library's `secgraph::rules` over the tenants a query across
//! tenants would reach. Results are JSON text: `[{tenant, name, instance, error, rows: [...]}]`, one entry per
//! tenant, each row tagged with `TenantId`, `Tenant` and `Instance` (the CLI's `-o json` rows).

use crate::{CancelToken, connect_options, py_err, settings_for, targets_for, wait};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use secgraph::rules::{self, TenantResult};
use serde_json::{Value, json};

fn entries<T>(results: Vec<TenantResult<T>>, rows: impl Fn(&TenantResult<T>, &T) -> Vec<Value>) -> String {
    let out: Vec<Value> = results
        .iter()
        .map(|t| {
            let (rows, error) = match &t.result {
                Ok(v) => (rows(t, v), None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            json!({"tenant": t.tenant_id, "name": t.name, "instance": t.instance, "error": error, "rows": rows})
        })
        .collect();
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".into())
}

/// `op`: `list`, `plan` or `apply` (`dir`, `prune`; `apply` carries the plan out, the caller having asked for it).
#[pyfunction]
#[pyo3(signature = (op, config, options, instances, dir=None, prune=false, tenants=None, tags=Vec::new(), ids=Vec::new(), prompt=None, cancel=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn rules_run(
    py: Python<'_>,
    op: String,
    config: Option<String>,
    options: &Bound<'_, PyDict>,
    instances: Vec<String>,
    dir: Option<String>,
    prune: bool,
    tenants: Option<String>,
    tags: Vec<String>,
    ids: Vec<String>,
    prompt: Option<Py<PyAny>>,
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<String> {
    let o = connect_options(options, prompt)?;
    let local = match &dir {
        Some(d) => Some(rules::load(std::path::Path::new(d)).map_err(py_err)?),
        None => None,
    };
    if op != "list" && local.is_none() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "rules {op} needs a folder of rule files"
        )));
    }
    let out = wait(py, cancel.as_deref(), async move {
        let settings = settings_for(config)?;
        let targets = targets_for(settings.as_ref(), instances, tenants.as_deref(), tags, ids)?;
        let s = settings.as_ref();
        let local = local.unwrap_or_default();
        let local = &local;
        Ok::<_, secgraph::Error>(match op.as_str() {
            "list" => {
                let r = rules::plan::across(s, &targets, &o, |p| async move { rules::plan::list(&p).await }).await;
                entries(r, |t, v| v.iter().map(|x| t.tag(rules::plan::rule_row(x))).collect())
            }
            "plan" => {
                let r = rules::plan::across(s, &targets, &o, |p| async move {
                    rules::plan::plan(local, &rules::plan::list(&p).await?, prune)
                })
                .await;
                entries(r, |t, v| v.iter().map(|c| t.tag(c.row())).collect())
            }
            _ => {
                let r = rules::plan::across(s, &targets, &o, |p| async move {
                    let plan = rules::plan::plan(local, &rules::plan::list(&p).await?, prune)?;
                    rules::plan::apply(&p, plan).await
                })
                .await;
                entries(r, |t, v| v.iter().map(|a| t.tag(a.row())).collect())
            }
        })
    })?
    .map_err(py_err)?;
    Ok(out)
}
