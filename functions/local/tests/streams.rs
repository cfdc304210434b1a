//! The stream poller against the real DynamoDB Local: every write arrives
//! once and in order, a reported failure hands the records from it again,
//! and the checkpoint file carries the place across a stop, a kill, or its
//! own loss (then everything comes again: at least once).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use steward_local::streams::{
    Checkpoints, StreamConfig, StreamPoller, StreamSource, parse_checkpoints,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Generous bound for things the test waits on; only a broken poller hits it.
const PATIENCE: Duration = Duration::from_secs(60);

fn require_stack() -> String {
    for var in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    ] {
        assert!(
            std::env::var(var).is_ok(),
            "{var} is not set: start the local stack and `source .local/stack.env` (make test does both)"
        );
    }
    std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())
}

struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
}

async fn clients() -> Clients {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Clients {
        dynamodb: aws_sdk_dynamodb::Client::new(&conf),
        streams: aws_sdk_dynamodbstreams::Client::new(&conf),
    }
}

/// A throwaway table with a NEW_AND_OLD_IMAGES stream.
async fn throwaway_table(ddb: &aws_sdk_dynamodb::Client) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("steward-test-streams-{}-{nanos}", std::process::id());
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable on DynamoDB Local");
    name
}

/// Runs `body` on a throwaway table and deletes the table whatever happens.
async fn with_table<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let c = clients().await;
    let table = throwaway_table(&c.dynamodb).await;
    let outcome = tokio::spawn(body(table.clone())).await;
    let _ = c.dynamodb.delete_table().table_name(&table).send().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Writes item `n` (three keys in turn: inserts, then modifications).
async fn write(ddb: &aws_sdk_dynamodb::Client, table: &str, n: u32) {
    ddb.put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("k{}", n % 3)))
        .item("n", AttributeValue::N(n.to_string()))
        // DynamoDB Local's streams write an empty map as `{}`; the reader
        // must take it.
        .item("labels", AttributeValue::M(Default::default()))
        .send()
        .await
        .expect("PutItem");
}

/// What a handler saw of one record.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    n: u32,
    sequence: String,
    event_name: String,
}

fn seen(event: &Event) -> Vec<Seen> {
    event
        .records
        .iter()
        .map(|r| {
            let n = match r.change.new_image.get("n") {
                Some(serde_dynamo::AttributeValue::N(n)) => n.parse().expect("n is a number"),
                other => panic!("record without n: {other:?}"),
            };
            assert_eq!(
                r.change.new_image.get("labels"),
                Some(&serde_dynamo::AttributeValue::M(Default::default())),
                "an empty map arrives as one"
            );
            Seen {
                n,
                sequence: r.change.sequence_number.clone().unwrap_or_default(),
                event_name: r.event_name.clone(),
            }
        })
        .collect()
}

fn config() -> StreamConfig {
    StreamConfig {
        batch_size: 4,
        idle_wait: Duration::from_millis(50),
        refresh_every: Duration::from_secs(1),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
    }
}

struct Running {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the poller stops on shutdown")
            .expect("the poller ends normally");
    }
}

/// Starts a poller on `table`'s stream, checkpointing to `path`, whose
/// handler passes every batch to the returned channel and answers what
/// `answer` says.
async fn start<A>(
    table: &str,
    path: &Path,
    answer: A,
) -> (Running, mpsc::UnboundedReceiver<Vec<Seen>>)
where
    A: Fn(&[Seen]) -> Option<String> + Send + Sync + 'static,
{
    let region = require_stack();
    let c = clients().await;
    let source = StreamSource::resolve(&c.dynamodb, table, region)
        .await
        .expect("the table's stream");
    assert!(
        source
            .stream_arn
            .contains(&format!(":table/{table}/stream/")),
        "{}",
        source.stream_arn
    );
    let checkpoints = Arc::new(Checkpoints::load(
        Some(path.to_path_buf()),
        std::slice::from_ref(&source.stream_arn),
    ));
    let (tx, rx) = mpsc::unbounded_channel();
    let answer = Arc::new(answer);
    let handler = move |event: Event| {
        let tx = tx.clone();
        let answer = Arc::clone(&answer);
        async move {
            let batch = seen(&event);
            let failed = answer(&batch);
            let _ = tx.send(batch);
            let mut response = DynamoDbEventResponse::default();
            if let Some(sequence) = failed {
                let mut f = DynamoDbBatchItemFailure::default();
                f.item_identifier = Some(sequence);
                response.batch_item_failures.push(f);
            }
            response
        }
    };
    let poller = StreamPoller::new(c.streams, source, checkpoints, config(), handler);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(poller.run(shutdown_rx));
    (Running { shutdown, task }, rx)
}

/// The records handed until (and with) the one numbered `last`.
async fn until(rx: &mut mpsc::UnboundedReceiver<Vec<Seen>>, last: u32) -> Vec<Vec<Seen>> {
    let mut batches = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let batch = rx.recv().await.expect("the poller is running");
            let done = batch.iter().any(|s| s.n == last);
            batches.push(batch);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("record {last} never arrived; got {batches:?}"));
    batches
}

fn numbers(batches: &[Vec<Seen>]) -> Vec<u32> {
    batches.iter().flatten().map(|s| s.n).collect()
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn writes_arrive_once_in_order_and_the_checkpoint_carries_the_place() {
    require_stack();
    with_table(|table| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream-checkpoints.json");
        let ddb = clients().await.dynamodb;

        // (a) Every write once, in order, as Lambda's records.
        for n in 0..10 {
            write(&ddb, &table, n).await;
        }
        let (running, mut rx) = start(&table, &path, |_| None).await;
        let batches = until(&mut rx, 9).await;
        assert_eq!(numbers(&batches), (0..10).collect::<Vec<_>>());
        assert!(batches.iter().all(|b| b.len() <= 4), "BatchSize is kept");
        let names: Vec<&str> = batches
            .iter()
            .flatten()
            .map(|s| s.event_name.as_str())
            .collect();
        assert_eq!(&names[..4], ["INSERT", "INSERT", "INSERT", "MODIFY"]);
        // A write made while it runs arrives too, and nothing came twice
        // before it.
        write(&ddb, &table, 10).await;
        assert_eq!(numbers(&until(&mut rx, 10).await), [10]);
        running.stop().await;
        let on_disk = parse_checkpoints(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk.len(), 1, "{on_disk:?}");

        // (c) A new reader with the same file: only what was written since.
        for n in 11..15 {
            write(&ddb, &table, n).await;
        }
        let (running, mut rx) = start(&table, &path, |_| None).await;
        assert_eq!(numbers(&until(&mut rx, 14).await), [11, 12, 13, 14]);
        running.stop().await;

        // (d) Without the file: everything again, from the stream's start.
        std::fs::remove_file(&path).unwrap();
        let (running, mut rx) = start(&table, &path, |_| None).await;
        assert_eq!(
            numbers(&until(&mut rx, 14).await),
            (0..15).collect::<Vec<_>>()
        );
        running.stop().await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_reported_failure_hands_the_records_from_it_again() {
    require_stack();
    with_table(|table| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream-checkpoints.json");
        let ddb = clients().await.dynamodb;
        for n in 0..10 {
            write(&ddb, &table, n).await;
        }
        // (b) The first time record 6 is handed, the handler reports it failed.
        let failed_once = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&failed_once);
        let (running, mut rx) = start(&table, &path, move |batch| {
            let six = batch.iter().find(|s| s.n == 6)?;
            (!f.swap(true, Ordering::SeqCst)).then(|| six.sequence.clone())
        })
        .await;
        let batches = until(&mut rx, 9).await;
        assert!(failed_once.load(Ordering::SeqCst));
        // Up to the failed batch, each record once; after it, 6 and on
        // again: nothing before 6 twice, nothing lost.
        let failed_at = batches
            .iter()
            .position(|b| b.iter().any(|s| s.n == 6))
            .unwrap();
        let before = numbers(&batches[..=failed_at]);
        assert_eq!(
            before,
            (0..before.len() as u32).collect::<Vec<_>>(),
            "{batches:?}"
        );
        assert_eq!(
            numbers(&batches[failed_at + 1..]),
            [6, 7, 8, 9],
            "{batches:?}"
        );
        running.stop().await;

        // What was handled stays handled across a restart.
        write(&ddb, &table, 10).await;
        let (running, mut rx) = start(&table, &path, |_| None).await;
        assert_eq!(numbers(&until(&mut rx, 10).await), [10]);
        running.stop().await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_reader_killed_while_handling_hands_the_batch_again() {
    require_stack();
    with_table(|table| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream-checkpoints.json");
        let ddb = clients().await.dynamodb;
        for n in 0..6 {
            write(&ddb, &table, n).await;
        }
        let (running, mut rx) = start(&table, &path, |_| None).await;
        assert_eq!(
            numbers(&until(&mut rx, 5).await),
            (0..6).collect::<Vec<_>>()
        );
        running.stop().await;

        // A handler that never returns, and the reader dropped mid-batch
        // (as a kill would): the batch was handed but never checkpointed.
        for n in 6..9 {
            write(&ddb, &table, n).await;
        }
        let region = require_stack();
        let c = clients().await;
        let source = StreamSource::resolve(&c.dynamodb, &table, region)
            .await
            .unwrap();
        let checkpoints = Arc::new(Checkpoints::load(
            Some(path.clone()),
            std::slice::from_ref(&source.stream_arn),
        ));
        let (tx, mut handed) = mpsc::unbounded_channel();
        let stuck = StreamPoller::new(
            c.streams,
            source,
            checkpoints,
            config(),
            move |event: Event| {
                let _ = tx.send(seen(&event));
                std::future::pending::<DynamoDbEventResponse>()
            },
        );
        let (_shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(stuck.run(shutdown_rx));
        let first = tokio::time::timeout(PATIENCE, handed.recv())
            .await
            .expect("a batch is handed")
            .unwrap();
        assert_eq!(first.first().map(|s| s.n), Some(6), "{first:?}");
        task.abort();
        let _ = task.await;

        // The next reader hands the same records again.
        let (running, mut rx) = start(&table, &path, |_| None).await;
        assert_eq!(numbers(&until(&mut rx, 8).await), [6, 7, 8]);
        running.stop().await;
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn the_first_write_after_other_streams_moved_on_arrives_once() {
    require_stack();
    with_table(|table| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stream-checkpoints.json");
        let ddb = clients().await.dynamodb;
        // The reader waits on an empty shard while another table's stream
        // advances DynamoDB Local's sequence numbers (it then calls the
        // reader's iterator trimmed).
        let (running, mut rx) = start(&table, &path, |_| None).await;
        let other = throwaway_table(&ddb).await;
        for n in 0..3 {
            write(&ddb, &other, n).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = ddb.delete_table().table_name(&other).send().await;
        write(&ddb, &table, 0).await;
        assert_eq!(numbers(&until(&mut rx, 0).await), [0]);
        write(&ddb, &table, 1).await;
        assert_eq!(numbers(&until(&mut rx, 1).await), [1]);
        running.stop().await;
    })
    .await;
}
