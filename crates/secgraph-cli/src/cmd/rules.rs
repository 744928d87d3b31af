//! `secgraph rules …`: detection rules as code over every tenant a run reaches (`--instance A,B`,
//! `--all-instances`, a tenants file). The library plans and applies (`secgraph::rules`); this module prints.

use super::Env;
use crate::UsageError;
use crate::cli::{Cli, RulesCmd, RulesFormat};
use crate::output::Partial;
use secgraph::fanout::Target;
use secgraph::rules::{self, Action, Applied, Change, Outcome, RemoteRule, RuleFile, TenantResult};
use serde_json::Value;
use std::path::Path;

/// `rules check DIR`: the local checks, no connection.
pub(crate) fn check(dir: &Path) -> anyhow::Result<()> {
    let rules = rules::load(dir)?;
    eprintln!("{} rule(s) in {}: every check passed", rules.len(), dir.display());
    Ok(())
}

/// `rules from-query NAME`: the rule file of a hunting query.
pub(crate) fn from_query(cli: &Cli, name: &str, params: &[String], out: Option<&Path>) -> anyhow::Result<()> {
    let settings = if cli.emulator {
        None
    } else {
        secgraph::config::Settings::discover(&secgraph::config::SearchPaths::from_env(cli.config.clone()))
            .ok()
            .flatten()
    };
    let store = super::query_store(settings.as_ref(), &cli.query_dirs)?;
    let template = store.get(name)?;
    let values = super::query_params(&None, &None, params)?;
    let rendered = template.render(&values, chrono::Utc::now())?;
    let rule = rules::from_query::from_query(template, &rendered)?;
    let text = format!(
        "# Made by `secgraph rules from-query {}`: review the alert's title, severity and category, then plan.\n{}",
        template.full_name(),
        rules::graph::to_yaml(&rule)
    );
    match out {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| secgraph::Error::output_from(format!("cannot create {}", parent.display()), e))?;
            }
            std::fs::write(path, text).map_err(|e| secgraph::Error::output_from(format!("cannot write {}", path.display()), e))?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        None => crate::write_stdout(text.as_bytes()),
    }
}

/// The tenants a rules command reaches: the fan-out's targets, else the one instance.
fn targets(env: &Env, cli: &Cli) -> anyhow::Result<Vec<Target>> {
    env.require_connection(cli)?;
    Ok(match super::query::fan_out_targets(env, cli)? {
        Some(t) => t,
        None => vec![Target::instance(cli.instance.as_deref().unwrap_or("Default"))],
    })
}

/// The commands that connect.
pub(crate) async fn run(env: &Env, cli: &Cli, action: &RulesCmd) -> anyhow::Result<()> {
    let targets = targets(env, cli)?;
    let s = env.settings.as_ref();
    let o = &env.options;
    match action {
        RulesCmd::List { format } => {
            let results = rules::plan::across(s, &targets, o, |p| async move { rules::plan::list(&p).await }).await;
            print_list(&results, *format);
            finish(cli, results, false)
        }
        RulesCmd::Get { id, format } => {
            let one = targets.first().ok_or_else(|| UsageError("no tenant to read".into()))?;
            anyhow::ensure!(
                targets.len() == 1,
                UsageError("rules get reads one tenant: name one instance (or --tenant)".into())
            );
            let p = secgraph::QueryProvider::connect(s, &one.connect_options(o)).await?;
            let r = rules::plan::get(&p, id).await?;
            let text = match format {
                RulesFormat::Table => rules::graph::to_yaml(&r.rule),
                _ => format!("{}\n", rules::plan::rule_row(&r)),
            };
            crate::write_stdout(text.as_bytes())
        }
        RulesCmd::Pull { dir, adopt } => pull(env, cli, &targets, dir, *adopt).await,
        RulesCmd::Plan { dir, prune, format } => {
            let local = rules::load(dir)?;
            let results = plan_all(env, &targets, &local, *prune).await;
            print_plans(&results, *format);
            let changes = results
                .iter()
                .filter_map(|r| r.result.as_ref().ok())
                .flatten()
                .any(|c| c.action.changes());
            finish(cli, results, changes)
        }
        RulesCmd::Apply { dir, prune, yes, format } => {
            let local = rules::load(dir)?;
            if !yes {
                let results = plan_all(env, &targets, &local, *prune).await;
                print_plans(&results, *format);
                let changes = results
                    .iter()
                    .filter_map(|r| r.result.as_ref().ok())
                    .flatten()
                    .any(|c| c.action.changes());
                if changes && *format == RulesFormat::Table {
                    eprintln!("dry run: nothing was sent. Run again with --yes to apply.");
                }
                return finish(cli, results, changes);
            }
            let local = &local;
            let prune = *prune;
            let results = rules::plan::across(s, &targets, o, |p| async move {
                let remote = rules::plan::list(&p).await?;
                let plan = rules::plan::plan(local, &remote, prune)?;
                rules::plan::apply(&p, plan).await
            })
            .await;
            print_applied(&results, *format);
            let bad: Vec<String> = results
                .iter()
                .filter_map(|r| r.result.as_ref().ok().map(|a| (r, a)))
                .flat_map(|(r, a)| {
                    a.iter().filter_map(move |x| match &x.outcome {
                        Outcome::Conflict(why) | Outcome::Failed(why) => Some(format!("{} {}: {why}", r.name, x.change.key)),
                        _ => None,
                    })
                })
                .collect();
            finish(cli, results, false)?;
            if !bad.is_empty() {
                return Err(Partial(format!("{} change(s) not applied: {}", bad.len(), bad.join("; "))).into());
            }
            Ok(())
        }
        RulesCmd::Check { .. } | RulesCmd::FromQuery { .. } => Ok(()),
    }
}

async fn plan_all(env: &Env, targets: &[Target], local: &[RuleFile], prune: bool) -> Vec<TenantResult<Vec<Change>>> {
    rules::plan::across(env.settings.as_ref(), targets, &env.options, |p| async move {
        let remote = rules::plan::list(&p).await?;
        rules::plan::plan(local, &remote, prune)
    })
    .await
}

/// The run's end: one failed target alone fails with its own error; some of many → exit 8 (or the first error
/// with --strict-tenants); else exit 2 when `changes`, 0 otherwise. Each tenant's status goes to stderr when there
/// are several or one failed.
fn finish<T>(cli: &Cli, results: Vec<TenantResult<T>>, changes: bool) -> anyhow::Result<()> {
    let total = results.len();
    let mut failed: Vec<(String, secgraph::Error)> = Vec::new();
    for r in results {
        let status = match &r.result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        if total > 1 || r.result.is_err() {
            eprintln!(
                "{} ({}) via {}: {status}",
                r.name,
                r.tenant_id.as_deref().unwrap_or("-"),
                r.instance
            );
        }
        if let Err(e) = r.result {
            failed.push((r.name, e));
        }
    }
    if !failed.is_empty() {
        if total == 1 || cli.strict_tenants {
            let (name, e) = failed.swap_remove(0);
            return Err(anyhow::Error::new(e).context(format!("tenant {name}")));
        }
        let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Partial(format!("{} of {total} tenants failed: {}", failed.len(), names.join(", "))).into());
    }
    if changes {
        return Err(PlanChanges.into());
    }
    Ok(())
}

/// A plan that would change something: exit 2, nothing printed as an error.
#[derive(Debug)]
pub(crate) struct PlanChanges;

impl std::fmt::Display for PlanChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the plan has changes")
    }
}

impl std::error::Error for PlanChanges {}

/// Every successful tenant's items as rows, each with the tenant's columns first.
fn tagged_rows<T>(results: &[TenantResult<Vec<T>>], row: impl Fn(&T) -> Value) -> Vec<Value> {
    results
        .iter()
        .filter_map(|t| t.result.as_ref().ok().map(|items| (t, items)))
        .flat_map(|(t, items)| items.iter().map(|x| t.tag(row(x))))
        .collect()
}

fn emit(rows: Vec<Value>, format: RulesFormat, table: impl FnOnce(&[Value])) {
    match format {
        RulesFormat::Json => println!("{}", serde_json::to_string_pretty(&rows).unwrap_or_default()),
        RulesFormat::Jsonl => rows.iter().for_each(|r| println!("{r}")),
        RulesFormat::Table => table(&rows),
    }
}

fn print_list(results: &[TenantResult<Vec<RemoteRule>>], format: RulesFormat) {
    let rows = tagged_rows(results, rules::plan::rule_row);
    emit(rows, format, |rows| {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
        table.set_header(["Tenant", "id", "key", "name", "period", "severity", "enabled", "last run", "status"]);
        for r in rows {
            let s = |k: &str| match &r[k] {
                Value::Null => "-".to_string(),
                Value::String(s) if s.is_empty() => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            table.add_row([
                s("Tenant"),
                s("id"),
                s("key"),
                s("name"),
                s("period"),
                s("severity"),
                s("enabled"),
                s("lastRunDateTime"),
                s("lastRunStatus"),
            ]);
        }
        println!("{table}");
        eprintln!("{} rule(s)", rows.len());
    });
}

fn print_plans(results: &[TenantResult<Vec<Change>>], format: RulesFormat) {
    let rows = tagged_rows(results, Change::row);
    emit(rows, format, |_| {
        for t in results {
            let Ok(changes) = &t.result else { continue };
            print_tenant_plan(t, changes);
        }
    });
}

fn count(changes: &[Change], a: Action) -> usize {
    changes.iter().filter(|c| c.action == a).count()
}

fn print_tenant_plan(t: &TenantResult<Vec<Change>>, changes: &[Change]) {
    println!(
        "{} ({}) via {}: {} to create, {} to update, {} to delete, {} unchanged",
        t.name,
        t.tenant_id.as_deref().unwrap_or("-"),
        t.instance,
        count(changes, Action::Create),
        count(changes, Action::Update),
        count(changes, Action::Delete),
        count(changes, Action::Unchanged)
    );
    for c in changes {
        let (mark, note) = match c.action {
            Action::Create => ("+", String::new()),
            Action::Update => ("~", String::new()),
            Action::Delete => ("-", String::new()),
            Action::Unchanged => continue,
            Action::Kept => ("!", " (not in the folder; kept: --prune deletes it)".to_string()),
            Action::Unmanaged => (
                "?",
                " (made elsewhere, no secgraph key: never changed; `rules pull --adopt` takes it on)".to_string(),
            ),
            _ => ("?", String::new()),
        };
        let id = c.id.as_deref().map(|i| format!(" [id {i}]")).unwrap_or_default();
        println!("  {mark} {:<9} {} \"{}\"{id}{note}", c.action.as_str(), c.key, c.name);
        if c.action == Action::Update {
            for f in &c.fields {
                print_field(f);
            }
        }
    }
}

fn print_field(f: &secgraph::rules::FieldDiff) {
    let remote = f.remote.as_deref().unwrap_or("");
    let local = f.local.as_deref().unwrap_or("");
    if remote.contains('\n') || local.contains('\n') {
        println!("      {}: (- in the tenant, + in the folder)", f.field);
        let diff = similar::TextDiff::from_lines(remote, local);
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
                similar::ChangeTag::Equal => " ",
            };
            println!("        {sign} {}", change.value().trim_end_matches('\n'));
        }
    } else {
        println!("      {}: {remote:?} → {local:?}", f.field);
    }
}

fn print_applied(results: &[TenantResult<Vec<Applied>>], format: RulesFormat) {
    let rows = tagged_rows(results, Applied::row);
    emit(rows, format, |rows| {
        for r in rows {
            let action = r["action"].as_str().unwrap_or_default();
            if matches!(action, "unchanged" | "kept" | "unmanaged") {
                continue;
            }
            let reason = r["reason"].as_str().map(|w| format!(": {w}")).unwrap_or_default();
            println!(
                "{}: {} {} \"{}\" → {}{reason}",
                r["Tenant"].as_str().unwrap_or_default(),
                action,
                r["key"].as_str().unwrap_or_default(),
                r["rule"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default()
            );
        }
        for t in results {
            if let Ok(a) = &t.result {
                let done = a.iter().filter(|x| x.outcome == Outcome::Done).count();
                eprintln!("{}: {done} change(s) applied", t.name);
            }
        }
    });
}

/// `rules pull DIR`: each tenant's managed rules as files (one folder per tenant when there are several).
async fn pull(env: &Env, cli: &Cli, targets: &[Target], dir: &Path, adopt: bool) -> anyhow::Result<()> {
    let results = rules::plan::across(env.settings.as_ref(), targets, &env.options, |p| async move {
        let mut remote = rules::plan::list(&p).await?;
        if adopt {
            remote = rules::plan::adopt(&p, remote).await?;
        }
        Ok(remote)
    })
    .await;
    let several = results.len() > 1;
    for t in &results {
        let Ok(remote) = &t.result else { continue };
        let folder = if several { dir.join(folder_name(t)) } else { dir.to_path_buf() };
        std::fs::create_dir_all(&folder).map_err(|e| secgraph::Error::output_from(format!("cannot create {}", folder.display()), e))?;
        let mut written = 0;
        for r in remote.iter().filter(|r| r.managed) {
            let path = folder.join(rules::graph::file_name(&r.rule));
            std::fs::write(&path, rules::graph::to_yaml(&r.rule))
                .map_err(|e| secgraph::Error::output_from(format!("cannot write {}", path.display()), e))?;
            written += 1;
        }
        let unmanaged = remote.iter().filter(|r| !r.managed).count();
        eprintln!("{}: {written} rule(s) written to {}", t.name, folder.display());
        if unmanaged > 0 {
            eprintln!(
                "{}: {unmanaged} rule(s) made elsewhere have no secgraph key and were not pulled (--adopt takes them on)",
                t.name
            );
        }
    }
    finish(cli, results, false)
}

fn folder_name(t: &TenantResult<Vec<RemoteRule>>) -> String {
    let raw = t.tenant_id.clone().unwrap_or_else(|| t.name.clone());
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
