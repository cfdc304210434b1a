//! Invocations (`InvocationsTable`, one per command and node) over DynamoDB,
//! and the transaction that moves one invocation and its command's counters
//! together.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use steward_core::SsmError;
use steward_core::run_command::model::{Invocation, Page, Transition};
use steward_core::run_command::ports::TimeRange;
use steward_core::run_command::status::{InvocationDetail, Tally};

use crate::commands::{
    COUNTERS, CommandTable, Item, decode_token, from_av, get_json, get_n, get_s, json_av, n,
    next_token, s, tally_counts, to_av,
};
use crate::internal;
use crate::item::{
    IndexQuery, batch_get_all, conditional, get_consistent, item_size, jittered_backoff,
    put_if_absent,
};
use crate::revisioned::cancellation_codes;

pub const BY_INSTANCE: &str = "ByInstance";

pub fn invocation_to_item(inv: &Invocation) -> Item {
    let mut item: Item = HashMap::from([
        ("CommandId".into(), s(&inv.command_id)),
        ("InstanceId".into(), s(&inv.instance_id)),
        ("InstanceName".into(), s(&inv.instance_name)),
        ("Comment".into(), s(&inv.comment)),
        ("DocumentName".into(), s(&inv.document_name)),
        ("DocumentVersion".into(), s(&inv.document_version)),
        ("RequestedDateTime".into(), n(inv.requested_date_time)),
        ("Status".into(), s(inv.status_details.status().as_str())),
        ("StatusDetails".into(), s(inv.status_details.as_str())),
        ("ResponseCode".into(), n(inv.response_code)),
        ("CommandPlugins".into(), json_av(&inv.plugins)),
        ("OutputS3BucketName".into(), s(&inv.output_s3_bucket_name)),
        ("OutputS3KeyPrefix".into(), s(&inv.output_s3_key_prefix)),
        ("OutputS3Region".into(), s(&inv.output_s3_region)),
        ("ServiceRole".into(), s(&inv.service_role)),
        ("MessageId".into(), s(&inv.message_id)),
        ("DeliveryDeadline".into(), n(inv.delivery_deadline)),
    ]);
    if let Some(t) = inv.execution_start_date_time {
        item.insert("ExecutionStartDateTime".into(), n(t));
    }
    if let Some(t) = inv.execution_end_date_time {
        item.insert("ExecutionEndDateTime".into(), n(t));
    }
    if let Some(nc) = &inv.notification_config {
        item.insert("NotificationConfig".into(), to_av(nc));
    }
    if inv.released_offline {
        item.insert(RELEASED_OFFLINE.into(), AttributeValue::Bool(true));
    }
    item
}

/// Present (true) on an invocation whose node was not Online when it was released.
const RELEASED_OFFLINE: &str = "ReleasedOffline";

pub fn invocation_from_item(item: &Item) -> Invocation {
    Invocation {
        command_id: get_s(item, "CommandId"),
        instance_id: get_s(item, "InstanceId"),
        instance_name: get_s(item, "InstanceName"),
        comment: get_s(item, "Comment"),
        document_name: get_s(item, "DocumentName"),
        document_version: get_s(item, "DocumentVersion"),
        requested_date_time: get_n(item, "RequestedDateTime").unwrap_or(0.0),
        status_details: InvocationDetail::parse(&get_s(item, "StatusDetails"))
            .unwrap_or(InvocationDetail::Pending),
        response_code: get_n(item, "ResponseCode").map(|v| v as i32).unwrap_or(-1),
        execution_start_date_time: get_n(item, "ExecutionStartDateTime"),
        execution_end_date_time: get_n(item, "ExecutionEndDateTime"),
        plugins: get_json(item, "CommandPlugins").unwrap_or_default(),
        output_s3_bucket_name: get_s(item, "OutputS3BucketName"),
        output_s3_key_prefix: get_s(item, "OutputS3KeyPrefix"),
        output_s3_region: get_s(item, "OutputS3Region"),
        service_role: get_s(item, "ServiceRole"),
        notification_config: item.get("NotificationConfig").map(from_av),
        message_id: get_s(item, "MessageId"),
        delivery_deadline: get_n(item, "DeliveryDeadline").unwrap_or(0.0),
        released_offline: matches!(item.get(RELEASED_OFFLINE), Some(AttributeValue::Bool(true))),
    }
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, SsmError> {
    r.map_err(|e| {
        tracing::error!(error = %e, "cannot build a DynamoDB request");
        SsmError::internal()
    })
}

impl CommandTable {
    /// Puts the invocation if absent; a status other than Pending (a target
    /// closed by rate control) is counted on the command in the same
    /// transaction.
    pub(crate) async fn put_invocation_item(&self, inv: &Invocation) -> Result<bool, SsmError> {
        let Some(counters) = self.counter_update(&inv.command_id, &inv.initial_tally())? else {
            let item = invocation_to_item(inv);
            let r = put_if_absent(&self.client, &self.invocations_table, item, "CommandId").await;
            return conditional(r).map_err(internal);
        };
        self.transact(vec![
            self.invocation_put(inv)?,
            TransactWriteItem::builder().update(counters).build(),
        ])
        .await
    }

    /// The transaction's Put of a new invocation, only if it does not exist.
    fn invocation_put(&self, inv: &Invocation) -> Result<TransactWriteItem, SsmError> {
        let put = build(
            Put::builder()
                .table_name(&self.invocations_table)
                .set_item(Some(invocation_to_item(inv)))
                .condition_expression("attribute_not_exists(CommandId)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The command's counters ADDed by `delta`; `None` when it adds nothing.
    fn counter_update(&self, command_id: &str, delta: &Tally) -> Result<Option<Update>, SsmError> {
        let adds: Vec<(usize, u32)> = tally_counts(delta)
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, d)| *d > 0)
            .collect();
        if adds.is_empty() {
            return Ok(None);
        }
        let mut cmd = Update::builder()
            .table_name(&self.commands_table)
            .key("CommandId", s(command_id))
            .condition_expression("attribute_exists(CommandId)");
        let mut parts = Vec::new();
        for (i, d) in adds {
            parts.push(format!("{} :d{i}", COUNTERS[i]));
            cmd = cmd.expression_attribute_values(format!(":d{i}"), n(d));
        }
        build(
            cmd.update_expression(format!("ADD {}", parts.join(", ")))
                .build(),
        )
        .map(Some)
    }

    /// Runs a transaction whose first item is the invocation's conditional
    /// write. `false`: that condition failed, and nothing changed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, SsmError> {
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => {
                let invocation_condition_failed = cancellation_codes(&e).is_some_and(|codes| {
                    codes.first().is_some_and(|c| c == "ConditionalCheckFailed")
                });
                if invocation_condition_failed {
                    Ok(false)
                } else {
                    Err(internal(e))
                }
            }
        }
    }

    pub(crate) async fn get_invocation_item(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Option<Invocation>, SsmError> {
        let key = Item::from([
            ("CommandId".to_string(), s(command_id)),
            ("InstanceId".to_string(), s(instance_id)),
        ]);
        let item = get_consistent(&self.client, &self.invocations_table, key).await?;
        Ok(item.as_ref().map(invocation_from_item))
    }

    pub(crate) async fn query_command_invocations(
        &self,
        command_id: &str,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError> {
        let start = token
            .map(|t| decode_token(t, &["CommandId", "InstanceId"]))
            .transpose()?;
        let resp = self
            .client
            .query()
            .table_name(&self.invocations_table)
            .key_condition_expression("CommandId = :c")
            .expression_attribute_values(":c", s(command_id))
            .consistent_read(true)
            .limit(limit.max(1) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(internal)?;
        Ok(Page {
            items: resp.items().iter().map(invocation_from_item).collect(),
            next_token: next_token(resp.last_evaluated_key.as_ref())?,
        })
    }

    pub(crate) async fn query_by_instance(
        &self,
        instance_id: &str,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError> {
        let page = IndexQuery {
            table: &self.invocations_table,
            index: BY_INSTANCE,
            key: ("InstanceId", s(instance_id)),
            sort: None,
            newest_first: true,
            limit: limit as usize,
            start: None,
        };
        let keys = ["CommandId", "InstanceId", "RequestedDateTime"];
        let (items, next_token) = self.requested_page(page, range, &keys, token).await?;
        Ok(Page {
            items: items.iter().map(invocation_from_item).collect(),
            next_token,
        })
    }

    /// The invocation's update (conditional on its current StatusDetails)
    /// and the command's counters, in one TransactWriteItems: a repeated
    /// report fails the condition and changes nothing, counters included.
    pub(crate) async fn apply_transition(&self, t: &Transition) -> Result<bool, SsmError> {
        let mut items = vec![self.transition_update(t)?];
        if let Some(cmd) = self.counter_update(&t.command_id, &t.tally_delta())? {
            items.push(TransactWriteItem::builder().update(cmd).build());
        }
        self.transact(items).await
    }

    /// The transaction's Update of the invocation `t` moves, only if its
    /// StatusDetails are still `t.from`.
    fn transition_update(&self, t: &Transition) -> Result<TransactWriteItem, SsmError> {
        let mut set = vec!["#st = :st", "StatusDetails = :sd"];
        let mut inv = Update::builder()
            .table_name(&self.invocations_table)
            .key("CommandId", s(&t.command_id))
            .key("InstanceId", s(&t.instance_id))
            .condition_expression("StatusDetails = :from")
            .expression_attribute_names("#st", "Status")
            .expression_attribute_values(":st", s(t.to.status().as_str()))
            .expression_attribute_values(":sd", s(t.to.as_str()))
            .expression_attribute_values(":from", s(t.from.as_str()));
        if let Some(rc) = t.response_code {
            set.push("ResponseCode = :rc");
            inv = inv.expression_attribute_values(":rc", n(rc));
        }
        if let Some(v) = t.execution_start_date_time {
            set.push("ExecutionStartDateTime = :es");
            inv = inv.expression_attribute_values(":es", n(v));
        }
        if let Some(v) = t.execution_end_date_time {
            set.push("ExecutionEndDateTime = :ee");
            inv = inv.expression_attribute_values(":ee", n(v));
        }
        if let Some(p) = &t.plugins {
            set.push("CommandPlugins = :p");
            inv = inv.expression_attribute_values(":p", json_av(p));
        }
        let inv = build(
            inv.update_expression(format!("SET {}", set.join(", ")))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(inv).build())
    }
}

// ---------------------------------------------------------------- batches

/// DynamoDB's limit on the actions of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// Under DynamoDB's 4 MB per transaction, with room for the estimate's error.
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;
/// Added to each action's estimated size: the rest of the item an update
/// rewrites, and the counter updates.
const ACTION_OVERHEAD: usize = 2 * 1024;
/// Tries at a batch transaction while other writers conflict with it.
const CONFLICT_ATTEMPTS: u32 = 5;

/// One invocation's conditional write in a batch, the command whose
/// counters it moves if it applies, by how much, and its estimated size.
struct Guarded {
    write: TransactWriteItem,
    command_id: String,
    delta: Tally,
    size: usize,
}

impl Guarded {
    fn new(write: TransactWriteItem, command_id: &str, delta: Tally) -> Self {
        let put = write
            .put()
            .map(|p| item_size(p.item()) + p.condition_expression().map_or(0, str::len));
        let update = write.update().map(|u| {
            item_size(u.key())
                + u.update_expression().len()
                + u.condition_expression().map_or(0, str::len)
                + u.expression_attribute_values().map_or(0, item_size)
        });
        Self {
            size: put.or(update).unwrap_or(0) + ACTION_OVERHEAD,
            write,
            command_id: command_id.to_string(),
            delta,
        }
    }
}

/// `entries` cut into transactions of at most [`MAX_TRANSACTION_ITEMS`]
/// actions (each entry's write, plus one counter update per command) and
/// about [`MAX_TRANSACTION_BYTES`].
fn transaction_chunks(entries: &[Guarded]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut commands: HashSet<&str> = HashSet::new();
    let mut size = 0;
    for (i, e) in entries.iter().enumerate() {
        let new_command = !commands.contains(e.command_id.as_str());
        let actions = (i - start) + 1 + commands.len() + usize::from(new_command);
        let added = e.size + usize::from(new_command) * ACTION_OVERHEAD;
        if i > start && (actions > MAX_TRANSACTION_ITEMS || size + added > MAX_TRANSACTION_BYTES) {
            out.push(start..i);
            start = i;
            commands.clear();
            size = 0;
        }
        if commands.insert(&e.command_id) {
            size += ACTION_OVERHEAD;
        }
        size += e.size;
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

impl CommandTable {
    /// Each of `entries` applied with its command's counters, in as few
    /// transactions as DynamoDB's limits allow: `true` for each applied.
    async fn transact_guarded(&self, entries: &[Guarded]) -> Result<Vec<bool>, SsmError> {
        let mut out = Vec::with_capacity(entries.len());
        for range in transaction_chunks(entries) {
            out.extend(self.transact_chunk(&entries[range]).await?);
        }
        Ok(out)
    }

    /// One transaction of `entries` and one counter update per command
    /// adding the sum of their deltas. An entry whose condition fails is
    /// answered `false` and the transaction is run again without it (the
    /// sums without its delta), so the counters only ever count what applied.
    async fn transact_chunk(&self, entries: &[Guarded]) -> Result<Vec<bool>, SsmError> {
        let mut applied = vec![false; entries.len()];
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        let mut conflicts = 0;
        while !pending.is_empty() {
            let mut sums: BTreeMap<&str, Tally> = BTreeMap::new();
            let mut items = Vec::with_capacity(pending.len() + 1);
            for &i in &pending {
                items.push(entries[i].write.clone());
                sums.entry(&entries[i].command_id)
                    .or_default()
                    .add(&entries[i].delta);
            }
            for (command_id, sum) in &sums {
                if let Some(counters) = self.counter_update(command_id, sum)? {
                    items.push(TransactWriteItem::builder().update(counters).build());
                }
            }
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let e = match r {
                Ok(_) => {
                    for &i in &pending {
                        applied[i] = true;
                    }
                    break;
                }
                Err(e) => e,
            };
            let Some(codes) = cancellation_codes(&e) else {
                return Err(internal(e));
            };
            let expected = ["None", "ConditionalCheckFailed", "TransactionConflict"];
            let (writes, counters) = codes.split_at(pending.len().min(codes.len()));
            // A counter's condition failing means the command is gone: not
            // an answer this batch can give.
            if codes.iter().any(|c| !expected.contains(&c.as_str()))
                || counters.iter().any(|c| c == "ConditionalCheckFailed")
            {
                return Err(internal(e));
            }
            if writes.iter().any(|c| c == "ConditionalCheckFailed") {
                pending = pending
                    .iter()
                    .zip(writes)
                    .filter(|(_, c)| *c != "ConditionalCheckFailed")
                    .map(|(i, _)| *i)
                    .collect();
                continue;
            }
            conflicts += 1;
            if conflicts >= CONFLICT_ATTEMPTS {
                tracing::error!(
                    attempts = conflicts,
                    "invocation batch still conflicting after every try"
                );
                return Err(SsmError::internal());
            }
            tracing::warn!(
                attempt = conflicts,
                actions = codes.len(),
                "invocation batch conflicted with another transaction; retrying"
            );
            tokio::time::sleep(jittered_backoff(20, conflicts)).await;
        }
        Ok(applied)
    }

    /// Consistent reads of `command_id`'s invocations on `instance_ids` by
    /// BatchGetItem (100 keys a request, unprocessed keys resent).
    pub(crate) async fn get_invocation_items(
        &self,
        command_id: &str,
        instance_ids: &[String],
    ) -> Result<Vec<Invocation>, SsmError> {
        // DynamoDB refuses a batch that names one key twice.
        let unique: Vec<&String> = {
            let mut seen = HashSet::new();
            instance_ids.iter().filter(|id| seen.insert(*id)).collect()
        };
        let mut out = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(100) {
            let keys = chunk
                .iter()
                .map(|id| {
                    Item::from([
                        ("CommandId".to_string(), s(command_id)),
                        ("InstanceId".to_string(), s(*id)),
                    ])
                })
                .collect();
            let keys = build(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build(),
            )?;
            let items = batch_get_all(&self.client, &self.invocations_table, keys, "invocation")
                .await
                .map_err(|e| match e {
                    SsmError::ThrottlingException(_) => {
                        tracing::error!("BatchGetItem left invocation keys after every try");
                        SsmError::internal()
                    }
                    e => e,
                })?;
            out.extend(items.iter().map(invocation_from_item));
        }
        Ok(out)
    }

    /// [`Self::put_invocation_item`] of each, in transactions of many.
    pub(crate) async fn put_invocation_items(
        &self,
        invocations: &[Invocation],
    ) -> Result<Vec<bool>, SsmError> {
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(invocations.len());
        let mut slots = Vec::with_capacity(invocations.len());
        for (slot, inv) in invocations.iter().enumerate() {
            // A transaction refuses two writes of one item; one at a time,
            // the repeat would find the first there: `false`, as left.
            if !seen.insert((inv.command_id.as_str(), inv.instance_id.as_str())) {
                continue;
            }
            let put = self.invocation_put(inv)?;
            entries.push(Guarded::new(put, &inv.command_id, inv.initial_tally()));
            slots.push(slot);
        }
        let applied = self.transact_guarded(&entries).await?;
        let mut out = vec![false; invocations.len()];
        for (slot, ok) in slots.into_iter().zip(applied) {
            out[slot] = ok;
        }
        Ok(out)
    }

    /// [`Self::apply_transition`] of each (distinct invocations), in
    /// transactions of many.
    pub(crate) async fn apply_transitions(
        &self,
        transitions: &[Transition],
    ) -> Result<Vec<bool>, SsmError> {
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(transitions.len());
        for t in transitions {
            if !seen.insert((t.command_id.as_str(), t.instance_id.as_str())) {
                tracing::error!(
                    command_id = %t.command_id,
                    instance_id = %t.instance_id,
                    "a batch of transitions moves one invocation twice"
                );
                return Err(SsmError::internal());
            }
            let update = self.transition_update(t)?;
            entries.push(Guarded::new(update, &t.command_id, t.tally_delta()));
        }
        self.transact_guarded(&entries).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(command_id: &str, output: usize) -> Guarded {
        let update = Update::builder()
            .table_name("t")
            .key("CommandId", s(command_id))
            .update_expression("SET CommandPlugins = :p")
            .expression_attribute_values(":p", s("x".repeat(output)))
            .build()
            .unwrap();
        let write = TransactWriteItem::builder().update(update).build();
        Guarded::new(write, command_id, Tally::default())
    }

    #[test]
    fn chunks_keep_room_for_each_commands_counters() {
        let one: Vec<Guarded> = (0..150).map(|_| entry("c", 10)).collect();
        assert_eq!(transaction_chunks(&one), vec![0..99, 99..150]);
        let two: Vec<Guarded> = (0..150)
            .map(|i| entry(if i % 2 == 0 { "a" } else { "b" }, 10))
            .collect();
        assert_eq!(transaction_chunks(&two), vec![0..98, 98..150]);
        assert!(transaction_chunks(&[]).is_empty());
    }

    #[test]
    fn chunks_stay_under_the_size_limit() {
        let big: Vec<Guarded> = (0..150).map(|_| entry("c", 32 * 1024)).collect();
        let chunks = transaction_chunks(&big);
        assert!(chunks.len() >= 2);
        for r in &chunks {
            let size: usize = big[r.clone()].iter().map(|e| e.size).sum();
            assert!(size + ACTION_OVERHEAD <= MAX_TRANSACTION_BYTES);
        }
        assert_eq!(chunks.last().map(|r| r.end), Some(150));
    }
}
