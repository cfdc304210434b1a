//! SSM-shaped events on the stack's EventBridge bus.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::Value;
use steward_core::SsmError;
use steward_core::events::{Event, EventSink};

use crate::Stack;
use crate::item::jittered_backoff;

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

/// EventBridge's limits on one PutEvents: entries, and bytes (as it counts
/// them: source, detail-type, detail and resources).
const MAX_BATCH_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Tries at entries the bus keeps failing.
const PUT_ATTEMPTS: u32 = 4;

/// An entry's size as EventBridge counts it against [`MAX_BATCH_BYTES`].
fn entry_size(e: &PutEventsRequestEntry) -> usize {
    e.source().map_or(0, str::len)
        + e.detail_type().map_or(0, str::len)
        + e.detail().map_or(0, str::len)
        + e.resources().iter().map(String::len).sum::<usize>()
}

impl EventBus {
    /// The bus's entry for one SSM-shaped event.
    fn entry(
        &self,
        detail_type: &str,
        resources: &[String],
        detail: &Value,
    ) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .set_resources(Some(resources.iter().map(|r| self.arn(r)).collect()))
            .detail(detail.to_string())
            .build()
    }

    /// One PutEvents of `entries` (within the limits), resending the ones
    /// the bus reports failed.
    async fn put_batch(&self, mut entries: Vec<PutEventsRequestEntry>) -> Result<(), SsmError> {
        for attempt in 0..PUT_ATTEMPTS {
            let first_type = entries
                .first()
                .and_then(|e| e.detail_type())
                .unwrap_or_default()
                .to_string();
            let resp = self
                .client
                .put_events()
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| {
                    tracing::warn!(
                        detail_type = %first_type,
                        events = entries.len(),
                        error = %aws_smithy_types::error::display::DisplayErrorContext(&e),
                        "event not published"
                    );
                    SsmError::internal()
                })?;
            if resp.failed_entry_count() == 0 {
                return Ok(());
            }
            // The response's entries answer the request's, in order.
            let results = resp.entries();
            let code = results
                .iter()
                .find_map(|r| r.error_code())
                .unwrap_or_default()
                .to_string();
            entries = entries
                .into_iter()
                .zip(results)
                .filter(|(_, r)| r.error_code().is_some())
                .map(|(e, _)| e)
                .collect();
            if entries.is_empty() {
                // Counted failed, yet none marked: nothing to resend.
                tracing::warn!(detail_type = %first_type, "the bus reported failures without naming them");
                break;
            }
            if attempt + 1 == PUT_ATTEMPTS {
                tracing::warn!(detail_type = %first_type, error_code = %code, failed = entries.len(), "event refused by the bus");
                break;
            }
            tracing::warn!(detail_type = %first_type, error_code = %code, failed = entries.len(), attempt, "events refused by the bus; resending them");
            tokio::time::sleep(jittered_backoff(50, attempt)).await;
        }
        Err(SsmError::internal())
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
        self.put_batch(vec![self.entry(detail_type, &resources, &detail)])
            .await
    }

    async fn publish_many(&self, events: Vec<Event>) -> Result<(), SsmError> {
        let mut batch = Vec::new();
        let mut size = 0;
        for e in &events {
            let entry = self.entry(e.detail_type, &e.resources, &e.detail);
            let bytes = entry_size(&entry);
            if !batch.is_empty()
                && (batch.len() == MAX_BATCH_ENTRIES || size + bytes > MAX_BATCH_BYTES)
            {
                self.put_batch(std::mem::take(&mut batch)).await?;
                size = 0;
            }
            batch.push(entry);
            size += bytes;
        }
        if !batch.is_empty() {
            self.put_batch(batch).await?;
        }
        Ok(())
    }
}
