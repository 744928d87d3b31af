//! [`Row`]: one result item as the service sent it — its JSON text, kept whole. Pages carry rows as bytes so that JSON
//! outputs pass them through untouched and Arrow decoding reads them without building a tree per item; a
//! `serde_json::Value` is made only where a caller asks for one.

use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One result item: valid JSON text (an object, for every Graph collection).
///
/// Two rows are equal when their texts are (the same JSON written differently is not equal).
#[derive(Clone)]
pub struct Row(Box<RawValue>);

impl PartialEq for Row {
    fn eq(&self, other: &Row) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Row {}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Row").field(&self.0.get()).finish()
    }
}

impl Row {
    /// The item's JSON text, as received.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// The item parsed into a `serde_json::Value` tree (allocates; the JSON sinks never need it).
    pub fn to_value(&self) -> Value {
        // The text is valid JSON by construction, so this does not fail; a tree too deep for serde_json's recursion
        // limit (impossible for text serde_json itself accepted) would come back as null.
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// A row from a value.
    pub fn from_value(v: &Value) -> Row {
        // Serialising a Value into a string cannot fail (its map keys are strings).
        Row(serde_json::value::to_raw_value(v).unwrap_or_else(|_| null_raw()))
    }

    /// A row from JSON text; `None` when the text is not valid JSON.
    pub fn from_json(text: &str) -> Option<Row> {
        RawValue::from_string(text.to_string()).ok().map(Row)
    }

    pub(crate) fn from_raw(raw: Box<RawValue>) -> Row {
        Row(raw)
    }

    /// The item's `id` when it is an object with a string `id` (read without parsing the rest into a tree).
    pub fn id(&self) -> Option<Cow<'_, str>> {
        use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
        /// Walks the keys until `id` and stops there: the rest of the row is not read (ids come first in Graph's
        /// items, so this reads a few dozen bytes of a 4 KB alert).
        struct FindId<'s, 'de>(&'s mut Option<Cow<'de, str>>);
        impl<'de> Visitor<'de> for FindId<'_, 'de> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "id" {
                        *self.0 = map.next_value::<Option<Cow<'de, str>>>()?;
                        // Not an error: the way to leave the object unread.
                        return Err(A::Error::custom("id found"));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(())
            }
        }
        let mut found = None;
        let mut de = serde_json::Deserializer::from_str(self.0.get());
        let _ = serde::Deserializer::deserialize_map(&mut de, FindId(&mut found));
        found
    }
}

fn null_raw() -> Box<RawValue> {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("'null' is JSON"))
}

impl From<Value> for Row {
    fn from(v: Value) -> Row {
        Row::from_value(&v)
    }
}

impl From<&Row> for Value {
    fn from(r: &Row) -> Value {
        r.to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_read_from_the_text_and_values_round_trip() {
        let r = Row::from_json(r#"{"title":"a \"b\"","id":"x\u0041","n":[1,{"id":"inner"}]}"#).unwrap();
        assert_eq!(r.id().as_deref(), Some("xA"));
        assert_eq!(r.to_value()["title"], "a \"b\"");
        assert_eq!(Row::from_value(&r.to_value()).to_value(), r.to_value());
        assert_eq!(Row::from_json("[1]").unwrap().id(), None);
        assert_eq!(Row::from_json(r#"{"id":5}"#).unwrap().id(), None);
        assert!(Row::from_json("{").is_none());
    }
}
