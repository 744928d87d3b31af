//! Where rows go. The pager pushes each page into a [`RowSink`]; the sink decides what a row becomes: a table in
//! memory, JSON lines or CSV written as they arrive. One code path serves every output.

mod arrow;

pub use arrow::{ArrowFileSink, BatchCollector, Destination, FileFormat};

use crate::error::{Error, Result};
use crate::row::Row;
use serde_json::{Map, Value};
use std::collections::HashMap;
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

/// Flattens a row the way pandas' `json_normalize` does: nested objects become dotted column names
/// (`fileHash.hashValue`), lists stay whole as JSON values, an empty object stays as `{}`.
///
/// ```
/// let row = serde_json::json!({"id": "1", "vendor": {"name": "x", "ver": {"major": 2}}, "tags": ["a"]});
/// let flat = secgraph::output::flatten(&row);
/// let names: Vec<_> = flat.iter().map(|(k, _)| k.as_str()).collect();
/// assert_eq!(names, ["id", "vendor.name", "vendor.ver.major", "tags"]);
/// ```
pub fn flatten(row: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    match row {
        Value::Object(m) => flatten_into("", m, &mut out),
        other => out.push(("value".to_string(), other.clone())),
    }
    out
}

fn flatten_into(prefix: &str, m: &Map<String, Value>, out: &mut Vec<(String, Value)>) {
    for (k, v) in m {
        let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::Object(inner) if !inner.is_empty() => flatten_into(&name, inner, out),
            other => out.push((name, other.clone())),
        }
    }
}

/// Rows flattened into named columns, in order of first appearance. Rows missing a column hold `null`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names, in order of first appearance.
    pub columns: Vec<String>,
    /// Rows, one value per column (`Null` where a row has none).
    pub rows: Vec<Vec<Value>>,
    index: HashMap<String, usize>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// Adds one row, flattening it and widening the column set as needed.
    pub fn push(&mut self, row: &Value) {
        let mut cells = vec![Value::Null; self.columns.len()];
        for (k, v) in flatten(row) {
            let i = match self.index.get(&k) {
                Some(i) => *i,
                None => {
                    self.columns.push(k.clone());
                    self.index.insert(k, self.columns.len() - 1);
                    cells.push(Value::Null);
                    self.columns.len() - 1
                }
            };
            cells[i] = v;
        }
        self.rows.push(cells);
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The column index by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The value of `column` in row `row`, as text: null is empty, strings as they are, other values as JSON.
    pub fn cell_text(&self, row: usize, column: usize) -> String {
        self.rows.get(row).and_then(|r| r.get(column)).map(cell_text).unwrap_or_default()
    }

    /// Writes the table as CSV with a header row.
    pub fn write_csv<W: Write>(&self, w: W) -> Result<()> {
        let mut wr = csv::Writer::from_writer(w);
        let io = |e: csv::Error| Error::Output(e.to_string());
        wr.write_record(&self.columns).map_err(io)?;
        for r in &self.rows {
            let mut rec: Vec<String> = r.iter().map(cell_text).collect();
            rec.resize(self.columns.len(), String::new());
            wr.write_record(&rec).map_err(io)?;
        }
        wr.flush().map_err(|e| Error::Output(e.to_string()))
    }
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
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        for r in &rows {
            self.push(&r.to_value());
        }
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
            self.out.write_all(b"\n").map_err(|e| Error::Output(e.to_string()))?;
        }
        Ok(std::ops::ControlFlow::Continue(()))
    }
    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::Output(e.to_string()))
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
        let io = |e: std::io::Error| Error::Output(e.to_string());
        for r in rows {
            self.out.write_all(if self.first { b"[\n" } else { b",\n" }).map_err(io)?;
            self.first = false;
            if self.pretty {
                let text = serde_json::to_string_pretty(&r.to_value()).map_err(|e| Error::Output(e.to_string()))?;
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
        let io = |e: std::io::Error| Error::Output(e.to_string());
        self.out.write_all(if self.first { b"[]\n" } else { b"\n]\n" }).map_err(io)?;
        self.first = false;
        self.out.flush().map_err(io)
    }
}

/// Writes a row's JSON text on one line: as received when it has no line break (Graph's compact items), else
/// re-serialised compactly.
fn write_compact(out: &mut dyn Write, r: &Row) -> Result<()> {
    let text = r.json();
    if text.contains('\n') || text.contains('\r') {
        serde_json::to_writer(&mut *out, &r.to_value()).map_err(|e| Error::Output(e.to_string()))
    } else {
        out.write_all(text.as_bytes()).map_err(|e| Error::Output(e.to_string()))
    }
}

/// Writes CSV with flat memory however many rows: each row is flattened (dotted columns, lists as JSON) and spilled
/// to a temporary file as it arrives, so the header can hold every column seen; `finish` writes the header and then
/// the rows. `columns` restricts and orders the output (empty: every column, in order of first appearance).
pub struct CsvSink<W: Write> {
    out: Option<W>,
    spill: std::io::BufWriter<tempfile::NamedTempFile>,
    columns: Vec<String>,
    index: HashMap<String, usize>,
    wanted: Vec<String>,
    rows: usize,
    delimiter: u8,
}

impl<W: Write> std::fmt::Debug for CsvSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSink")
            .field("columns", &self.columns.len())
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write> CsvSink<W> {
    /// Writes to `out`; `columns` chooses and orders the columns (empty: every column seen).
    pub fn new(out: W, columns: Vec<String>) -> Result<Self> {
        let spill = tempfile::NamedTempFile::new().map_err(|e| Error::Output(format!("cannot create a temporary file: {e}")))?;
        Ok(CsvSink {
            out: Some(out),
            spill: std::io::BufWriter::new(spill),
            columns: vec![],
            index: HashMap::new(),
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

    /// Every column seen so far, in order of first appearance.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl<W: Write + Send> RowSink for CsvSink<W> {
    fn page(&mut self, rows: Vec<Row>) -> Result<std::ops::ControlFlow<()>> {
        let io = |e: std::io::Error| Error::Output(e.to_string());
        for r in rows {
            let mut cells: Vec<(usize, String)> = Vec::new();
            for (k, v) in flatten(&r.to_value()) {
                let i = match self.index.get(&k) {
                    Some(i) => *i,
                    None => {
                        self.columns.push(k.clone());
                        self.index.insert(k, self.columns.len() - 1);
                        self.columns.len() - 1
                    }
                };
                if !v.is_null() {
                    cells.push((i, cell_text(&v)));
                }
            }
            serde_json::to_writer(&mut self.spill, &cells).map_err(|e| Error::Output(e.to_string()))?;
            self.spill.write_all(b"\n").map_err(io)?;
            self.rows += 1;
        }
        Ok(std::ops::ControlFlow::Continue(()))
    }

    fn finish(&mut self) -> Result<()> {
        let io = |e: std::io::Error| Error::Output(e.to_string());
        let Some(out) = self.out.take() else { return Ok(()) };
        self.spill.flush().map_err(io)?;
        let order: Vec<usize> = if self.wanted.is_empty() {
            (0..self.columns.len()).collect()
        } else {
            let mut v = Vec::new();
            for c in &self.wanted {
                match self.index.get(c) {
                    Some(i) => v.push(*i),
                    None if self.rows == 0 => {}
                    None => {
                        return Err(Error::Query {
                            message: format!("no column '{c}' in the results; columns: {}", self.columns.join(", ")),
                        });
                    }
                }
            }
            v
        };
        let mut wr = csv::WriterBuilder::new().delimiter(self.delimiter).from_writer(out);
        let csv_err = |e: csv::Error| Error::Output(e.to_string());
        wr.write_record(order.iter().map(|i| self.columns[*i].as_str())).map_err(csv_err)?;
        let file = self.spill.get_ref().reopen().map_err(io)?;
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(file);
        let mut record = vec![String::new(); self.columns.len()];
        loop {
            line.clear();
            if std::io::BufRead::read_line(&mut reader, &mut line).map_err(io)? == 0 {
                break;
            }
            let cells: Vec<(usize, String)> = serde_json::from_str(&line).map_err(|e| Error::Output(format!("temporary file: {e}")))?;
            record.iter_mut().for_each(String::clear);
            for (i, t) in cells {
                if let Some(slot) = record.get_mut(i) {
                    *slot = t;
                }
            }
            wr.write_record(order.iter().map(|i| record[*i].as_str())).map_err(csv_err)?;
        }
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
        let _ = t
            .page(rows(vec![json!({"a": 1, "b": {"c": "x"}}), json!({"a": 2, "d": [1, 2], "e": {}})]))
            .unwrap();
        assert_eq!(t.columns, ["a", "b.c", "d", "e"]);
        assert_eq!(t.cell_text(0, 3), "");
        assert_eq!(t.cell_text(1, 2), "[1,2]");
        assert_eq!(t.cell_text(1, 3), "{}");
        let mut csv = Vec::new();
        t.write_csv(&mut csv).unwrap();
        assert_eq!(String::from_utf8(csv).unwrap(), "a,b.c,d,e\n1,x,,\n2,,\"[1,2]\",{}\n");
    }

    #[test]
    fn csv_sink_matches_the_table_and_widens_columns() {
        let rows = rows(vec![
            json!({"a": 1, "b": {"c": "x"}}),
            json!({"a": 2, "d": [1, 2], "e": {}}),
            json!({"z": "q,\"r"}),
        ]);
        let mut t = Table::new();
        let _ = t.page(rows.clone()).unwrap();
        let mut want = Vec::new();
        t.write_csv(&mut want).unwrap();
        let mut got = Vec::new();
        let mut s = CsvSink::new(&mut got, vec![]).unwrap();
        let _ = s.page(rows[..2].to_vec()).unwrap();
        let _ = s.page(rows[2..].to_vec()).unwrap();
        s.finish().unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap());
        let mut got = Vec::new();
        let mut s = CsvSink::new(&mut got, vec!["d".into(), "a".into()]).unwrap();
        let _ = s.page(rows.clone()).unwrap();
        s.finish().unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), "d,a\n,1\n\"[1,2]\",2\n,\n");
        let mut s = CsvSink::new(Vec::new(), vec!["nope".into()]).unwrap();
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
