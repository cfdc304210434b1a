//! Nodes (`NodesTable`) over DynamoDB: the node record, registration in one
//! transaction with its activation (or, for an EC2 instance, with the
//! condition that its id is free) and its tag index rows, heartbeats, tags,
//! and deregistration (the node and its index rows in one transaction, and
//! the records other areas keep per node).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    Delete, DeleteRequest, Put, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use steward_core::SsmError;
use steward_core::channel::Heartbeat;
use steward_core::fleet::activation::invalid_activation;
use steward_core::fleet::node::ResourceType;
use steward_core::fleet::{MANAGED_INSTANCE, Node, NodeStore};
use steward_core::tags::TagSet;

use crate::Stack;
use crate::internal;
use crate::item::*;
use crate::revisioned::cancellation_codes;
use crate::tag_index;

pub const KIND: &str = "node";
/// DynamoDB's limit on the actions of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

pub fn node_to_item(node: &Node) -> Item {
    HashMap::from([
        ("InstanceId".into(), s(&node.instance_id)),
        ("Kind".into(), s(KIND)),
        ("ResourceType".into(), s(node.resource_type.as_str())),
        ("ActivationId".into(), s(&node.activation_id)),
        ("Name".into(), s(&node.name)),
        ("IamRole".into(), s(&node.iam_role)),
        ("RegistrationDate".into(), n(node.registration_date)),
        ("LastPingDateTime".into(), n(node.last_ping_date_time)),
        ("AgentVersion".into(), s(&node.agent_version)),
        ("PlatformType".into(), s(&node.platform_type)),
        ("PlatformName".into(), s(&node.platform_name)),
        ("PlatformVersion".into(), s(&node.platform_version)),
        ("ComputerName".into(), s(&node.computer_name)),
        ("IPAddress".into(), s(&node.ip_address)),
        ("PublicKey".into(), s(&node.public_key)),
        ("QueueUrl".into(), s(&node.queue_url)),
        ("QueueArn".into(), s(&node.queue_arn)),
        ("Tags".into(), str_map_av(&node.tags)),
        ("TagsVersion".into(), n(node.tags_version)),
    ])
}

pub fn node_from_item(item: &Item) -> Node {
    Node {
        instance_id: get_s(item, "InstanceId"),
        // Nodes written before EC2 registration existed have no ResourceType:
        // all of them joined with an activation.
        resource_type: get_str(item, "ResourceType")
            .and_then(|t| ResourceType::parse(&t))
            .unwrap_or(ResourceType::ManagedInstance),
        activation_id: get_s(item, "ActivationId"),
        name: get_s(item, "Name"),
        iam_role: get_s(item, "IamRole"),
        registration_date: get_f64(item, "RegistrationDate"),
        last_ping_date_time: get_f64(item, "LastPingDateTime"),
        agent_version: get_s(item, "AgentVersion"),
        platform_type: get_s(item, "PlatformType"),
        platform_name: get_s(item, "PlatformName"),
        platform_version: get_s(item, "PlatformVersion"),
        computer_name: get_s(item, "ComputerName"),
        ip_address: get_s(item, "IPAddress"),
        public_key: get_s(item, "PublicKey"),
        queue_url: get_s(item, "QueueUrl"),
        queue_arn: get_s(item, "QueueArn"),
        tags: get_str_map(item, "Tags"),
        tags_version: get_f64(item, "TagsVersion") as u64,
    }
}

/// BatchGetItem on `InstanceId` in chunks of 100, retrying unprocessed keys.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    ids: &[String],
    projection: Option<&str>,
) -> Result<Vec<Item>, SsmError> {
    let mut out = Vec::new();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    let unique: Vec<String> = unique.into_iter().cloned().collect();
    for chunk in unique.chunks(100) {
        let mut keys = tag_index::instance_keys(chunk)?;
        if let Some(p) = projection {
            keys.projection_expression = Some(p.to_string());
        }
        out.extend(batch_get_all(client, table, keys, "node").await?);
    }
    Ok(out)
}

/// Nodes over DynamoDB.
#[derive(Clone, Debug)]
pub struct NodeTable {
    client: Client,
    nodes_table: String,
    tag_index_table: String,
    activations_table: String,
    /// Where a registration or tag change leaves its "node changed" marker.
    associations_table: String,
    /// Per-node records a deregistration removes, as (table, partition
    /// key, sort key): inventory, compliance, patch state.
    node_records: Vec<(String, &'static str, &'static str)>,
}

impl NodeTable {
    /// What every new node writes in its registration's transaction: the
    /// node (only if its id is free; the condition of the first of these),
    /// the associations' node-changed marker (a new node may match
    /// associations: the tick applies them) and its tags' index rows.
    fn new_node_writes(&self, node: &Node, now: f64) -> Result<Vec<TransactWriteItem>, SsmError> {
        let put = Put::builder()
            .table_name(&self.nodes_table)
            .set_item(Some(node_to_item(node)))
            .condition_expression("attribute_not_exists(InstanceId)")
            .build()
            .map_err(internal)?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            crate::associations::node_changed_put(
                &self.associations_table,
                &node.instance_id,
                now,
            )?,
        ];
        items.extend(tag_index::index_changes(
            &self.tag_index_table,
            MANAGED_INSTANCE,
            &node.instance_id,
            &TagSet::new(),
            &node.tags,
        )?);
        Ok(items)
    }

    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            nodes_table: stack.settings.nodes_table.clone(),
            tag_index_table: stack.settings.tag_index_table.clone(),
            activations_table: stack.settings.activations_table.clone(),
            associations_table: stack.settings.associations_table.clone(),
            node_records: vec![
                (
                    stack.settings.inventory_table.clone(),
                    "InstanceId",
                    "TypeName",
                ),
                (
                    stack.settings.compliance_table.clone(),
                    "ResourceId",
                    "ComplianceType",
                ),
                (
                    stack.settings.patch_states_table.clone(),
                    "InstanceId",
                    "Key",
                ),
            ],
        }
    }

    /// The node's own queue, for whoever sends it messages.
    pub async fn queue_url(&self, instance_id: &str) -> Result<Option<String>, SsmError> {
        Ok(self.get(instance_id).await?.map(|n| n.queue_url))
    }

    /// Deletes every item of one node's partition of `table`, 25 at a time.
    async fn delete_partition(
        &self,
        table: &str,
        pk: &str,
        sk: &str,
        instance_id: &str,
    ) -> Result<(), SsmError> {
        // Keys only; `Key` is a reserved word, so both names go by placeholder.
        let query = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :id")
            .projection_expression("#pk, #sk")
            .expression_attribute_names("#pk", pk)
            .expression_attribute_names("#sk", sk)
            .expression_attribute_values(":id", s(instance_id));
        let keys = query_items(query, None, |_| true).await?;
        for chunk in keys.chunks(25) {
            let mut requests = Vec::with_capacity(chunk.len());
            for key in chunk {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(internal)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            if !batch_write_all(&self.client, table, requests).await? {
                return Err(SsmError::ThrottlingException(format!(
                    "The records of {instance_id} could not all be removed yet; retry shortly."
                )));
            }
        }
        Ok(())
    }

    /// What a re-registering EC2 instance reports, written only while the
    /// node holds `node.public_key` (a node deregistered, and perhaps
    /// registered again with another key, is not touched); with `ping`, also
    /// its LastPingDateTime, only if that moves it forward. `false` when a
    /// condition fails.
    async fn refresh(&self, node: &Node, ping: bool) -> Result<bool, SsmError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.nodes_table)
            .key("InstanceId", s(&node.instance_id))
            .expression_attribute_values(":av", s(&node.agent_version))
            .expression_attribute_values(":pn", s(&node.platform_name))
            .expression_attribute_values(":pv", s(&node.platform_version))
            .expression_attribute_values(":cn", s(&node.computer_name))
            .expression_attribute_values(":ip", s(&node.ip_address))
            .expression_attribute_values(":pk", s(&node.public_key))
            .return_values(ReturnValue::None);
        const SET: &str = "SET AgentVersion = :av, PlatformName = :pn, PlatformVersion = :pv, ComputerName = :cn, IPAddress = :ip";
        const OWNED: &str = "attribute_exists(InstanceId) AND PublicKey = :pk";
        update = if ping {
            update
                .update_expression(format!("{SET}, LastPingDateTime = :t"))
                .condition_expression(format!(
                    "{OWNED} AND (attribute_not_exists(LastPingDateTime) OR LastPingDateTime <= :t)"
                ))
                .expression_attribute_values(":t", n(node.last_ping_date_time))
        } else {
            update.update_expression(SET).condition_expression(OWNED)
        };
        conditional(update.send().await).map_err(internal)
    }

    /// Runs `items` as one transaction, or, past DynamoDB's 100-action limit
    /// (only when some 50 tags change at once), as the conditional part
    /// first and the remaining index rows after: index rows are derived data
    /// and their writes are idempotent, so those parts are retried on a
    /// conflict until they are written.
    ///
    /// The first part is sent up to `attempts` times while DynamoDB cancels
    /// it for a TransactionConflict (a concurrent transaction on one of its
    /// items); a failed condition ends it at once. `Ok(Err(_))` says why it
    /// was not written; nothing was.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        attempts: u32,
    ) -> Result<Result<(), Refused>, SsmError> {
        let mut rest = items;
        let mut first = true;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MAX_TRANSACTION_ITEMS));
            let tries = if first {
                attempts.max(1)
            } else {
                INDEX_ATTEMPTS
            };
            let mut attempt = 0;
            loop {
                let sent = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(rest.clone()))
                    .send()
                    .await;
                let Err(e) = sent else { break };
                attempt += 1;
                let conflict = match cancellation_codes(&e) {
                    Some(codes) if first && codes.iter().any(|c| c == "ConditionalCheckFailed") => {
                        return Ok(Err(Refused::Condition(codes)));
                    }
                    Some(codes) => codes.iter().any(|c| c == "TransactionConflict"),
                    None => false,
                };
                if !conflict {
                    return Err(internal(e));
                }
                if attempt >= tries {
                    if first {
                        return Ok(Err(Refused::Conflict));
                    }
                    return Err(internal(e));
                }
                tokio::time::sleep(jittered_backoff(20, attempt)).await;
            }
            first = false;
            rest = tail;
        }
        Ok(Ok(()))
    }
}

/// Why [`NodeTable::transact`] wrote nothing.
#[derive(Debug)]
enum Refused {
    /// A condition failed; the cancellation code of each action, in order.
    Condition(Vec<String>),
    /// Concurrent transactions kept cancelling it.
    Conflict,
}

impl Refused {
    /// Whether the condition of the action at `index` is what failed.
    fn condition_failed_at(&self, index: usize) -> bool {
        matches!(self, Refused::Condition(codes)
            if codes.get(index).map(String::as_str) == Some("ConditionalCheckFailed"))
    }
}

/// Attempts at a registration that keeps conflicting with others.
const REGISTER_ATTEMPTS: u32 = 6;
/// Attempts at the index rows that follow the first 100 actions.
const INDEX_ATTEMPTS: u32 = 6;

#[async_trait::async_trait]
impl NodeStore for NodeTable {
    async fn get(&self, instance_id: &str) -> Result<Option<Node>, SsmError> {
        let key = Item::from([("InstanceId".to_string(), s(instance_id))]);
        let item = get_consistent(&self.client, &self.nodes_table, key).await?;
        Ok(item.as_ref().map(node_from_item))
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Node>, SsmError> {
        let items = batch_get(&self.client, &self.nodes_table, ids, None).await?;
        Ok(items.iter().map(node_from_item).collect())
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Node>, bool), SsmError> {
        let after = after.map(|id| Item::from([("InstanceId".to_string(), s(id))]));
        let (items, more) = kind_page(&self.client, &self.nodes_table, KIND, after, limit).await?;
        Ok((items.iter().map(node_from_item).collect(), more))
    }

    async fn register(&self, node: &Node, code_hash: &str, now: f64) -> Result<(), SsmError> {
        let take = Update::builder()
            .table_name(&self.activations_table)
            .key("ActivationId", s(&node.activation_id))
            .update_expression("SET RegistrationsCount = RegistrationsCount + :one")
            .condition_expression(
                "attribute_exists(ActivationId) AND CodeHash = :h AND RegistrationsCount < RegistrationLimit AND ExpirationDate > :now",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":h", s(code_hash))
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(internal)?;
        let mut items = vec![TransactWriteItem::builder().update(take).build()];
        items.extend(self.new_node_writes(node, now)?);
        // Concurrent registrations on one activation conflict; DynamoDB
        // cancels one with TransactionConflict, and it is retried so that the
        // activation's condition, not the race, decides.
        match self.transact(items, REGISTER_ATTEMPTS).await? {
            Ok(()) => Ok(()),
            Err(refused) if refused.condition_failed_at(0) => Err(invalid_activation()),
            Err(Refused::Conflict) => Err(SsmError::ThrottlingException(
                "Too many nodes are registering with this activation at once; retry shortly."
                    .into(),
            )),
            // The new node's id is taken (ids are random: never in practice).
            Err(refused) => Err(unexpected(&node.instance_id, &refused)),
        }
    }

    async fn register_instance(&self, node: &Node, now: f64) -> Result<bool, SsmError> {
        let items = self.new_node_writes(node, now)?;
        // Two registrations of one instance at once conflict; the one retried
        // then finds the id taken, and the caller compares keys.
        match self.transact(items, REGISTER_ATTEMPTS).await? {
            Ok(()) => Ok(true),
            Err(refused) if refused.condition_failed_at(0) => Ok(false),
            Err(Refused::Conflict) => Err(SsmError::ThrottlingException(format!(
                "Instance {} is being registered by several requests at once; retry shortly.",
                node.instance_id
            ))),
            Err(refused) => Err(unexpected(&node.instance_id, &refused)),
        }
    }

    async fn refresh_instance(&self, node: &Node) -> Result<bool, SsmError> {
        // The ping moves forward only; a heartbeat recorded since the node
        // was read may hold a later one, and then the rest is written alone.
        if self.refresh(node, true).await? {
            return Ok(true);
        }
        self.refresh(node, false).await
    }

    async fn record_heartbeat(
        &self,
        instance_id: &str,
        hb: &Heartbeat,
        at: f64,
    ) -> Result<bool, SsmError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.nodes_table)
            .key("InstanceId", s(instance_id))
            .update_expression(
                "SET LastPingDateTime = :t, AgentVersion = :av, PlatformType = :pt, PlatformName = :pn, PlatformVersion = :pv, IPAddress = :ip, ComputerName = :cn",
            )
            // A late, redelivered heartbeat never moves the clock back.
            .condition_expression("attribute_exists(InstanceId) AND (attribute_not_exists(LastPingDateTime) OR LastPingDateTime < :t)")
            .expression_attribute_values(":t", n(at))
            .expression_attribute_values(":av", s(&hb.agent_version))
            .expression_attribute_values(":pt", s(&hb.platform_type))
            .expression_attribute_values(":pn", s(&hb.platform_name))
            .expression_attribute_values(":pv", s(&hb.platform_version))
            .expression_attribute_values(":ip", s(&hb.ip_address))
            .expression_attribute_values(":cn", s(&hb.computer_name))
            .return_values(ReturnValue::None)
            .send()
            .await;
        if conditional(result).map_err(internal)? {
            return Ok(true);
        }
        // Stale heartbeat of a known node, or no such node.
        Ok(self.get(instance_id).await?.is_some())
    }

    async fn replace_tags(&self, node: &Node, next: &TagSet) -> Result<bool, SsmError> {
        let update = Update::builder()
            .table_name(&self.nodes_table)
            .key("InstanceId", s(&node.instance_id))
            .update_expression("SET Tags = :tags, TagsVersion = :next")
            .condition_expression(
                "attribute_exists(InstanceId) AND (attribute_not_exists(TagsVersion) OR TagsVersion = :v)",
            )
            .expression_attribute_values(":tags", str_map_av(next))
            .expression_attribute_values(":v", n(node.tags_version))
            .expression_attribute_values(":next", n(node.tags_version + 1))
            .build()
            .map_err(internal)?;
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            // Other tags may match other associations: the tick looks.
            crate::associations::node_changed_put(
                &self.associations_table,
                &node.instance_id,
                steward_core::clock::now_epoch(),
            )?,
        ];
        items.extend(tag_index::index_changes(
            &self.tag_index_table,
            MANAGED_INSTANCE,
            &node.instance_id,
            &node.tags,
            next,
        )?);
        // A changed node or a concurrent change: the caller reads it again.
        Ok(self.transact(items, 1).await?.is_ok())
    }

    async fn deregister(&self, node: &Node) -> Result<bool, SsmError> {
        let delete = Delete::builder()
            .table_name(&self.nodes_table)
            .key("InstanceId", s(&node.instance_id))
            // The index rows removed are those of the tags read: only if
            // they are still the node's.
            .condition_expression(
                "attribute_exists(InstanceId) AND (attribute_not_exists(TagsVersion) OR TagsVersion = :v)",
            )
            .expression_attribute_values(":v", n(node.tags_version))
            .build()
            .map_err(internal)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        items.extend(tag_index::index_changes(
            &self.tag_index_table,
            MANAGED_INSTANCE,
            &node.instance_id,
            &node.tags,
            &TagSet::new(),
        )?);
        // A changed node or a concurrent change: the caller reads it again.
        Ok(self.transact(items, 1).await?.is_ok())
    }

    async fn forget_records(&self, instance_id: &str) -> Result<(), SsmError> {
        for (table, pk, sk) in &self.node_records {
            self.delete_partition(table, pk, sk, instance_id).await?;
        }
        Ok(())
    }
}

/// A transaction refused for a reason its caller never expects: logged, and
/// answered as SSM's internal error.
fn unexpected(instance_id: &str, refused: &Refused) -> SsmError {
    tracing::error!(
        instance_id,
        ?refused,
        "node transaction refused unexpectedly"
    );
    SsmError::internal()
}
