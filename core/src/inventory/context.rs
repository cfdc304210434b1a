//! The ports every Inventory operation works through.

use super::ports::InventoryStore;
use crate::arn::ArnScope;
use crate::fleet::NodeStore;

#[derive(Clone, Copy)]
pub struct InventoryContext<'a> {
    pub store: &'a dyn InventoryStore,
    /// The registered nodes: only they have inventory.
    pub nodes: &'a dyn NodeStore,
    pub scope: &'a ArnScope,
}

impl InventoryContext<'_> {
    /// The ARN a node's inventory is authorized by.
    pub fn node_arn(&self, instance_id: &str) -> String {
        self.scope.node_arn(instance_id)
    }
}
