//! Many tenants into one dataset: connect each target (an instance, or a tenant of a tenants file), export each
//! tenant once (by directory id), keep this shard's tenants, a few tenants at once. The CLI and the Python package
//! both call [`export_instances`].

use super::{ExportOptions, Stream, StreamReport, export_stream, shard_of, tenant_key};
use crate::config::Settings;
use futures_util::StreamExt;

/// Tenants exported at once.
pub const TENANTS_AT_ONCE: usize = 4;

/// Every instance the settings configure: `Default` (the unnamed `MicrosoftGraph` section) if present, then each
/// `MicrosoftGraph-<name>`.
pub fn all_instances(settings: &Settings) -> Vec<String> {
    let mut v = Vec::new();
    if settings.has_default_instance() {
        v.push("Default".to_string());
    }
    v.extend(settings.instances());
    v
}

/// Exports `streams` of each target ([`crate::fanout::targets`]) into `opts.root`, [`TENANTS_AT_ONCE`] tenants at
/// once. Targets sign in in the order given, a few ahead of the exports (not all before the first): a sign-in that
/// fails — a tenant that never consented to the app, one that needs a person nobody can ask — is that target's
/// reports, one per stream, and the others go on. Two targets of one tenant export it once (the first in the order
/// given); tenants of other shards are left out; a tenant's streams run in turn. A (tenant, stream) another process
/// is writing fails with [`crate::Error::Locked`] in its report.
pub async fn export_instances(
    settings: Option<&Settings>,
    targets: &[crate::fanout::Target],
    streams: &[Stream],
    opts: &ExportOptions,
    connect: &crate::ConnectOptions,
) -> Vec<StreamReport> {
    enum Job {
        Failed(Vec<StreamReport>),
        Export(String, Box<crate::QueryProvider>),
        Skip,
    }
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    let seen = &seen;
    // Owned names throughout: closures over borrowed arguments make the future not `Send` for every lifetime,
    // which a spawned task (the Python binding's) needs.
    let done: Vec<Vec<StreamReport>> = futures_util::stream::iter(targets.iter().cloned().map(|target| async move {
        let p = crate::QueryProvider::connect(settings, &target.connect_options(connect)).await;
        (target.label().to_string(), p)
    }))
    // In order, so "the first instance of a tenant" is the first in the list, whatever signs in faster.
    .buffered(TENANTS_AT_ONCE)
    .map(|(instance, p)| match p {
        Err(e) => {
            tracing::warn!(instance, error = %e, "cannot sign in; this instance is not exported");
            Job::Failed(
                streams
                    .iter()
                    .map(|s| {
                        let mut r = StreamReport::failed(&instance, s);
                        r.error = Some(e.to_string());
                        r
                    })
                    .collect(),
            )
        }
        Ok(p) => {
            let tenant = tenant_key(p.info());
            if shard_of(&tenant, opts.shard.1) != opts.shard.0 {
                tracing::debug!(instance, tenant, "another shard's tenant");
                Job::Skip
            } else if !seen.lock().map(|mut t| t.insert(tenant.clone())).unwrap_or(true) {
                tracing::info!(instance, tenant, "tenant already exported by an earlier instance");
                Job::Skip
            } else {
                Job::Export(instance, Box::new(p))
            }
        }
    })
    .map(|job| async move {
        match job {
            Job::Failed(reports) => reports,
            Job::Skip => Vec::new(),
            Job::Export(instance, p) => {
                let mut out = Vec::new();
                for s in streams {
                    out.push(export_stream(&p, &instance, s.clone(), opts).await);
                }
                out
            }
        }
    })
    .buffer_unordered(TENANTS_AT_ONCE)
    .collect()
    .await;
    done.into_iter().flatten().collect()
}
