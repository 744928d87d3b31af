//! A stored item: its JSON value and, once it has been served, its serialised bytes, so that an unfiltered page is a
//! copy of bytes rather than a walk of every item's tree. Any mutable access drops the bytes (they are made again
//! on the next read), so they can never go stale. A compact item keeps only its bytes (a few KB instead of a tree
//! several times larger) and parses them when read; [`Item::with_value`] reads without keeping the tree.

use serde_json::Value;
use std::sync::OnceLock;

/// A collection item (alert, incident, legacy alert, secure score, control profile). At least one of the value and
/// the bytes is always present.
#[derive(Debug, Default)]
pub struct Item {
    value: OnceLock<Value>,
    json: OnceLock<Box<[u8]>>,
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

impl Item {
    /// Wraps a value.
    pub fn new(value: Value) -> Item {
        Item {
            value: OnceLock::from(value),
            json: OnceLock::new(),
        }
    }

    /// An item that keeps only its serialised bytes until it is read as a value.
    pub fn compact(value: Value) -> Item {
        let bytes = serde_json::to_vec(&value).unwrap_or_default().into_boxed_slice();
        Item {
            value: OnceLock::new(),
            json: OnceLock::from(bytes),
        }
    }

    /// The item's compact JSON, serialised on first use.
    pub fn json(&self) -> &[u8] {
        self.json
            .get_or_init(|| serde_json::to_vec(self.value()).unwrap_or_default().into_boxed_slice())
    }

    /// The value (parsed from the bytes, and kept, the first time a compact item is read this way).
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| self.json.get().map_or(Value::Null, |b| parse(b)))
    }

    /// Runs `f` on the value without keeping a parsed tree of a compact item (for scans over many items).
    pub fn with_value<R>(&self, f: impl FnOnce(&Value) -> R) -> R {
        match (self.value.get(), self.json.get()) {
            (Some(v), _) => f(v),
            (None, Some(b)) => f(&parse(b)),
            (None, None) => f(&Value::Null),
        }
    }
}

impl Clone for Item {
    /// A compact item stays compact (its bytes are copied); otherwise the value is.
    fn clone(&self) -> Item {
        match (self.value.get(), self.json.get()) {
            (Some(v), _) => Item::new(v.clone()),
            (None, Some(b)) => Item {
                value: OnceLock::new(),
                json: OnceLock::from(b.clone()),
            },
            (None, None) => Item::default(),
        }
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        self.with_value(|a| other.with_value(|b| a == b))
    }
}

impl From<Value> for Item {
    fn from(value: Value) -> Item {
        Item::new(value)
    }
}

impl std::ops::Deref for Item {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl std::ops::DerefMut for Item {
    fn deref_mut(&mut self) -> &mut Value {
        let v = match self.value.take() {
            Some(v) => v,
            None => self.json.get().map_or(Value::Null, |b| parse(b)),
        };
        self.json = OnceLock::new();
        self.value = OnceLock::from(v);
        self.value.get_mut().unwrap_or_else(|| unreachable!("the value was set just above"))
    }
}

impl serde::Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_value(|v| v.serialize(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_follow_every_change_and_compact_items_read_the_same() {
        let mut i = Item::new(json!({"id": "a", "n": 1}));
        assert_eq!(i.json(), br#"{"id":"a","n":1}"#);
        i["n"] = json!(2);
        assert_eq!(i.json(), br#"{"id":"a","n":2}"#, "a change drops the old bytes");

        let c = Item::compact(json!({"id": "b", "n": 3}));
        assert!(c.value.get().is_none(), "a compact item keeps no tree");
        assert_eq!(c.with_value(|v| v["n"].clone()), json!(3));
        assert!(c.value.get().is_none(), "with_value does not keep one either");
        assert_eq!(c["id"], "b");
        assert_eq!(c.json(), br#"{"id":"b","n":3}"#);
        let mut c = c;
        c["n"] = json!(4);
        assert_eq!(c.json(), br#"{"id":"b","n":4}"#);
    }
}
