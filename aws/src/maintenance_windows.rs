//! Maintenance windows over DynamoDB: one table, `MaintenanceWindowsTable`
//! (`Pk`, `Sk`; indexes `ByKind` and `ByDue`), each record kept whole as
//! JSON in `Record` with the `Revision` every write is conditional on:
//!
//! - a window: `Pk = window#<id>`, `Sk = window`, Kind `window` (ListKey its
//!   id); while it has a next occurrence, `DueShard`/`NextDue` (its due
//!   time) put it in `ByDue`;
//! - its targets and tasks: `Pk = window#<id>`, `Sk = target#<id>` /
//!   `task#<id>` (listed by one Query on the window's partition);
//! - an execution: `Pk = execution#<id>`, `Sk = execution`, Kind
//!   `execution#<window id>` (ListKey its start time and id, so a window's
//!   executions list in time order); while under way it is in `ByDue` with
//!   `NextDue = 0`, so every tick looks at it.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_core::SsmError;
use steward_core::maintenance_windows::context::WindowContext;
use steward_core::maintenance_windows::model::{Execution, Window, WindowTarget, WindowTask};
use steward_core::maintenance_windows::ports::{Due, WindowStore};
use steward_core::maintenance_windows::tick::{DUE_SHARD, DueReport};
use steward_core::schedule::runs::ScheduledRuns;

use crate::Stack;
use crate::internal;
use crate::item::{Item, batch_write_all, conditional, get_consistent, get_s, n, query_items, s};

const WINDOW: &str = "window";
const EXECUTION: &str = "execution";
const BY_KIND: &str = "ByKind";
const BY_DUE: &str = "ByDue";

fn window_pk(id: &str) -> String {
    format!("window#{id}")
}

fn execution_pk(id: &str) -> String {
    format!("execution#{id}")
}

fn key(pk: String, sk: &str) -> Item {
    Item::from([("Pk".to_string(), s(pk)), ("Sk".to_string(), s(sk))])
}

fn record<T: Serialize>(pk: String, sk: &str, value: &T, revision: u64) -> Result<Item, SsmError> {
    let text = serde_json::to_string(value).map_err(|e| {
        tracing::error!(error = %e, "a maintenance window record cannot be written");
        SsmError::internal()
    })?;
    let mut item = key(pk, sk);
    item.insert("Record".into(), s(text));
    item.insert("Revision".into(), n(revision));
    Ok(item)
}

fn read<T: DeserializeOwned>(item: &Item) -> Result<T, SsmError> {
    serde_json::from_str(&get_s(item, "Record")).map_err(|e| {
        tracing::error!(error = %e, "a maintenance window item cannot be read");
        SsmError::internal()
    })
}

fn window_item(w: &Window) -> Result<Item, SsmError> {
    let mut item = record(window_pk(&w.id), WINDOW, w, w.revision)?;
    item.insert("Kind".into(), s(WINDOW));
    item.insert("ListKey".into(), s(&w.id));
    if let Some(due) = w.next_due {
        item.insert("DueShard".into(), s(DUE_SHARD));
        item.insert("NextDue".into(), n(due));
    }
    Ok(item)
}

fn execution_item(e: &Execution) -> Result<Item, SsmError> {
    let mut item = record(execution_pk(&e.id), EXECUTION, e, e.revision)?;
    item.insert("Kind".into(), s(format!("{EXECUTION}#{}", e.window_id)));
    item.insert(
        "ListKey".into(),
        s(format!("{:017.3}#{}", e.start_time, e.id)),
    );
    if e.due {
        item.insert("DueShard".into(), s(DUE_SHARD));
        item.insert("NextDue".into(), n(0));
    }
    Ok(item)
}

#[derive(Debug, Clone)]
pub struct WindowTable {
    client: Client,
    table: String,
}

impl WindowTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.maintenance_windows_table.clone(),
        }
    }

    async fn insert(&self, item: Item) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(Pk)")
                .send()
                .await,
        )
        .map_err(internal)
    }

    /// Replaces the item if it is still at `expected`.
    async fn replace(&self, item: Item, expected: u64) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("Revision = :r")
                .expression_attribute_values(":r", n(expected))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn remove(&self, pk: String, sk: &str, expected: u64) -> Result<bool, SsmError> {
        conditional(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .condition_expression("Revision = :r")
                .expression_attribute_values(":r", n(expected))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, SsmError> {
        get_consistent(&self.client, &self.table, key(pk, sk)).await
    }

    /// The window partition's items whose `Sk` starts with `prefix`.
    async fn partition(&self, window_id: &str, prefix: &str) -> Result<Vec<Item>, SsmError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_values(":pk", s(window_pk(window_id)));
        // DynamoDB refuses an empty prefix: the whole partition is asked
        // for without one.
        let q = if prefix.is_empty() {
            q.key_condition_expression("Pk = :pk")
        } else {
            q.key_condition_expression("Pk = :pk AND begins_with(Sk, :p)")
                .expression_attribute_values(":p", s(prefix))
        };
        query_items(q, None, |_| true).await
    }

    async fn kind(&self, kind: &str, newest_first: bool) -> Result<Vec<Item>, SsmError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_KIND)
            .key_condition_expression("Kind = :k")
            .expression_attribute_values(":k", s(kind))
            .scan_index_forward(!newest_first);
        query_items(q, None, |_| true).await
    }
}

fn delete_request(item: &Item) -> Option<WriteRequest> {
    let pk = item.get("Pk")?.clone();
    let sk = item.get("Sk")?.clone();
    let del = DeleteRequest::builder()
        .key("Pk", pk)
        .key("Sk", sk)
        .build()
        .ok()?;
    Some(WriteRequest::builder().delete_request(del).build())
}

#[async_trait::async_trait]
impl WindowStore for WindowTable {
    async fn insert_window(&self, w: &Window) -> Result<bool, SsmError> {
        self.insert(window_item(w)?).await
    }

    async fn get_window(&self, id: &str) -> Result<Option<Window>, SsmError> {
        self.get_item(window_pk(id), WINDOW)
            .await?
            .map(|i| read(&i))
            .transpose()
    }

    async fn update_window(&self, w: &Window, expected_revision: u64) -> Result<bool, SsmError> {
        self.replace(window_item(w)?, expected_revision).await
    }

    async fn delete_window(&self, id: &str) -> Result<(), SsmError> {
        let mut items = self.partition(id, "").await?;
        items.extend(self.kind(&format!("{EXECUTION}#{id}"), false).await?);
        // Batches of 25, DynamoDB's limit.
        let requests: Vec<WriteRequest> = items.iter().filter_map(delete_request).collect();
        for chunk in requests.chunks(25) {
            if !batch_write_all(&self.client, &self.table, chunk.to_vec()).await? {
                tracing::error!(
                    window = id,
                    "a maintenance window's items were not all deleted"
                );
                return Err(SsmError::internal());
            }
        }
        Ok(())
    }

    async fn list_windows(&self) -> Result<Vec<Window>, SsmError> {
        self.kind(WINDOW, false).await?.iter().map(read).collect()
    }

    async fn insert_target(&self, t: &WindowTarget) -> Result<bool, SsmError> {
        self.insert(record(
            window_pk(&t.window_id),
            &format!("target#{}", t.id),
            t,
            t.revision,
        )?)
        .await
    }

    async fn get_target(
        &self,
        window_id: &str,
        id: &str,
    ) -> Result<Option<WindowTarget>, SsmError> {
        self.get_item(window_pk(window_id), &format!("target#{id}"))
            .await?
            .map(|i| read(&i))
            .transpose()
    }

    async fn update_target(
        &self,
        t: &WindowTarget,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        self.replace(
            record(
                window_pk(&t.window_id),
                &format!("target#{}", t.id),
                t,
                t.revision,
            )?,
            expected_revision,
        )
        .await
    }

    async fn delete_target(&self, t: &WindowTarget) -> Result<bool, SsmError> {
        self.remove(
            window_pk(&t.window_id),
            &format!("target#{}", t.id),
            t.revision,
        )
        .await
    }

    async fn list_targets(&self, window_id: &str) -> Result<Vec<WindowTarget>, SsmError> {
        self.partition(window_id, "target#")
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn insert_task(&self, t: &WindowTask) -> Result<bool, SsmError> {
        self.insert(record(
            window_pk(&t.window_id),
            &format!("task#{}", t.id),
            t,
            t.revision,
        )?)
        .await
    }

    async fn get_task(&self, window_id: &str, id: &str) -> Result<Option<WindowTask>, SsmError> {
        self.get_item(window_pk(window_id), &format!("task#{id}"))
            .await?
            .map(|i| read(&i))
            .transpose()
    }

    async fn update_task(&self, t: &WindowTask, expected_revision: u64) -> Result<bool, SsmError> {
        self.replace(
            record(
                window_pk(&t.window_id),
                &format!("task#{}", t.id),
                t,
                t.revision,
            )?,
            expected_revision,
        )
        .await
    }

    async fn delete_task(&self, t: &WindowTask) -> Result<bool, SsmError> {
        self.remove(
            window_pk(&t.window_id),
            &format!("task#{}", t.id),
            t.revision,
        )
        .await
    }

    async fn list_tasks(&self, window_id: &str) -> Result<Vec<WindowTask>, SsmError> {
        self.partition(window_id, "task#")
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn insert_execution(&self, e: &Execution) -> Result<bool, SsmError> {
        self.insert(execution_item(e)?).await
    }

    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, SsmError> {
        self.get_item(execution_pk(id), EXECUTION)
            .await?
            .map(|i| read(&i))
            .transpose()
    }

    async fn update_execution(
        &self,
        e: &Execution,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        self.replace(execution_item(e)?, expected_revision).await
    }

    async fn list_executions(&self, window_id: &str) -> Result<Vec<Execution>, SsmError> {
        self.kind(&format!("{EXECUTION}#{window_id}"), true)
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn due(&self, now: i64) -> Result<Vec<Due>, SsmError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_DUE)
            .key_condition_expression("DueShard = :d AND NextDue <= :now")
            .expression_attribute_values(":d", s(DUE_SHARD))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        let mut out = Vec::new();
        for item in query_items(q, None, |_| true).await? {
            match get_s(&item, "Sk").as_str() {
                WINDOW => out.push(Due::Window(read(&item)?)),
                EXECUTION => out.push(Due::Execution(read(&item)?)),
                other => tracing::warn!(sk = other, "an unexpected item in the due index"),
            }
        }
        Ok(out)
    }
}

/// Maintenance windows' adapters, built once per process.
#[derive(Debug)]
pub struct WindowAdapters {
    pub store: WindowTable,
    pub scope: steward_core::arn::ArnScope,
    /// The stack's output bucket and the operator's OutputBuckets.
    pub output_buckets: Vec<String>,
}

impl WindowAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: WindowTable::new(stack),
            scope: stack.settings.arn_scope(),
            output_buckets: stack.settings.allowed_output_buckets(),
        }
    }

    /// The context of one request by `caller`, at `now`.
    pub fn context<'a>(
        &'a self,
        caller: &'a dyn steward_core::access::Authorizer,
        now: f64,
    ) -> WindowContext<'a> {
        WindowContext {
            store: &self.store,
            caller,
            scope: &self.scope,
            output_buckets: &self.output_buckets,
            now,
        }
    }

    /// The scheduler's tick: opens due windows and advances running
    /// executions. `hour_seconds` is the length of an hour for Duration
    /// and Cutoff (3600 deployed).
    pub async fn run_due(
        &self,
        runs: &dyn ScheduledRuns,
        now: f64,
        hour_seconds: i64,
    ) -> Result<DueReport, SsmError> {
        steward_core::maintenance_windows::run_due(&self.store, runs, now, hour_seconds).await
    }
}
