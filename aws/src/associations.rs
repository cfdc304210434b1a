//! State Manager's associations over DynamoDB: one table,
//! `AssociationsTable` (key `Pk`, `Sk`), holding differently keyed items,
//! each a core record as JSON in `Record`:
//!
//! - an association's head: `assoc#<id>` / `head`, Kind `association`
//!   (index `ByKind`), with `Revision` (every write conditional on it);
//! - its versions: `assoc#<id>` / `version#<10 digits>`;
//! - the legacy Name+InstanceId key: `legacy#<name>#<node>` / `legacy`,
//!   written in one transaction with the head it belongs to;
//! - its executions: `assoc#<id>` / `exec#<execution id>`, with `Revision`;
//! - each node's result in an execution: `assoc#<id>` / `target#<execution id>#<node>`;
//! - a node's status per association: `node#<node>` / `status#<id>`;
//! - a "node changed" marker: `node#<node>` / `marker`, with `Written`.
//!
//! A head, an execution or a marker with something due carries
//! `DueShard` = [`DUE_SHARD`] and `NextDue` (index `ByDue`); the tick
//! queries it once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, WriteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use steward_core::SsmError;
use steward_core::access::Authorizer;
use steward_core::arn::ArnScope;
use steward_core::associations::context::{AssociationContext, System};
use steward_core::associations::model::{
    Association, Execution, ExecutionTarget, InstanceStatus, Marker,
};
use steward_core::associations::ports::{AssociationStore, Due};
use steward_core::associations::tick::{self, DUE_SHARD, DueReport};
use steward_core::schedule::runs::ScheduledRuns;

use crate::Stack;
use crate::internal;
use crate::item::{Item, batch_write_all, conditional, get_consistent, get_s, n, query_items, s};
use crate::revisioned::transact;

const KIND: &str = "association";
const WHAT: &str = "associations";
const HEAD: &str = "head";
const LEGACY: &str = "legacy";
const MARKER: &str = "marker";

fn assoc_pk(id: &str) -> String {
    format!("assoc#{id}")
}

fn node_pk(node: &str) -> String {
    format!("node#{node}")
}

fn version_sk(v: u32) -> String {
    format!("version#{v:010}")
}

fn key(pk: &str, sk: &str) -> Item {
    Item::from([("Pk".to_string(), s(pk)), ("Sk".to_string(), s(sk))])
}

fn record_item<T: Serialize>(pk: &str, sk: &str, record: &T) -> Result<Item, SsmError> {
    let json = serde_json::to_string(record).map_err(|e| {
        tracing::error!(error = %e, "an association record cannot be written");
        SsmError::internal()
    })?;
    let mut item = key(pk, sk);
    item.insert("Record".into(), s(json));
    Ok(item)
}

fn with_due(item: &mut Item, next_due: Option<f64>) {
    if let Some(d) = next_due {
        item.insert("DueShard".into(), s(DUE_SHARD));
        item.insert("NextDue".into(), n(d));
    }
}

fn head_item(a: &Association) -> Result<Item, SsmError> {
    let mut item = record_item(&assoc_pk(&a.association_id), HEAD, a)?;
    item.insert("Kind".into(), s(KIND));
    item.insert("ListKey".into(), s(&a.association_id));
    item.insert("Revision".into(), n(a.revision));
    with_due(&mut item, a.next_due);
    Ok(item)
}

fn execution_item(e: &Execution) -> Result<Item, SsmError> {
    let mut item = record_item(
        &assoc_pk(&e.association_id),
        &format!("exec#{}", e.execution_id),
        e,
    )?;
    item.insert("Revision".into(), n(e.revision));
    with_due(&mut item, e.next_due);
    Ok(item)
}

fn marker_item(m: &Marker) -> Result<Item, SsmError> {
    let mut item = record_item(&node_pk(&m.instance_id), MARKER, m)?;
    item.insert("Written".into(), n(m.written));
    with_due(&mut item, Some(m.next_due));
    Ok(item)
}

fn read<T: DeserializeOwned>(item: &Item) -> Result<T, SsmError> {
    serde_json::from_str(&get_s(item, "Record")).map_err(|e| {
        tracing::error!(error = %e, "an association item cannot be read");
        SsmError::internal()
    })
}

fn put_tx(
    table: &str,
    item: Item,
    condition: Option<(&str, Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>)>,
) -> Result<TransactWriteItem, SsmError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expr, values)) = condition {
        put = put.condition_expression(expr);
        for (k, v) in values {
            put = put.expression_attribute_values(k, v);
        }
    }
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(internal)?)
        .build())
}

/// The "node changed" marker as one action of someone else's transaction:
/// registration and tag changes write it with the change itself, so a
/// node can never newly match an association unseen by the tick.
pub(crate) fn node_changed_put(
    table: &str,
    instance_id: &str,
    now: f64,
) -> Result<TransactWriteItem, SsmError> {
    let marker = Marker {
        instance_id: instance_id.to_string(),
        written: now,
        next_due: now,
    };
    put_tx(table, marker_item(&marker)?, None)
}

/// The table over DynamoDB.
#[derive(Clone, Debug)]
pub struct AssociationTable {
    client: Client,
    table: String,
}

impl AssociationTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.associations_table.clone(),
        }
    }

    /// The items of partition `pk` whose sort key starts with `prefix`.
    async fn prefixed(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("Pk = :pk AND begins_with(Sk, :p)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":p", s(prefix))
            .consistent_read(true);
        query_items(query, None, |_| true).await
    }

    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, SsmError> {
        get_consistent(&self.client, &self.table, key(pk, sk)).await
    }

    /// A Put only if the item at its key is still at `revision`.
    async fn put_at_revision(&self, item: Item, revision: u64) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("Revision = :rev")
                .expression_attribute_values(":rev", n(revision))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn put_plain(&self, item: Item) -> Result<(), SsmError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl AssociationStore for AssociationTable {
    async fn create(&self, a: &Association, legacy_key: Option<&str>) -> Result<bool, SsmError> {
        let absent = Some(("attribute_not_exists(Pk)", Vec::new()));
        let mut items = vec![
            put_tx(&self.table, head_item(a)?, absent.clone())?,
            put_tx(
                &self.table,
                record_item(
                    &assoc_pk(&a.association_id),
                    &version_sk(a.association_version),
                    a,
                )?,
                None,
            )?,
        ];
        if let Some(k) = legacy_key {
            let mut lock = key(&format!("legacy#{k}"), LEGACY);
            lock.insert("AssociationId".into(), s(&a.association_id));
            items.push(put_tx(&self.table, lock, absent)?);
        }
        transact(&self.client, WHAT, items).await
    }

    async fn get(&self, association_id: &str) -> Result<Option<Association>, SsmError> {
        self.get_item(&assoc_pk(association_id), HEAD)
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }

    async fn legacy(&self, legacy_key: &str) -> Result<Option<String>, SsmError> {
        Ok(self
            .get_item(&format!("legacy#{legacy_key}"), LEGACY)
            .await?
            .map(|i| get_s(&i, "AssociationId")))
    }

    async fn list(&self) -> Result<Vec<Association>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByKind")
            .key_condition_expression("#k = :k")
            .expression_attribute_names("#k", "Kind")
            .expression_attribute_values(":k", s(KIND));
        query_items(query, None, |_| true)
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn versions(&self, association_id: &str) -> Result<Vec<Association>, SsmError> {
        self.prefixed(&assoc_pk(association_id), "version#")
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn update(
        &self,
        next: &Association,
        expected_revision: u64,
        new_version: bool,
    ) -> Result<bool, SsmError> {
        if !new_version {
            return self
                .put_at_revision(head_item(next)?, expected_revision)
                .await;
        }
        let items = vec![
            put_tx(
                &self.table,
                head_item(next)?,
                Some(("Revision = :rev", vec![(":rev", n(expected_revision))])),
            )?,
            put_tx(
                &self.table,
                record_item(
                    &assoc_pk(&next.association_id),
                    &version_sk(next.association_version),
                    next,
                )?,
                None,
            )?,
        ];
        transact(&self.client, WHAT, items).await
    }

    async fn delete(&self, a: &Association) -> Result<bool, SsmError> {
        let pk = assoc_pk(&a.association_id);
        let head = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&pk, HEAD)))
            .condition_expression("Revision = :rev")
            .expression_attribute_values(":rev", n(a.revision))
            .build()
            .map_err(internal)?;
        let mut items = vec![TransactWriteItem::builder().delete(head).build()];
        if let Some(k) = a.legacy_key() {
            let lock = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(&format!("legacy#{k}"), LEGACY)))
                .build()
                .map_err(internal)?;
            items.push(TransactWriteItem::builder().delete(lock).build());
        }
        if !transact(&self.client, WHAT, items).await? {
            return Ok(false);
        }
        // The head is gone, so nothing reads the versions any more; they
        // are removed after it, in batches.
        let versions = self.prefixed(&pk, "version#").await?;
        for chunk in versions.chunks(25) {
            let requests = chunk
                .iter()
                .map(|i| {
                    let k = key(&get_s(i, "Pk"), &get_s(i, "Sk"));
                    aws_sdk_dynamodb::types::DeleteRequest::builder()
                        .set_key(Some(k))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(internal)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !batch_write_all(&self.client, &self.table, requests).await? {
                tracing::warn!(association_id = %a.association_id, "some versions of a deleted association were left");
            }
        }
        Ok(true)
    }

    async fn put_execution(&self, e: &Execution) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(execution_item(e)?))
                .condition_expression("attribute_not_exists(Pk)")
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn update_execution(
        &self,
        e: &Execution,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        self.put_at_revision(execution_item(e)?, expected_revision)
            .await
    }

    async fn execution(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Option<Execution>, SsmError> {
        self.get_item(&assoc_pk(association_id), &format!("exec#{execution_id}"))
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }

    async fn executions(&self, association_id: &str) -> Result<Vec<Execution>, SsmError> {
        self.prefixed(&assoc_pk(association_id), "exec#")
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn put_target(&self, t: &ExecutionTarget) -> Result<(), SsmError> {
        let item = record_item(
            &assoc_pk(&t.association_id),
            &format!("target#{}#{}", t.execution_id, t.resource_id),
            t,
        )?;
        self.put_plain(item).await
    }

    async fn targets(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Vec<ExecutionTarget>, SsmError> {
        self.prefixed(
            &assoc_pk(association_id),
            &format!("target#{execution_id}#"),
        )
        .await?
        .iter()
        .map(read)
        .collect()
    }

    async fn put_instance_status(&self, st: &InstanceStatus) -> Result<(), SsmError> {
        let item = record_item(
            &node_pk(&st.instance_id),
            &format!("status#{}", st.association_id),
            st,
        )?;
        self.put_plain(item).await
    }

    async fn instance_statuses(&self, instance_id: &str) -> Result<Vec<InstanceStatus>, SsmError> {
        self.prefixed(&node_pk(instance_id), "status#")
            .await?
            .iter()
            .map(read)
            .collect()
    }

    async fn put_marker(&self, m: &Marker) -> Result<(), SsmError> {
        self.put_plain(marker_item(m)?).await
    }

    async fn marker(&self, instance_id: &str) -> Result<Option<Marker>, SsmError> {
        self.get_item(&node_pk(instance_id), MARKER)
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }

    async fn postpone_marker(&self, m: &Marker) -> Result<bool, SsmError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(marker_item(m)?))
                .condition_expression("#w = :w")
                .expression_attribute_names("#w", "Written")
                .expression_attribute_values(":w", n(m.written))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn delete_marker(&self, instance_id: &str, written: f64) -> Result<bool, SsmError> {
        conditional(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(&node_pk(instance_id), MARKER)))
                .condition_expression("#w = :w")
                .expression_attribute_names("#w", "Written")
                .expression_attribute_values(":w", n(written))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn due(&self, now: f64) -> Result<Vec<Due>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByDue")
            .key_condition_expression("DueShard = :d AND NextDue <= :now")
            .expression_attribute_values(":d", s(DUE_SHARD))
            .expression_attribute_values(":now", n(now));
        let items = query_items(query, None, |_| true).await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let pk = get_s(i, "Pk");
                let sk = get_s(i, "Sk");
                if let Some(id) = pk.strip_prefix("assoc#") {
                    if sk == HEAD {
                        return Some(Due::Association(id.to_string()));
                    }
                    return sk.strip_prefix("exec#").map(|e| Due::Execution {
                        association_id: id.to_string(),
                        execution_id: e.to_string(),
                    });
                }
                match (pk.strip_prefix("node#"), sk.as_str()) {
                    (Some(node), MARKER) => Some(Due::Marker(node.to_string())),
                    _ => None,
                }
            })
            .collect())
    }
}

/// Associations' adapters, built once per process.
#[derive(Debug)]
pub struct AssociationAdapters {
    pub store: AssociationTable,
    pub scope: ArnScope,
    /// The stack's output bucket and the operator's OutputBuckets.
    pub output_buckets: Vec<String>,
}

impl AssociationAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: AssociationTable::new(stack),
            scope: stack.settings.arn_scope(),
            output_buckets: stack.settings.allowed_output_buckets(),
        }
    }

    /// The context of one request (or of the tick, with [`System`]).
    pub fn context<'a>(
        &'a self,
        stack: &'a Stack,
        caller: &'a dyn Authorizer,
        now: f64,
    ) -> AssociationContext<'a> {
        AssociationContext {
            store: &self.store,
            documents: &stack.documents().store,
            compliance: stack.compliance().context(),
            caller,
            scope: &self.scope,
            output_buckets: &self.output_buckets,
            now,
        }
    }

    /// The scheduler's tick: what is due at `now`.
    pub async fn run_due(
        &self,
        stack: &Stack,
        runs: &dyn ScheduledRuns,
        now: f64,
    ) -> Result<DueReport, SsmError> {
        let ctx = self.context(stack, &System, now);
        tick::run_due(&ctx, runs, now).await
    }

    /// A node registered or its tags changed.
    pub async fn node_changed(&self, instance_id: &str, now: f64) -> Result<(), SsmError> {
        tick::node_changed(&self.store, instance_id, now).await
    }
}
