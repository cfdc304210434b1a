//! Fleet events on the `steward` bus.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use steward_core::SsmError;
use steward_core::fleet::AgentEvents;

use crate::Stack;
use crate::internal;

pub const AGENT_SOURCE: &str = "steward.agent";
pub const MESSAGE_REJECTED: &str = "Steward Agent Message Rejected";

#[derive(Clone, Debug)]
pub struct FleetEvents {
    client: Client,
    bus: String,
}

impl FleetEvents {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.events.clone(),
            bus: stack.settings.event_bus.clone(),
        }
    }
}

#[async_trait]
impl AgentEvents for FleetEvents {
    async fn message_rejected(
        &self,
        instance_id: &str,
        reason: &str,
        queue_message_id: &str,
    ) -> Result<(), SsmError> {
        let detail = serde_json::json!({
            "instance-id": instance_id,
            "reason": reason,
            "queue-message-id": queue_message_id,
        });
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(AGENT_SOURCE)
            .detail_type(MESSAGE_REJECTED)
            .resources(instance_id)
            .detail(detail.to_string())
            .build();
        let resp = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(internal)?;
        if resp.failed_entry_count > 0 {
            tracing::error!(instance_id, "EventBridge refused the event");
            return Err(SsmError::internal());
        }
        Ok(())
    }
}
