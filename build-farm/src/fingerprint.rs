//! Content fingerprints for cache keys.
//!
//! A [`Fingerprint`] is built from named components. Each component is hashed
//! with its name and length so that ("ab","c") and ("a","bc") differ, and the
//! components are kept so a manifest can show what went into a key and a
//! changed component can be named when a key changes (cargo's DirtyReason).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// An ordered set of named inputs and their combined hash.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    /// Component name -> hex sha256 of the component's bytes.
    pub components: BTreeMap<String, String>,
}

impl Fingerprint {
    /// An empty fingerprint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a component from raw bytes. Adding a name twice replaces it.
    pub fn with(mut self, name: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.components
            .insert(name.to_string(), hex::encode(Sha256::digest(bytes.as_ref())));
        self
    }

    /// Add a component that is already a hash (e.g. an upstream stage's key),
    /// kept verbatim so the chain of keys stays readable in manifests.
    pub fn with_hash(mut self, name: &str, hex_hash: &str) -> Self {
        self.components.insert(name.to_string(), hex_hash.to_string());
        self
    }

    /// Add a component from any serializable value (as canonical JSON; maps
    /// must be ordered, e.g. BTreeMap, for the result to be stable).
    pub fn with_json<T: Serialize>(self, name: &str, value: &T) -> Self {
        let text = serde_json::to_vec(value).unwrap_or_default();
        self.with(name, text)
    }

    /// The combined key: sha256 over "name=hash\n" lines in name order.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        for (name, value) in &self.components {
            h.update(name.as_bytes());
            h.update(b"=");
            h.update(value.as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    /// A short form of [`key`](Self::key) for directory names.
    pub fn short_key(&self) -> String {
        self.key()[..16].to_string()
    }

    /// The names of components that differ from `older` (added, removed or
    /// changed): why a result is being rebuilt.
    pub fn dirty_reasons(&self, older: &Fingerprint) -> Vec<String> {
        let mut reasons = Vec::new();
        for (name, value) in &self.components {
            match older.components.get(name) {
                None => reasons.push(format!("{name}: new input")),
                Some(old) if old != value => reasons.push(format!("{name}: changed")),
                _ => {}
            }
        }
        for name in older.components.keys() {
            if !self.components.contains_key(name) {
                reasons.push(format!("{name}: no longer an input"));
            }
        }
        reasons
    }
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_every_component_and_not_on_order_of_adding() {
        let a = Fingerprint::new().with("source", "abc").with("profile", "x");
        let b = Fingerprint::new().with("profile", "x").with("source", "abc");
        assert_eq!(a.key(), b.key());
        let c = Fingerprint::new().with("source", "abd").with("profile", "x");
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn component_boundaries_matter() {
        let a = Fingerprint::new().with("a", "bc");
        let b = Fingerprint::new().with("ab", "c");
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn dirty_reasons_name_the_changed_input() {
        let old = Fingerprint::new().with("source", "1").with("gcc", "12");
        let new = Fingerprint::new().with("source", "1").with("gcc", "13").with("patches", "p");
        let r = new.dirty_reasons(&old);
        assert_eq!(r, vec!["gcc: changed".to_string(), "patches: new input".to_string()]);
    }
}
