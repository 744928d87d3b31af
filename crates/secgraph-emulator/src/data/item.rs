//! A stored item, in one of three forms:
//!
//! - **generated**: a [`Recipe`] — the few facts the item is made from. Seeded alerts, their legacy twins and
//!   incidents start this way: tens of bytes each, written out (alerts straight into a page's buffer) when served,
//!   never kept. This is what lets the emulator hold a million alerts in little memory.
//! - **bytes**: its serialised JSON (items that arrived whole, or were written to and then served);
//! - **value**: a `serde_json::Value` tree, once something asked for one.
//!
//! Any mutable access turns an item into a plain value (dropping its recipe and bytes), so nothing can go stale.
//! Reading a generated item as a value ([`Item::value`], `Deref`) keeps the tree it built; scans use
//! [`Item::with_value`], [`Item::props`] and [`Item::write_json`], which keep nothing.

use super::{AlertCore, Entities, IncidentCore};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// What a generated item is made from.
#[derive(Debug, Clone)]
pub struct Recipe {
    entities: Arc<Entities>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Alert(AlertCore),
    Legacy(AlertCore),
    Incident(IncidentCore),
}

impl Recipe {
    pub(super) fn alert(entities: &Arc<Entities>, core: AlertCore) -> Recipe {
        Recipe {
            entities: entities.clone(),
            kind: Kind::Alert(core),
        }
    }
    pub(super) fn legacy(entities: &Arc<Entities>, core: AlertCore) -> Recipe {
        Recipe {
            entities: entities.clone(),
            kind: Kind::Legacy(core),
        }
    }
    pub(super) fn incident(entities: &Arc<Entities>, core: IncidentCore) -> Recipe {
        Recipe {
            entities: entities.clone(),
            kind: Kind::Incident(core),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match &self.kind {
            Kind::Alert(c) => c.write(&self.entities, out),
            Kind::Legacy(_) | Kind::Incident(_) => {
                let _ = serde_json::to_writer(out, &self.value());
            }
        }
    }

    fn value(&self) -> Value {
        match &self.kind {
            Kind::Alert(c) => {
                let mut out = Vec::with_capacity(4096);
                c.write(&self.entities, &mut out);
                parse(&out)
            }
            Kind::Legacy(c) => super::legacy::build_legacy(c, &self.entities),
            Kind::Incident(c) => c.build(&self.entities.tenant_id),
        }
    }

    fn property(&self, name: &str) -> Option<Value> {
        match &self.kind {
            Kind::Alert(c) => c.property(name),
            Kind::Legacy(c) => super::legacy::legacy_property(c, name),
            Kind::Incident(c) => c.property(name),
        }
    }

    fn id(&self) -> String {
        match &self.kind {
            Kind::Alert(c) => c.id(),
            Kind::Legacy(c) => super::legacy::legacy_id(c),
            Kind::Incident(c) => c.id(),
        }
    }
}

/// A collection item (alert, incident, legacy alert, secure score, control profile).
#[derive(Debug, Default)]
pub struct Item {
    value: OnceLock<Value>,
    json: OnceLock<Box<[u8]>>,
    recipe: Option<Box<Recipe>>,
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

impl Item {
    /// Wraps a value.
    pub fn new(value: Value) -> Item {
        Item {
            value: OnceLock::from(value),
            ..Item::default()
        }
    }

    /// An item that keeps only its serialised bytes until it is read as a value.
    pub fn compact(value: Value) -> Item {
        let bytes = serde_json::to_vec(&value).unwrap_or_default().into_boxed_slice();
        Item {
            json: OnceLock::from(bytes),
            ..Item::default()
        }
    }

    /// An item written from its recipe whenever it is read.
    pub fn generated(recipe: Recipe) -> Item {
        Item {
            recipe: Some(Box::new(recipe)),
            ..Item::default()
        }
    }

    /// Appends the item's compact JSON to `out`. A value's bytes are kept for the next time (a plain page is then a
    /// copy); a generated item is written afresh and nothing is kept.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if let Some(b) = self.json.get() {
            out.extend_from_slice(b);
        } else if let (None, Some(r)) = (self.value.get(), &self.recipe) {
            r.write(out);
        } else {
            let b = self
                .json
                .get_or_init(|| serde_json::to_vec(self.value()).unwrap_or_default().into_boxed_slice());
            out.extend_from_slice(b);
        }
    }

    /// The value (built, and kept, the first time a compact or generated item is read this way).
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| match (self.json.get(), &self.recipe) {
            (Some(b), _) => parse(b),
            (None, Some(r)) => r.value(),
            (None, None) => Value::Null,
        })
    }

    /// Runs `f` on the value without keeping a tree of a compact or generated item (for scans over many items).
    pub fn with_value<R>(&self, f: impl FnOnce(&Value) -> R) -> R {
        match (self.value.get(), self.json.get(), &self.recipe) {
            (Some(v), _, _) => f(v),
            (None, Some(b), _) => f(&parse(b)),
            (None, None, Some(r)) => f(&r.value()),
            (None, None, None) => f(&Value::Null),
        }
    }

    /// The named top-level properties as an object, reading as little as the item's form allows: a generated
    /// item answers from its recipe, stored bytes are read for just those keys.
    pub fn props(&self, names: &[&str]) -> Value {
        if let Some(v) = self.value.get() {
            return pick(v, names);
        }
        if let Some(b) = self.json.get() {
            return read_props(b, names);
        }
        if let Some(r) = &self.recipe {
            let mut out = serde_json::Map::new();
            for name in names {
                match r.property(name) {
                    Some(v) => {
                        out.insert((*name).to_string(), v);
                    }
                    // Not one of the recipe's cheap properties: build the item once for all of them.
                    None => return pick(&r.value(), names),
                }
            }
            return Value::Object(out);
        }
        Value::Null
    }

    /// The item's `id`, read cheaply.
    pub fn id(&self) -> Option<String> {
        match (&self.recipe, self.value.get(), self.json.get()) {
            (Some(r), None, None) => Some(r.id()),
            _ => self.props(&["id"]).get("id").and_then(Value::as_str).map(str::to_string),
        }
    }
}

fn pick(v: &Value, names: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for name in names {
        if let Some(x) = v.get(*name) {
            out.insert((*name).to_string(), x.clone());
        }
    }
    Value::Object(out)
}

/// The named top-level properties of an item's JSON, as an object (the others skipped without being built).
fn read_props(bytes: &[u8], props: &[&str]) -> Value {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct View<'p>(&'p [&'p str]);
    impl<'de> Visitor<'de> for View<'_> {
        type Value = serde_json::Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if self.0.contains(&k.as_ref()) {
                    out.insert(k.into_owned(), map.next_value::<Value>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(View(props)).map(Value::Object).unwrap_or(Value::Null)
}

impl Clone for Item {
    /// A compact or generated item stays so; otherwise the value is copied.
    fn clone(&self) -> Item {
        match (self.value.get(), self.json.get()) {
            (Some(v), _) => Item::new(v.clone()),
            (None, Some(b)) => Item {
                json: OnceLock::from(b.clone()),
                ..Item::default()
            },
            (None, None) => Item {
                recipe: self.recipe.clone(),
                ..Item::default()
            },
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
            None => match (self.json.get(), &self.recipe) {
                (Some(b), _) => parse(b),
                (None, Some(r)) => r.value(),
                (None, None) => Value::Null,
            },
        };
        self.json = OnceLock::new();
        self.recipe = None;
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

    fn json_of(i: &Item) -> Vec<u8> {
        let mut out = Vec::new();
        i.write_json(&mut out);
        out
    }

    #[test]
    fn bytes_follow_every_change_and_compact_items_read_the_same() {
        let mut i = Item::new(json!({"id": "a", "n": 1}));
        assert_eq!(json_of(&i), br#"{"id":"a","n":1}"#);
        i["n"] = json!(2);
        assert_eq!(json_of(&i), br#"{"id":"a","n":2}"#, "a change drops the old bytes");

        let c = Item::compact(json!({"id": "b", "n": 3}));
        assert!(c.value.get().is_none(), "a compact item keeps no tree");
        assert_eq!(c.with_value(|v| v["n"].clone()), json!(3));
        assert_eq!(c.props(&["n", "absent"]), json!({"n": 3}));
        assert!(c.value.get().is_none(), "with_value and props do not keep one either");
        assert_eq!(c.id().as_deref(), Some("b"));
        assert_eq!(c["id"], "b");
        assert_eq!(json_of(&c), br#"{"id":"b","n":3}"#);
        let mut c = c;
        c["n"] = json!(4);
        assert_eq!(json_of(&c), br#"{"id":"b","n":4}"#);
    }
}
