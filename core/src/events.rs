//! Events on the bus, shaped as SSM's on EventBridge: what every area
//! publishes, and the port it publishes through.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::SsmError;

/// An event ready to publish: detail-type, resources (node ids; the adapter
/// makes ARNs of them) and detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub detail_type: &'static str,
    pub resources: Vec<String>,
    pub detail: Value,
}

#[async_trait]
pub trait EventSink: Send + Sync {
    /// Publishes one SSM-shaped event.
    async fn publish(
        &self,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
    ) -> Result<(), SsmError>;

    /// Publishes each, in order (the adapter sends them in as few requests
    /// as the bus takes). The default is one [`Self::publish`] each.
    async fn publish_many(&self, events: Vec<Event>) -> Result<(), SsmError> {
        for e in events {
            self.publish(e.detail_type, e.resources, e.detail).await?;
        }
        Ok(())
    }
}
