//! A queue poller that behaves like a Lambda SQS event source mapping: long
//! polls, hands each batch to the handler as an `SqsEvent`, deletes what the
//! handler did not report as failed, and leaves failed messages for the
//! visibility timeout to redeliver.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// SQS's own limit on messages per ReceiveMessage, and so on a batch.
pub const MAX_BATCH_SIZE: i32 = 10;
/// The longest long poll SQS allows.
pub const MAX_WAIT_SECONDS: i32 = 20;

#[derive(Debug, Error)]
pub enum PollerError {
    #[error(
        "cannot read the attributes of queue {queue_url}: {message}; check the queue exists (run the provisioning step) and the endpoint is reachable"
    )]
    QueueAttributes { queue_url: String, message: String },
    #[error("queue {0} has no QueueArn attribute; check the endpoint serves SQS")]
    NoArn(String),
    #[error("batch size must be 1..=10 (SQS's limit), got {0}")]
    BatchSize(i32),
}

/// The queue a poller reads and what Lambda would put in each record about it.
#[derive(Debug, Clone)]
pub struct QueueSource {
    /// Short name for logs ("work", "ingest").
    pub name: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
}

impl QueueSource {
    /// Looks the queue's ARN up with GetQueueAttributes.
    pub async fn resolve(
        sqs: &Client,
        name: impl Into<String>,
        queue_url: impl Into<String>,
        region: impl Into<String>,
    ) -> Result<Self, PollerError> {
        let queue_url = queue_url.into();
        let out = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| PollerError::QueueAttributes {
                queue_url: queue_url.clone(),
                message: describe_sdk_error(&e),
            })?;
        let queue_arn = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| PollerError::NoArn(queue_url.clone()))?;
        Ok(Self {
            name: name.into(),
            queue_url,
            queue_arn,
            region: region.into(),
        })
    }
}

/// How the event source mapping is configured.
#[derive(Debug, Clone, Copy)]
pub struct PollerConfig {
    /// Messages per batch, 1..=10.
    pub batch_size: i32,
    /// Batches in flight at once (one long-polling worker each).
    pub concurrency: usize,
    /// Long-poll wait, 0..=20 seconds.
    pub wait_time_seconds: i32,
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            batch_size: MAX_BATCH_SIZE,
            concurrency: 2,
            wait_time_seconds: MAX_WAIT_SECONDS,
        }
    }
}

/// What happened to one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub received: usize,
    pub deleted: usize,
    pub failed: usize,
}

/// Polls one queue and hands batches to `handler`.
pub struct Poller<H> {
    sqs: Client,
    source: Arc<QueueSource>,
    config: PollerConfig,
    handler: Arc<H>,
}

impl<H, Fut> Poller<H>
where
    H: Fn(SqsEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = SqsBatchResponse> + Send + 'static,
{
    pub fn new(
        sqs: Client,
        source: QueueSource,
        config: PollerConfig,
        handler: H,
    ) -> Result<Self, PollerError> {
        if !(1..=MAX_BATCH_SIZE).contains(&config.batch_size) {
            return Err(PollerError::BatchSize(config.batch_size));
        }
        Ok(Self {
            sqs,
            source: Arc::new(source),
            config,
            handler: Arc::new(handler),
        })
    }

    pub fn source(&self) -> &QueueSource {
        &self.source
    }

    /// Runs `concurrency` workers until `shutdown` turns true (or its sender
    /// goes away). A batch being handled is finished and settled before its
    /// worker stops; a long poll in progress is abandoned.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let mut workers = JoinSet::new();
        for worker in 0..this.config.concurrency.max(1) {
            let this = Arc::clone(&this);
            let shutdown = shutdown.clone();
            workers.spawn(async move { this.worker(worker, shutdown).await });
        }
        while let Some(joined) = workers.join_next().await {
            if let Err(e) = joined {
                tracing::error!(queue = %this.source.name, error = %e, "poller worker ended abnormally");
            }
        }
        tracing::info!(queue = %this.source.name, "poller stopped");
    }

    async fn worker(&self, worker: usize, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let received = tokio::select! {
                r = self.receive() => r,
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            };
            match received {
                Ok(messages) => {
                    backoff = Duration::from_millis(500);
                    if !messages.is_empty() {
                        self.process(messages).await;
                    }
                }
                Err(message) => {
                    tracing::warn!(
                        queue = %self.source.name,
                        worker,
                        error = %message,
                        retry_in_ms = backoff.as_millis() as u64,
                        "ReceiveMessage failed; is the local stack running?"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        changed = shutdown.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// One ReceiveMessage long poll.
    pub async fn receive(&self) -> Result<Vec<Message>, String> {
        #[allow(deprecated)] // older emulators only know AttributeNames
        let request = self
            .sqs
            .receive_message()
            .queue_url(&self.source.queue_url)
            .max_number_of_messages(self.config.batch_size)
            .wait_time_seconds(self.config.wait_time_seconds)
            .attribute_names(QueueAttributeName::All)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All");
        let out = request.send().await.map_err(|e| describe_sdk_error(&e))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Hands one batch to the handler and settles it: deletes the messages
    /// that did not fail. A panicking handler fails the whole batch.
    pub async fn process(&self, messages: Vec<Message>) -> BatchOutcome {
        let event = match to_event(&messages, &self.source) {
            Ok(event) => event,
            Err(e) => {
                // The runtime would fail this invocation: nothing is deleted.
                tracing::error!(queue = %self.source.name, error = %e, "the batch is not a valid SqsEvent; it will be redelivered");
                return BatchOutcome {
                    received: messages.len(),
                    deleted: 0,
                    failed: messages.len(),
                };
            }
        };
        let ids: Vec<String> = messages
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        let handler = Arc::clone(&self.handler);
        let queue = self.source.name.clone();
        let failed: HashSet<String> = match tokio::spawn(async move { handler(event).await }).await
        {
            Ok(response) => match failed_ids(&response, &ids) {
                Ok(failed) => failed,
                Err(reason) => {
                    tracing::warn!(%queue, %reason, "handler response is not valid; the whole batch will be retried, as Lambda does");
                    ids.iter().cloned().collect()
                }
            },
            Err(e) => {
                tracing::error!(%queue, error = %e, "handler panicked; the whole batch will be retried");
                ids.iter().cloned().collect()
            }
        };

        let to_delete: Vec<&Message> = messages
            .iter()
            .filter(|m| {
                m.message_id
                    .as_deref()
                    .is_some_and(|id| !failed.contains(id))
            })
            .collect();
        let deleted = self.delete(&to_delete).await;
        let outcome = BatchOutcome {
            received: messages.len(),
            deleted,
            failed: messages.len() - to_delete.len(),
        };
        tracing::info!(
            queue = %self.source.name,
            received = outcome.received,
            deleted = outcome.deleted,
            failed = outcome.failed,
            "batch handled"
        );
        outcome
    }

    /// DeleteMessageBatch for `messages`; returns how many were deleted. A
    /// message that could not be deleted comes back after its visibility
    /// timeout, which the idempotent handlers tolerate.
    async fn delete(&self, messages: &[&Message]) -> usize {
        let mut deleted = 0;
        for chunk in messages.chunks(MAX_BATCH_SIZE as usize) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, m) in chunk.iter().enumerate() {
                let Some(handle) = m.receipt_handle.as_deref() else {
                    continue;
                };
                match DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
                {
                    Ok(entry) => entries.push(entry),
                    Err(e) => tracing::warn!(error = %e, "cannot build a delete entry"),
                }
            }
            if entries.is_empty() {
                continue;
            }
            match self
                .sqs
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    deleted += out.successful().len();
                    for f in out.failed() {
                        tracing::warn!(
                            queue = %self.source.name,
                            code = %f.code(),
                            message = f.message().unwrap_or_default(),
                            "message not deleted; it will be redelivered"
                        );
                    }
                }
                Err(e) => tracing::warn!(
                    queue = %self.source.name,
                    error = %describe_sdk_error(&e),
                    "DeleteMessageBatch failed; the batch will be redelivered"
                ),
            }
        }
        deleted
    }
}

/// The message ids the handler reported as failed. As Lambda does, a response
/// naming an empty or unknown id fails the whole batch (`Err`).
pub fn failed_ids(
    response: &SqsBatchResponse,
    batch: &[String],
) -> Result<HashSet<String>, String> {
    let mut failed = HashSet::new();
    for f in &response.batch_item_failures {
        if f.item_identifier.is_empty() {
            return Err("a batch item failure has an empty itemIdentifier".into());
        }
        if !batch.contains(&f.item_identifier) {
            return Err(format!(
                "itemIdentifier {} is not a message of this batch",
                f.item_identifier
            ));
        }
        failed.insert(f.item_identifier.clone());
    }
    Ok(failed)
}

/// The `SqsEvent` Lambda would deliver for these messages: the event
/// source mapping's JSON, deserialized as the runtime does, so the handler
/// gets exactly what the deployed function would.
pub fn to_event(messages: &[Message], source: &QueueSource) -> Result<SqsEvent, serde_json::Error> {
    let json = serde_json::to_vec(&event_json(messages, source))?;
    serde_json::from_slice(&json)
}

/// The event's JSON as an SQS event source mapping sends it.
pub fn event_json(messages: &[Message], source: &QueueSource) -> Value {
    let records: Vec<Value> = messages.iter().map(|m| record_json(m, source)).collect();
    json!({ "Records": records })
}

fn record_json(m: &Message, source: &QueueSource) -> Value {
    let attributes: Map<String, Value> = m
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_string(), v.clone().into()))
        .collect();
    let message_attributes: Map<String, Value> = m
        .message_attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), attribute_json(v)))
        .collect();
    json!({
        "messageId": m.message_id,
        "receiptHandle": m.receipt_handle,
        "body": m.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body,
        "md5OfMessageAttributes": m.md5_of_message_attributes,
        "eventSource": "aws:sqs",
        "eventSourceARN": source.queue_arn,
        "awsRegion": source.region,
    })
}

fn attribute_json(v: &MessageAttributeValue) -> Value {
    json!({
        "stringValue": v.string_value,
        "binaryValue": v.binary_value.as_ref().map(|b| BASE64.encode(b.as_ref())),
        "stringListValues": v.string_list_values.clone().unwrap_or_default(),
        "binaryListValues": v
            .binary_list_values
            .iter()
            .flatten()
            .map(|b| BASE64.encode(b.as_ref()))
            .collect::<Vec<_>>(),
        "dataType": v.data_type,
    })
}

/// An SDK error as "Code: message", or the transport failure behind it.
pub fn describe_sdk_error<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("UnknownError"),
                err.message().unwrap_or("no message")
            )
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::BatchItemFailure;
    use aws_sdk_sqs::primitives::Blob;

    fn source() -> QueueSource {
        QueueSource {
            name: "work".into(),
            queue_url: "http://localhost/000000000000/work".into(),
            queue_arn: "arn:aws:sqs:us-east-1:000000000000:work".into(),
            region: "us-east-1".into(),
        }
    }

    fn response(ids: &[&str]) -> SqsBatchResponse {
        let mut r = SqsBatchResponse::default();
        r.batch_item_failures = ids
            .iter()
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = (*id).to_string();
                f
            })
            .collect();
        r
    }

    #[test]
    fn reported_failures_are_kept_others_deleted() {
        let batch = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let failed = failed_ids(&response(&["b"]), &batch).unwrap();
        assert_eq!(failed, HashSet::from(["b".to_string()]));
        assert!(failed_ids(&response(&[]), &batch).unwrap().is_empty());
    }

    #[test]
    fn empty_or_unknown_identifier_fails_the_batch() {
        let batch = vec!["a".to_string()];
        assert_eq!(
            failed_ids(&response(&[""]), &batch),
            Err("a batch item failure has an empty itemIdentifier".to_string())
        );
        assert_eq!(
            failed_ids(&response(&["zzz"]), &batch),
            Err("itemIdentifier zzz is not a message of this batch".to_string())
        );
    }

    #[test]
    fn records_carry_what_lambda_puts_in_them() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"x\":1}")
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("RunCommand")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(vec![1, 2, 3]))
                    .build()
                    .unwrap(),
            )
            .build();
        let event = to_event(&[m], &source()).unwrap();
        assert_eq!(event.records.len(), 1);
        let r = &event.records[0];
        assert_eq!(r.message_id.as_deref(), Some("m-1"));
        assert_eq!(r.receipt_handle.as_deref(), Some("rh-1"));
        assert_eq!(r.body.as_deref(), Some("{\"x\":1}"));
        assert_eq!(r.md5_of_body.as_deref(), Some("abc"));
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(
            r.event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:work")
        );
        assert_eq!(r.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(
            r.attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            r.attributes.get("SentTimestamp").map(String::as_str),
            Some("1700000000000")
        );
        let kind = &r.message_attributes["kind"];
        assert_eq!(kind.string_value.as_deref(), Some("RunCommand"));
        assert_eq!(kind.data_type.as_deref(), Some("String"));
        let blob = &r.message_attributes["blob"];
        assert_eq!(
            blob.binary_value.as_ref().map(|b| b.0.clone()),
            Some(vec![1, 2, 3])
        );
        // The event serializes to Lambda's wire shape.
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["Records"][0]["eventSource"], "aws:sqs");
        assert_eq!(
            json["Records"][0]["eventSourceARN"],
            "arn:aws:sqs:us-east-1:000000000000:work"
        );
    }

    #[test]
    fn batch_size_outside_sqs_limits_is_refused() {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .build();
        let sqs = Client::from_conf(conf);
        let config = PollerConfig {
            batch_size: 11,
            ..PollerConfig::default()
        };
        let handler = |_e: SqsEvent| async { SqsBatchResponse::default() };
        assert!(matches!(
            Poller::new(sqs, source(), config, handler),
            Err(PollerError::BatchSize(11))
        ));
    }
}
