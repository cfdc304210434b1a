//! Inventory's records: SSM's `InventoryItem` (what PutInventory and the
//! agent's report carry) and what is kept of it per node and type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry of a type's content: attribute name to value, as SSM's
/// `InventoryItemEntry` (a string-to-string map).
pub type Entry = BTreeMap<String, String>;

/// SSM's `InventoryItem`: one type's data for one node, as PutInventory
/// takes it and as the agent's report carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryItem {
    pub type_name: String,
    pub schema_version: String,
    /// `2026-12-01T11:22:46Z`.
    pub capture_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// `None`: only the hash was sent (the data is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<Entry>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// One node's data of one type, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredType {
    pub instance_id: String,
    pub type_name: String,
    pub schema_version: String,
    pub capture_time: String,
    pub content_hash: String,
    pub content: Vec<Entry>,
}

/// What is known of a custom type: its latest schema version, the
/// attributes seen, and a version at or below which data is ignored
/// (DeleteInventory's DisableSchema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomSchema {
    pub type_name: String,
    pub version: String,
    pub attributes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_version: Option<String>,
}

/// The hash of a type's content: SHA-256 of its JSON, entries' attributes
/// in name order, so equal content always hashes alike. SSM's documents
/// call the field an MD5; to the service it is an opaque text compared
/// as is, and a caller's own hash is kept as given.
pub fn content_hash(content: &[Entry]) -> String {
    let bytes = serde_json::to_vec(content).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// Content as kept and carried when large: its JSON, LZ4-compressed with
/// the length in front. A Debian node's applications shrink about five
/// times, so a type of a thousand packages fits a queue message and a
/// table item.
pub fn pack<T: Serialize>(value: &T) -> Vec<u8> {
    lz4_flex::compress_prepend_size(&serde_json::to_vec(value).unwrap_or_default())
}

/// The inverse of [`pack`], refusing anything that would unpack to more
/// than `max` bytes (the length in front is checked before any work).
pub fn unpack<T: serde::de::DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, String> {
    let Some(len) = bytes.get(..4) else {
        return Err("packed content is truncated".into());
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > max {
        return Err(format!(
            "packed content unpacks to {len} bytes, more than {max}"
        ));
    }
    let json = lz4_flex::decompress_size_prepended(bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// Schema versions compare as numbers, part by part (`1.10` > `1.9`).
pub fn version_key(v: &str) -> (u64, u64) {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_content_hashes_alike_and_a_change_changes_it() {
        let a: Entry = [
            ("Name".into(), "bash".into()),
            ("Version".into(), "5.2".into()),
        ]
        .into();
        let mut b = Entry::new();
        b.insert("Version".into(), "5.2".into());
        b.insert("Name".into(), "bash".into());
        assert_eq!(content_hash(std::slice::from_ref(&a)), content_hash(&[b]));
        let mut c = a.clone();
        c.insert("Version".into(), "5.3".into());
        assert_ne!(content_hash(&[a]), content_hash(&[c]));
    }

    #[test]
    fn packed_content_round_trips_and_a_bomb_is_refused() {
        let content: Vec<Entry> = (0..500)
            .map(|i| {
                [
                    ("Name".to_string(), format!("package-{i}")),
                    ("Summary".into(), "a summary".into()),
                ]
                .into()
            })
            .collect();
        let packed = pack(&content);
        assert!(packed.len() * 3 < serde_json::to_vec(&content).unwrap().len());
        assert_eq!(unpack::<Vec<Entry>>(&packed, 1 << 20).unwrap(), content);
        assert!(
            unpack::<Vec<Entry>>(&packed, 100)
                .unwrap_err()
                .contains("more than 100")
        );
        assert!(unpack::<Vec<Entry>>(&packed[..2], 1 << 20).is_err());
        let mut bad = packed.clone();
        bad.truncate(packed.len() / 2);
        assert!(unpack::<Vec<Entry>>(&bad, 1 << 20).is_err());
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("1.10") > version_key("1.9"));
        assert_eq!(version_key("1.0"), (1, 0));
    }
}
