//! The ports every Compliance operation works through.

use super::ports::ComplianceStore;
use crate::arn::ArnScope;
use crate::fleet::NodeStore;

#[derive(Clone, Copy)]
pub struct ComplianceContext<'a> {
    pub store: &'a dyn ComplianceStore,
    /// The registered nodes: only they have compliance.
    pub nodes: &'a dyn NodeStore,
    pub scope: &'a ArnScope,
}

impl ComplianceContext<'_> {
    /// The ARN a resource's compliance is authorized by: SSM's for a
    /// managed node, EC2's for an instance id.
    pub fn resource_arn(&self, resource_id: &str) -> String {
        self.scope.node_arn(resource_id)
    }
}
