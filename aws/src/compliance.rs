//! Compliance over DynamoDB: one item per resource and compliance type in
//! `ComplianceTable` (key ResourceId, ComplianceType), the record as JSON
//! beside its `Revision` (every write conditional on it) and its summary.
//! Summaries are listed by `ByKind` in (ComplianceType, ResourceId) order;
//! the index holds the summary only, not the items.

use aws_sdk_dynamodb::Client;
use steward_core::SsmError;
use steward_core::compliance::context::ComplianceContext;
use steward_core::compliance::model::{ComplianceRecord, ResourceSummary};
use steward_core::compliance::ports::{ComplianceStore, SummaryKey};

use crate::Stack;
use crate::internal;
use crate::item::{Item, conditional, get_consistent, get_s, n, query_items, query_up_to, s};

pub const KIND: &str = "summary";

/// The index's sort key: type, then resource. `\u{1}` sorts before any
/// character a compliance type may hold, so a type's resources come
/// together and before a longer type's.
fn sort_key(compliance_type: &str, resource_id: &str) -> String {
    format!("{compliance_type}\u{1}{resource_id}")
}

/// Just past `k`: after one resource, or (`\u{2}`) after a whole type.
fn after_key(k: &SummaryKey) -> String {
    match &k.resource_id {
        Some(r) => sort_key(&k.compliance_type, r),
        None => format!("{}\u{2}", k.compliance_type),
    }
}

fn to_item(r: &ComplianceRecord) -> Result<Item, SsmError> {
    let record = serde_json::to_string(r).map_err(|_| SsmError::internal())?;
    let summary = serde_json::to_string(&r.summary()).map_err(|_| SsmError::internal())?;
    Ok(Item::from([
        ("ResourceId".to_string(), s(&r.resource_id)),
        ("ComplianceType".to_string(), s(&r.compliance_type)),
        ("Kind".to_string(), s(KIND)),
        (
            "SummaryKey".to_string(),
            s(sort_key(&r.compliance_type, &r.resource_id)),
        ),
        ("Revision".to_string(), n(r.revision)),
        ("Record".to_string(), s(record)),
        ("Summary".to_string(), s(summary)),
    ]))
}

fn unreadable(e: serde_json::Error) -> SsmError {
    tracing::error!(error = %e, "a compliance item cannot be read");
    SsmError::internal()
}

pub(crate) fn record(item: &Item) -> Result<ComplianceRecord, SsmError> {
    serde_json::from_str(&get_s(item, "Record")).map_err(unreadable)
}

fn summary(item: &Item) -> Result<ResourceSummary, SsmError> {
    serde_json::from_str(&get_s(item, "Summary")).map_err(unreadable)
}

#[derive(Clone, Debug)]
pub struct ComplianceTable {
    client: Client,
    table: String,
}

impl ComplianceTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.compliance_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl ComplianceStore for ComplianceTable {
    async fn get(
        &self,
        resource_id: &str,
        compliance_type: &str,
    ) -> Result<Option<ComplianceRecord>, SsmError> {
        let key = Item::from([
            ("ResourceId".to_string(), s(resource_id)),
            ("ComplianceType".to_string(), s(compliance_type)),
        ]);
        get_consistent(&self.client, &self.table, key)
            .await?
            .as_ref()
            .map(record)
            .transpose()
    }

    async fn resource(&self, resource_id: &str) -> Result<Vec<ComplianceRecord>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("ResourceId = :id")
            .expression_attribute_values(":id", s(resource_id))
            .consistent_read(true);
        query_items(query, None, |_| true)
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn put(
        &self,
        next: &ComplianceRecord,
        expected_revision: Option<u64>,
    ) -> Result<bool, SsmError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(next)?));
        put = match expected_revision {
            None => put.condition_expression("attribute_not_exists(ResourceId)"),
            Some(r) => put
                .condition_expression("Revision = :expected")
                .expression_attribute_values(":expected", n(r)),
        };
        conditional(put.send().await).map_err(internal)
    }

    async fn summaries(
        &self,
        after: Option<&SummaryKey>,
        limit: usize,
    ) -> Result<(Vec<ResourceSummary>, bool), SsmError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByKind")
            .expression_attribute_values(":kind", s(KIND));
        query = match after {
            None => query.key_condition_expression("Kind = :kind"),
            Some(k) => query
                .key_condition_expression("Kind = :kind AND SummaryKey > :after")
                .expression_attribute_values(":after", s(after_key(k))),
        };
        let (items, more) = query_up_to(query, limit, |_| true).await?;
        Ok((items.iter().map(summary).collect::<Result<_, _>>()?, more))
    }
}

/// Compliance's adapters, built once per process.
#[derive(Debug)]
pub struct ComplianceAdapters {
    pub store: ComplianceTable,
    pub nodes: crate::nodes::NodeTable,
    pub scope: steward_core::arn::ArnScope,
}

impl ComplianceAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: ComplianceTable::new(stack),
            nodes: crate::nodes::NodeTable::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    /// The context of one request or report.
    pub fn context(&self) -> ComplianceContext<'_> {
        ComplianceContext {
            store: &self.store,
            nodes: &self.nodes,
            scope: &self.scope,
        }
    }
}
