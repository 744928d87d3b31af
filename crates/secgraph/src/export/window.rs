//! Versions read by half-open windows of `lastUpdateDateTime`, for engines that plan their own batches — Spark's
//! structured streaming above all — with the export's rules: the same requests, the same page shrinking and window
//! splitting when Graph struggles, the same version key (`id` + `lastUpdateDateTime`) and the same overlap behind the
//! service's clock.
//!
//! A reader keeps, per tenant, a watermark `W` (its offset) and asks for the next window `[W, E)`, where `E` is
//! [`window_end`]: the service's time less the overlap, never earlier than `W`. Windows meet without overlapping, so
//! a version belongs to exactly one; a version at `E`'s own instant is read by the next window, so no list of ids at
//! the watermark is needed. Reading `[W, E)` again (a restarted batch) asks the same request and gives the same
//! versions, except those the service has since replaced by a newer one — which the next window then holds.
//!
//! Unlike [`export_stream`](super::export_stream), a window reader stores nothing: it keeps no checkpoint of versions
//! to recognise re-reads, so the overlap does not grow by itself when versions arrive later than it; a reader that
//! sees late data sets a longer overlap.

use super::{Reading, Stream, StreamReport, graph_time, key_time, parse_time, stream_schema, tenant_key};
use crate::batches::BatchBuilder;
use crate::batches::schema::Kind;
use crate::error::Result;
use crate::output::{BatchCollector, RowSink};
use crate::provider::QueryProvider;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// The end of the next window after `before`: the service's time less `overlap` (items reach Graph minutes after
/// they change), never before `before` (an empty window then). The export's watermark rule
/// ([`next_watermark`](super::next_watermark)) with the window's end as both the newest time and the cap.
pub fn window_end(before: Option<DateTime<Utc>>, service_now: DateTime<Utc>, overlap: chrono::Duration) -> DateTime<Utc> {
    let cap = service_now - overlap;
    let end = super::next_watermark(before, Some(cap), cap).unwrap_or(cap);
    // Kept to the microsecond, as version keys are, so a window's end is one instant in every spelling.
    DateTime::from_timestamp_micros(end.timestamp_micros()).unwrap_or(end)
}

/// The columns a window's batches start with: `TenantId`, `Instance`, then the stream's entity columns (the export's
/// Parquet columns).
pub fn columns(stream: &Stream) -> Vec<(&'static str, Kind)> {
    let mut c = vec![("TenantId", Kind::Text), ("Instance", Kind::Text)];
    c.extend_from_slice(stream_schema(stream));
    c
}

/// What one window read.
#[derive(Debug)]
#[non_exhaustive]
pub struct WindowRead {
    /// The batches' schema: [`columns`] and any further columns the items brought.
    pub schema: SchemaRef,
    /// The versions, each once, tagged with `TenantId` (the directory id) and `Instance`.
    pub batches: Vec<RecordBatch>,
    /// Pages, shrinks, splits, versions (`new_versions`) and items that could not be versions (`rejected`).
    pub report: StreamReport,
}

/// Reads the versions of `stream` whose `lastUpdateDateTime` is in `[from, to)` (`from` open: from the first) from
/// one tenant, every version once. Fails — with nothing returned — when a page fails past the client's retries and
/// the export's shrinking and splitting.
pub async fn read_window(
    provider: &QueryProvider,
    instance: &str,
    stream: &Stream,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    page_size: usize,
) -> Result<WindowRead> {
    let tenant = tenant_key(provider.info());
    let mut report = StreamReport {
        tenant_id: tenant.clone(),
        page_size,
        ..StreamReport::failed(instance, stream)
    };
    let reading = Reading {
        provider,
        stream,
        tenant: &tenant,
        page_size,
        started: to,
    };
    let mut sink = BatchCollector::new(BatchBuilder::new(&columns(stream)));
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let window = (from.map(graph_time), Some(graph_time(to)));
    reading
        .pages(window, &mut report, &mut |page, report| {
            let mut rows = Vec::with_capacity(page.rows.len());
            for row in &page.rows {
                let key = match stream.version(row) {
                    Ok((id, last)) => parse_time(&last).map(|t| (id.into_owned(), key_time(t))),
                    Err(_) => None,
                };
                let Some(key) = key else {
                    report.rejected += 1;
                    tracing::warn!(stream = stream.name(), tenant = %tenant, "an item cannot be read as a version (no id or time); skipped");
                    continue;
                };
                if seen.insert(key) {
                    rows.push(crate::fanout::tag_row(row, &tenant, instance));
                } else {
                    report.already_stored += 1;
                }
            }
            report.new_versions += rows.len();
            if !page.schema.is_empty() {
                sink.columns(&crate::fanout::tagged_columns(&page.schema));
            }
            // A collector takes every page.
            let _ = sink.page(rows)?;
            Ok(())
        })
        .await?;
    let (schema, batches) = sink.into_batches()?;
    Ok(WindowRead { schema, batches, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    #[test]
    fn windows_end_the_overlap_behind_the_service_and_never_go_back() {
        let m = chrono::Duration::minutes(15);
        assert_eq!(window_end(None, t("2026-12-07T12:00:00Z"), m), t("2026-12-07T11:45:00Z"));
        assert_eq!(
            window_end(Some(t("2026-12-07T11:00:00Z")), t("2026-12-07T12:00:00Z"), m),
            t("2026-12-07T11:45:00Z")
        );
        // The service's clock behind the watermark (another region, a restart): the window is empty.
        assert_eq!(
            window_end(Some(t("2026-12-07T11:50:00Z")), t("2026-12-07T12:00:00Z"), m),
            t("2026-12-07T11:50:00Z")
        );
        // Seven digits of the service become six.
        assert_eq!(
            graph_time(window_end(None, t("2026-12-07T12:00:00.1234567Z"), chrono::Duration::zero())),
            "2026-12-07T12:00:00.1234560Z"
        );
    }

    #[test]
    fn a_window_has_the_tenant_and_instance_before_the_entity_columns() {
        let c = columns(&Stream::AlertsV2);
        assert_eq!(&c[..3].iter().map(|(n, _)| *n).collect::<Vec<_>>(), &["TenantId", "Instance", "id"]);
        assert!(c.contains(&("lastUpdateDateTime", Kind::Time)));
    }
}
