//! The two queues the agent uses, behind small traits: the daemon's logic is
//! tested with in-memory queues, and runs over SQS.

use std::future::Future;

use aws_sdk_sqs::error::DisplayErrorContext;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// A message received from the node queue.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
}

pub trait NodeQueue: Send + Sync + 'static {
    /// Long-polls for up to ten messages.
    fn receive(&self) -> impl Future<Output = Result<Vec<Received>, QueueError>> + Send;
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}

pub trait IngestQueue: Send + Sync + 'static {
    fn send(&self, body: String) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The node's own SQS queue.
pub struct SqsNodeQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

impl NodeQueue for SqsNodeQueue {
    async fn receive(&self) -> Result<Vec<Received>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .wait_time_seconds(20)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(Received {
                    message_id: m.message_id.unwrap_or_default(),
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// The control plane's ingest queue.
pub struct SqsIngestQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

impl IngestQueue for SqsIngestQueue {
    async fn send(&self, body: String) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// An SQS client configured directly (no aws-config): region, optional
/// endpoint override, and the given credentials provider.
pub fn sqs_client(
    region: &str,
    endpoint: Option<&str>,
    credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
) -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Region};
    let mut config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_sqs::Client::from_conf(config.build())
}
