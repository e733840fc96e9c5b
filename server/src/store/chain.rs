//! The hash chain: each event's SHA-256 covers its canonical content and the previous event's
//! hash; a separate head row records the newest id and hash so a cut-off tail is visible too.

use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields an event's hash covers, in a fixed order.
pub struct EventContent<'a> {
    pub id: i64,
    pub ts: &'a str,
    pub actor: &'a str,
    pub role: &'a str,
    pub source_ip: &'a str,
    pub action: &'a str,
    pub object: &'a str,
    pub outcome: &'a str,
    /// Already canonical JSON (see [`canonical_json`]).
    pub details: &'a str,
    pub prev_hash: &'a str,
}

impl EventContent<'_> {
    /// A JSON array makes the encoding unambiguous whatever the fields contain.
    pub fn canonical(&self) -> String {
        serde_json::json!([
            self.id,
            self.ts,
            self.actor,
            self.role,
            self.source_ip,
            self.action,
            self.object,
            self.outcome,
            self.details,
            self.prev_hash
        ])
        .to_string()
    }

    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }
}

/// JSON with object keys sorted at every depth, so equal values always hash equally.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content<'a>(actor: &'a str, prev: &'a str) -> EventContent<'a> {
        EventContent {
            id: 1,
            ts: "2026-11-22T00:00:00.000000Z",
            actor,
            role: "admin",
            source_ip: "127.0.0.1",
            action: "user.create",
            object: "user:bob",
            outcome: "success",
            details: "{}",
            prev_hash: prev,
        }
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let a = content("alice", GENESIS_HASH).hash();
        assert_ne!(a, content("alicf", GENESIS_HASH).hash());
        assert_ne!(a, content("alice", "1").hash());
        assert_eq!(a, content("alice", GENESIS_HASH).hash());
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let mut x = content("a|b", GENESIS_HASH);
        x.role = "c";
        let mut y = content("a", GENESIS_HASH);
        y.role = "b|c";
        assert_ne!(x.hash(), y.hash());
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":true,"y":[{"d":1,"c":2}]}}"#).expect("json");
        assert_eq!(canonical_json(&v), r#"{"a":{"y":[{"c":2,"d":1}],"z":true},"b":1}"#);
    }
}
