//! `secgraph query NAME` (or `--print` to show the request) and `secgraph exec PATH`: results to a table, JSON,
//! JSON lines or CSV.

use super::{Env, query_params, query_store};
use crate::cli::{Cli, Command};
use crate::output;

/// Runs (or prints) a named query: on one connection, as time slices, or across instances.
pub(crate) async fn run(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let Command::Query {
        name,
        start,
        end,
        params,
        print,
        strict,
        split_by,
        parallel,
        out,
        ..
    } = &cli.command
    else {
        return Ok(());
    };
    let values = query_params(start, end, params)?;
    warn_future_start(&values);
    let render = |t: &secgraph::query::QueryTemplate| {
        if !*strict {
            // A near-miss of a declared name fails here; other undeclared names are ignored, as msticpy does.
            let q = t.render(&values, chrono::Utc::now())?;
            for (unknown, suggestion) in t.unknown_parameters(&values) {
                let hint = suggestion.map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
                eprintln!(
                    "warning: {} has no parameter '{unknown}'{hint}; ignored (--strict makes this an error)",
                    t.full_name()
                );
            }
            Ok(q)
        } else {
            t.render_strict(&values, chrono::Utc::now())
        }
    };
    if *print {
        env.require_connection(cli)?;
        let store = query_store(env.settings.as_ref(), &cli.query_dirs)?;
        let q = render(store.get(name)?)?;
        println!("{}", q.describe());
        return Ok(());
    }
    // --split-by: the slices of the range (start and end from -p, or the last day).
    let split = match split_by {
        None => None,
        Some(d) => {
            let slice = parse_duration(d)?;
            let now = chrono::Utc::now();
            let time = |v: &Option<String>, default: chrono::DateTime<chrono::Utc>| -> anyhow::Result<_> {
                Ok(match v {
                    Some(t) => secgraph::query::parse_time(t, now)?,
                    None => default,
                })
            };
            let range = (time(start, now - chrono::Duration::days(1))?, time(end, now)?);
            let rest: Vec<(String, String)> = values.iter().filter(|(k, _)| k != "start" && k != "end").cloned().collect();
            Some((range, slice, rest))
        }
    };
    if let Some(targets) = fan_out_targets(env, cli)? {
        let store = query_store(env.settings.as_ref(), &cli.query_dirs)?;
        let template = store.get(name)?.clone();
        let rendered = render(&template)?;
        // Across tenants, every tenant reads the same slices.
        let slices = match &split {
            None => None,
            Some((range, slice, rest)) => Some((
                secgraph::fanout::slice_queries(&template, rest, *range, *slice)?,
                usize::from(*parallel),
            )),
        };
        tracing::info!(query = %rendered.name, tenants = targets.len(), "running query across tenants");
        let (run, out) = across(env, cli, targets, slices, out);
        return output::run_to_output(run, &rendered, &out, &template.table_columns).await;
    }
    let provider = env.connect(cli).await?;
    let template = provider.queries().get(name)?.clone();
    let rendered = render(&template)?;
    tracing::info!(query = %rendered.name, "running query");
    let run = match split {
        None => output::Run::Single(&provider),
        Some((range, slice, rest)) => output::Run::Split {
            provider: &provider,
            name: name.clone(),
            params: rest,
            range,
            slice,
            parallel: usize::from(*parallel),
        },
    };
    output::run_to_output(run, &rendered, out, &template.table_columns).await
}

/// A run across `targets`, each signed in to when it gets its place (reading `slices`, this many at once, when
/// given), and the output options with `--strict-tenants`.
fn across(
    env: &Env,
    cli: &Cli,
    targets: Vec<secgraph::fanout::Target>,
    slices: Option<(Vec<secgraph::query::RenderedQuery>, usize)>,
    out: &output::OutputArgs,
) -> (output::Run<'static>, output::OutputArgs) {
    let tenants = secgraph::fanout::Tenants::SignIn {
        settings: env.settings.clone(),
        targets,
        options: env.options.clone(),
    };
    let out = output::OutputArgs {
        strict: cli.strict_tenants,
        ..out.clone()
    };
    (output::Run::FanOut(Box::new(tenants), slices), out)
}

/// The tenants a run reads when it reads several: the instances to fan out to, each expanded into its tenants when
/// a tenants file is in play (`--tenants FILE`, or the instance's `Args.Tenants`) and filtered by `--tenant-tag` /
/// `--tenant`; `None` for one connection.
pub(crate) fn fan_out_targets(env: &Env, cli: &Cli) -> anyhow::Result<Option<Vec<secgraph::fanout::Target>>> {
    let listed = fan_out_instances(env, cli, cli.all_instances)?;
    let single = cli.instance.clone().unwrap_or_else(|| "Default".into());
    let own_file = match (&listed, &env.settings) {
        (None, Some(s)) => s.tenants_file(Some(single.as_str())).ok().flatten().is_some(),
        _ => false,
    };
    let filtered = !cli.tenant_tag.is_empty() || !cli.only_tenants.is_empty();
    if listed.is_none() && cli.tenants.is_none() && !own_file && !filtered {
        return Ok(None);
    }
    let instances = listed.unwrap_or_else(|| vec![single]);
    let file = cli
        .tenants
        .as_deref()
        .map(|f| secgraph::tenants::TenantsFile::load(std::path::Path::new(f)))
        .transpose()?;
    let filter = secgraph::tenants::TenantFilter {
        tags: cli.tenant_tag.clone(),
        tenants: cli.only_tenants.clone(),
    };
    Ok(Some(secgraph::fanout::targets(
        env.settings.as_ref(),
        &instances,
        file.as_ref(),
        &filter,
    )?))
}

/// The instances to fan out to: `--all-instances`, or a comma-separated `--instance`; `None` for one connection.
pub(crate) fn fan_out_instances(env: &Env, cli: &Cli, all: bool) -> anyhow::Result<Option<Vec<String>>> {
    if all {
        let v = secgraph::export::all_instances(env.require_settings(cli)?);
        anyhow::ensure!(
            !v.is_empty(),
            crate::UsageError("--all-instances: the settings configure no MicrosoftGraph instance".into())
        );
        return Ok(Some(v));
    }
    match &cli.instance {
        Some(list) if list.contains(',') => Ok(Some(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        _ => Ok(None),
    }
}

/// `1d`, `6h`, `30m`, `90s`, `2w`.
pub(crate) fn parse_duration(text: &str) -> anyhow::Result<chrono::Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| crate::UsageError(format!("--split-by '{text}': expected a number and a unit, e.g. 1d, 6h, 30m")))?;
    let d = match unit {
        "w" => chrono::Duration::weeks(n),
        "d" => chrono::Duration::days(n),
        "h" => chrono::Duration::hours(n),
        "m" => chrono::Duration::minutes(n),
        "s" => chrono::Duration::seconds(n),
        _ => anyhow::bail!(crate::UsageError(format!(
            "--split-by '{text}': the unit must be one of w, d, h, m, s"
        ))),
    };
    anyhow::ensure!(n > 0, crate::UsageError(format!("duration '{text}' must be positive")));
    Ok(d)
}

/// Runs a raw OData path under the Graph root.
pub(crate) async fn exec(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let Command::Exec { path, all, out } = &cli.command else {
        return Ok(());
    };
    let q = secgraph::query::RenderedQuery::raw(path, *all);
    if let Some(targets) = fan_out_targets(env, cli)? {
        let (run, out) = across(env, cli, targets, None, out);
        return output::run_to_output(run, &q, &out, &[]).await;
    }
    let provider = env.connect(cli).await?;
    output::run_to_output(output::Run::Single(&provider), &q, out, &[]).await
}

/// A start in the future is almost always a missing minus sign (`7d` for `-7d`): say so, and how to write it.
fn warn_future_start(values: &[(String, String)]) {
    let now = chrono::Utc::now();
    for (name, value) in values.iter().filter(|(k, _)| k == "start") {
        let v = value.trim();
        let offset = v.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '+') && !v.contains('-') && !v.contains(':');
        if let Ok(t) = secgraph::query::parse_time(v, now)
            && t > now + chrono::Duration::minutes(1)
            && offset
        {
            eprintln!(
                "warning: {name} '{v}' is in the future ({}); a time in the past is written with a minus: -{}",
                t.format("%Y-%m-%d %H:%M UTC"),
                v.trim_start_matches('+')
            );
        }
    }
}
