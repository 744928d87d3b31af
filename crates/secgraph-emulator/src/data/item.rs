//! A stored item: its JSON value and, once it has been served, its serialised bytes, so that an unfiltered page is a
//! copy of bytes rather than a walk of every item's tree. Any mutable access drops the bytes (they are made again
//! on the next read), so they can never go stale.

use serde_json::Value;
use std::sync::OnceLock;

/// A collection item (alert, incident, legacy alert, secure score, control profile).
#[derive(Debug, Default)]
pub struct Item {
    value: Value,
    json: OnceLock<Box<[u8]>>,
}

impl Item {
    /// Wraps a value.
    pub fn new(value: Value) -> Item {
        Item {
            value,
            json: OnceLock::new(),
        }
    }

    /// The item's compact JSON, serialised on first use.
    pub fn json(&self) -> &[u8] {
        self.json
            .get_or_init(|| serde_json::to_vec(&self.value).unwrap_or_default().into_boxed_slice())
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl Clone for Item {
    fn clone(&self) -> Item {
        Item::new(self.value.clone())
    }
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        self.value == other.value
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
        &self.value
    }
}

impl std::ops::DerefMut for Item {
    fn deref_mut(&mut self) -> &mut Value {
        self.json = OnceLock::new();
        &mut self.value
    }
}

impl serde::Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}
