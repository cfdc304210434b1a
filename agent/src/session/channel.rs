//! A session's two SQS queues, with credentials of their own: the node's
//! credentials cover only its node queue, so each session asks the API
//! (`Steward.GetSessionCredentials`) for credentials to its two queues, and
//! refreshes them like the node's.

use std::sync::Arc;

use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sqs::error::DisplayErrorContext;
use futures::future::BoxFuture;
use steward_core::channel::{NodeKey, SessionStart};
use steward_core::sessions::pump::{QueueError, SessionQueue};

use super::SessionError;
use crate::api::Api;
use crate::credentials::QueueCredentialsProvider;
use crate::queue::sqs_client;

/// A session's queues, as the agent uses them.
pub struct SessionQueues {
    /// The client's frames arrive here.
    pub to_agent: Arc<dyn SessionQueue>,
    /// The agent's frames go here.
    pub to_client: Arc<dyn SessionQueue>,
}

/// Where a session's queues come from: SQS with the session's credentials
/// on a node, memory in tests.
pub trait SessionQueueSource: Send + Sync + 'static {
    fn open<'a>(
        &'a self,
        start: &'a SessionStart,
    ) -> BoxFuture<'a, Result<SessionQueues, SessionError>>;
}

/// The session queues on SQS.
pub struct SqsSessionQueues {
    api: Api,
    instance_id: String,
    key: Arc<NodeKey>,
    region: String,
    /// The SQS endpoint when not the one the queue URLs name (a local
    /// emulator behind another address).
    endpoint: Option<String>,
}

impl SqsSessionQueues {
    pub fn new(
        api: Api,
        instance_id: String,
        key: Arc<NodeKey>,
        region: String,
        endpoint: Option<String>,
    ) -> Self {
        Self {
            api,
            instance_id,
            key,
            region,
            endpoint,
        }
    }
}

impl SessionQueueSource for SqsSessionQueues {
    fn open<'a>(
        &'a self,
        start: &'a SessionStart,
    ) -> BoxFuture<'a, Result<SessionQueues, SessionError>> {
        Box::pin(async move {
            let provider = QueueCredentialsProvider::for_session(
                self.api.clone(),
                self.instance_id.clone(),
                start.session_id.clone(),
                Arc::clone(&self.key),
            );
            // Asked now, so that a refusal fails the session with its reason
            // rather than every queue call later.
            provider
                .provide_credentials()
                .await
                .map_err(|e| SessionError::Credentials(DisplayErrorContext(e).to_string()))?;
            let endpoint = match &self.endpoint {
                Some(e) => e.clone(),
                None => queue_origin(&start.to_agent_queue_url)?,
            };
            let client = sqs_client(&self.region, Some(&endpoint), provider);
            Ok(SessionQueues {
                to_agent: Arc::new(SqsSessionQueue {
                    client: client.clone(),
                    url: start.to_agent_queue_url.clone(),
                }),
                to_client: Arc::new(SqsSessionQueue {
                    client,
                    url: start.to_client_queue_url.clone(),
                }),
            })
        })
    }
}

/// The scheme and host of a queue URL: the endpoint that serves it.
fn queue_origin(url: &str) -> Result<String, SessionError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| SessionError::Queue(format!("the session queue URL {url} is not a URL")))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(format!("{scheme}://{authority}")),
        _ => Err(SessionError::Queue(format!(
            "the session queue URL {url} names no endpoint"
        ))),
    }
}

/// One of a session's queues on SQS.
pub struct SqsSessionQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

fn queue_error<E>(
    e: aws_sdk_sqs::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> QueueError
where
    E: std::error::Error + 'static,
{
    QueueError(DisplayErrorContext(e).to_string())
}

#[async_trait::async_trait]
impl SessionQueue for SqsSessionQueue {
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<(String, String)>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .wait_time_seconds(wait_seconds.clamp(0, 20))
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some((m.body.unwrap_or_default(), m.receipt_handle?)))
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn send(&self, body: &str) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_queue_urls_origin() {
        assert_eq!(
            queue_origin("https://sqs.eu-west-1.amazonaws.com/123456789012/steward-s-1-in")
                .unwrap(),
            "https://sqs.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            queue_origin("http://localhost:9324/000000000000/q").unwrap(),
            "http://localhost:9324"
        );
        assert!(queue_origin("not a url").is_err());
    }
}
