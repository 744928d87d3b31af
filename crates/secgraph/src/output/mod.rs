//! Where rows go. The pager pushes each page into a [`RowSink`]; the sink decides what a row becomes: a table in
//! memory, JSON lines or CSV written as they arrive. One code path serves every output.

mod arrow;
mod text;

pub use arrow::{ArrowFileSink, BatchCollector, Destination, FileFormat};

use crate::batches::{BatchBuilder, widen};
use crate::error::{Error, Result};
use crate::row::Row;
use arrow_array::RecordBatch;
use serde_json::Value;
use std::io::Write;

/// Receives rows page by page (the shape of ripgrep's `Sink`: the pager drives, the sink decides).
///
/// A sink is `Send`, so a query pushing into it can run on any task.
///
/// ```
/// use std::ops::ControlFlow;
/// /// Keeps the first ten rows, then asks the pager to stop (no further page is fetched).
/// struct FirstTen(Vec<secgraph::Row>);
/// impl secgraph::output::RowSink for FirstTen {
///     fn page(&mut self, rows: Vec<secgraph::Row>) -> secgraph::Result<ControlFlow<()>> {
///         self.0.extend(rows.into_iter().take(10 - self.0.len()));
///         Ok(if self.0.len() == 10 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) })
///     }
/// }
/// ```
pub trait RowSink: Send {
    /// Called once per page with that page's rows, in order. [`ControlFlow::Break`](std::ops::ControlFlow) stops
    /// the run after this page. Rows arrive as the JSON text the service sent ([`Row::to_value`] parses one).
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>>;
    /// Called before the first page when the reply declares its columns, (name, type) in order: advanced
    /// hunting's `schema`. Typed sinks use it; the others ignore it.
    fn columns(&mut self, declared: &[(String, String)]) {
        let _ = declared;
    }
    /// Called once after the last page.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Rows as typed Arrow batches in memory, for reading by people: the terminal table, a few rows as CSV.
///
/// Built by a [`BatchBuilder`] (a query's entity columns from [`BatchBuilder::for_path`], or columns as the data
/// brings them with [`Table::new`]), so a table has the same columns and types as the Parquet and Arrow outputs;
/// cells read as text by one rule per type ([`Table::cell_text`]). Columns only ever widen: a page that brings a new
/// column pads the earlier rows with nulls.
#[derive(Debug)]
pub struct Table {
    builder: BatchBuilder,
    columns: Vec<String>,
    batches: Vec<RecordBatch>,
    /// The first row of each batch.
    starts: Vec<usize>,
    rows: usize,
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// An empty table whose columns come from the rows (kinds inferred from the first values).
    pub fn new() -> Table {
        Table::with_builder(BatchBuilder::new(&[]))
    }

    /// An empty table with `builder`'s columns to begin with (a query's: `QueryProvider::batch_builder`).
    pub fn with_builder(builder: BatchBuilder) -> Table {
        let columns = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        Table {
            builder,
            columns,
            batches: Vec::new(),
            starts: Vec::new(),
            rows: 0,
        }
    }

    /// Adds one row given as a JSON value.
    pub fn push(&mut self, row: &Value) {
        self.add(&[Row::from_value(row)]);
    }

    fn add(&mut self, rows: &[Row]) {
        let Some(batch) = self.builder.push_page(rows) else { return };
        let schema = batch.schema();
        if schema.fields().len() != self.columns.len() {
            // Columns are only added at the end: earlier batches get null columns.
            self.batches = self.batches.iter().filter_map(|b| widen(b, &schema).ok()).collect();
            self.columns = schema.fields().iter().map(|f| f.name().clone()).collect();
        }
        self.starts.push(self.rows);
        self.rows += batch.num_rows();
        self.batches.push(batch);
    }

    /// Column names: the builder's first, then new ones in order of first appearance.
    pub fn column_names(&self) -> &[String] {
        &self.columns
    }

    /// The rows as Arrow batches, every one under the table's whole schema.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The column index by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The cell of `column` in row `row` as text; empty for null or out of range. Times are RFC 3339 in UTC with
    /// `Z` and the fractional digits they need, numbers and booleans as JSON writes them, lists of strings as JSON
    /// arrays, JSON-text columns (evidence, comments, hunting's `Dynamic`) as their text.
    pub fn cell_text(&self, row: usize, column: usize) -> String {
        let b = self.starts.partition_point(|s| *s <= row).saturating_sub(1);
        match self.batches.get(b) {
            Some(batch) if column < batch.num_columns() => text::TextColumn::new(batch.column(column)).text(row - self.starts[b]),
            _ => String::new(),
        }
    }

    /// Writes the columns `cols` (indexes) as CSV with a header row.
    pub fn write_csv<W: Write>(&self, w: W, cols: &[usize]) -> Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        let io = |e: csv::Error| Error::output_from("", e);
        wr.write_record(cols.iter().filter_map(|c| self.columns.get(*c))).map_err(io)?;
        let mut record = Vec::new();
        for batch in &self.batches {
            write_batch_records(&mut wr, batch, cols, &mut record)?;
        }
        wr.flush().map_err(|e| Error::output_from("", e))
    }
}

/// Writes every row of `batch` as a record of the columns `cols` (indexes into the batch's columns).
fn write_batch_records<W: Write>(wr: &mut csv::Writer<W>, batch: &RecordBatch, cols: &[usize], record: &mut Vec<String>) -> Result<()> {
    let texts = text::TextColumn::all(batch);
    record.resize(cols.len(), String::new());
    for row in 0..batch.num_rows() {
        for (slot, c) in record.iter_mut().zip(cols) {
            slot.clear();
            if let Some(t) = texts.get(*c) {
                t.write(row, slot);
            }
        }
        wr.write_record(record.iter()).map_err(|e| Error::output_from("", e))?;
    }
    Ok(())
}

/// Text of one cell: null is empty, strings as they are, numbers and booleans as written, lists and objects as JSON.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl RowSink for Table {
    fn columns(&mut self, declared: &[(String, String)]) {
        self.builder.declare_hunting(declared);
        self.columns = self.builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    }
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        self.add(&rows);
        Ok(std::ops::ControlFlow::Continue(()))
    }
}

/// Collects rows as values (unflattened).
impl RowSink for Vec<Value> {
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        self.extend(rows.iter().map(Row::to_value));
        Ok(std::ops::ControlFlow::Continue(()))
    }
}

/// Collects rows as they came.
impl RowSink for Vec<Row> {
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        self.extend(rows);
        Ok(std::ops::ControlFlow::Continue(()))
    }
}

/// Writes each row as one line of JSON as soon as its page arrives (memory stays flat however many rows).
#[derive(Debug)]
pub struct JsonLinesSink<W: Write> {
    out: W,
}

impl<W: Write> JsonLinesSink<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesSink { out }
    }
    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> RowSink for JsonLinesSink<W> {
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        for r in rows {
            // The row's text as received: one line, because JSON text from serde_json's reader never holds a raw
            // newline outside strings once compacted — and Graph sends compact items. Pretty items are compacted.
            write_compact(&mut self.out, &r)?;
            self.out.write_all(b"\n").map_err(|e| Error::output_from("", e))?;
        }
        Ok(std::ops::ControlFlow::Continue(()))
    }
    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::output_from("", e))
    }
}

/// Writes one JSON array of all rows, streaming element by element: each item as the service sent it, or indented
/// for people ([`JsonArraySink::pretty`]).
#[derive(Debug)]
pub struct JsonArraySink<W: Write> {
    out: W,
    first: bool,
    pretty: bool,
}

impl<W: Write> JsonArraySink<W> {
    /// Writes to `out`, each item on one line as received.
    pub fn new(out: W) -> Self {
        JsonArraySink {
            out,
            first: true,
            pretty: false,
        }
    }

    /// Writes to `out` with every item indented (for a terminal).
    pub fn pretty(out: W) -> Self {
        JsonArraySink {
            out,
            first: true,
            pretty: true,
        }
    }
}

impl<W: Write + Send> RowSink for JsonArraySink<W> {
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        let io = |e: std::io::Error| Error::output_from("", e);
        for r in rows {
            self.out.write_all(if self.first { b"[\n" } else { b",\n" }).map_err(io)?;
            self.first = false;
            if self.pretty {
                let text = serde_json::to_string_pretty(&r.to_value()).map_err(|e| Error::output_from("", e))?;
                for (i, line) in text.lines().enumerate() {
                    if i > 0 {
                        self.out.write_all(b"\n").map_err(io)?;
                    }
                    self.out.write_all(b"  ").map_err(io)?;
                    self.out.write_all(line.as_bytes()).map_err(io)?;
                }
            } else {
                write_compact(&mut self.out, &r)?;
            }
        }
        Ok(std::ops::ControlFlow::Continue(()))
    }
    fn finish(&mut self) -> Result<()> {
        let io = |e: std::io::Error| Error::output_from("", e);
        self.out.write_all(if self.first { b"[]\n" } else { b"\n]\n" }).map_err(io)?;
        self.first = false;
        self.out.flush().map_err(io)
    }
}

/// Writes a row's JSON text on one line: as received when it has no line break (Graph's compact items), else
/// re-serialised compactly.
fn write_compact(out: &mut dyn Write, r: &Row) -> Result<()> {
    let text = r.json();
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
        serde_json::to_writer(&mut *out, &r.to_value()).map_err(|e| Error::output_from("", e))
    } else {
        out.write_all(text.as_bytes()).map_err(|e| Error::output_from("", e))
    }
}

/// Writes CSV (or TSV) with flat memory however many rows, from the same typed batches as Parquet: each page
/// becomes a batch ([`BatchBuilder`]) spilled to temporary Arrow IPC files as it arrives (the parts
/// [`ArrowFileSink`] keeps too), so that the header can hold every column seen; `finish` writes the header and then
/// every row, cells as [`Table::cell_text`] reads them (times in UTC RFC 3339, lists of strings as JSON arrays,
/// evidence and other lists of objects as JSON text). `columns` restricts and orders the output (empty: every column
/// of the schema).
pub struct CsvSink<W: Write> {
    out: Option<W>,
    builder: BatchBuilder,
    spill: arrow::Parts,
    wanted: Vec<String>,
    rows: usize,
    delimiter: u8,
}

impl<W: Write> std::fmt::Debug for CsvSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSink")
            .field("builder", &self.builder)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write> CsvSink<W> {
    /// Writes to `out` the columns of `builder`'s schema as it grows (a query's: `QueryProvider::batch_builder`;
    /// `BatchBuilder::new(&[])` for columns as the data brings them); `columns` chooses and orders them (empty:
    /// all).
    pub fn new(out: W, builder: BatchBuilder, columns: Vec<String>) -> Result<Self> {
        Ok(CsvSink {
            out: Some(out),
            builder,
            spill: arrow::Parts::new(FileFormat::ArrowStream, std::env::temp_dir()),
            wanted: columns,
            rows: 0,
            delimiter: b',',
        })
    }

    /// The same with another field delimiter (`b'\t'` for TSV).
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

impl<W: Write + Send> RowSink for CsvSink<W> {
    fn columns(&mut self, declared: &[(String, String)]) {
        self.builder.declare_hunting(declared);
    }

    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        if let Some(batch) = self.builder.push_page(&rows) {
            self.rows += batch.num_rows();
            self.spill.write(&batch)?;
        }
        Ok(std::ops::ControlFlow::Continue(()))
    }

    fn finish(&mut self) -> Result<()> {
        let io = |e: std::io::Error| Error::output_from("", e);
        let Some(out) = self.out.take() else { return Ok(()) };
        let schema = self.builder.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let order: Vec<usize> = if self.wanted.is_empty() {
            (0..names.len()).collect()
        } else {
            let mut v = Vec::new();
            for c in &self.wanted {
                match names.iter().position(|n| n == c) {
                    Some(i) => v.push(i),
                    None if self.rows == 0 => {}
                    None => {
                        return Err(Error::Query {
                            message: format!("no column '{c}' in the results; columns: {}", names.join(", ")),
                        });
                    }
                }
            }
            v
        };
        let mut wr = csv::WriterBuilder::new().delimiter(self.delimiter).from_writer(out);
        wr.write_record(order.iter().map(|i| names[*i]))
            .map_err(|e| Error::output_from("", e))?;
        let mut record = Vec::new();
        self.spill
            .read_all(&mut |batch| write_batch_records(&mut wr, &widen(&batch, &schema)?, &order, &mut record))?;
        wr.flush().map_err(io)
    }
}

/// Counts rows and the ids it has seen, to check "every row exactly once".
#[derive(Debug, Default)]
pub struct CountingSink {
    /// Rows seen.
    pub rows: usize,
    /// Pages seen.
    pub pages: usize,
}

impl RowSink for CountingSink {
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        self.pages += 1;
        self.rows += rows.len();
        Ok(std::ops::ControlFlow::Continue(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Vec<Value>) -> Vec<Row> {
        v.iter().map(Row::from_value).collect()
    }

    #[test]
    fn table_widens_and_fills_nulls() {
        let mut t = Table::new();
        let _ = t.page(rows(vec![json!({"a": 1, "b": {"c": "x"}})])).unwrap();
        let _ = t.page(rows(vec![json!({"a": 2, "d": [1, 2], "e": {}})])).unwrap();
        assert_eq!(t.column_names(), ["a", "b.c", "d", "e"]);
        assert_eq!(t.len(), 2);
        assert_eq!(t.cell_text(0, 3), "", "an earlier row has null in a later column");
        assert_eq!(t.cell_text(1, 2), "[1,2]");
        assert_eq!(t.cell_text(1, 3), "{}");
        assert_eq!(t.cell_text(1, 0), "2");
        assert!(t.batches().iter().all(|b| b.num_columns() == 4));
        let mut csv = Vec::new();
        t.write_csv(&mut csv, &[0, 1, 2, 3]).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "a,b.c,d,e\n1,x,,\n2,,\"[1,2]\",{}\n");
    }

    #[test]
    fn table_starts_with_the_entity_columns_and_types_them() {
        let mut t = Table::with_builder(BatchBuilder::for_path("/security/alerts_v2"));
        assert!(t.column_names().len() > 30, "every documented column before any row");
        t.push(&json!({"id": "a", "createdDateTime": "2026-05-27T10:40:29.0590000Z", "mitreTechniques": ["T1"]}));
        let cell = |name: &str| t.cell_text(0, t.column(name).unwrap());
        assert_eq!(cell("createdDateTime"), "2026-05-27T10:40:29.059Z");
        assert_eq!(cell("mitreTechniques"), r#"["T1"]"#);
        assert_eq!(cell("severity"), "");
    }

    #[test]
    fn csv_sink_matches_the_table_and_widens_columns() {
        let rows = rows(vec![
            json!({"a": 1, "b": {"c": "x"}}),
            json!({"a": 2, "d": [1, 2], "e": {}}),
            json!({"z": "q,\"r"}),
        ]);
        let mut t = Table::new();
        let _ = t.page(rows[..2].to_vec()).unwrap();
        let _ = t.page(rows[2..].to_vec()).unwrap();
        let mut want = Vec::new();
        t.write_csv(&mut want, &[0, 1, 2, 3, 4]).unwrap();
        let mut got = Vec::new();
        let mut s = CsvSink::new(&mut got, BatchBuilder::new(&[]), vec![]).unwrap();
        let _ = s.page(rows[..2].to_vec()).unwrap();
        let _ = s.page(rows[2..].to_vec()).unwrap();
        s.finish().unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        let mut got = Vec::new();
        let mut s = CsvSink::new(&mut got, BatchBuilder::new(&[]), vec!["d".into(), "a".into()]).unwrap();
        let _ = s.page(rows[..1].to_vec()).unwrap();
        let _ = s.page(rows[1..].to_vec()).unwrap();
        s.finish().unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "d,a\n,1\n\"[1,2]\",2\n,\n");
        let mut s = CsvSink::new(Vec::new(), BatchBuilder::new(&[]), vec!["nope".into()]).unwrap();
        let _ = s.page(rows).unwrap();
        assert!(s.finish().unwrap_err().to_string().contains("no column 'nope'"));
    }

    #[test]
    fn json_lines_one_object_per_line() {
        let mut s = JsonLinesSink::new(Vec::new());
        let _ = s.page(rows(vec![json!({"a": 1}), json!({"a": 2})])).unwrap();
        s.finish().unwrap();
        assert_eq!(String::from_utf8(s.into_inner()).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn json_array_is_valid_json_even_when_empty() {
        let mut buf = Vec::new();
        let mut s = JsonArraySink::new(&mut buf);
        s.finish().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&buf).unwrap(), json!([]));
        let mut buf = Vec::new();
        let mut s = JsonArraySink::new(&mut buf);
        let _ = s.page(rows(vec![json!({"a": 1})])).unwrap();
        let _ = s.page(rows(vec![json!({"a": 2})])).unwrap();
        s.finish().unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&buf).unwrap(), json!([{"a": 1}, {"a": 2}]));
    }
}
