//! Typed outputs: [`BatchCollector`] (Arrow batches in memory) and [`ArrowFileSink`] (Parquet with zstd, or an
//! Arrow IPC stream), both fed by a [`BatchBuilder`] page by page.
//!
//! Files are written under a temporary name in the destination's folder and renamed only when the run succeeds: a
//! failed run leaves no file under the final name. Memory stays flat: each page becomes a batch that is written
//! (Parquet row groups are flushed every 16k rows or 32 MiB). When a later page brings a column the file does not
//! have, the part written so far is closed and a new one begun with the wider schema; `finish` then rewrites the
//! parts, padded with nulls, into one file — once, streaming.

use super::RowSink;
use crate::batches::{BatchBuilder, widen};
use crate::error::{Error, Result};
use crate::row::Row;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Collects a query's rows as typed Arrow batches in memory, one per page.
#[derive(Debug)]
pub struct BatchCollector {
    builder: BatchBuilder,
    batches: Vec<RecordBatch>,
}

impl BatchCollector {
    /// Collects under `builder`'s schema (for example [`BatchBuilder::for_path`]).
    pub fn new(builder: BatchBuilder) -> BatchCollector {
        BatchCollector {
            builder,
            batches: Vec::new(),
        }
    }

    /// The final schema and every batch brought to it. A run with no rows gives one empty batch with every column.
    pub fn into_batches(mut self) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        if self.builder.pending_rows() > 0 || self.batches.is_empty() {
            self.batches.push(self.builder.finish_batch());
        }
        let schema = self.builder.schema();
        let batches = self.batches.iter().map(|b| widen(b, &schema)).collect::<Result<Vec<_>>>()?;
        Ok((schema, batches))
    }
}

impl RowSink for BatchCollector {
    fn columns(&mut self, declared: &[(String, String)]) {
        self.builder.declare_hunting(declared);
    }

    fn page(&mut self, rows: Vec<Row>) -> Result<ControlFlow<()>> {
        self.batches.extend(self.builder.push_page(&rows));
        Ok(ControlFlow::Continue(()))
    }
}

/// A typed file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// Apache Parquet, zstd-compressed, with the Arrow schema embedded (timestamps keep their UTC zone).
    Parquet,
    /// The Arrow IPC streaming format (what `pyarrow.ipc.open_stream`, DuckDB and polars read).
    ArrowStream,
}

/// Where an [`ArrowFileSink`] delivers: a path (written beside it, renamed on success) or a writer such as stdout
/// (given the whole result at the end).
pub enum Destination {
    /// A file path.
    Path(PathBuf),
    /// A writer.
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Destination::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

enum Writer {
    Parquet(parquet::arrow::ArrowWriter<File>),
    Stream(arrow_ipc::writer::StreamWriter<BufWriter<File>>),
}

const ROW_GROUP_ROWS: usize = 16 * 1024;
const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

fn out_err(what: &str) -> impl Fn(crate::error::BoxError) -> Error + '_ {
    move |e| Error::output_boxed(what, e)
}

impl Writer {
    fn open(format: FileFormat, file: File, schema: &SchemaRef) -> Result<Writer> {
        Ok(match format {
            FileFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .build();
                Writer::Parquet(
                    parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props))
                        .map_err(|e| out_err("cannot start the Parquet file")(e.into()))?,
                )
            }
            FileFormat::ArrowStream => Writer::Stream(
                arrow_ipc::writer::StreamWriter::try_new(BufWriter::new(file), schema)
                    .map_err(|e| out_err("cannot start the Arrow stream")(e.into()))?,
            ),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Writer::Parquet(w) => {
                w.write(batch).map_err(|e| out_err("writing Parquet")(e.into()))?;
                if w.in_progress_size() > ROW_GROUP_BYTES {
                    w.flush().map_err(|e| out_err("writing Parquet")(e.into()))?;
                }
            }
            Writer::Stream(w) => w.write(batch).map_err(|e| out_err("writing the Arrow stream")(e.into()))?,
        }
        Ok(())
    }

    /// Bytes the Parquet row group being built holds in memory.
    fn buffered(&self) -> usize {
        match self {
            Writer::Parquet(w) => w.in_progress_size(),
            Writer::Stream(_) => 0,
        }
    }

    fn flush(&mut self) -> Result<()> {
        match self {
            Writer::Parquet(w) => w.flush().map_err(|e| out_err("writing Parquet")(e.into())),
            Writer::Stream(w) => w.flush().map_err(|e| out_err("writing the Arrow stream")(e.into())),
        }
    }

    fn close(self) -> Result<()> {
        match self {
            Writer::Parquet(w) => w.close().map(|_| ()).map_err(|e| out_err("closing the Parquet file")(e.into())),
            Writer::Stream(mut w) => {
                w.finish().map_err(|e| out_err("closing the Arrow stream")(e.into()))?;
                w.into_inner()
                    .map_err(|e| out_err("closing the Arrow stream")(e.into()))?
                    .flush()
                    .map_err(|e| out_err("closing the Arrow stream")(e.into()))
            }
        }
    }
}

/// A part being written: its temporary file, its schema and its writer.
struct Part {
    file: tempfile::NamedTempFile,
    schema: SchemaRef,
    writer: Option<Writer>,
}

/// Batches written to temporary files in `folder`, a new part whenever the schema changes (a file holds one schema),
/// read back in order at the end. [`ArrowFileSink`] keeps its result this way, and the CSV sink its spill.
pub(super) struct Parts {
    format: FileFormat,
    folder: PathBuf,
    parts: Vec<Part>,
}

impl Parts {
    pub(super) fn new(format: FileFormat, folder: PathBuf) -> Parts {
        Parts {
            format,
            folder,
            parts: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn new_part(&self, schema: SchemaRef) -> Result<Part> {
        let file = tempfile::Builder::new()
            .prefix(".secgraph-")
            .suffix(".partial")
            .tempfile_in(&self.folder)
            .map_err(|e| Error::output_from(format!("cannot create a file in {}", self.folder.display()), e))?;
        let handle = file.reopen().map_err(|e| out_err("cannot open the temporary file")(e.into()))?;
        let writer = Writer::open(self.format, handle, &schema)?;
        Ok(Part {
            file,
            schema,
            writer: Some(writer),
        })
    }

    /// Writes a batch to the part of its schema, starting a new part when the schema changed.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        if self.parts.last().is_none_or(|p| p.schema != schema) {
            self.close_last()?;
            let part = self.new_part(schema)?;
            self.parts.push(part);
        }
        match self.parts.last_mut().and_then(|p| p.writer.as_mut()) {
            Some(w) => w.write(batch),
            None => Ok(()),
        }
    }

    fn last_writer(&mut self) -> Option<&mut Writer> {
        self.parts.last_mut().and_then(|p| p.writer.as_mut())
    }

    fn close_last(&mut self) -> Result<()> {
        match self.parts.last_mut().and_then(|p| p.writer.take()) {
            Some(w) => w.close(),
            None => Ok(()),
        }
    }

    /// Closes the part being written and reads every part back, batch by batch, in the order written.
    pub(super) fn read_all(&mut self, each: &mut dyn FnMut(RecordBatch) -> Result<()>) -> Result<()> {
        self.close_last()?;
        for part in &self.parts {
            self.read_part(part, each)?;
        }
        Ok(())
    }

    /// Reads a closed part back, batch by batch.
    fn read_part(&self, part: &Part, each: &mut dyn FnMut(RecordBatch) -> Result<()>) -> Result<()> {
        let file = part.file.reopen().map_err(|e| out_err("cannot reopen a part")(e.into()))?;
        let read_err = out_err("reading a part back");
        match self.format {
            FileFormat::Parquet => {
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.build())
                    .map_err(|e| read_err(e.into()))?;
                for b in reader {
                    each(b.map_err(|e| read_err(e.into()))?)?;
                }
            }
            FileFormat::ArrowStream => {
                let reader =
                    arrow_ipc::reader::StreamReader::try_new(std::io::BufReader::new(file), None).map_err(|e| read_err(e.into()))?;
                for b in reader {
                    each(b.map_err(|e| read_err(e.into()))?)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes a query's rows to Parquet or an Arrow IPC stream as pages arrive: typed by a `BatchBuilder`, written under a temporary
/// name and renamed on success, a mid-run schema change merged once at the end.
pub struct ArrowFileSink {
    format: FileFormat,
    builder: BatchBuilder,
    destination: Option<Destination>,
    parts: Parts,
    rows: usize,
}

impl std::fmt::Debug for ArrowFileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowFileSink")
            .field("format", &self.format)
            .field("destination", &self.destination)
            .field("parts", &self.parts.parts.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ArrowFileSink {
    /// Writes `format` to `destination`, typed by `builder`.
    pub fn new(format: FileFormat, builder: BatchBuilder, destination: Destination) -> Result<ArrowFileSink> {
        let folder = match &destination {
            Destination::Path(p) => {
                let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    return Err(Error::output(format!(
                        "cannot write {}: no folder {}",
                        p.display(),
                        parent.display()
                    )));
                }
                parent.to_path_buf()
            }
            Destination::Writer(_) => std::env::temp_dir(),
        };
        Ok(ArrowFileSink {
            format,
            builder,
            destination: Some(destination),
            parts: Parts::new(format, folder),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes held in memory for the Parquet row group being built (0 for an Arrow stream).
    pub fn buffered_bytes(&self) -> usize {
        self.parts.parts.last().and_then(|p| p.writer.as_ref()).map_or(0, Writer::buffered)
    }

    /// Writes the row group being built out now, releasing its memory (a caller with many files open at once keeps
    /// its total in check this way).
    pub fn flush(&mut self) -> Result<()> {
        match self.parts.last_writer() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    fn write_batch(&mut self, batch: RecordBatch) -> Result<()> {
        self.parts.write(&batch)?;
        self.rows += batch.num_rows();
        Ok(())
    }
}

impl RowSink for ArrowFileSink {
    fn columns(&mut self, declared: &[(String, String)]) {
        self.builder.declare_hunting(declared);
    }

    fn page(&mut self, rows: Vec<Row>) -> Result<ControlFlow<()>> {
        if let Some(batch) = self.builder.push_page(&rows) {
            self.write_batch(batch)?;
        }
        Ok(ControlFlow::Continue(()))
    }

    fn finish(&mut self) -> Result<()> {
        let Some(destination) = self.destination.take() else {
            return Ok(());
        };
        if self.parts.is_empty() {
            // No rows: an empty file that still has every column.
            let empty = self.builder.finish_batch();
            self.write_batch(empty)?;
        }
        self.parts.close_last()?;
        let whole = if self.parts.parts.len() == 1 {
            self.parts.parts.pop().map(|p| p.file)
        } else {
            // Columns appeared mid-run: one pass rewrites every part under the final schema.
            let schema = self.builder.schema();
            let mut merged = self.parts.new_part(schema.clone())?;
            let mut writer = merged.writer.take();
            self.parts.read_all(&mut |b| match writer.as_mut() {
                Some(w) => w.write(&widen(&b, &schema)?),
                None => Ok(()),
            })?;
            if let Some(w) = writer {
                w.close()?;
            }
            self.parts.parts.clear();
            Some(merged.file)
        };
        let Some(whole) = whole else { return Ok(()) };
        match destination {
            Destination::Path(p) => whole
                .persist(&p)
                .map(|_| ())
                .map_err(|e| Error::output(format!("cannot move the finished file to {}: {}", p.display(), e.error))),
            Destination::Writer(mut w) => {
                let mut f = whole.reopen().map_err(|e| out_err("cannot reopen the result")(e.into()))?;
                std::io::copy(&mut f, &mut w).map_err(|e| out_err("writing the result")(e.into()))?;
                w.flush().map_err(|e| out_err("writing the result")(e.into()))
            }
        }
    }
}
