//! `secgraph emulator`: the local emulator in the foreground, optionally writing settings that point at it.

use crate::UsageError;
use crate::cli::Command;
use anyhow::Context;
use std::path::PathBuf;

/// Graph's documented rate for alerts and incidents, per app and tenant: what `secgraph emulator` enforces unless
/// `--requests-per-minute` says otherwise.
const GRAPH_REQUESTS_PER_MINUTE: u32 = 150;

/// Runs `secgraph emulator …` until Ctrl-C. Two global flags mean this to it: `--requests-per-minute`, the rate it
/// enforces per app and tenant (default Graph's 150); `--tenants N`, the MSSP customer tenants to add (each with its
/// own data; the multi-tenant app consented in most, not in every twentieth from the tenth on, without roles in the
/// fifth; `--write-config` then writes their tenants file and an instance MicrosoftGraph-MSSP reading them all).
pub(crate) async fn run(command: &Command, requests_per_minute: Option<u32>, tenants: Option<&str>) -> anyhow::Result<()> {
    let tenants = match tenants {
        None => 0,
        Some(t) => t.trim().parse::<usize>().ok().filter(|n| *n <= 100_000).ok_or_else(|| {
            UsageError(format!(
                "emulator --tenants '{t}': expected the number of customer tenants to add (0 to 100000)"
            ))
        })?,
    };
    let Command::Emulator {
        bind,
        alerts,
        seed,
        write_config,
        page_size,
        token_lifetime,
        auto_approve,
        directory,
        faults,
        churn,
        as_of,
        hunting_per_minute,
        next_links,
        max_skip,
        max_top,
        ingestion_lag,
        alerts_per_tenant,
    } = command
    else {
        return Err(UsageError("not the emulator command".into()).into());
    };
    let faults = match faults {
        None => None,
        Some(spec) => Some(secgraph_emulator::faults::FaultSpec::parse(spec).map_err(UsageError)?),
    };
    let directory = match directory {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let base = path.parent().unwrap_or(std::path::Path::new("."));
            let d = secgraph_emulator::directory::Directory::from_yaml(&text, base)
                .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            let v = secgraph_emulator::keyvault::vaults_from_yaml(&text, &d).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
            Some((d, v))
        }
    };
    let config = secgraph_emulator::EmulatorConfig {
        bind: *bind,
        alerts: *alerts,
        seed: *seed,
        token_lifetime: token_lifetime.map(std::time::Duration::from_secs),
        page_size: *page_size,
        state_dir: write_config.as_ref().map(|p| state_dir_for(p)),
        vaults: directory.as_ref().and_then(|(_, v)| v.clone()),
        directory: directory.map(|(d, _)| d),
        auto_approve: auto_approve.clone(),
        faults,
        churn: churn
            .as_deref()
            .map(secgraph_emulator::data::ChurnSpec::parse)
            .transpose()
            .map_err(UsageError)?,
        as_of: as_of
            .as_deref()
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .map_err(|e| UsageError(format!("--as-of '{t}': {e} (expected e.g. 2026-06-01T00:00:00Z)")))
            })
            .transpose()?,
        hunting_quota: secgraph_emulator::hunting::quota::HuntingQuota {
            calls_per_minute: *hunting_per_minute,
            ..Default::default()
        },
        next_links: *next_links,
        max_skip: *max_skip,
        max_top: *max_top,
        ingestion_lag: ingestion_lag
            .as_deref()
            .map(|t| {
                secgraph_emulator::parse_duration(t)
                    .ok_or_else(|| UsageError(format!("--ingestion-lag '{t}': expected a duration such as 30s, 15m or 1h")))
            })
            .transpose()?,
        tenants,
        alerts_per_tenant: *alerts_per_tenant,
        requests_per_minute: Some(requests_per_minute.unwrap_or(GRAPH_REQUESTS_PER_MINUTE)),
        ..Default::default()
    };
    run_emulator(config, write_config.as_deref()).await
}

/// The emulator's state (its CA certificate) goes beside the written config, in `<config stem>-emulator/`
/// (`<config stem>-state/` when the stem already says emulator: `emulator.yaml` → `emulator-state/`).
fn state_dir_for(config: &std::path::Path) -> PathBuf {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "emulator".into());
    config
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
        .join(if stem.to_ascii_lowercase().ends_with("emulator") {
            format!("{stem}-state")
        } else {
            format!("{stem}-emulator")
        })
}

async fn run_emulator(config: secgraph_emulator::EmulatorConfig, write_config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (alerts, tenants, limit) = (config.alerts, config.tenants, config.requests_per_minute);
    let mut config = config;
    if let Some(d) = &config.state_dir {
        // Absolute, so the written settings work from any directory.
        config.state_dir = Some(std::path::absolute(d).unwrap_or_else(|_| d.clone()));
    }
    let emu = secgraph_emulator::Emulator::start(config).await.context("starting the emulator")?;
    println!("secgraph emulator listening on {}", emu.base_url());
    println!("  CA certificate: {}", emu.ca_path().display());
    println!("  {alerts} alerts seeded over the last 30 days");
    if tenants > 0 {
        println!("  {tenants} customer tenants of the MSSP app (their own data, seeded on first use)");
    }
    if let Some(n) = limit {
        println!("  {n} requests a minute per app and tenant for alerts and incidents (429 beyond)");
    }
    if let Some(path) = write_config {
        std::fs::write(path, emu.msticpy_config()).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "  settings written to {} — try: MSTICPYCONFIG={} secgraph query Alerts.list",
            path.display(),
            path.display()
        );
    }
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    emu.shutdown();
    println!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_state_folder_is_named_once() {
        let p = |s: &str| super::state_dir_for(std::path::Path::new(s)).display().to_string();
        assert_eq!(p("/x/emulator.yaml"), "/x/emulator-state");
        assert_eq!(p("/x/msticpyconfig.yaml"), "/x/msticpyconfig-emulator");
    }
}
