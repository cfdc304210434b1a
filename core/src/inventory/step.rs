//! What an `aws:softwareInventory` step asks the agent to gather, and the
//! report it sends back through ingest.

use serde::{Deserialize, Serialize};

use super::model::InventoryItem;

pub const SOFTWARE_INVENTORY: &str = "aws:softwareInventory";

/// The collectors a step turns on (SSM's Enabled/Disabled inputs).
/// `AWS:InstanceInformation` is always gathered, as SSM's agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherInventory {
    pub applications: bool,
    pub aws_components: bool,
    pub network_config: bool,
    pub services: bool,
    pub custom_inventory: bool,
}

impl Default for GatherInventory {
    fn default() -> Self {
        GatherInventory {
            applications: true,
            aws_components: true,
            network_config: true,
            services: true,
            custom_inventory: true,
        }
    }
}

/// One part of a gather's changed types, sent before the invocation's
/// final update. A gather whose types all kept their content hash sends
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryReport {
    pub command_id: String,
    /// The items as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<InventoryItem>,
    /// The items [`super::pack`]ed, in base64: what the agent sends.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub packed: String,
}

impl InventoryReport {
    /// A report of `items`, packed.
    pub fn packed(command_id: &str, items: &[InventoryItem]) -> Self {
        use base64::Engine;
        InventoryReport {
            command_id: command_id.to_string(),
            items: Vec::new(),
            packed: base64::engine::general_purpose::STANDARD.encode(super::pack(&items)),
        }
    }

    /// Every item, unpacked (at most `max` bytes of JSON).
    pub fn all_items(&self, max: usize) -> Result<Vec<InventoryItem>, String> {
        use base64::Engine;
        let mut items = self.items.clone();
        if !self.packed.is_empty() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&self.packed)
                .map_err(|e| format!("packed items are not base64: {e}"))?;
            items.extend(super::unpack::<Vec<InventoryItem>>(&bytes, max)?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_report_reads_back_its_items_within_a_bound() {
        let item = InventoryItem {
            type_name: "Custom:A".into(),
            schema_version: "1.0".into(),
            capture_time: "2026-12-01T10:00:00Z".into(),
            content_hash: None,
            content: Some(vec![[("K".to_string(), "v".repeat(5000))].into()]),
            context: Default::default(),
        };
        let r = InventoryReport::packed("c", std::slice::from_ref(&item));
        assert!(r.packed.len() < 1000);
        assert_eq!(r.all_items(1 << 20).unwrap(), [item]);
        assert!(
            r.all_items(1000).is_err(),
            "more than the bound unpacks to nothing"
        );
        let garbage = InventoryReport {
            packed: "!!".into(),
            ..r
        };
        assert!(garbage.all_items(1 << 20).is_err());
    }
}
