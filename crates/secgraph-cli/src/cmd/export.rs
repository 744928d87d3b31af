//! `secgraph export`: the incremental Parquet dataset (see `secgraph::export`), once or `--follow`, sharded, and
//! `--compact` for the latest version of each id.

use super::Env;
use crate::cli::{Cli, ExportArgs};
use crate::output::Partial;
use secgraph::export::{ExportOptions, MissingCheckpoint, Root, Stream, StreamReport, compact};
use std::sync::Arc;

pub(crate) async fn run(env: &Env, cli: &Cli, args: &ExportArgs) -> anyhow::Result<()> {
    let options = args
        .storage_options
        .iter()
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| {
                    crate::UsageError(format!(
                        "--storage-option '{}': expected KEY=VALUE",
                        o.split('=').next().unwrap_or("")
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let root = Root::parse(&args.root, &options)?;
    if args.compact {
        let counts = compact(&root).await?;
        for (stream, rows) in counts {
            eprintln!("{stream}: {rows} current item(s) written to {}", root.show("current"));
        }
        return Ok(());
    }
    let streams: Vec<Stream> = args
        .stream
        .iter()
        .map(|s| {
            Stream::parse(s).ok_or_else(|| {
                crate::UsageError(format!(
                    "--stream '{s}': one of alerts_v2, incidents, auditlog, or hunting:Family.name (an advanced-hunting query whose rows have a Timestamp)"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let shard = match &args.shard {
        None => (0, 1),
        Some(s) => {
            let bad = || crate::UsageError(format!("--shard '{s}': expected K/N with 0 <= K < N, e.g. 0/4"));
            let (k, n) = s.split_once('/').ok_or_else(bad)?;
            let (k, n): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
            anyhow::ensure!(n > 0 && k < n, bad());
            (k, n)
        }
    };
    let mut opts = ExportOptions::with_root(root);
    opts.page_size = args.page_size as usize;
    opts.overlap = super::query::parse_duration(&args.overlap)?;
    opts.shard = shard;
    opts.since = args
        .since
        .as_deref()
        .map(|t| secgraph::query::parse_time(t, chrono::Utc::now()))
        .transpose()?;
    opts.missing_checkpoint = if args.rebuild_checkpoint {
        MissingCheckpoint::Rebuild
    } else if args.force {
        MissingCheckpoint::Force
    } else {
        MissingCheckpoint::Refuse
    };
    opts.root.prepare().await?;
    let follow = args.follow.as_deref().map(super::query::parse_duration).transpose()?;
    let targets = super::query::fan_out_targets(env, cli)?
        .unwrap_or_else(|| vec![secgraph::fanout::Target::instance(cli.instance.as_deref().unwrap_or("Default"))]);

    let stop = stop_signal();
    let mut all: Vec<StreamReport> = Vec::new();
    let mut rounds = 0usize;
    loop {
        let run = secgraph::export::export_instances(env.settings.as_ref(), &targets, &streams, &opts, &env.options);
        // A signal abandons the run in hand at once (its lock is released with the process; what it had not
        // committed is rolled back by the next run), so nothing needs a second signal.
        let reports = tokio::select! {
            r = run => r,
            _ = stop.notified() => {
                eprintln!("stopped: the run in hand is abandoned; the next run rolls back what it had not committed");
                // A --follow daemon told to stop has done its job (exit 0); a one-off run was cancelled (130).
                if follow.is_some() {
                    break;
                }
                anyhow::bail!(crate::Cancelled);
            }
        };
        rounds += 1;
        if follow.is_some() {
            print_round(rounds, &reports);
        } else {
            print_reports(&reports);
        }
        all.extend(reports);
        if let Some(path) = &args.summary {
            let text = serde_json::to_vec_pretty(&all).map_err(|e| secgraph::Error::output_from("", e))?;
            std::fs::write(path, text).map_err(|e| secgraph::Error::output_from(format!("cannot write {}", path.display()), e))?;
        }
        let Some(every) = follow else { break };
        let wait = every.to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.notified() => {
                eprintln!("stopped between rounds");
                break;
            }
        }
    }
    let failed: Vec<String> = all
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{} {}: {e}", r.instance, r.stream)))
        .collect();
    if !failed.is_empty() {
        if failed.len() < all.len() {
            anyhow::bail!(Partial(format!(
                "partial export: {} of {} stream run(s) failed and will be retried by the next run",
                failed.len(),
                all.len()
            )));
        }
        anyhow::bail!(secgraph::Error::output(format!("every export run failed: {}", failed.join("; "))));
    }
    Ok(())
}

/// Ctrl-C or SIGTERM, as a notification the run selects on.
fn stop_signal() -> Arc<tokio::sync::Notify> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let notify = stop.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        #[cfg(unix)]
        let got = match term.as_mut() {
            Some(t) => tokio::select! { _ = tokio::signal::ctrl_c() => true, _ = t.recv() => true },
            None => tokio::signal::ctrl_c().await.is_ok(),
        };
        #[cfg(not(unix))]
        let got = tokio::signal::ctrl_c().await.is_ok();
        if got {
            // notify_one keeps the permit if nobody waits at this instant.
            notify.notify_one();
        }
    });
    stop
}

/// A `--follow` round: one line, with a time, when nothing happened; each (tenant, stream) otherwise.
fn print_round(round: usize, reports: &[StreamReport]) {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let quiet = reports.iter().all(|r| r.error.is_none() && r.new_versions == 0 && r.rejected == 0);
    if quiet {
        eprintln!("{now} round {round}: nothing new in {} (tenant, stream) run(s)", reports.len());
        return;
    }
    eprintln!("{now} round {round}:");
    print_reports(reports);
}

fn print_reports(reports: &[StreamReport]) {
    for r in reports {
        match &r.error {
            None => eprintln!(
                "{} {} ({}): {} new version(s), {} already stored{}, {} page(s){}; watermark {} -> {}",
                r.instance,
                r.stream,
                r.tenant_id,
                r.new_versions,
                r.already_stored,
                match &r.rejected_file {
                    Some(f) => format!(", {} rejected (see {f})", r.rejected),
                    None if r.rejected > 0 => format!(", {} rejected", r.rejected),
                    None => String::new(),
                },
                r.pages,
                match (r.shrinks, r.splits) {
                    (0, 0) => String::new(),
                    (_, 0) => format!(", page size shrunk to {} after HTTP 500/504", r.page_size),
                    (_, n) => format!(
                        ", time window split {n} time(s) (and pages shrunk {} time(s)) after HTTP 500/504",
                        r.shrinks
                    ),
                },
                r.watermark_before.as_deref().unwrap_or("(none)"),
                r.watermark_after.as_deref().unwrap_or("(none)"),
            ),
            Some(e) => eprintln!("{} {}: FAILED (nothing committed; the next run retries): {e}", r.instance, r.stream),
        }
    }
}
