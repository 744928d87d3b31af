//! `secgraph alert|incident|legacy-alert update`: write-back, or with `--dry-run` the requests it would make.

use super::Env;
use crate::UsageError;
use crate::cli::{Cli, Command, UpdateCmd};
use crate::output;
use secgraph::graph::{Target, Update};

/// Whether the command is an update with `--dry-run` (needs no connection).
pub(crate) fn is_dry_run(c: &Command) -> bool {
    matches!(
        c,
        Command::Alert {
            action: UpdateCmd::Update { dry_run: true, .. },
        } | Command::Incident {
            action: UpdateCmd::Update { dry_run: true, .. },
        } | Command::LegacyAlert {
            action: UpdateCmd::Update { dry_run: true, .. },
        }
    )
}

/// Prints the requests an update would make.
pub(crate) fn dry_run(c: &Command) -> anyhow::Result<()> {
    let (target, id, update, _) = update_args(c)?.ok_or_else(|| UsageError("not an update".into()))?;
    for line in secgraph::describe_plan(target, id, &update)? {
        println!("{line}");
    }
    Ok(())
}

/// Applies the update and prints the item as the service returns it.
pub(crate) async fn run(env: &Env, cli: &Cli) -> anyhow::Result<()> {
    let (target, id, update, out) = update_args(&cli.command)?.ok_or_else(|| UsageError("not an update".into()))?;
    let provider = env.connect(cli).await?;
    let item = provider.update(target, id, &update).await?;
    output::print_item(&item, &target.path(id), out)
}

/// The target, id, checked update and output options of an update command (`None` for other commands).
fn update_args(c: &Command) -> anyhow::Result<Option<(Target, &str, Update, &output::OutputArgs)>> {
    let (target, action) = match c {
        Command::Alert { action } => (Target::Alert, action),
        Command::Incident { action } => (Target::Incident, action),
        Command::LegacyAlert { action } => (Target::LegacyAlert, action),
        _ => return Ok(None),
    };
    let UpdateCmd::Update {
        id,
        status,
        classification,
        determination,
        assigned_to,
        tags,
        comment,
        out,
        ..
    } = action;
    let u = Update::from_text(
        target,
        status.as_deref(),
        classification.as_deref(),
        determination.as_deref(),
        assigned_to.as_deref(),
        comment.as_deref(),
        tags,
    )?;
    Ok(Some((target, id.as_str(), u, out)))
}
