//! Many tenants into one dataset: connect each instance, export each tenant once (by directory id), keep this
//! shard's tenants, a few tenants at once. The CLI and the Python package both call [`export_instances`].

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

/// Exports `streams` of each instance into `opts.root`: a connection that fails is that instance's reports (one
/// per stream, with the error); two instances of one tenant export it once (the first); tenants of other shards
/// are left out; [`TENANTS_AT_ONCE`] tenants run at once, each stream of a tenant in turn. A (tenant, stream)
/// another process is writing fails with [`crate::Error::Locked`] in its report; the others go on.
pub async fn export_instances(
    settings: Option<&Settings>,
    instances: &[String],
    streams: &[Stream],
    opts: &ExportOptions,
    connect: &crate::ConnectOptions,
) -> Vec<StreamReport> {
    let providers = crate::fanout::connect_instances(settings, instances, connect).await;
    let mut reports = Vec::new();
    let mut work = Vec::new();
    let mut tenants = std::collections::HashSet::new();
    for (instance, p) in providers {
        match p {
            Ok(p) if !tenants.insert(tenant_key(p.info())) => {
                tracing::info!(instance, tenant = %tenant_key(p.info()), "tenant already exported by an earlier instance");
            }
            Ok(p) if shard_of(&tenant_key(p.info()), opts.shard.1) == opts.shard.0 => work.push((instance, p)),
            Ok(p) => tracing::debug!(instance, tenant = %tenant_key(p.info()), "another shard's tenant"),
            Err(e) => {
                for s in streams {
                    let mut r = StreamReport::failed(&instance, s);
                    r.error = Some(e.to_string());
                    reports.push(r);
                }
            }
        }
    }
    let done: Vec<Vec<StreamReport>> = futures_util::stream::iter(work.into_iter().map(|(instance, p)| async move {
        let mut out = Vec::new();
        for s in streams {
            out.push(export_stream(&p, &instance, s.clone(), opts).await);
        }
        out
    }))
    .buffer_unordered(TENANTS_AT_ONCE)
    .collect()
    .await;
    reports.extend(done.into_iter().flatten());
    reports
}
