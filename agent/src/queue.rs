//! The two queues the agent uses, behind small traits: the daemon's logic is
//! tested with in-memory queues, and runs over SQS.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{
    HttpRequest as SdkRequest, HttpResponse as SdkResponse,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::api::{ApiError, HttpClient};
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

/// SQS's limits on one SendMessageBatch: entries, and their bodies' total size.
pub const BATCH_MAX_ENTRIES: usize = 10;
pub const BATCH_MAX_BYTES: usize = 256 * 1024;

pub trait IngestQueue: Send + Sync + 'static {
    fn send(&self, body: String) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Sends up to [`BATCH_MAX_ENTRIES`] bodies (at most [`BATCH_MAX_BYTES`]
    /// in all) in one request: one outcome per body, in their order, so
    /// that only the ones not acknowledged are sent again.
    fn send_batch(
        &self,
        bodies: Vec<String>,
    ) -> impl Future<Output = Vec<Result<(), QueueError>>> + Send;
}

/// What the agent says when its node queue is gone: the control plane
/// deletes it when the node is deregistered.
pub const QUEUE_GONE: &str = "the node queue no longer exists: this node was deregistered (DeregisterManagedInstance); stop the agent, or register the node again with a new activation";

fn queue_gone<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata,
{
    e.as_service_error().is_some_and(|se| {
        se.code()
            .is_some_and(|c| c.ends_with("QueueDoesNotExist") || c.ends_with("NonExistentQueue"))
    })
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
            .map_err(|e| {
                if queue_gone(&e) {
                    QueueError(format!("{QUEUE_GONE}: {}", self.url))
                } else {
                    QueueError(DisplayErrorContext(e).to_string())
                }
            })?;
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

    async fn send_batch(&self, bodies: Vec<String>) -> Vec<Result<(), QueueError>> {
        let n = bodies.len();
        let all_failed = |why: String| (0..n).map(|_| Err(QueueError(why.clone()))).collect();
        let mut entries = Vec::with_capacity(n);
        for (i, body) in bodies.into_iter().enumerate() {
            // Ids are the bodies' indexes: how the answer names each entry.
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build();
            match entry {
                Ok(e) => entries.push(e),
                Err(e) => return all_failed(e.to_string()),
            }
        }
        let sent = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => return all_failed(DisplayErrorContext(e).to_string()),
        };
        // An entry the answer does not name was not acknowledged: sent again.
        let mut outcomes: Vec<Result<(), QueueError>> = (0..n)
            .map(|_| Err(QueueError("not in SendMessageBatch's answer".into())))
            .collect();
        let slot = |id: &str| id.parse::<usize>().ok().filter(|i| *i < n);
        for ok in out.successful() {
            if let Some(i) = slot(ok.id()) {
                outcomes[i] = Ok(());
            }
        }
        for failed in out.failed() {
            if let Some(i) = slot(failed.id()) {
                outcomes[i] = Err(QueueError(format!(
                    "{}: {}",
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        outcomes
    }
}

/// An SQS client configured directly (no aws-config): region, optional
/// endpoint override, and the given credentials provider. It sends over the
/// agent's own HTTP/1.1 client ([`SqsHttp`]).
pub fn sqs_client(
    region: &str,
    endpoint: Option<&str>,
    credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
) -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Region, StalledStreamProtectionConfig};
    let mut config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .http_client(SqsHttp(HttpClient::new()))
        // SqsHttp hands bodies over whole, under its own timeout: the SDK
        // would see a request body never streamed during a long poll as
        // stalled, and fail the poll after a few seconds.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .credentials_provider(credentials);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_sqs::Client::from_conf(config.build())
}

/// The SDK's HTTP client, over the agent's hyper client: the SDK's own
/// (`default-https-client`) would bring a second hyper stack and HTTP/2,
/// about a third of a megabyte of the binary, for four SQS operations.
#[derive(Clone)]
pub struct SqsHttp(HttpClient);

/// The longest SQS exchange: a 20-second long poll, with room to spare.
const SQS_TIMEOUT: Duration = Duration::from_secs(60);
/// Ten messages of SQS's largest, as JSON.
const SQS_MAX_ANSWER: usize = 8 << 20;

impl std::fmt::Debug for SqsHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqsHttp")
    }
}

impl HttpConnector for SqsHttp {
    fn call(&self, request: SdkRequest) -> HttpConnectorFuture {
        let http = self.0.clone();
        HttpConnectorFuture::new(async move {
            let other = |e: BoxError| ConnectorError::other(e, None);
            let request = request.try_into_http1x().map_err(|e| other(e.into()))?;
            let (parts, body) = request.into_parts();
            // SQS requests are JSON built in memory; a streaming body is not.
            let bytes = body
                .bytes()
                .map(Bytes::copy_from_slice)
                .ok_or_else(|| other("a streaming request body".into()))?;
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync();
            let (head, body) = http
                .exchange(
                    http::Request::from_parts(parts, body),
                    SQS_TIMEOUT,
                    SQS_MAX_ANSWER,
                )
                .await
                .map_err(|e| match e {
                    ApiError::Timeout { .. } => ConnectorError::timeout(e.into()),
                    ApiError::Transport { .. } => ConnectorError::io(e.into()),
                    _ => other(e.into()),
                })?;
            let response = http::Response::from_parts(head, SdkBody::from(body));
            SdkResponse::try_from(response).map_err(|e| other(e.into()))
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for SqsHttp {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}
