//! Automation over AWS: executions in `AutomationExecutionsTable` (one item
//! each, the record as JSON beside its `Revision`, every write conditional
//! on it) and the engine's wake-ups on `AutomationQueue`.

use aws_sdk_dynamodb::Client;
use aws_sdk_sqs::Client as SqsClient;
use serde::{Deserialize, Serialize};
use steward_core::SsmError;
use steward_core::automation::context::AutomationContext;
use steward_core::automation::execution::Execution;
use steward_core::automation::ports::{AutomationQueue, ExecutionPage, ExecutionStore};

use crate::Stack;
use crate::commands::{decode_token, next_token};
use crate::internal;
use crate::item::{
    IndexQuery, Item, conditional, get_consistent, get_s, n, put_if_absent, query_page, s,
};

pub const KIND: &str = "execution";
/// DynamoDB's item limit is 400 KB; a record is refused before it, so the
/// engine fails the execution in words instead of the table refusing it.
pub const MAX_RECORD_BYTES: usize = 350 * 1024;

/// The message on `AutomationQueue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wake {
    #[serde(rename = "ExecutionId")]
    pub execution_id: String,
}

fn to_item(e: &Execution) -> Result<Item, SsmError> {
    let record = serde_json::to_string(e).map_err(|_| SsmError::internal())?;
    if record.len() > MAX_RECORD_BYTES {
        return Err(SsmError::AutomationExecutionLimitExceededException(
            format!(
                "Automation execution {} has grown past {} KB (its step executions and their inputs); Steward stores no more of it. Split the runbook or make its loops shorter.",
                e.execution_id,
                MAX_RECORD_BYTES / 1024
            ),
        ));
    }
    Ok(Item::from([
        ("ExecutionId".to_string(), s(&e.execution_id)),
        ("Kind".to_string(), s(KIND)),
        ("RequestedTime".to_string(), n(e.requested_time)),
        ("Revision".to_string(), n(e.revision)),
        ("Record".to_string(), s(record)),
    ]))
}

pub(crate) fn from_item(item: &Item) -> Result<Execution, SsmError> {
    serde_json::from_str(&get_s(item, "Record")).map_err(|e| {
        tracing::error!(error = %e, "an automation execution item cannot be read");
        SsmError::internal()
    })
}

/// Executions over DynamoDB.
#[derive(Clone, Debug)]
pub struct ExecutionTable {
    client: Client,
    table: String,
}

impl ExecutionTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.automation_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl ExecutionStore for ExecutionTable {
    async fn create(&self, execution: &Execution) -> Result<bool, SsmError> {
        let item = to_item(execution)?;
        conditional(put_if_absent(&self.client, &self.table, item, "ExecutionId").await)
            .map_err(internal)
    }

    async fn get(&self, execution_id: &str) -> Result<Option<Execution>, SsmError> {
        let key = Item::from([("ExecutionId".to_string(), s(execution_id))]);
        get_consistent(&self.client, &self.table, key)
            .await?
            .as_ref()
            .map(from_item)
            .transpose()
    }

    async fn update(&self, next: &Execution, expected_revision: u64) -> Result<bool, SsmError> {
        let item = to_item(next)?;
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("#r = :expected")
                .expression_attribute_names("#r", "Revision")
                .expression_attribute_values(":expected", n(expected_revision))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn list(&self, limit: u32, token: Option<&str>) -> Result<ExecutionPage, SsmError> {
        let start = token
            .map(|t| decode_token(t, &["ExecutionId", "Kind", "RequestedTime"]))
            .transpose()?;
        let (items, next) = query_page(
            &self.client,
            IndexQuery {
                table: &self.table,
                index: "ByKind",
                key: ("Kind", s(KIND)),
                sort: None,
                newest_first: true,
                limit: limit as usize,
                start,
            },
        )
        .await?;
        Ok(ExecutionPage {
            items: items.iter().map(from_item).collect::<Result<_, _>>()?,
            next_token: next_token(next.as_ref())?,
        })
    }
}

/// The engine's wake-ups on `AutomationQueue`.
#[derive(Clone, Debug)]
pub struct SqsAutomationQueue {
    client: SqsClient,
    url: String,
}

impl SqsAutomationQueue {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.sqs.clone(),
            url: stack.settings.automation_queue_url.clone(),
        }
    }
}

#[async_trait::async_trait]
impl AutomationQueue for SqsAutomationQueue {
    async fn wake(&self, execution_id: &str, delay_seconds: u32) -> Result<(), SsmError> {
        let body = serde_json::to_string(&Wake {
            execution_id: execution_id.to_string(),
        })
        .map_err(|_| SsmError::internal())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            // SQS's longest delay; the engine chains longer waits.
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }
}

/// Automation's adapters, built once per process.
#[derive(Debug)]
pub struct AutomationAdapters {
    pub store: ExecutionTable,
    pub queue: SqsAutomationQueue,
    pub documents: crate::documents::DocumentTable,
    /// The fleet, for rate-controlled executions' Targets.
    pub targets: crate::tag_index::FleetDirectory,
    pub groups: crate::resource_groups::ResourceGroups,
    pub scope: steward_core::arn::ArnScope,
}

impl AutomationAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: ExecutionTable::new(stack),
            queue: SqsAutomationQueue::new(stack),
            documents: crate::documents::DocumentTable::new(stack),
            targets: crate::tag_index::FleetDirectory::new(stack),
            groups: crate::resource_groups::ResourceGroups::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    /// The context of one request or delivery, at `now`.
    pub fn context(&self, now: f64) -> AutomationContext<'_> {
        AutomationContext {
            store: &self.store,
            documents: &self.documents,
            queue: &self.queue,
            targets: &self.targets,
            groups: &self.groups,
            scope: &self.scope,
            now,
        }
    }
}
