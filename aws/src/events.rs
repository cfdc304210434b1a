//! SSM-shaped events on the stack's EventBridge bus.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::Value;
use steward_core::SsmError;
use steward_core::events::EventSink;

use crate::Stack;

/// EventBridge refuses `aws.*` sources from anyone but AWS, so SSM-shaped
/// events carry `steward.ssm`: an SSM rule ports over by changing its source
/// (and naming the `steward` bus); detail-types and details are SSM's.
pub const SOURCE: &str = "steward.ssm";

#[derive(Clone, Debug)]
pub struct EventBus {
    client: Client,
    bus: String,
    region: String,
}

impl EventBus {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.events.clone(),
            bus: stack.settings.event_bus.clone(),
            region: stack.settings.region.clone(),
        }
    }

    /// SSM's resource ARN for a node id (EC2 instance or managed instance);
    /// an ARN (e.g. a parameter's) as it is.
    fn arn(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_string()
        } else if id.starts_with("i-") {
            format!("arn:aws:ec2:{}::instance/{id}", self.region)
        } else {
            format!("arn:aws:ssm:{}::managed-instance/{id}", self.region)
        }
    }
}

#[async_trait::async_trait]
impl EventSink for EventBus {
    async fn publish(
        &self,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
    ) -> Result<(), SsmError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .set_resources(Some(resources.iter().map(|r| self.arn(r)).collect()))
            .detail(detail.to_string())
            .build();
        let resp = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(
                    detail_type,
                    error = %aws_smithy_types::error::display::DisplayErrorContext(&e),
                    "event not published"
                );
                SsmError::internal()
            })?;
        if resp.failed_entry_count() > 0 {
            let code = resp
                .entries()
                .first()
                .and_then(|e| e.error_code())
                .unwrap_or_default()
                .to_string();
            tracing::warn!(detail_type, error_code = %code, "event refused by the bus");
            return Err(SsmError::internal());
        }
        Ok(())
    }
}
