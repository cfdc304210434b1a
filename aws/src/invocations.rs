//! Invocations (`InvocationsTable`, one per command and node) over DynamoDB,
//! and the transaction that moves one invocation and its command's counters
//! together.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use steward_core::SsmError;
use steward_core::run_command::model::{Invocation, Page, Transition};
use steward_core::run_command::ports::TimeRange;
use steward_core::run_command::status::InvocationDetail;

use crate::commands::{
    COUNTERS, CommandTable, Item, decode_token, from_av, get_json, get_n, get_s, json_av, n,
    next_token, s, tally_counts, to_av,
};
use crate::internal;
use crate::item::{IndexQuery, conditional, get_consistent, put_if_absent};
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
        let put = build(
            Put::builder()
                .table_name(&self.invocations_table)
                .set_item(Some(invocation_to_item(inv)))
                .condition_expression("attribute_not_exists(CommandId)")
                .build(),
        )?;
        self.transact(vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(counters).build(),
        ])
        .await
    }

    /// The command's counters ADDed by `delta`; `None` when it adds nothing.
    fn counter_update(
        &self,
        command_id: &str,
        delta: &steward_core::run_command::status::Tally,
    ) -> Result<Option<Update>, SsmError> {
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
        let mut items = vec![TransactWriteItem::builder().update(inv).build()];
        if let Some(cmd) = self.counter_update(&t.command_id, &t.tally_delta())? {
            items.push(TransactWriteItem::builder().update(cmd).build());
        }
        self.transact(items).await
    }
}
