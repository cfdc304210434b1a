//! Making each node's own SQS queue at registration, `<prefix><InstanceId>`
//! (and removing it at deregistration),
//! redriven to the node dead-letter queue after 5 receives.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use steward_core::SsmError;
use steward_core::fleet::QueueProvisioner;
use steward_core::fleet::ports::QueueRef;
use tokio::sync::OnceCell;

use crate::Stack;
use crate::internal;

pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Whether SQS answered that the queue does not exist (its modeled error,
/// or the query protocol's code some emulators answer with).
pub fn queue_gone<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().is_some_and(|se| {
        se.code().is_some_and(|c| {
            c == "QueueDoesNotExist"
                || c.contains("NonExistentQueue")
                || c.ends_with("QueueDoesNotExist")
        })
    })
}

#[derive(Debug)]
pub struct SqsQueueProvisioner {
    client: Client,
    prefix: String,
    dlq_arn: String,
    ingest_queue_url: String,
    ingest_queue_arn: OnceCell<String>,
    region: String,
}

impl SqsQueueProvisioner {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.sqs.clone(),
            prefix: stack.settings.node_queue_prefix.clone(),
            dlq_arn: stack.settings.node_dlq_arn.clone(),
            ingest_queue_url: stack.settings.ingest_queue_url.clone(),
            ingest_queue_arn: OnceCell::new(),
            region: stack.settings.region.clone(),
        }
    }

    pub fn queue_name(&self, instance_id: &str) -> String {
        format!("{}{instance_id}", self.prefix)
    }

    async fn arn_of(&self, url: &str) -> Result<String, SsmError> {
        queue_arn(&self.client, url).await
    }
}

/// The ARN of the queue at `url` (its policy's resource).
pub(crate) async fn queue_arn(client: &Client, url: &str) -> Result<String, SsmError> {
    let resp = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(internal)?;
    resp.attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(SsmError::internal)
}

#[async_trait::async_trait]
impl QueueProvisioner for SqsQueueProvisioner {
    async fn ensure_queue(&self, instance_id: &str) -> Result<QueueRef, SsmError> {
        let redrive = serde_json::json!({
            "deadLetterTargetArn": self.dlq_arn,
            "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
        })
        .to_string();
        // CreateQueue with the same attributes returns the existing queue.
        let resp = self
            .client
            .create_queue()
            .queue_name(self.queue_name(instance_id))
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .map_err(internal)?;
        let url = resp.queue_url.ok_or_else(SsmError::internal)?;
        let arn = self.arn_of(&url).await?;
        Ok(QueueRef { url, arn })
    }

    async fn delete_queue(&self, url: &str) -> Result<(), SsmError> {
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            // Gone already (a retried deregistration): what was wanted.
            Err(e) if queue_gone(&e) => Ok(()),
            Err(e) => {
                tracing::warn!(queue_url = url, "could not remove a node queue");
                Err(internal(e))
            }
        }
    }

    fn ingest_queue_url(&self) -> &str {
        &self.ingest_queue_url
    }

    async fn ingest_queue_arn(&self) -> Result<String, SsmError> {
        self.ingest_queue_arn
            .get_or_try_init(|| self.arn_of(&self.ingest_queue_url))
            .await
            .cloned()
    }

    fn region(&self) -> &str {
        &self.region
    }
}
