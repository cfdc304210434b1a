//! The ports every Compliance operation works through.

use super::ports::ComplianceStore;
use crate::arn::ArnScope;
use crate::events::{Event, EventSink};
use crate::fleet::NodeStore;

#[derive(Clone, Copy)]
pub struct ComplianceContext<'a> {
    pub store: &'a dyn ComplianceStore,
    /// The registered nodes: only they have compliance.
    pub nodes: &'a dyn NodeStore,
    pub events: &'a dyn EventSink,
    pub scope: &'a ArnScope,
}

impl ComplianceContext<'_> {
    /// The ARN a resource's compliance is authorized by: SSM's for a
    /// managed node, EC2's for an instance id.
    pub fn resource_arn(&self, resource_id: &str) -> String {
        self.scope.node_arn(resource_id)
    }

    /// Publishes an event; a failure is logged, never fatal: the change it
    /// reports has already been written.
    pub(crate) async fn emit(&self, event: Event) {
        if let Err(e) = self
            .events
            .publish(event.detail_type, event.resources, event.detail)
            .await
        {
            tracing::warn!(error = %e, "compliance event not published");
        }
    }
}
