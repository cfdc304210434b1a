//! Inventory over DynamoDB: `InventoryTable`, key (InstanceId, TypeName),
//! one item per node and type: its SchemaVersion, CaptureTime, ContentHash
//! and Packed (the entries' JSON, LZ4-compressed: a thousand packages fit
//! an item). Every write of data is one
//! conditional PutItem that holds only if the hash differs and the capture
//! is not older, so a repeated or late report changes nothing. Index
//! `ByType` (TypeName, InstanceId; keys only) lists the nodes holding a
//! type. Custom types' schemas are items of the reserved partition
//! [`SCHEMAS`] (no node id starts with `#`).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use steward_core::SsmError;
use steward_core::inventory::context::InventoryContext;
use steward_core::inventory::ports::InventoryStore;
use steward_core::inventory::put::MAX_PUT_BYTES;
use steward_core::inventory::{CustomSchema, StoredType, pack, unpack};

use crate::Stack;
use crate::internal;
use crate::item::{Item, conditional, get_consistent, get_s, query_items, query_up_to, s};

/// The partition of the custom types' schemas.
pub const SCHEMAS: &str = "#schema";

fn key(instance_id: &str, type_name: &str) -> Item {
    Item::from([
        ("InstanceId".to_string(), s(instance_id)),
        ("TypeName".to_string(), s(type_name)),
    ])
}

fn unreadable(e: serde_json::Error) -> SsmError {
    tracing::error!(error = %e, "an inventory item cannot be read");
    SsmError::internal()
}

/// Packed content a table item may hold, leaving room for its other
/// attributes below DynamoDB's 400 KB.
pub const MAX_PACKED_BYTES: usize = 380 * 1024;

fn content(item: &Item) -> Result<Vec<steward_core::inventory::Entry>, SsmError> {
    match item.get("Packed").and_then(|v| v.as_b().ok()) {
        Some(b) => unpack(b.as_ref(), 2 * MAX_PUT_BYTES).map_err(|why| {
            tracing::error!(reason = %why, "an inventory item cannot be unpacked");
            SsmError::internal()
        }),
        None => serde_json::from_str(&get_s(item, "Content")).map_err(unreadable),
    }
}

fn stored(item: &Item) -> Result<StoredType, SsmError> {
    Ok(StoredType {
        instance_id: get_s(item, "InstanceId"),
        type_name: get_s(item, "TypeName"),
        schema_version: get_s(item, "SchemaVersion"),
        capture_time: get_s(item, "CaptureTime"),
        content_hash: get_s(item, "ContentHash"),
        content: content(item)?,
    })
}

#[derive(Clone, Debug)]
pub struct InventoryTable {
    client: Client,
    table: String,
}

impl InventoryTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.inventory_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl InventoryStore for InventoryTable {
    async fn get(
        &self,
        instance_id: &str,
        type_name: &str,
    ) -> Result<Option<StoredType>, SsmError> {
        get_consistent(&self.client, &self.table, key(instance_id, type_name))
            .await?
            .as_ref()
            .map(stored)
            .transpose()
    }

    async fn instance(&self, instance_id: &str) -> Result<Vec<StoredType>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("InstanceId = :id")
            .expression_attribute_values(":id", s(instance_id))
            .consistent_read(true);
        query_items(query, None, |_| true)
            .await?
            .iter()
            .map(stored)
            .collect()
    }

    async fn put_if_changed(&self, t: &StoredType) -> Result<bool, SsmError> {
        let packed = pack(&t.content);
        if packed.len() > MAX_PACKED_BYTES {
            return Err(SsmError::ItemSizeLimitExceededException(format!(
                "The inventory item size has exceeded the size limit. {} compresses to {} bytes; at most {MAX_PACKED_BYTES} are kept.",
                t.type_name,
                packed.len()
            )));
        }
        let mut item = key(&t.instance_id, &t.type_name);
        item.insert("SchemaVersion".into(), s(&t.schema_version));
        item.insert("CaptureTime".into(), s(&t.capture_time));
        item.insert("ContentHash".into(), s(&t.content_hash));
        item.insert("Packed".into(), AttributeValue::B(Blob::new(packed)));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // CaptureTime is ISO 8601 in UTC: text order is time order.
            .condition_expression(
                "attribute_not_exists(InstanceId) OR (ContentHash <> :h AND CaptureTime <= :t)",
            )
            .expression_attribute_values(":h", s(&t.content_hash))
            .expression_attribute_values(":t", s(&t.capture_time));
        conditional(put.send().await).map_err(internal)
    }

    async fn delete(&self, instance_id: &str, type_name: &str) -> Result<(), SsmError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(instance_id, type_name)))
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn holders(
        &self,
        type_name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), SsmError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByType")
            .expression_attribute_values(":t", s(type_name));
        query = match after {
            None => query.key_condition_expression("TypeName = :t"),
            Some(a) => query
                .key_condition_expression("TypeName = :t AND InstanceId > :a")
                .expression_attribute_values(":a", s(a)),
        };
        let (items, more) =
            query_up_to(query, limit, |i| !get_s(i, "InstanceId").starts_with('#')).await?;
        Ok((items.iter().map(|i| get_s(i, "InstanceId")).collect(), more))
    }

    async fn schemas(&self) -> Result<Vec<CustomSchema>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("InstanceId = :id")
            .expression_attribute_values(":id", s(SCHEMAS))
            .consistent_read(true);
        query_items(query, None, |_| true)
            .await?
            .iter()
            .map(|i| serde_json::from_str(&get_s(i, "Schema")).map_err(unreadable))
            .collect()
    }

    async fn put_schema(&self, schema: &CustomSchema) -> Result<(), SsmError> {
        let mut item = key(SCHEMAS, &schema.type_name);
        let json = serde_json::to_string(schema).map_err(|_| SsmError::internal())?;
        item.insert("Schema".into(), s(json));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn delete_schema(&self, type_name: &str) -> Result<(), SsmError> {
        self.delete(SCHEMAS, type_name).await
    }
}

/// Inventory's adapters, built once per process.
#[derive(Debug)]
pub struct InventoryAdapters {
    pub store: InventoryTable,
    pub nodes: crate::nodes::NodeTable,
    pub scope: steward_core::arn::ArnScope,
}

impl InventoryAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: InventoryTable::new(stack),
            nodes: crate::nodes::NodeTable::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    /// The context of one request.
    pub fn context(&self) -> InventoryContext<'_> {
        InventoryContext {
            store: &self.store,
            nodes: &self.nodes,
            scope: &self.scope,
        }
    }
}
