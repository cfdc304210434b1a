//! The work queue of the dispatch function (timers and fan-out work).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use steward_core::SsmError;
use steward_core::run_command::model::WorkItem;
use steward_core::run_command::ports::WorkQueue;

use crate::Stack;
use crate::internal;
use crate::item::jittered_backoff;

/// SQS's limit on the entries of one SendMessageBatch.
const MAX_BATCH_ENTRIES: usize = 10;
/// Tries at a batch whose entries SQS keeps failing.
const BATCH_ATTEMPTS: u32 = 4;

/// The work queue of the dispatch function.
#[derive(Clone, Debug)]
pub struct SqsWorkQueue {
    client: Client,
    url: String,
}

impl SqsWorkQueue {
    pub fn new(stack: &Stack) -> Self {
        Self::with_url(stack.clients.sqs.clone(), &stack.settings.work_queue_url)
    }

    pub fn with_url(client: Client, url: &str) -> Self {
        Self {
            client,
            url: url.to_string(),
        }
    }

    /// Sends up to [`MAX_BATCH_ENTRIES`] items as one SendMessageBatch,
    /// resending the entries SQS reports failed.
    async fn send_batch(&self, items: &[(WorkItem, u32)]) -> Result<(), SsmError> {
        // Entry ids are the items' indexes here: unique within the request.
        let mut pending: Vec<SendMessageBatchRequestEntry> = items
            .iter()
            .enumerate()
            .map(|(i, (item, delay))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body(item)?)
                    .delay_seconds(delay_seconds(*delay))
                    .build()
                    .map_err(internal)
            })
            .collect::<Result<_, _>>()?;
        for attempt in 0..BATCH_ATTEMPTS {
            let resp = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(internal)?;
            let failed = resp.failed();
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
                // The request itself is wrong: resending cannot help.
                tracing::error!(code = f.code(), "work item refused by the queue");
                return Err(SsmError::internal());
            }
            if attempt + 1 == BATCH_ATTEMPTS {
                tracing::error!(
                    failed = failed.len(),
                    code = failed[0].code(),
                    "work items still not enqueued after every try"
                );
                break;
            }
            tracing::warn!(
                attempt,
                failed = failed.len(),
                code = failed[0].code(),
                "work items not enqueued; resending them"
            );
            pending.retain(|e| failed.iter().any(|f| f.id() == e.id()));
            tokio::time::sleep(jittered_backoff(50, attempt)).await;
        }
        Err(SsmError::internal())
    }
}

/// A work item as the dispatch function reads it.
fn body(item: &WorkItem) -> Result<String, SsmError> {
    serde_json::to_string(item).map_err(|_| SsmError::internal())
}

/// SQS's longest delay is 15 minutes.
fn delay_seconds(delay: u32) -> i32 {
    delay.min(900) as i32
}

#[async_trait::async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn enqueue(&self, item: &WorkItem, delay_seconds: u32) -> Result<(), SsmError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body(item)?)
            .delay_seconds(self::delay_seconds(delay_seconds))
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn enqueue_many(&self, items: &[(WorkItem, u32)]) -> Result<(), SsmError> {
        for chunk in items.chunks(MAX_BATCH_ENTRIES) {
            self.send_batch(chunk).await?;
        }
        Ok(())
    }
}
