//! KQL values and column types.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::cmp::Ordering;

/// A column type, named as runHuntingQuery's schema names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KType {
    /// `String`.
    String,
    /// `DateTime`.
    DateTime,
    /// `Int64`.
    Long,
    /// `Int32`.
    Int,
    /// `Double`.
    Real,
    /// `Boolean`.
    Bool,
    /// `Dynamic` (JSON).
    Dynamic,
    /// `TimeSpan`.
    Timespan,
}

impl KType {
    /// The name runHuntingQuery's `schema` gives the type.
    pub fn schema_name(self) -> &'static str {
        match self {
            KType::String => "String",
            KType::DateTime => "DateTime",
            KType::Long => "Int64",
            KType::Int => "Int32",
            KType::Real => "Double",
            KType::Bool => "Boolean",
            KType::Dynamic => "Dynamic",
            KType::Timespan => "TimeSpan",
        }
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum KV {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Long(i64),
    /// A real number.
    Real(f64),
    /// Text.
    Str(String),
    /// A time.
    Date(DateTime<Utc>),
    /// A duration.
    Span(Duration),
    /// A dynamic (JSON) value.
    Dyn(Value),
}

impl KV {
    /// The value's type; `None` for null.
    pub fn ktype(&self) -> Option<KType> {
        Some(match self {
            KV::Null => return None,
            KV::Bool(_) => KType::Bool,
            KV::Long(_) => KType::Long,
            KV::Real(_) => KType::Real,
            KV::Str(_) => KType::String,
            KV::Date(_) => KType::DateTime,
            KV::Span(_) => KType::Timespan,
            KV::Dyn(_) => KType::Dynamic,
        })
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            KV::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Text used by string operators (`has`, `contains`, …) on any value.
    pub fn text(&self) -> String {
        match self {
            KV::Null => String::new(),
            KV::Bool(b) => b.to_string(),
            KV::Long(n) => n.to_string(),
            KV::Real(f) => f.to_string(),
            KV::Str(s) => s.clone(),
            KV::Date(d) => graph_time(*d),
            KV::Span(d) => format!("{}s", d.num_seconds()),
            KV::Dyn(v) => match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }

    /// The JSON a result row carries.
    pub fn to_json(&self) -> Value {
        match self {
            KV::Null => Value::Null,
            KV::Bool(b) => json!(b),
            KV::Long(n) => json!(n),
            KV::Real(f) => json!(f),
            KV::Str(s) => json!(s),
            KV::Date(d) => json!(graph_time(*d)),
            KV::Span(d) => {
                let s = d.num_seconds();
                json!(format!(
                    "{}.{:02}:{:02}:{:02}",
                    s / 86400,
                    (s % 86400) / 3600,
                    (s % 3600) / 60,
                    s % 60
                ))
            }
            KV::Dyn(v) => v.clone(),
        }
    }

    /// Ordering for sort, min, max and comparisons; `None` when the types do not compare.
    pub fn compare(&self, other: &KV) -> Option<Ordering> {
        match (self, other) {
            (KV::Long(a), KV::Long(b)) => Some(a.cmp(b)),
            (KV::Long(a), KV::Real(b)) => (*a as f64).partial_cmp(b),
            (KV::Real(a), KV::Long(b)) => a.partial_cmp(&(*b as f64)),
            (KV::Real(a), KV::Real(b)) => a.partial_cmp(b),
            (KV::Str(a), KV::Str(b)) => Some(a.cmp(b)),
            (KV::Date(a), KV::Date(b)) => Some(a.cmp(b)),
            (KV::Span(a), KV::Span(b)) => Some(a.cmp(b)),
            (KV::Bool(a), KV::Bool(b)) => Some(a.cmp(b)),
            // Booleans compare with numbers as 0 and 1, as Kusto stores them.
            (KV::Bool(a), KV::Long(b)) => Some((*a as i64).cmp(b)),
            (KV::Long(a), KV::Bool(b)) => Some(a.cmp(&(*b as i64))),
            (KV::Dyn(a), KV::Dyn(b)) => Some(a.to_string().cmp(&b.to_string())),
            _ => None,
        }
    }

    /// A hashable key for grouping, distinct and joins.
    pub fn key(&self) -> String {
        match self {
            KV::Null => "\u{0}null".into(),
            KV::Str(s) => format!("s{s}"),
            other => format!("{:?}", other.to_json()),
        }
    }
}

/// A table: named, typed columns and rows.
#[derive(Debug, Clone, Default)]
pub struct KTable {
    /// Column names and types, in order.
    pub columns: Vec<(String, KType)>,
    /// Rows, each a cell per column.
    pub rows: Vec<Vec<KV>>,
}

impl KTable {
    /// The position of a column.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }
}

/// Formats a timestamp the way Graph does: UTC with seven fractional digits.
pub fn graph_time(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_nanos() / 100
    )
}
