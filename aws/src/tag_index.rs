//! The tag index (`TagIndexTable`): one row per tag a resource carries,
//! `TagKey` = `<ResourceType>|<Key>|<Value>`, and one per tag key,
//! `TagKey` = `<ResourceType>|<Key>` (for `tag-key` lookups); `ResourceId`
//! is the sort key. SSM tag keys and values cannot contain `|`, so the two
//! shapes never collide. [`FleetDirectory`] answers target resolution from it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use steward_core::SsmError;
use steward_core::tags::TagSet;
use steward_core::targets::TargetDirectory;

use crate::Stack;
use crate::internal;
use crate::item::{get_str, query_items, s};

pub fn value_key(resource_type: &str, key: &str, value: &str) -> String {
    format!("{resource_type}|{key}|{value}")
}

pub fn key_key(resource_type: &str, key: &str) -> String {
    format!("{resource_type}|{key}")
}

fn row(tag_key: String, resource_id: &str) -> BTreeMap<String, AttributeValue> {
    BTreeMap::from([
        ("TagKey".to_string(), s(tag_key)),
        ("ResourceId".to_string(), s(resource_id)),
    ])
}

fn put(table: &str, tag_key: String, resource_id: &str) -> Result<TransactWriteItem, SsmError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(row(tag_key, resource_id).into_iter().collect()))
        .build()
        .map_err(internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete(table: &str, tag_key: String, resource_id: &str) -> Result<TransactWriteItem, SsmError> {
    let del = Delete::builder()
        .table_name(table)
        .set_key(Some(row(tag_key, resource_id).into_iter().collect()))
        .build()
        .map_err(internal)?;
    Ok(TransactWriteItem::builder().delete(del).build())
}

/// The index writes that take `resource_id` from tags `old` to tags `new`.
pub fn index_changes(
    table: &str,
    resource_type: &str,
    resource_id: &str,
    old: &TagSet,
    new: &TagSet,
) -> Result<Vec<TransactWriteItem>, SsmError> {
    let mut ops = Vec::new();
    for (k, v) in old {
        if new.get(k) != Some(v) {
            ops.push(delete(table, value_key(resource_type, k, v), resource_id)?);
        }
        if !new.contains_key(k) {
            ops.push(delete(table, key_key(resource_type, k), resource_id)?);
        }
    }
    for (k, v) in new {
        if old.get(k) != Some(v) {
            ops.push(put(table, value_key(resource_type, k, v), resource_id)?);
        }
        if !old.contains_key(k) {
            ops.push(put(table, key_key(resource_type, k), resource_id)?);
        }
    }
    Ok(ops)
}

/// Target resolution over the tag index and the nodes table.
#[derive(Clone, Debug)]
pub struct FleetDirectory {
    client: Client,
    tag_index_table: String,
    nodes_table: String,
}

impl FleetDirectory {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            tag_index_table: stack.settings.tag_index_table.clone(),
            nodes_table: stack.settings.nodes_table.clone(),
        }
    }

    /// Every resource id under one index key, all pages.
    async fn resources(&self, tag_key: String) -> Result<Vec<String>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.tag_index_table)
            .key_condition_expression("TagKey = :k")
            .expression_attribute_values(":k", s(&tag_key));
        let items = query_items(query, None, |_| true).await?;
        Ok(items
            .iter()
            .filter_map(|i| get_str(i, "ResourceId"))
            .collect())
    }
}

#[async_trait::async_trait]
impl TargetDirectory for FleetDirectory {
    async fn nodes_with_tag(&self, key: &str, value: &str) -> Result<Vec<String>, SsmError> {
        self.resources(value_key(steward_core::fleet::MANAGED_INSTANCE, key, value))
            .await
    }

    async fn nodes_with_tag_key(&self, key: &str) -> Result<Vec<String>, SsmError> {
        self.resources(key_key(steward_core::fleet::MANAGED_INSTANCE, key))
            .await
    }

    async fn existing_nodes(&self, ids: &[String]) -> Result<BTreeSet<String>, SsmError> {
        let items =
            crate::nodes::batch_get(&self.client, &self.nodes_table, ids, Some("InstanceId"))
                .await?;
        Ok(items
            .iter()
            .filter_map(|i| match i.get("InstanceId") {
                Some(AttributeValue::S(id)) => Some(id.clone()),
                _ => None,
            })
            .collect())
    }
    async fn all_nodes(&self) -> Result<Vec<String>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.nodes_table)
            .index_name("ByKind")
            .key_condition_expression("Kind = :k")
            .expression_attribute_values(":k", s(crate::nodes::KIND))
            .projection_expression("InstanceId");
        let items = query_items(query, None, |_| true).await?;
        Ok(items
            .iter()
            .filter_map(|i| get_str(i, "InstanceId"))
            .collect())
    }
}

/// Keys for a BatchGetItem on `InstanceId`.
pub(crate) fn instance_keys(ids: &[String]) -> Result<KeysAndAttributes, SsmError> {
    KeysAndAttributes::builder()
        .set_keys(Some(
            ids.iter()
                .map(|id| std::collections::HashMap::from([("InstanceId".to_string(), s(id))]))
                .collect(),
        ))
        .build()
        .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> TagSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_touch_only_what_changed() {
        let n = |old: &TagSet, new: &TagSet| {
            index_changes("t", "ManagedInstance", "mi-1", old, new)
                .unwrap()
                .len()
        };
        let a = set(&[("env", "dev"), ("role", "web")]);
        assert_eq!(n(&TagSet::new(), &a), 4);
        assert_eq!(n(&a, &a), 0);
        // A changed value: old value row out, new one in; the key row stays.
        assert_eq!(n(&a, &set(&[("env", "prod"), ("role", "web")])), 2);
        // A removed tag: both its rows out.
        assert_eq!(n(&a, &set(&[("env", "dev")])), 2);
        assert_eq!(
            value_key("ManagedInstance", "env", "dev"),
            "ManagedInstance|env|dev"
        );
        assert_eq!(key_key("ManagedInstance", "env"), "ManagedInstance|env");
    }
}
