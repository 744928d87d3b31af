//! `compact`: the latest version of each id, per (stream, tenant), in `ROOT/current/stream=…/tenant=…/part-0.parquet`.
//!
//! Streaming, in two passes over a tenant's files, one file in memory at a time: pass 1 reads only the `id` and
//! `lastUpdateDateTime` columns and keeps, per id, where its newest version is (about 100 bytes an id); pass 2 reads
//! each file again, keeps those rows and writes them straight out under the widest schema. Memory is bounded by the
//! tenant's number of distinct ids and its largest file, not by its history.
//!
//! Complete or nothing: a folder or file that cannot be read is an error naming it; files a committed run has not yet
//! renamed from `.pending` are read where they are.

use super::checkpoint::{self, data_dir};
use super::{Root, Stream};
use crate::error::{BoxError, Error, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, BooleanArray, RecordBatch};
use chrono::{DateTime, Utc};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Encoded bytes a row group may hold in memory before it is written.
const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Writes the latest version of every id, per (stream, tenant), to `ROOT/current/stream=…/tenant=…/part-0.parquet`
/// (replaced whole). Returns the rows written per stream.
pub async fn compact(root: &Root) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for stream in Stream::ALL {
        let sdir = format!("stream={}", stream.name());
        let mut total = 0;
        for (tenant, files) in tenants_files(root, &stream, &sdir).await? {
            total += compact_tenant(root, &sdir, &tenant, &files).await?;
        }
        out.insert(stream.name().to_string(), total);
    }
    Ok(out)
}

/// A stream's data files by tenant: `….parquet`, and `….parquet.pending` files that a checkpoint lists as committed.
async fn tenants_files(root: &Root, stream: &Stream, sdir: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rel in root.list(sdir).await? {
        let parts: Vec<&str> = rel.split('/').collect();
        if let [_, t, _, name] = parts.as_slice()
            && let Some(tenant) = t.strip_prefix("tenant=")
            && name.ends_with(".parquet")
        {
            by_tenant.entry(tenant.to_string()).or_default().push(rel.clone());
        }
    }
    let tenants: Vec<String> = by_tenant.keys().cloned().collect();
    for tenant in tenants {
        let Some(cp) = checkpoint::load(root, stream, &tenant).await? else {
            continue;
        };
        let files = by_tenant.entry(tenant.clone()).or_default();
        for rel in cp.pending {
            if !files.contains(&rel) && root.exists(&format!("{rel}.pending")).await? {
                files.push(format!("{rel}.pending"));
            }
        }
    }
    // A tenant whose every file is still pending has no `.parquet` yet, but its checkpoint says they are committed.
    for rel in root.list(&format!("_checkpoints/{sdir}")).await? {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        if let Some(tenant) = name.strip_prefix("tenant=").and_then(|n| n.strip_suffix(".json"))
            && !by_tenant.contains_key(tenant)
            && let Some(cp) = checkpoint::load(root, stream, tenant).await?
        {
            let dir = data_dir(stream, tenant);
            let mut files = Vec::new();
            for rel in cp.pending {
                if rel.starts_with(&dir) && root.exists(&format!("{rel}.pending")).await? {
                    files.push(format!("{rel}.pending"));
                }
            }
            if !files.is_empty() {
                by_tenant.insert(tenant.to_string(), files);
            }
        }
    }
    Ok(by_tenant)
}

fn parquet_error(root: &Root, rel: &str) -> impl Fn(BoxError) -> Error {
    let at = root.show(rel);
    move |e| Error::output_boxed(format!("cannot read {at}"), e)
}

async fn file_bytes(root: &Root, rel: &str) -> Result<bytes::Bytes> {
    root.get(rel)
        .await?
        .ok_or_else(|| Error::output(format!("{} disappeared while compacting", root.show(rel))))
}

/// Every (id, lastUpdateDateTime) in a data file, reading only those two columns.
pub(crate) async fn read_versions(root: &Root, rel: &str) -> Result<Vec<(String, DateTime<Utc>)>> {
    let bytes = file_bytes(root, rel).await?;
    let bad = parquet_error(root, rel);
    let mut out = Vec::new();
    for_each_key(bytes, &bad, |id, t| out.push((id.to_string(), t)))?;
    Ok(out)
}

/// Calls `f(id, time)` for every row of a data file (rows without an id skipped; a missing time is the oldest).
fn for_each_key(
    bytes: bytes::Bytes,
    bad: &dyn Fn(BoxError) -> Error,
    mut f: impl FnMut(&str, DateTime<Utc>),
) -> Result<arrow_schema::Schema> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(e.into()))?;
    let schema = builder.schema().as_ref().clone();
    let wanted: Vec<usize> = ["id", "lastUpdateDateTime"]
        .iter()
        .filter_map(|c| builder.parquet_schema().columns().iter().position(|d| d.name() == *c))
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), wanted);
    let reader = builder.with_projection(mask).build().map_err(|e| bad(e.into()))?;
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.into()))?;
        let Some(ids) = batch.column_by_name("id").and_then(|c| c.as_string_opt::<i32>()) else {
            continue;
        };
        let times = batch.column_by_name("lastUpdateDateTime");
        for row in 0..batch.num_rows() {
            if ids.is_null(row) {
                continue;
            }
            let t = times.and_then(|c| time_value(c.as_ref(), row)).unwrap_or(DateTime::<Utc>::MIN_UTC);
            f(ids.value(row), t);
        }
    }
    Ok(schema)
}

/// Compacts one tenant's files; returns the rows written.
async fn compact_tenant(root: &Root, sdir: &str, tenant: &str, files: &[String]) -> Result<usize> {
    // Pass 1: the newest version of each id, and where it is (file, row).
    let mut best: HashMap<String, (DateTime<Utc>, u32, u32)> = HashMap::new();
    let mut schemas = Vec::with_capacity(files.len());
    for (fi, f) in files.iter().enumerate() {
        let bad = parquet_error(root, f);
        let mut row = 0u32;
        let schema = for_each_key(file_bytes(root, f).await?, &bad, |id, t| {
            match best.get_mut(id) {
                Some(e) if t > e.0 => *e = (t, fi as u32, row),
                Some(_) => {}
                None => {
                    best.insert(id.to_string(), (t, fi as u32, row));
                }
            }
            row += 1;
        })?;
        schemas.push(schema);
    }
    let mut keep: HashMap<u32, Vec<u32>> = HashMap::new();
    for (_, fi, row) in best.into_values() {
        keep.entry(fi).or_default().push(row);
    }
    let merged = arrow_schema::Schema::try_merge(schemas).map_err(|_| {
        Error::output(format!(
            "the files of {} disagree on column types",
            root.show(&format!("{sdir}/tenant={tenant}"))
        ))
    })?;
    let merged = std::sync::Arc::new(merged);

    // Pass 2: those rows, file by file, straight into the output.
    let rel = format!("current/{sdir}/tenant={tenant}/part-0.parquet");
    let staging = root.staging()?;
    let file = root.write_path(&rel, staging.as_ref().map(|d| d.path()));
    let dest = file.parent().map(PathBuf::from).unwrap_or_default();
    let io = |what: &str, e: BoxError| Error::output_boxed(format!("{what} {}", dest.display()), e);
    std::fs::create_dir_all(&dest).map_err(|e| io("cannot create", e.into()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".secgraph-")
        .suffix(".partial")
        .tempfile_in(&dest)
        .map_err(|e| io("cannot write in", e.into()))?;
    let mut written = 0;
    {
        let mut w =
            parquet::arrow::ArrowWriter::try_new(tmp.as_file_mut(), merged.clone(), None).map_err(|e| io("compacting into", e.into()))?;
        for (fi, f) in files.iter().enumerate() {
            let Some(rows) = keep.get_mut(&(fi as u32)) else { continue };
            rows.sort_unstable();
            let bad = parquet_error(root, f);
            let reader = ParquetRecordBatchReaderBuilder::try_new(file_bytes(root, f).await?)
                .and_then(|b| b.build())
                .map_err(|e| bad(e.into()))?;
            let mut offset = 0u32;
            for batch in reader {
                let batch: RecordBatch = batch.map_err(|e| bad(e.into()))?;
                let n = batch.num_rows() as u32;
                let mask: BooleanArray = (0..n).map(|r| Some(rows.binary_search(&(offset + r)).is_ok())).collect();
                offset += n;
                let picked = arrow_select::filter::filter_record_batch(&batch, &mask).map_err(|e| bad(e.into()))?;
                if picked.num_rows() > 0 {
                    written += picked.num_rows();
                    w.write(&crate::batches::widen(&picked, &merged)?)
                        .map_err(|e| io("compacting into", e.into()))?;
                    // Row groups are written at 32 MiB, so the output's size never shows in memory.
                    if w.in_progress_size() > ROW_GROUP_BYTES {
                        w.flush().map_err(|e| io("compacting into", e.into()))?;
                    }
                }
            }
        }
        w.close().map_err(|e| io("compacting into", e.into()))?;
    }
    tmp.persist(&file)
        .map_err(|e| Error::output(format!("cannot replace {}: {}", file.display(), e.error)))?;
    root.upload(&file, &rel).await?;
    Ok(written)
}

fn time_value(c: &dyn Array, row: usize) -> Option<DateTime<Utc>> {
    if c.is_null(row) {
        return None;
    }
    match c.data_type() {
        arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
            DateTime::from_timestamp_micros(c.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        _ => None,
    }
}
