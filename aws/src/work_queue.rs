//! The work queue of the dispatch function (timers and fan-out work).

use aws_sdk_sqs::Client;
use steward_core::SsmError;
use steward_core::run_command::model::WorkItem;
use steward_core::run_command::ports::WorkQueue;

use crate::Stack;
use crate::internal;

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
}

#[async_trait::async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn enqueue(&self, item: &WorkItem, delay_seconds: u32) -> Result<(), SsmError> {
        let body = serde_json::to_string(item).map_err(|_| SsmError::internal())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }
}
