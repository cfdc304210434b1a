//! The poller against the real local SQS (LocalStack): batches arrive as
//! Lambda's `SqsEvent`, successes are deleted, failures and panics come back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;
use steward_local::poller::{Poller, PollerConfig, QueueSource};
use tokio::sync::{mpsc, watch};

/// Generous bound for things the test waits on; only a broken poller hits it.
const PATIENCE: Duration = Duration::from_secs(90);

fn require_stack() -> String {
    for var in ["AWS_ENDPOINT_URL", "STEWARD_WORK_QUEUE_URL"] {
        assert!(
            std::env::var(var).is_ok(),
            "{var} is not set: start the local stack and `source .local/stack.env` (make test does both)"
        );
    }
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

async fn sqs() -> Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Client::new(&conf)
}

/// A throwaway queue whose messages come back one second after a failure.
async fn throwaway_queue(sqs: &Client, label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("steward-local-test-{label}-{}-{nanos}", std::process::id());
    sqs.create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("CreateQueue on the local stack")
        .queue_url
        .expect("CreateQueue answers a QueueUrl")
}

async fn messages_left(sqs: &Client, url: &str) -> u64 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes.unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

fn config() -> PollerConfig {
    PollerConfig {
        batch_size: 10,
        concurrency: 1,
        wait_time_seconds: 1,
    }
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_string();
    f
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn delivers_batches_as_lambda_does_and_deletes_only_successes() {
    let region = require_stack();
    let sqs = sqs().await;
    let url = throwaway_queue(&sqs, "settle").await;
    let source = QueueSource::resolve(&sqs, "test", &url, &region)
        .await
        .expect("queue ARN");
    assert!(
        source.queue_arn.starts_with("arn:aws:sqs:"),
        "{}",
        source.queue_arn
    );

    // The handler fails every record whose body starts with "fail".
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<SqsMessage>();
    let handler = move |event: SqsEvent| {
        let seen_tx = seen_tx.clone();
        async move {
            let mut response = SqsBatchResponse::default();
            for r in event.records {
                if r.body.as_deref().is_some_and(|b| b.starts_with("fail")) {
                    response
                        .batch_item_failures
                        .push(failure(r.message_id.as_deref().unwrap_or("")));
                }
                let _ = seen_tx.send(r);
            }
            response
        }
    };
    let poller = Poller::new(sqs.clone(), source.clone(), config(), handler).expect("poller");

    let mut sent_md5 = HashMap::new();
    for body in ["ok-1", "fail-1"] {
        let out = sqs
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
        sent_md5.insert(
            body,
            out.md5_of_message_body
                .expect("SendMessage answers the body's MD5"),
        );
    }
    let (stop, stop_rx) = watch::channel(false);
    let running = tokio::spawn(poller.run(stop_rx));

    // Wait until "fail-1" has come back at least once after failing.
    let mut deliveries: HashMap<String, Vec<SqsMessage>> = HashMap::new();
    tokio::time::timeout(PATIENCE, async {
        while deliveries.get("fail-1").map_or(0, Vec::len) < 2 {
            let r = seen_rx.recv().await.expect("handler channel open");
            deliveries
                .entry(r.body.clone().unwrap_or_default())
                .or_default()
                .push(r);
        }
    })
    .await
    .expect("the failed message was not redelivered to the handler");
    stop.send(true).expect("poller still listening");
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("poller stops on shutdown")
        .expect("poller task");

    // Each record is what Lambda's event source mapping would deliver.
    let ok = &deliveries["ok-1"][0];
    assert_eq!(ok.event_source.as_deref(), Some("aws:sqs"));
    assert_eq!(
        ok.event_source_arn.as_deref(),
        Some(source.queue_arn.as_str())
    );
    assert_eq!(ok.aws_region.as_deref(), Some(region.as_str()));
    assert!(ok.message_id.as_deref().is_some_and(|s| !s.is_empty()));
    assert!(ok.receipt_handle.as_deref().is_some_and(|s| !s.is_empty()));
    assert_eq!(ok.md5_of_body.as_deref(), Some(sent_md5["ok-1"].as_str()));
    assert_eq!(
        ok.attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("1")
    );
    assert!(ok.attributes.contains_key("SentTimestamp"));
    let again = &deliveries["fail-1"][1];
    assert_eq!(
        again
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("2")
    );

    // The success was deleted; the failure is still on the queue.
    assert_eq!(deliveries["ok-1"].len(), 1, "a handled message came back");
    assert_eq!(messages_left(&sqs, &url).await, 1);
    let mut left = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while left.is_empty() {
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(2)
                .send()
                .await
                .expect("ReceiveMessage");
            left.extend(
                out.messages
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| m.body),
            );
        }
    })
    .await
    .expect("the failed message is still on the queue");
    assert_eq!(left, vec!["fail-1".to_string()]);

    sqs.delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("DeleteQueue");
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_panicking_handler_leaves_the_batch_and_the_poller_keeps_going() {
    let region = require_stack();
    let sqs = sqs().await;
    let url = throwaway_queue(&sqs, "panic").await;
    let source = QueueSource::resolve(&sqs, "test", &url, &region)
        .await
        .expect("queue ARN");

    // Panics on the first delivery, succeeds on the next.
    let calls = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<SqsMessage>();
    let counter = Arc::clone(&calls);
    let handler = move |event: SqsEvent| {
        let counter = Arc::clone(&counter);
        let done_tx = done_tx.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("handler panic on purpose");
            }
            for r in event.records {
                let _ = done_tx.send(r);
            }
            SqsBatchResponse::default()
        }
    };
    let poller = Poller::new(sqs.clone(), source, config(), handler).expect("poller");
    sqs.send_message()
        .queue_url(&url)
        .message_body("boom")
        .send()
        .await
        .expect("SendMessage");
    let (stop, stop_rx) = watch::channel(false);
    let running = tokio::spawn(poller.run(stop_rx));

    let handled = tokio::time::timeout(PATIENCE, done_rx.recv())
        .await
        .expect("the message was not redelivered after the panic")
        .expect("handler channel open");
    assert_eq!(handled.body.as_deref(), Some("boom"));
    assert_eq!(
        handled
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("2")
    );
    assert!(calls.load(Ordering::SeqCst) >= 2);

    stop.send(true).expect("poller still listening");
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("poller stops on shutdown")
        .expect("poller task");
    assert_eq!(
        messages_left(&sqs, &url).await,
        0,
        "the handled message was not deleted"
    );
    sqs.delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("DeleteQueue");
}
