//! Results as typed Arrow [`RecordBatch`]es.
//!
//! A [`BatchBuilder`] reads rows' JSON text straight into Arrow builders — a borrowed walk of each object's keys, no
//! `serde_json::Value` tree — under a schema that starts from the entity's documented columns ([`schema`]) or a
//! hunting reply's declared ones, and widens as new properties appear:
//!
//! - nested objects become dotted columns (`vendorInformation.provider`), as pandas' `json_normalize` names them;
//! - a property the schema does not know becomes a new column, its kind inferred from its first non-null value (a
//!   string whose name ends in `DateTime` and reads as one is a timestamp; numbers are `Int64` or `Float64`; lists
//!   and empty objects are JSON text); rows before it hold null;
//! - a value that does not fit its column's type (text where a timestamp is declared, a fraction in an integer
//!   column) is not dropped: it goes to the row's `_unparsed` column, a JSON object of such properties.
//!
//! Each batch carries the schema as it was when the batch was cut; columns are only ever added at the end, so
//! [`widen`] brings earlier batches to a later schema with null columns.

pub mod schema;

use crate::error::{Error, Result};
use crate::row::Row;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, StringDictionaryBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow_schema::{Field, Schema, SchemaRef};
use schema::Kind;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The column that keeps values that did not fit their column's type, as a JSON object per row.
pub const UNPARSED: &str = "_unparsed";

enum Builder {
    Text(StringBuilder),
    Enum(StringDictionaryBuilder<Int32Type>),
    Time(TimestampMicrosecondBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    TextList(ListBuilder<StringBuilder>),
    Json(StringBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        match kind {
            Kind::Text => Builder::Text(StringBuilder::new()),
            Kind::Enum => Builder::Enum(StringDictionaryBuilder::new()),
            Kind::Time => Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Kind::Int => Builder::Int(Int64Builder::new()),
            Kind::Float => Builder::Float(Float64Builder::new()),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::TextList => Builder::TextList(ListBuilder::new(StringBuilder::new())),
            Kind::Json => Builder::Json(StringBuilder::new()),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Text(b) | Builder::Json(b) => b.append_null(),
            Builder::Enum(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::TextList(b) => b.append_null(),
        }
    }

    /// Appends a JSON value; `false` (nothing appended) when it does not fit the column's type.
    fn append(&mut self, raw: &str) -> bool {
        if raw == "null" {
            self.append_null();
            return true;
        }
        let text = || serde_json::from_str::<Cow<'_, str>>(raw).ok();
        match self {
            // Any scalar fits a text column: a string's content, or a number's or boolean's JSON text.
            Builder::Text(b) => match text() {
                Some(s) => b.append_value(s),
                None if !raw.starts_with(['{', '[']) => b.append_value(raw),
                None => return false,
            },
            Builder::Json(b) => match text() {
                Some(s) => b.append_value(s),
                None => b.append_value(raw),
            },
            Builder::Enum(b) => match text() {
                Some(s) => {
                    b.append_value(s);
                }
                None => return false,
            },
            Builder::Time(b) => match text().as_deref().and_then(parse_time) {
                Some(us) => b.append_value(us),
                None => return false,
            },
            Builder::Int(b) => match raw.parse::<i64>() {
                Ok(n) => b.append_value(n),
                Err(_) => return false,
            },
            Builder::Float(b) => match serde_json::from_str::<f64>(raw) {
                Ok(n) => b.append_value(n),
                Err(_) => return false,
            },
            Builder::Bool(b) => match raw {
                "true" => b.append_value(true),
                "false" => b.append_value(false),
                _ => return false,
            },
            Builder::TextList(b) => match serde_json::from_str::<Vec<Option<Cow<'_, str>>>>(raw) {
                Ok(items) => {
                    for i in items {
                        b.values().append_option(i);
                    }
                    b.append(true);
                }
                Err(_) => return false,
            },
        }
        true
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::Enum(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::TextList(b) => Arc::new(b.finish()),
        }
    }
}

/// An ISO 8601 time as microseconds since the epoch, UTC: with an offset or `Z`, or without (taken as UTC, as
/// hunting results sometimes are); any number of fractional digits (cut to microseconds).
fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

struct Column {
    name: String,
    kind: Kind,
    builder: Builder,
    /// Values appended in the current batch (null included).
    len: usize,
}

/// Reads rows into typed Arrow batches (see the [module docs](self)).
///
/// ```
/// use secgraph::{Row, batches::{BatchBuilder, schema::ALERT_V2}};
/// let mut b = BatchBuilder::new(ALERT_V2);
/// b.push(&Row::from_json(r#"{"id":"a1","severity":"high","createdDateTime":"2026-11-30T10:00:00.1234567Z"}"#).unwrap());
/// let batch = b.finish_batch();
/// assert_eq!(batch.num_rows(), 1);
/// assert_eq!(batch.schema().field_with_name("createdDateTime").unwrap().data_type().to_string(),
///            "Timestamp(µs, \"UTC\")");
/// ```
pub struct BatchBuilder {
    columns: Vec<Column>,
    index: HashMap<String, usize>,
    /// Rows in the current batch.
    rows: usize,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("columns", &self.columns.iter().map(|c| (&c.name, c.kind)).collect::<Vec<_>>())
            .field("rows", &self.rows)
            .finish()
    }
}

impl BatchBuilder {
    /// A builder whose schema starts with these columns (more are added as rows bring them).
    pub fn new(columns: &[(&str, Kind)]) -> BatchBuilder {
        let mut b = BatchBuilder {
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
        };
        for (name, kind) in columns {
            b.add_column(name, *kind);
        }
        b
    }

    /// A builder for a query: the entity's columns for a Graph security path, none for other paths (the data
    /// decides). Hunting's declared columns are added with [`BatchBuilder::declare_hunting`].
    pub fn for_path(path: &str) -> BatchBuilder {
        BatchBuilder::new(schema::for_path(path).unwrap_or_default())
    }

    /// Adds the columns an advanced-hunting reply declares, (name, type) in order.
    pub fn declare_hunting(&mut self, declared: &[(String, String)]) {
        for (name, ty) in declared {
            if !self.index.contains_key(name) {
                self.add_column(name, schema::hunting_kind(ty));
            }
        }
    }

    fn add_column(&mut self, name: &str, kind: Kind) -> usize {
        let mut builder = Builder::new(kind);
        for _ in 0..self.rows {
            builder.append_null();
        }
        self.columns.push(Column {
            name: name.to_string(),
            kind,
            builder,
            len: self.rows,
        });
        self.index.insert(name.to_string(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    /// Rows added since the last batch was cut.
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    /// The schema now (every column so far).
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, kind_type(c.kind), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// Adds one row.
    pub fn push(&mut self, row: &Row) {
        let mut unparsed: Vec<(String, &RawValue)> = Vec::new();
        let text = row.json();
        match entries(text) {
            Some(e) => self.put_entries("", e, &mut unparsed),
            // Not an object (a bare value): one column named `value`, as json_normalize names it.
            None => {
                if let Ok(raw) = serde_json::from_str::<&RawValue>(text) {
                    self.put("value", raw, &mut unparsed);
                }
            }
        }
        if !unparsed.is_empty() {
            let map: serde_json::Map<String, serde_json::Value> = unparsed
                .into_iter()
                .map(|(k, v)| (k, serde_json::from_str(v.get()).unwrap_or(serde_json::Value::Null)))
                .collect();
            let i = match self.index.get(UNPARSED) {
                Some(i) => *i,
                None => self.add_column(UNPARSED, Kind::Json),
            };
            let c = &mut self.columns[i];
            if let Builder::Json(b) = &mut c.builder {
                b.append_value(serde_json::Value::Object(map).to_string());
                c.len += 1;
            }
        }
        self.rows += 1;
        for c in &mut self.columns {
            if c.len < self.rows {
                c.builder.append_null();
                c.len += 1;
            }
        }
    }

    fn put_entries<'a>(&mut self, prefix: &str, entries: Vec<(Cow<'a, str>, &'a RawValue)>, unparsed: &mut Vec<(String, &'a RawValue)>) {
        for (k, v) in entries {
            if prefix.is_empty() {
                self.put(&k, v, unparsed);
            } else {
                self.put(&format!("{prefix}.{k}"), v, unparsed);
            }
        }
    }

    fn put<'a>(&mut self, name: &str, v: &'a RawValue, unparsed: &mut Vec<(String, &'a RawValue)>) {
        let raw = v.get();
        if let Some(&i) = self.index.get(name) {
            let c = &mut self.columns[i];
            // A key repeated within one object, or a value of the wrong type: kept aside, not lost.
            if c.len > self.rows || !c.builder.append(raw) {
                unparsed.push((name.to_string(), v));
            } else {
                c.len += 1;
            }
            return;
        }
        if raw.starts_with('{')
            && let Some(e) = entries(raw).filter(|e| !e.is_empty())
        {
            return self.put_entries(name, e, unparsed);
        }
        if raw == "null" {
            return;
        }
        let i = self.add_column(name, infer(name, raw));
        let c = &mut self.columns[i];
        if c.builder.append(raw) {
            c.len += 1;
        } else {
            unparsed.push((name.to_string(), v));
        }
    }

    /// Adds a page's rows and cuts their batch; `None` when the page had no rows.
    pub fn push_page(&mut self, rows: &[Row]) -> Option<RecordBatch> {
        for r in rows {
            self.push(r);
        }
        (self.rows > 0).then(|| self.finish_batch())
    }

    /// Cuts a batch of the rows added since the last one, under the schema as it is now. With no rows, an empty
    /// batch with every column.
    pub fn finish_batch(&mut self) -> RecordBatch {
        let schema = self.schema();
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| {
                c.len = 0;
                c.builder.finish()
            })
            .collect();
        let rows = std::mem::take(&mut self.rows);
        // The arrays match the schema's types and length by construction.
        RecordBatch::try_new_with_options(schema.clone(), arrays, &RecordBatchOptions::new().with_row_count(Some(rows)))
            .unwrap_or_else(|_| RecordBatch::new_empty(schema))
    }
}

fn kind_type(kind: Kind) -> arrow_schema::DataType {
    use arrow_schema::{DataType, TimeUnit};
    match kind {
        Kind::Text | Kind::Json => DataType::Utf8,
        Kind::Enum => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        Kind::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::TextList => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    }
}

/// The kind of a new column, from its name and first non-null value.
fn infer(name: &str, raw: &str) -> Kind {
    match raw.as_bytes().first() {
        Some(b'"') => {
            let is_time = name.ends_with("DateTime")
                && serde_json::from_str::<Cow<'_, str>>(raw)
                    .ok()
                    .as_deref()
                    .and_then(parse_time)
                    .is_some();
            if is_time { Kind::Time } else { Kind::Text }
        }
        Some(b't' | b'f') => Kind::Bool,
        Some(b'[' | b'{') => Kind::Json,
        _ if raw.parse::<i64>().is_ok() => Kind::Int,
        _ => Kind::Float,
    }
}

/// An object's entries in order, keys borrowed where they hold no escapes; `None` when the text is not an object.
fn entries(text: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(32));
            while let Some(k) = map.next_key::<Key<'de>>()? {
                out.push((k.0, map.next_value::<&'de RawValue>()?));
            }
            Ok(out)
        }
    }
    struct Key<'a>(Cow<'a, str>);
    impl<'de> serde::Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            Cow::<'de, str>::deserialize(d).map(Key)
        }
    }
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Entries).ok()
}

/// Brings a batch to a wider schema (one whose columns begin with the batch's, as a [`BatchBuilder`]'s later schemas
/// do): the columns it lacks are all null. Columns are matched by name.
pub fn widen(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            batch
                .column_by_name(f.name())
                .cloned()
                .unwrap_or_else(|| new_null_array(f.data_type(), batch.num_rows()))
        })
        .collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| Error::output_from("cannot widen a batch to the final schema", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMicrosecondType;
    use arrow_array::{Array, Int64Array};

    fn row(s: &str) -> Row {
        Row::from_json(s).unwrap()
    }

    #[test]
    fn typed_columns_flattened_objects_and_unknown_values_kept() {
        let mut b = BatchBuilder::new(schema::ALERT_V2);
        b.push(&row(
            r#"{"id":"a","severity":"brandNewSeverity","createdDateTime":"2026-01-02T03:04:05.1234567Z",
               "mitreTechniques":["T1","T2"],"evidence":[{"@odata.type":"x","verdict":"malicious"}],
               "additionalData":{"k":1},"newProp":{"inner":{"n":3}},"empty":{}}"#,
        ));
        b.push(&row(r#"{"id":"b","createdDateTime":"not a time","laterProp":2.5}"#));
        let batch = b.finish_batch();
        let s = batch.schema();
        assert_eq!(batch.num_rows(), 2);
        let sev = batch.column_by_name("severity").unwrap().as_dictionary::<Int32Type>();
        let values = sev.values().as_string::<i32>();
        assert_eq!(values.value(sev.keys().value(0) as usize), "brandNewSeverity");
        assert!(sev.is_null(1));
        let t = batch
            .column_by_name("createdDateTime")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!(t.value(0), 1_767_323_045_123_456);
        assert!(t.is_null(1));
        let techniques = batch.column_by_name("mitreTechniques").unwrap().as_list::<i32>();
        assert_eq!(techniques.value(0).as_string::<i32>().value(1), "T2");
        let evidence = batch.column_by_name("evidence").unwrap().as_string::<i32>();
        assert_eq!(evidence.value(0), r#"[{"@odata.type":"x","verdict":"malicious"}]"#);
        assert_eq!(
            batch.column_by_name("additionalData").unwrap().as_string::<i32>().value(0),
            r#"{"k":1}"#
        );
        let n = batch.column_by_name("newProp.inner.n").unwrap();
        assert_eq!(n.as_any().downcast_ref::<Int64Array>().unwrap().value(0), 3);
        assert_eq!(batch.column_by_name("empty").unwrap().as_string::<i32>().value(0), "{}");
        let later = batch
            .column_by_name("laterProp")
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>();
        assert!(later.is_null(0));
        assert_eq!(later.value(1), 2.5);
        // The time that did not parse is kept, under its name, in `_unparsed`.
        let unparsed = batch.column_by_name(UNPARSED).unwrap().as_string::<i32>();
        assert!(unparsed.is_null(0));
        assert_eq!(unparsed.value(1), r#"{"createdDateTime":"not a time"}"#);
        // Declared columns come first, in the documented order; discovered ones after, in order of appearance.
        assert_eq!(s.field(0).name(), "id");
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        let tail = &names[schema::ALERT_V2.len()..];
        assert_eq!(tail, ["newProp.inner.n", "empty", "laterProp", UNPARSED]);
    }

    #[test]
    fn schema_widens_between_batches_and_widen_pads_with_nulls() {
        let mut b = BatchBuilder::new(&[]);
        b.push(&row(r#"{"a":1}"#));
        let first = b.finish_batch();
        b.push(&row(r#"{"b":"x","a":2}"#));
        let second = b.finish_batch();
        assert_eq!(first.num_columns(), 1);
        assert_eq!(second.num_columns(), 2);
        let wide = widen(&first, &second.schema()).unwrap();
        assert_eq!(wide.schema(), second.schema());
        assert!(wide.column(1).is_null(0));
    }

    #[test]
    fn hunting_types_and_empty_results_keep_their_columns() {
        let mut b = BatchBuilder::new(&[]);
        b.declare_hunting(&[
            ("Timestamp".into(), "DateTime".into()),
            ("Count".into(), "Int64".into()),
            ("Extra".into(), "Dynamic".into()),
            ("Ok".into(), "Boolean".into()),
        ]);
        let empty = b.finish_batch();
        assert_eq!((empty.num_rows(), empty.num_columns()), (0, 4));
        b.push(&row(r#"{"Timestamp":"2026-01-01T00:00:00","Count":7,"Extra":{"x":[1]},"Ok":true}"#));
        let batch = b.finish_batch();
        assert_eq!(
            batch.column(0).as_primitive::<TimestampMicrosecondType>().value(0),
            1_767_225_600_000_000
        );
        assert_eq!(batch.column(2).as_string::<i32>().value(0), r#"{"x":[1]}"#);
        assert!(batch.column(3).as_boolean().value(0));
    }

    #[test]
    fn duplicate_keys_and_non_objects_are_not_lost() {
        let mut b = BatchBuilder::new(&[]);
        b.push(&row(r#"{"a":1,"a":2}"#));
        b.push(&row(r#""bare""#));
        let batch = b.finish_batch();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column_by_name(UNPARSED).unwrap().as_string::<i32>().value(0), r#"{"a":2}"#);
        assert_eq!(batch.column_by_name("value").unwrap().as_string::<i32>().value(1), "bare");
    }
}
