//! Typed cells as text, for the outputs people read (the terminal table) and the text formats (CSV, TSV): one rule
//! per Arrow type the [`BatchBuilder`](crate::batches::BatchBuilder) makes.
//!
//! | column | text |
//! |---|---|
//! | null | empty |
//! | `Utf8` (text, JSON text), dictionary (enums) | the value |
//! | `Timestamp(µs, UTC)` | RFC 3339 in UTC with `Z`, as many fractional digits as it needs (`2026-05-27T10:40:29.059Z`) |
//! | `Int64`, `Float64`, `Boolean` | as JSON writes them |
//! | `List(Utf8)` | a JSON array (`["T1059","T1105"]`) |

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use std::fmt::Write as _;

/// One column of a batch, ready to write its cells as text.
pub(crate) struct TextColumn<'a> {
    array: &'a ArrayRef,
}

impl<'a> TextColumn<'a> {
    /// One column.
    pub(crate) fn new(array: &'a ArrayRef) -> TextColumn<'a> {
        TextColumn { array }
    }

    /// Every column of `batch`, in order.
    pub(crate) fn all(batch: &'a RecordBatch) -> Vec<TextColumn<'a>> {
        batch.columns().iter().map(|array| TextColumn { array }).collect()
    }

    /// Appends row `row`'s cell to `out` (nothing for null).
    pub(crate) fn write(&self, row: usize, out: &mut String) {
        let a = self.array;
        if row >= a.len() || a.is_null(row) {
            return;
        }
        match a.data_type() {
            DataType::Utf8 => out.push_str(a.as_string::<i32>().value(row)),
            DataType::LargeUtf8 => out.push_str(a.as_string::<i64>().value(row)),
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                let d = a.as_dictionary::<Int32Type>();
                let key = d.keys().value(row);
                let values = d.values().as_string::<i32>();
                if let Ok(k) = usize::try_from(key)
                    && k < values.len()
                {
                    out.push_str(values.value(k));
                }
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
                match chrono::DateTime::from_timestamp_micros(us) {
                    Some(t) => out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                    None => {
                        let _ = write!(out, "{us}");
                    }
                }
            }
            DataType::Int64 => {
                let _ = write!(out, "{}", a.as_primitive::<Int64Type>().value(row));
            }
            DataType::Float64 => {
                let f = a.as_primitive::<Float64Type>().value(row);
                // JSON's spelling (`2.5`, `1e300`); NaN and infinities, which JSON cannot hold, as Rust writes them.
                match serde_json::Number::from_f64(f) {
                    Some(n) => {
                        let _ = write!(out, "{n}");
                    }
                    None => {
                        let _ = write!(out, "{f}");
                    }
                }
            }
            DataType::Boolean => out.push_str(if a.as_boolean().value(row) { "true" } else { "false" }),
            DataType::List(_) => {
                let items = a.as_list::<i32>().value(row);
                let texts: Vec<Option<String>> = (0..items.len())
                    .map(|i| {
                        let mut s = String::new();
                        (!items.is_null(i)).then(|| {
                            TextColumn { array: &items }.write(i, &mut s);
                            s
                        })
                    })
                    .collect();
                out.push_str(&serde_json::to_string(&texts).unwrap_or_default());
            }
            // Not made by the batch builder; said rather than guessed.
            other => {
                let _ = write!(out, "<{other}>");
            }
        }
    }

    /// Row `row`'s cell as a new string.
    pub(crate) fn text(&self, row: usize) -> String {
        let mut s = String::new();
        self.write(row, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Row;
    use crate::batches::{BatchBuilder, schema::ALERT_V2};

    #[test]
    fn each_type_has_one_text() {
        let mut b = BatchBuilder::new(ALERT_V2);
        b.push(
            &Row::from_json(
                r#"{"id":"a","severity":"high","createdDateTime":"2026-05-27T10:40:29.0590000Z",
                    "lastUpdateDateTime":"2026-05-27T10:40:29Z","mitreTechniques":["T1059","T1105"],
                    "evidence":[{"k":"v"}],"n":3,"f":2.5,"ok":true}"#,
            )
            .unwrap(),
        );
        b.push(&Row::from_json(r#"{"id":"b"}"#).unwrap());
        let batch = b.finish_batch();
        let cols = TextColumn::all(&batch);
        let cell = |name: &str, row: usize| cols[batch.schema().index_of(name).unwrap()].text(row);
        assert_eq!(cell("id", 0), "a");
        assert_eq!(cell("severity", 0), "high");
        assert_eq!(cell("severity", 1), "");
        assert_eq!(cell("createdDateTime", 0), "2026-05-27T10:40:29.059Z");
        assert_eq!(cell("lastUpdateDateTime", 0), "2026-05-27T10:40:29Z");
        assert_eq!(cell("mitreTechniques", 0), r#"["T1059","T1105"]"#);
        assert_eq!(cell("mitreTechniques", 1), "");
        assert_eq!(cell("evidence", 0), r#"[{"k":"v"}]"#);
        assert_eq!(cell("n", 0), "3");
        assert_eq!(cell("f", 0), "2.5");
        assert_eq!(cell("ok", 0), "true");
        assert_eq!(cell("n", 1), "");
    }
}
