//! `secgraph export`: the incremental Parquet dataset (see `secgraph::export`), once or `--follow`, sharded, and
//! `--compact` for the latest version of each id.

use super::Env;
use crate::cli::{Cli, ExportArgs};
use crate::output::Partial;
use secgraph::export::{ExportOptions, MissingCheckpoint, Root, Stream, StreamReport, compact};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
                    "--stream '{s}': one of alerts_v2, incidents, or hunting:Family.name (an advanced-hunting query whose rows have a Timestamp)"
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
    let instances = super::query::fan_out_instances(env, cli, cli.all_instances)?
        .unwrap_or_else(|| vec![cli.instance.clone().unwrap_or_else(|| "Default".into())]);

    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone());
    let mut all: Vec<StreamReport> = Vec::new();
    loop {
        let reports = secgraph::export::export_instances(env.settings.as_ref(), &instances, &streams, &opts, &env.options).await;
        print_reports(&reports);
        all.extend(reports);
        if let Some(path) = &args.summary {
            let text = serde_json::to_vec_pretty(&all).map_err(|e| secgraph::Error::output_from("", e))?;
            std::fs::write(path, text).map_err(|e| secgraph::Error::output_from(format!("cannot write {}", path.display()), e))?;
        }
        let Some(every) = follow else { break };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let wait = every.to_std().unwrap_or_default();
        let stopped = stop.clone();
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline && !stopped.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        if stop.load(Ordering::SeqCst) {
            break;
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

/// The first Ctrl-C or SIGTERM asks the export to stop after the tenant in hand; a second one stops at once (the
/// dataset stays consistent either way: an interrupted run is rolled back by the next).
fn watch_signals(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for n in 0.. {
            #[cfg(unix)]
            let got = match term.as_mut() {
                Some(t) => tokio::select! { _ = tokio::signal::ctrl_c() => true, _ = t.recv() => true },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got {
                return;
            }
            if n == 0 {
                eprintln!("stopping after the tenant in hand (again to stop at once)");
                stop.store(true, Ordering::SeqCst);
            } else {
                eprintln!("stopping now; the next run rolls back what this one had not committed");
                std::process::exit(130);
            }
        }
    });
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
