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
    pub items: Vec<InventoryItem>,
}
