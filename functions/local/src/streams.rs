//! A stream poller that behaves like a Lambda DynamoDB event source mapping
//! (TRIM_HORIZON, ReportBatchItemFailures, retried without end): reads every
//! shard of a table's stream, parents before children, hands each batch to
//! the handler as Lambda's DynamoDB `Event`, and keeps its place per shard in
//! a checkpoint file, so that a restart, even after a kill, hands on from the
//! first record not yet handled (at least once: a batch may come twice,
//! never a record not at all).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use thiserror::Error;
use tokio::sync::{Mutex, watch};

use crate::poller::describe_sdk_error;

/// Records per GetRecords, and so per batch (the mapping's BatchSize).
pub const BATCH_SIZE: i32 = 100;

#[derive(Debug, Error)]
pub enum StreamError {
    #[error(
        "cannot describe table {table}: {message}; check the table exists (run infra/provision.py) and the endpoint is reachable"
    )]
    DescribeTable { table: String, message: String },
    #[error("table {0} has no stream enabled; run infra/provision.py, which enables it")]
    NoStream(String),
    #[error("cannot write the stream checkpoints to {path}: {message}")]
    WriteCheckpoints { path: String, message: String },
}

/// The stream a poller reads and what Lambda would put in each record about it.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub table: String,
    pub stream_arn: String,
    pub region: String,
}

impl StreamSource {
    /// Looks the table's current stream up with DescribeTable.
    pub async fn resolve(
        dynamodb: &aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        region: impl Into<String>,
    ) -> Result<Self, StreamError> {
        let table = table.into();
        let out = dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .map_err(|e| StreamError::DescribeTable {
                table: table.clone(),
                message: describe_sdk_error(&e),
            })?;
        let desc = out.table();
        // A disabled stream keeps its LatestStreamArn: the specification says
        // whether it is still written.
        let enabled = desc
            .and_then(|d| d.stream_specification())
            .is_some_and(|s| s.stream_enabled());
        let stream_arn = desc
            .and_then(|d| d.latest_stream_arn())
            .filter(|_| enabled)
            .ok_or_else(|| StreamError::NoStream(table.clone()))?
            .to_string();
        Ok(Self {
            table,
            stream_arn,
            region: region.into(),
        })
    }
}

/// How a poller paces itself.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// Records per batch (1-1000, GetRecords' limit).
    pub batch_size: i32,
    /// The pause after a GetRecords with nothing new on every shard.
    pub idle_wait: Duration,
    /// How often DescribeStream is asked for new shards.
    pub refresh_every: Duration,
    /// The first wait after a failed batch or call, doubled up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            batch_size: BATCH_SIZE,
            idle_wait: Duration::from_millis(200),
            refresh_every: Duration::from_secs(5),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }
}

// --- checkpoints ------------------------------------------------------------------

/// Per stream ARN, per shard id: the sequence number of the last record handled.
pub type CheckpointMap = BTreeMap<String, BTreeMap<String, String>>;

/// The checkpoint file's shape.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct CheckpointFile {
    streams: CheckpointMap,
}

/// The file's checkpoints, or `Err` with why they cannot be read.
pub fn parse_checkpoints(text: &str) -> Result<CheckpointMap, serde_json::Error> {
    serde_json::from_str::<CheckpointFile>(text).map(|f| f.streams)
}

/// The file's text for `map`.
pub fn render_checkpoints(map: &CheckpointMap) -> String {
    let file = json!({ "streams": map });
    format!("{file:#}\n")
}

/// Keeps the checkpoints of `live` streams only: the others' streams are
/// gone (DynamoDB Local keeps tables in memory: a restarted stack has new
/// stream ARNs) and would never be read again.
pub fn prune_streams(map: &mut CheckpointMap, live: &[String]) {
    map.retain(|arn, _| live.contains(arn));
}

/// Writes `text` to `path` as a whole or not at all: a temporary file beside
/// it, flushed to disk, renamed over it.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The pollers' checkpoints, shared by all of them and kept in one file.
#[derive(Debug)]
pub struct Checkpoints {
    path: Option<PathBuf>,
    map: Mutex<CheckpointMap>,
}

impl Checkpoints {
    /// Reads the file at `path`, keeping only the checkpoints of `live`
    /// streams. A missing file is no checkpoint (every shard from
    /// TRIM_HORIZON); so is an unreadable one, with a warning: starting over
    /// publishes again, never loses. Without a path the checkpoints live in
    /// memory only.
    pub fn load(path: Option<PathBuf>, live: &[String]) -> Self {
        let mut map = CheckpointMap::new();
        if let Some(p) = &path {
            match std::fs::read_to_string(p) {
                Ok(text) => match parse_checkpoints(&text) {
                    Ok(m) => map = m,
                    Err(e) => tracing::warn!(
                        path = %p.display(),
                        error = %e,
                        "stream checkpoints unreadable; reading the streams from their oldest records"
                    ),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    path = %p.display(),
                    error = %e,
                    "stream checkpoints unreadable; reading the streams from their oldest records"
                ),
            }
        }
        prune_streams(&mut map, live);
        Self {
            path,
            map: Mutex::new(map),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The last sequence number handled on a shard.
    pub async fn get(&self, stream_arn: &str, shard_id: &str) -> Option<String> {
        self.map
            .lock()
            .await
            .get(stream_arn)
            .and_then(|s| s.get(shard_id))
            .cloned()
    }

    pub async fn snapshot(&self) -> CheckpointMap {
        self.map.lock().await.clone()
    }

    /// Records that the shard is handled up to `sequence_number` (in memory;
    /// `save` writes it).
    pub async fn set(&self, stream_arn: &str, shard_id: &str, sequence_number: &str) {
        self.map
            .lock()
            .await
            .entry(stream_arn.to_string())
            .or_default()
            .insert(shard_id.to_string(), sequence_number.to_string());
    }

    /// Forgets a shard's place: it is read again from TRIM_HORIZON.
    pub async fn forget(&self, stream_arn: &str, shard_id: &str) {
        if let Some(s) = self.map.lock().await.get_mut(stream_arn) {
            s.remove(shard_id);
        }
    }

    /// Drops the checkpoints of shards the stream no longer has (trimmed
    /// after 24 hours).
    pub async fn retain_shards(&self, stream_arn: &str, shards: &HashSet<String>) {
        if let Some(s) = self.map.lock().await.get_mut(stream_arn) {
            s.retain(|id, _| shards.contains(id));
        }
    }

    /// Writes every checkpoint to the file (nothing without a file).
    pub async fn save(&self) -> Result<(), StreamError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        // Held while writing, so that two pollers' writes do not interleave.
        let map = self.map.lock().await;
        let text = render_checkpoints(&map);
        let p = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&p, &text)).await;
        drop(map);
        let message = match written {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        Err(StreamError::WriteCheckpoints {
            path: path.display().to_string(),
            message,
        })
    }
}

// --- shards ------------------------------------------------------------------------

/// A shard as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
}

/// The shards that may be read now, parents before children: those not
/// finished whose parent is finished or no longer listed (trimmed). A child
/// waits until its parent is read to its end, so that a key's changes are
/// handed in order across a split.
pub fn readable_shards(shards: &[ShardInfo], finished: &HashSet<String>) -> Vec<String> {
    let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
    shards
        .iter()
        .filter(|s| !finished.contains(&s.shard_id))
        .filter(|s| match s.parent_shard_id.as_deref() {
            None => true,
            Some(parent) => finished.contains(parent) || !listed.contains(parent),
        })
        .map(|s| s.shard_id.clone())
        .collect()
}

/// Every shard of a stream (DescribeStream, page by page).
pub async fn list_shards(client: &Client, stream_arn: &str) -> Result<Vec<ShardInfo>, String> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = client
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .map_err(|e| describe_sdk_error(&e))?;
        let Some(desc) = out.stream_description() else {
            break;
        };
        for s in desc.shards() {
            if let Some(id) = s.shard_id() {
                shards.push(ShardInfo {
                    shard_id: id.to_string(),
                    parent_shard_id: s.parent_shard_id().map(str::to_string),
                });
            }
        }
        match desc.last_evaluated_shard_id() {
            Some(last) if start.as_deref() != Some(last) => start = Some(last.to_string()),
            _ => break,
        }
    }
    Ok(shards)
}

// --- records -------------------------------------------------------------------------

/// Why a stream record cannot be made into Lambda's record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("a stream record without its dynamodb part")]
    NoChange,
    #[error("a stream record without a sequence number")]
    NoSequenceNumber,
    #[error("an attribute of a type this reader does not know")]
    UnknownAttributeType,
    // serde's message could quote an image's values; the category only.
    #[error("the event does not deserialize as Lambda's DynamoDB event ({0})")]
    Event(String),
}

/// An attribute value in DynamoDB's JSON, as Lambda writes images.
pub fn attribute_json(v: &AttributeValue) -> Result<Value, ConvertError> {
    Ok(match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": BASE64.encode(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        AttributeValue::Bs(bs) => {
            json!({ "BS": bs.iter().map(|b| BASE64.encode(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(l) => {
            json!({ "L": l.iter().map(attribute_json).collect::<Result<Vec<_>, _>>()? })
        }
        AttributeValue::M(m) => json!({ "M": item_json(m)? }),
        _ => return Err(ConvertError::UnknownAttributeType),
    })
}

fn item_json(item: &HashMap<String, AttributeValue>) -> Result<Value, ConvertError> {
    let mut out = Map::new();
    for (k, v) in item {
        out.insert(k.clone(), attribute_json(v)?);
    }
    Ok(Value::Object(out))
}

/// One record as a DynamoDB event source mapping sends it: the stream
/// record's fields, with the stream's ARN. The region is the stack's
/// (DynamoDB Local names none).
pub fn record_json(r: &Record, source: &StreamSource) -> Result<Value, ConvertError> {
    let change = r.dynamodb().ok_or(ConvertError::NoChange)?;
    let sequence = change
        .sequence_number()
        .ok_or(ConvertError::NoSequenceNumber)?;
    let mut dynamodb = Map::new();
    if let Some(t) = change.approximate_creation_date_time() {
        let at = if t.subsec_nanos() == 0 {
            json!(t.secs())
        } else {
            json!(t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9)
        };
        dynamodb.insert("ApproximateCreationDateTime".into(), at);
    }
    for (name, image) in [
        ("Keys", change.keys()),
        ("NewImage", change.new_image()),
        ("OldImage", change.old_image()),
    ] {
        if let Some(image) = image {
            dynamodb.insert(name.into(), item_json(image)?);
        }
    }
    dynamodb.insert("SequenceNumber".into(), json!(sequence));
    dynamodb.insert("SizeBytes".into(), json!(change.size_bytes().unwrap_or(0)));
    if let Some(view) = change.stream_view_type() {
        dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
    }
    let mut record = Map::new();
    record.insert("eventID".into(), json!(r.event_id().unwrap_or_default()));
    record.insert(
        "eventName".into(),
        json!(r.event_name().map(|n| n.as_str()).unwrap_or_default()),
    );
    record.insert(
        "eventVersion".into(),
        json!(r.event_version().unwrap_or("1.1")),
    );
    record.insert(
        "eventSource".into(),
        json!(r.event_source().unwrap_or("aws:dynamodb")),
    );
    record.insert("awsRegion".into(), json!(source.region));
    record.insert("dynamodb".into(), Value::Object(dynamodb));
    record.insert("eventSourceARN".into(), json!(source.stream_arn));
    if let Some(who) = r.user_identity() {
        record.insert(
            "userIdentity".into(),
            json!({ "type": who.r#type(), "principalId": who.principal_id() }),
        );
    }
    Ok(Value::Object(record))
}

/// The `Event` Lambda would deliver for these records: the mapping's JSON,
/// deserialized as the runtime does.
pub fn to_event(records: &[Record], source: &StreamSource) -> Result<Event, ConvertError> {
    let records = records
        .iter()
        .map(|r| record_json(r, source))
        .collect::<Result<Vec<_>, _>>()?;
    serde_json::from_value(json!({ "Records": records }))
        .map_err(|e| ConvertError::Event(format!("{:?}", e.classify())))
}

/// Where handing a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResult {
    /// Every record handled.
    Done,
    /// The records from this index on must be handed again; those before
    /// it are handled.
    FailedAt(usize),
}

/// What the handler's response means for a batch with these sequence
/// numbers. As Lambda does for streams: the earliest reported record and
/// all after it are retried; a failure naming no record of the batch (or
/// none at all) fails the whole batch.
pub fn batch_result(response: &DynamoDbEventResponse, sequences: &[String]) -> BatchResult {
    let mut first: Option<usize> = None;
    for f in &response.batch_item_failures {
        let position = f
            .item_identifier
            .as_deref()
            .and_then(|id| sequences.iter().position(|s| s == id));
        let Some(position) = position else {
            return BatchResult::FailedAt(0);
        };
        first = Some(first.map_or(position, |p| p.min(position)));
    }
    match first {
        Some(p) => BatchResult::FailedAt(p),
        None => BatchResult::Done,
    }
}

// --- DynamoDB Local's empty maps --------------------------------------------------------

/// DynamoDB Local's Streams API writes an empty map attribute as `{}`
/// instead of `{"M":{}}`, which the SDK cannot read: one such record would
/// stop the shard. This puts the `M` back in GetRecords' answers before the
/// SDK reads them (a no-op against DynamoDB, which writes `{"M":{}}`).
#[derive(Debug)]
pub struct EmptyMapFix;

impl aws_smithy_runtime_api::client::interceptors::Intercept for EmptyMapFix {
    fn name(&self) -> &'static str {
        "EmptyMapFix"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_types::body::SdkBody;
        let body = std::mem::replace(context.response_mut().body_mut(), SdkBody::taken());
        *context.response_mut().body_mut() = SdkBody::from_body_1_x(WholeBody::new(body));
        Ok(())
    }
}

type BodyFuture = std::pin::Pin<
    Box<
        dyn Future<Output = Result<bytes::Bytes, aws_smithy_runtime_api::box_error::BoxError>>
            + Send
            + Sync,
    >,
>;

/// A response body read whole, rewritten by `restore_empty_maps`, and
/// handed on as one frame.
struct WholeBody {
    read: Option<BodyFuture>,
}

impl WholeBody {
    fn new(body: aws_smithy_types::body::SdkBody) -> Self {
        use http_body_util::BodyExt;
        Self {
            read: Some(Box::pin(async move {
                let bytes = body.collect().await?.to_bytes();
                Ok(restore_empty_maps(bytes))
            })),
        }
    }
}

impl hyper::body::Body for WholeBody {
    type Data = bytes::Bytes;
    type Error = aws_smithy_runtime_api::box_error::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let Some(read) = self.read.as_mut() else {
            return Poll::Ready(None);
        };
        match read.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                self.read = None;
                Poll::Ready(Some(result.map(hyper::body::Frame::data)))
            }
        }
    }
}

/// GetRecords' answer with every `{}` attribute value in its records'
/// images made `{"M":{}}`; anything else (an error, another shape) as it is.
pub fn restore_empty_maps(body: bytes::Bytes) -> bytes::Bytes {
    fn attribute(v: &mut Value) -> bool {
        let Value::Object(map) = v else {
            return false;
        };
        if map.is_empty() {
            map.insert("M".into(), Value::Object(Map::new()));
            return true;
        }
        let mut changed = false;
        if let Some(Value::Object(m)) = map.get_mut("M") {
            for inner in m.values_mut() {
                changed |= attribute(inner);
            }
        }
        if let Some(Value::Array(l)) = map.get_mut("L") {
            for inner in l.iter_mut() {
                changed |= attribute(inner);
            }
        }
        changed
    }
    let Ok(mut json) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let mut changed = false;
    if let Some(Value::Array(records)) = json.get_mut("Records") {
        for record in records.iter_mut() {
            let Some(Value::Object(change)) = record.get_mut("dynamodb") else {
                continue;
            };
            for image in ["Keys", "NewImage", "OldImage"] {
                if let Some(Value::Object(item)) = change.get_mut(image) {
                    for v in item.values_mut() {
                        changed |= attribute(v);
                    }
                }
            }
        }
    }
    if !changed {
        return body;
    }
    serde_json::to_vec(&json)
        .map(bytes::Bytes::from)
        .unwrap_or(body)
}

// --- the poller ------------------------------------------------------------------------

/// Reading state of one shard.
#[derive(Debug, Default)]
struct ShardState {
    /// The iterator to read with next; None: get one from the checkpoint.
    iterator: Option<String>,
    /// No call on this shard before this instant (after a failure).
    not_before: Option<Instant>,
    backoff: Option<Duration>,
}

/// What one GetRecords round on a shard did.
enum Step {
    /// Records were handed (whatever the outcome).
    Handled,
    /// Nothing new.
    Idle,
    /// The shard is closed and read to its end.
    Finished,
    /// Shutdown came before the records were handed.
    Stopped,
}

/// Reads one table's stream and hands batches to `handler`.
pub struct StreamPoller<H> {
    client: Client,
    source: StreamSource,
    checkpoints: Arc<Checkpoints>,
    config: StreamConfig,
    handler: Arc<H>,
}

impl<H, Fut> StreamPoller<H>
where
    H: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = DynamoDbEventResponse> + Send + 'static,
{
    pub fn new(
        client: Client,
        source: StreamSource,
        checkpoints: Arc<Checkpoints>,
        config: StreamConfig,
        handler: H,
    ) -> Self {
        Self {
            client,
            source,
            checkpoints,
            config: StreamConfig {
                batch_size: config.batch_size.clamp(1, 1000),
                ..config
            },
            handler: Arc::new(handler),
        }
    }

    pub fn source(&self) -> &StreamSource {
        &self.source
    }

    /// Reads the stream until `shutdown` turns true (or its sender goes
    /// away). A batch being handled is finished and checkpointed first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let arn = self.source.stream_arn.clone();
        let mut shards: Vec<ShardInfo> = Vec::new();
        let mut states: HashMap<String, ShardState> = HashMap::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut refreshed: Option<Instant> = None;
        let mut describe_backoff = self.config.min_backoff;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if refreshed.is_none_or(|at| at.elapsed() >= self.config.refresh_every) {
                match list_shards(&self.client, &arn).await {
                    Ok(listed) => {
                        let ids: HashSet<String> =
                            listed.iter().map(|s| s.shard_id.clone()).collect();
                        self.checkpoints.retain_shards(&arn, &ids).await;
                        states.retain(|id, _| ids.contains(id));
                        finished.retain(|id| ids.contains(id));
                        shards = listed;
                        refreshed = Some(Instant::now());
                        describe_backoff = self.config.min_backoff;
                    }
                    Err(error) => {
                        tracing::warn!(
                            table = %self.source.table,
                            stream = %arn,
                            %error,
                            retry_in_ms = describe_backoff.as_millis() as u64,
                            "DescribeStream failed; is the local stack running?"
                        );
                        if sleep_or_stop(describe_backoff, &mut shutdown).await {
                            break;
                        }
                        describe_backoff = (describe_backoff * 2).min(self.config.max_backoff);
                        continue;
                    }
                }
            }

            let mut busy = false;
            let mut stop = false;
            for shard_id in readable_shards(&shards, &finished) {
                if *shutdown.borrow() {
                    stop = true;
                    break;
                }
                let state = states.entry(shard_id.clone()).or_default();
                if state.not_before.is_some_and(|t| Instant::now() < t) {
                    continue;
                }
                match self.step(&shard_id, state, &shutdown).await {
                    Step::Handled => busy = true,
                    Step::Idle => {}
                    Step::Finished => {
                        finished.insert(shard_id.clone());
                        // Its children may be listed already; look at once.
                        refreshed = None;
                        busy = true;
                    }
                    Step::Stopped => {
                        stop = true;
                        break;
                    }
                }
            }
            if stop {
                break;
            }
            if !busy && sleep_or_stop(self.config.idle_wait, &mut shutdown).await {
                break;
            }
        }
        if let Err(e) = self.checkpoints.save().await {
            tracing::warn!(table = %self.source.table, error = %e, "stream checkpoints not written at shutdown");
        }
        tracing::info!(table = %self.source.table, "stream poller stopped");
    }

    /// One GetRecords on a shard, and the batch it returned handed.
    async fn step(
        &self,
        shard_id: &str,
        state: &mut ShardState,
        shutdown: &watch::Receiver<bool>,
    ) -> Step {
        let arn = &self.source.stream_arn;
        // A fresh iterator starts at the checkpoint; a chained one where the
        // last GetRecords ended.
        let fresh = state.iterator.is_none();
        let iterator = match state.iterator.take() {
            Some(it) => it,
            None => match self.iterator(shard_id).await {
                Ok(Some(it)) => it,
                // No iterator: the shard is closed and has nothing after the checkpoint.
                Ok(None) => return Step::Finished,
                Err(error) => {
                    self.fail(state, shard_id, "GetShardIterator failed", &error);
                    return Step::Idle;
                }
            },
        };
        let out = match self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(self.config.batch_size)
            .customize()
            .interceptor(EmptyMapFix)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                    // The next round gets a fresh one from the checkpoint.
                    tracing::debug!(table = %self.source.table, shard = shard_id, "shard iterator expired");
                    return Step::Idle;
                }
                if service.is_some_and(|s| s.is_trimmed_data_access_exception()) {
                    // DynamoDB Local also says this of a chained iterator
                    // made before a shard's first record once other streams
                    // have moved on: a fresh one from the checkpoint reads
                    // on. Only the checkpoint itself being trimmed (24 h)
                    // sends the shard back to TRIM_HORIZON, as Lambda does.
                    if fresh && self.checkpoints.get(arn, shard_id).await.is_some() {
                        self.trimmed(shard_id).await;
                    } else {
                        tracing::debug!(table = %self.source.table, shard = shard_id, "shard iterator past the stream's records; getting a fresh one");
                    }
                    return Step::Idle;
                }
                self.fail(
                    state,
                    shard_id,
                    "GetRecords failed",
                    &describe_sdk_error(&e),
                );
                return Step::Idle;
            }
        };
        let next = out.next_shard_iterator().map(str::to_string);
        let records = out.records();
        if records.is_empty() {
            return match next {
                Some(it) => {
                    state.iterator = Some(it);
                    Step::Idle
                }
                None => Step::Finished,
            };
        }
        if *shutdown.borrow() {
            // Not handed: they come again after the restart.
            return Step::Stopped;
        }
        match self.hand(shard_id, records).await {
            BatchResult::Done => {
                state.backoff = None;
                state.not_before = None;
                match next {
                    Some(it) => state.iterator = Some(it),
                    None => return Step::Finished,
                }
            }
            BatchResult::FailedAt(_) => {
                // Read again after the checkpoint once the wait is over.
                let wait = state.backoff.unwrap_or(self.config.min_backoff);
                state.not_before = Some(Instant::now() + wait);
                state.backoff = Some((wait * 2).min(self.config.max_backoff));
            }
        }
        Step::Handled
    }

    /// Hands `records` to the handler and checkpoints what it handled.
    async fn hand(&self, shard_id: &str, records: &[Record]) -> BatchResult {
        let arn = &self.source.stream_arn;
        let table = &self.source.table;
        let sequences: Vec<String> = records
            .iter()
            .map(|r| {
                r.dynamodb()
                    .and_then(|d| d.sequence_number())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let result = match to_event(records, &self.source) {
            Ok(event) => {
                let handler = Arc::clone(&self.handler);
                match tokio::spawn(async move { handler(event).await }).await {
                    Ok(response) => batch_result(&response, &sequences),
                    Err(e) => {
                        tracing::error!(%table, shard = shard_id, error = %e, "handler panicked; the batch will be handed again");
                        BatchResult::FailedAt(0)
                    }
                }
            }
            Err(e) => {
                // The runtime would fail the invocation: nothing is checkpointed.
                tracing::error!(%table, shard = shard_id, error = %e, "the batch is not a valid DynamoDB event; it will be handed again");
                BatchResult::FailedAt(0)
            }
        };
        let handled = match result {
            BatchResult::Done => sequences.len(),
            BatchResult::FailedAt(i) => i,
        };
        if let Some(last) = handled
            .checked_sub(1)
            .and_then(|i| sequences.get(i))
            .filter(|s| !s.is_empty())
        {
            self.checkpoints.set(arn, shard_id, last).await;
            if let Err(e) = self.checkpoints.save().await {
                tracing::warn!(%table, error = %e, "stream checkpoints not written; a restart would hand these records again");
            }
        }
        match result {
            // One line per batch, as the queue pollers log theirs: the
            // benchmarks count them as the change-events function's
            // invocations.
            BatchResult::Done => {
                tracing::info!(%table, records = records.len(), shard = shard_id, "stream batch handled")
            }
            BatchResult::FailedAt(i) => tracing::warn!(
                %table,
                shard = shard_id,
                records = records.len(),
                handled = i,
                "stream batch failed; the records from the first failure on will be handed again"
            ),
        }
        result
    }

    /// A new iterator for the shard: after its checkpoint, else at its
    /// oldest record. Ok(None): the shard is closed and has nothing more.
    async fn iterator(&self, shard_id: &str) -> Result<Option<String>, String> {
        let arn = &self.source.stream_arn;
        loop {
            let checkpoint = self.checkpoints.get(arn, shard_id).await;
            let request = self
                .client
                .get_shard_iterator()
                .stream_arn(arn)
                .shard_id(shard_id);
            let request = match &checkpoint {
                Some(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            match request.send().await {
                Ok(out) => return Ok(out.shard_iterator().map(str::to_string)),
                Err(e)
                    if checkpoint.is_some()
                        && e.as_service_error()
                            .is_some_and(|s| s.is_trimmed_data_access_exception()) =>
                {
                    self.trimmed(shard_id).await;
                }
                Err(e) => return Err(describe_sdk_error(&e)),
            }
        }
    }

    /// The shard's checkpoint is older than its oldest record: what lay
    /// between is gone; read on from the oldest record there is.
    async fn trimmed(&self, shard_id: &str) {
        tracing::warn!(
            table = %self.source.table,
            shard = shard_id,
            "the checkpoint is older than the stream's oldest record; reading the shard from TRIM_HORIZON"
        );
        self.checkpoints
            .forget(&self.source.stream_arn, shard_id)
            .await;
    }

    fn fail(&self, state: &mut ShardState, shard_id: &str, what: &str, error: &str) {
        let wait = state.backoff.unwrap_or(self.config.min_backoff);
        tracing::warn!(
            table = %self.source.table,
            shard = shard_id,
            %error,
            retry_in_ms = wait.as_millis() as u64,
            "{what}"
        );
        state.not_before = Some(Instant::now() + wait);
        state.backoff = Some((wait * 2).min(self.config.max_backoff));
    }
}

/// Sleeps `d`; true when shutdown came first.
async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::streams::DynamoDbBatchItemFailure;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};

    const ARN: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/steward-Commands/stream/2026-01-01T00:00:00.000";

    fn source() -> StreamSource {
        StreamSource {
            table: "steward-Commands".into(),
            stream_arn: ARN.into(),
            region: "us-east-1".into(),
        }
    }

    fn shard(id: &str, parent: Option<&str>) -> ShardInfo {
        ShardInfo {
            shard_id: id.into(),
            parent_shard_id: parent.map(str::to_string),
        }
    }

    fn set(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn children_wait_for_their_parents() {
        // a → b → c; d is an orphan whose parent was trimmed.
        let shards = [
            shard("c", Some("b")),
            shard("b", Some("a")),
            shard("a", None),
            shard("d", Some("gone")),
        ];
        assert_eq!(readable_shards(&shards, &set(&[])), ["a", "d"]);
        assert_eq!(readable_shards(&shards, &set(&["a"])), ["b", "d"]);
        assert_eq!(readable_shards(&shards, &set(&["a", "b", "d"])), ["c"]);
        assert!(readable_shards(&shards, &set(&["a", "b", "c", "d"])).is_empty());
        // Two children of one parent (a split) are read side by side after it.
        let split = [
            shard("p", None),
            shard("l", Some("p")),
            shard("r", Some("p")),
        ];
        assert_eq!(readable_shards(&split, &set(&[])), ["p"]);
        assert_eq!(readable_shards(&split, &set(&["p"])), ["l", "r"]);
    }

    fn failure(id: Option<&str>) -> DynamoDbBatchItemFailure {
        let mut f = DynamoDbBatchItemFailure::default();
        f.item_identifier = id.map(str::to_string);
        f
    }

    fn response(failures: Vec<DynamoDbBatchItemFailure>) -> DynamoDbEventResponse {
        let mut r = DynamoDbEventResponse::default();
        r.batch_item_failures = failures;
        r
    }

    #[test]
    fn the_earliest_reported_failure_is_where_the_batch_resumes() {
        let seq: Vec<String> = ["10", "11", "12", "13"].map(String::from).to_vec();
        assert_eq!(batch_result(&response(vec![]), &seq), BatchResult::Done);
        assert_eq!(
            batch_result(&response(vec![failure(Some("12"))]), &seq),
            BatchResult::FailedAt(2)
        );
        assert_eq!(
            batch_result(
                &response(vec![failure(Some("13")), failure(Some("11"))]),
                &seq
            ),
            BatchResult::FailedAt(1)
        );
        // Lambda fails the whole batch on an identifier it cannot place.
        for bad in [None, Some(""), Some("99")] {
            assert_eq!(
                batch_result(&response(vec![failure(bad)]), &seq),
                BatchResult::FailedAt(0),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn checkpoints_round_trip_and_prune_gone_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        let mut map = CheckpointMap::new();
        map.entry("arn:live".into())
            .or_default()
            .insert("shard-1".into(), "000000000000000000009".into());
        map.entry("arn:gone".into())
            .or_default()
            .insert("shard-1".into(), "000000000000000000042".into());
        write_atomically(&path, &render_checkpoints(&map)).unwrap();
        assert_eq!(
            parse_checkpoints(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            map
        );
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["checkpoints.json"]);

        let mut pruned = map.clone();
        prune_streams(&mut pruned, &["arn:live".to_string()]);
        assert_eq!(pruned.keys().collect::<Vec<_>>(), ["arn:live"]);
        assert!(parse_checkpoints("{not json").is_err());
    }

    #[tokio::test]
    async fn checkpoints_load_prune_and_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        // Missing file: no checkpoint.
        let cp = Checkpoints::load(Some(path.clone()), &["arn:a".into()]);
        assert_eq!(cp.get("arn:a", "s1").await, None);
        cp.set("arn:a", "s1", "5").await;
        cp.set("arn:a", "s2", "7").await;
        cp.set("arn:b", "s1", "9").await;
        cp.save().await.unwrap();

        // A restart where only arn:a still exists keeps only its checkpoints.
        let cp = Checkpoints::load(Some(path.clone()), &["arn:a".into()]);
        assert_eq!(cp.get("arn:a", "s1").await.as_deref(), Some("5"));
        assert_eq!(cp.get("arn:b", "s1").await, None);
        cp.retain_shards("arn:a", &set(&["s2"])).await;
        cp.forget("arn:a", "s2").await;
        cp.save().await.unwrap();
        let on_disk = parse_checkpoints(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk.get("arn:a").map(|s| s.len()), Some(0));
        assert!(!on_disk.contains_key("arn:b"));

        // An unreadable file: start over (at least once), not fail.
        std::fs::write(&path, "garbage").unwrap();
        let cp = Checkpoints::load(Some(path), &["arn:a".into()]);
        assert!(cp.snapshot().await.is_empty());
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn records_carry_what_lambda_puts_in_them() {
        let change = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
            .keys("pk", s("cmd-1"))
            .old_image("pk", s("cmd-1"))
            .old_image("status", s("Pending"))
            .new_image("pk", s("cmd-1"))
            .new_image("status", s("Success"))
            .new_image("count", AttributeValue::N("3".into()))
            .new_image("ok", AttributeValue::Bool(true))
            .new_image("nothing", AttributeValue::Null(true))
            .new_image("blob", AttributeValue::B(Blob::new(vec![1, 2, 3])))
            .new_image("tags", AttributeValue::Ss(vec!["a".into(), "b".into()]))
            .new_image(
                "nested",
                AttributeValue::M(HashMap::from([(
                    "list".to_string(),
                    AttributeValue::L(vec![s("x"), AttributeValue::N("1".into())]),
                )])),
            )
            .sequence_number("000000000000000000042")
            .size_bytes(64)
            .stream_view_type(StreamViewType::NewAndOldImages)
            .build();
        let record = Record::builder()
            .event_id("ev-1")
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("ddblocal")
            .dynamodb(change)
            .user_identity(
                Identity::builder()
                    .r#type("Service")
                    .principal_id("dynamodb.amazonaws.com")
                    .build(),
            )
            .build();
        let event = to_event(&[record], &source()).unwrap();
        assert_eq!(event.records.len(), 1);
        let r = &event.records[0];
        assert_eq!(r.event_id, "ev-1");
        assert_eq!(r.event_name, "MODIFY");
        assert_eq!(r.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(r.event_version.as_deref(), Some("1.1"));
        assert_eq!(r.event_source_arn.as_deref(), Some(ARN));
        assert_eq!(r.aws_region, "us-east-1");
        assert_eq!(
            r.user_identity.as_ref().map(|u| u.principal_id.as_str()),
            Some("dynamodb.amazonaws.com")
        );
        let c = &r.change;
        assert_eq!(c.sequence_number.as_deref(), Some("000000000000000000042"));
        assert_eq!(c.size_bytes, 64);
        assert_eq!(
            c.stream_view_type,
            Some(aws_lambda_events::dynamodb::StreamViewType::NewAndOldImages)
        );
        assert_eq!(c.approximate_creation_date_time.timestamp(), 1_700_000_000);
        use serde_dynamo::AttributeValue as V;
        assert_eq!(c.keys.get("pk"), Some(&V::S("cmd-1".into())));
        assert_eq!(c.old_image.get("status"), Some(&V::S("Pending".into())));
        assert_eq!(c.new_image.get("status"), Some(&V::S("Success".into())));
        assert_eq!(c.new_image.get("count"), Some(&V::N("3".into())));
        assert_eq!(c.new_image.get("ok"), Some(&V::Bool(true)));
        assert_eq!(c.new_image.get("nothing"), Some(&V::Null(true)));
        assert_eq!(c.new_image.get("blob"), Some(&V::B(vec![1, 2, 3])));
        assert_eq!(
            c.new_image.get("tags"),
            Some(&V::Ss(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            c.new_image.get("nested"),
            Some(&V::M(HashMap::from([(
                "list".to_string(),
                V::L(vec![V::S("x".into()), V::N("1".into())])
            )])))
        );
        assert_eq!(c.new_image.len(), 8);
        // Lambda's wire shape.
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["Records"][0]["eventSourceARN"], ARN);
        assert_eq!(
            json["Records"][0]["dynamodb"]["NewImage"]["status"]["S"],
            "Success"
        );
    }

    #[test]
    fn an_insert_has_no_old_image_and_a_remove_no_new_one() {
        let insert = Record::builder()
            .event_name(OperationType::Insert)
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", s("a"))
                    .new_image("pk", s("a"))
                    .sequence_number("1")
                    .build(),
            )
            .build();
        let remove = Record::builder()
            .event_name(OperationType::Remove)
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", s("a"))
                    .old_image("pk", s("a"))
                    .sequence_number("2")
                    .build(),
            )
            .build();
        let event = to_event(&[insert, remove], &source()).unwrap();
        let [i, r] = &event.records[..] else {
            panic!("two records")
        };
        assert_eq!(
            (i.event_name.as_str(), r.event_name.as_str()),
            ("INSERT", "REMOVE")
        );
        assert!(i.change.old_image.is_empty() && !i.change.new_image.is_empty());
        assert!(r.change.new_image.is_empty() && !r.change.old_image.is_empty());
    }

    #[test]
    fn empty_maps_get_their_type_back() {
        let body = br#"{"Records":[{"dynamodb":{"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"a"},"m":{},"l":{"L":[{},{"M":{"x":{}}}]},"n":{"M":{"y":{}}}},"OldImage":{"e":{}}}}],"NextShardIterator":"it"}"#;
        let fixed: Value =
            serde_json::from_slice(&restore_empty_maps(bytes::Bytes::from_static(body))).unwrap();
        let change = &fixed["Records"][0]["dynamodb"];
        assert_eq!(change["NewImage"]["m"], json!({ "M": {} }));
        assert_eq!(
            change["NewImage"]["l"],
            json!({ "L": [{ "M": {} }, { "M": { "x": { "M": {} } } }] })
        );
        assert_eq!(
            change["NewImage"]["n"],
            json!({ "M": { "y": { "M": {} } } })
        );
        assert_eq!(change["OldImage"]["e"], json!({ "M": {} }));
        assert_eq!(change["Keys"]["pk"], json!({ "S": "a" }));
        assert_eq!(fixed["NextShardIterator"], "it");
        // Anything else passes untouched.
        for other in [
            &br#"{"__type":"TrimmedDataAccessException","message":"x"}"#[..],
            b"not json",
            br#"{"Records":[{"dynamodb":{"NewImage":{"s":{"S":"v"}}}}]}"#,
        ] {
            let b = bytes::Bytes::copy_from_slice(other);
            assert_eq!(restore_empty_maps(b.clone()), b);
        }
    }

    #[test]
    fn a_record_without_its_change_or_sequence_is_refused() {
        let bare = Record::builder().event_name(OperationType::Insert).build();
        assert_eq!(
            to_event(&[bare], &source()).unwrap_err(),
            ConvertError::NoChange
        );
        let unnumbered = Record::builder()
            .dynamodb(StreamRecord::builder().keys("pk", s("a")).build())
            .build();
        assert_eq!(
            to_event(&[unnumbered], &source()).unwrap_err(),
            ConvertError::NoSequenceNumber
        );
    }
}
