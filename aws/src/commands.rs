//! Commands (`CommandsTable`) and their invocations (`InvocationsTable`) over
//! DynamoDB: the Run Command store. Attribute names are SSM's field names
//! (docs/internals.md, "Run Command items"). This module holds the command
//! side and the shared codecs; `invocations` the invocation side.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use steward_core::SsmError;
use steward_core::run_command::model::{Command, Invocation, Page, Transition};
use steward_core::run_command::ports::{CommandStore, TimeRange};
use steward_core::run_command::status::{CommandState, Tally};

use crate::Stack;
use crate::internal;
pub(crate) use crate::item::{IndexQuery, Item, get_n, get_s, get_u32, n, query_page, s};
use crate::item::{conditional, get_consistent, get_str_list, put_if_absent, str_list_av};

pub const KIND: &str = "command";
pub const BY_KIND: &str = "ByKind";

/// The counters of a command's [`Tally`], by attribute name.
pub const COUNTERS: [&str; 11] = [
    "StartedCount",
    "SuccessCount",
    "FailedCount",
    "ExecutionTimedOutCount",
    "DeliveryTimedOutCount",
    "UndeliverableCount",
    "TerminatedCount",
    "CancelledCount",
    "AcknowledgedCount",
    "OfflineReleasedCount",
    "OfflineFinishedCount",
];

/// Rate control's next target index: only raised, never ADDed.
pub const RELEASED: &str = "Released";

pub(crate) fn tally_counts(t: &Tally) -> [u32; 11] {
    [
        t.started,
        t.success,
        t.failed,
        t.execution_timed_out,
        t.delivery_timed_out,
        t.undeliverable,
        t.terminated,
        t.cancelled,
        t.acknowledged,
        t.offline_released,
        t.offline_finished,
    ]
}

// ---------------------------------------------------------------- codecs

/// JSON as a native DynamoDB value (maps, lists, strings, numbers, booleans).
pub(crate) fn to_av(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(x) => AttributeValue::N(x.to_string()),
        Value::String(x) => AttributeValue::S(x.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_av).collect()),
        Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_av(v))).collect())
        }
    }
}

pub(crate) fn from_av(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(x) => x
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| x.parse::<f64>().map(Value::from))
            .unwrap_or(Value::Null),
        AttributeValue::S(x) => Value::String(x.clone()),
        AttributeValue::L(a) => Value::Array(a.iter().map(from_av).collect()),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_av(v))).collect())
        }
        AttributeValue::Ss(a) => Value::Array(a.iter().cloned().map(Value::String).collect()),
        _ => Value::Null,
    }
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(item: &Item, k: &str) -> Option<T> {
    item.get(k)
        .and_then(|v| serde_json::from_value(from_av(v)).ok())
}

pub(crate) fn json_av<T: serde::Serialize>(v: &T) -> AttributeValue {
    to_av(&serde_json::to_value(v).unwrap_or(Value::Null))
}

pub fn command_to_item(c: &Command) -> Item {
    let mut item: Item = HashMap::from([
        ("CommandId".into(), s(&c.command_id)),
        ("Kind".into(), s(KIND)),
        ("DocumentName".into(), s(&c.document_name)),
        ("DocumentVersion".into(), s(&c.document_version)),
        ("Comment".into(), s(&c.comment)),
        ("Parameters".into(), json_av(&c.parameters)),
        ("InstanceIds".into(), str_list_av(&c.instance_ids)),
        ("Targets".into(), json_av(&c.targets)),
        (
            "ResolvedInstanceIds".into(),
            str_list_av(&c.resolved_instance_ids),
        ),
        ("RequestedDateTime".into(), n(c.requested_date_time)),
        ("ExpiresAfter".into(), n(c.expires_after)),
        ("Status".into(), s(&c.status)),
        ("StatusDetails".into(), s(&c.status_details)),
        ("OutputS3BucketName".into(), s(&c.output_s3_bucket_name)),
        ("OutputS3KeyPrefix".into(), s(&c.output_s3_key_prefix)),
        ("OutputS3Region".into(), s(&c.output_s3_region)),
        ("MaxConcurrency".into(), s(&c.max_concurrency)),
        ("MaxErrors".into(), s(&c.max_errors)),
        ("ServiceRole".into(), s(&c.service_role)),
        ("TimeoutSeconds".into(), n(c.timeout_seconds)),
        ("Steps".into(), json_av(&c.steps)),
        ("TargetCount".into(), n(c.tally.target_count)),
        (RELEASED.into(), n(c.tally.released)),
        (
            "CancelRequested".into(),
            AttributeValue::Bool(c.cancel_requested),
        ),
    ]);
    for (name, value) in COUNTERS.iter().zip(tally_counts(&c.tally)) {
        item.insert((*name).into(), n(value));
    }
    if let Some(nc) = &c.notification_config {
        item.insert("NotificationConfig".into(), to_av(nc));
    }
    if let Some(e) = &c.automation_execution_id {
        item.insert("AutomationExecutionId".into(), s(e));
    }
    item
}

pub fn command_from_item(item: &Item) -> Command {
    let counts: Vec<u32> = COUNTERS.iter().map(|k| get_u32(item, k)).collect();
    let tally = Tally {
        target_count: get_u32(item, "TargetCount"),
        started: counts[0],
        success: counts[1],
        failed: counts[2],
        execution_timed_out: counts[3],
        delivery_timed_out: counts[4],
        undeliverable: counts[5],
        terminated: counts[6],
        cancelled: counts[7],
        acknowledged: counts[8],
        offline_released: counts[9],
        offline_finished: counts[10],
        released: get_u32(item, RELEASED),
    };
    Command {
        command_id: get_s(item, "CommandId"),
        document_name: get_s(item, "DocumentName"),
        document_version: get_s(item, "DocumentVersion"),
        comment: get_s(item, "Comment"),
        parameters: get_json(item, "Parameters").unwrap_or_default(),
        instance_ids: get_str_list(item, "InstanceIds"),
        targets: get_json(item, "Targets").unwrap_or_default(),
        resolved_instance_ids: get_str_list(item, "ResolvedInstanceIds"),
        requested_date_time: get_n(item, "RequestedDateTime").unwrap_or(0.0),
        expires_after: get_n(item, "ExpiresAfter").unwrap_or(0.0),
        status: get_s(item, "Status"),
        status_details: get_s(item, "StatusDetails"),
        output_s3_bucket_name: get_s(item, "OutputS3BucketName"),
        output_s3_key_prefix: get_s(item, "OutputS3KeyPrefix"),
        output_s3_region: get_s(item, "OutputS3Region"),
        max_concurrency: get_s(item, "MaxConcurrency"),
        max_errors: get_s(item, "MaxErrors"),
        service_role: get_s(item, "ServiceRole"),
        notification_config: item.get("NotificationConfig").map(from_av),
        timeout_seconds: get_u32(item, "TimeoutSeconds"),
        steps: get_json(item, "Steps").unwrap_or_default(),
        tally,
        cancel_requested: matches!(
            item.get("CancelRequested"),
            Some(AttributeValue::Bool(true))
        ),
        automation_execution_id: crate::item::get_str(item, "AutomationExecutionId"),
    }
}

// ---------------------------------------------------------------- paging tokens

/// A LastEvaluatedKey as an opaque NextToken.
pub(crate) fn encode_token(key: &Item) -> Result<String, SsmError> {
    let mut m = serde_json::Map::new();
    for (k, v) in key {
        let tagged = match v {
            AttributeValue::S(x) => serde_json::json!({ "S": x }),
            AttributeValue::N(x) => serde_json::json!({ "N": x }),
            _ => return Err(SsmError::internal()),
        };
        m.insert(k.clone(), tagged);
    }
    Ok(B64.encode(Value::Object(m).to_string()))
}

/// A NextToken back into an ExclusiveStartKey; only `allowed` attributes.
pub(crate) fn decode_token(token: &str, allowed: &[&str]) -> Result<Item, SsmError> {
    let bad = || {
        SsmError::InvalidNextToken(
            "NextToken is not one this operation returned; start again without it.".into(),
        )
    };
    let bytes = B64.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let obj = v.as_object().ok_or_else(bad)?;
    let mut key = Item::new();
    for (k, tagged) in obj {
        if !allowed.contains(&k.as_str()) {
            return Err(bad());
        }
        let av = match (tagged.get("S"), tagged.get("N")) {
            (Some(Value::String(x)), None) => s(x),
            (None, Some(Value::String(x))) if x.parse::<f64>().is_ok() => n(x),
            _ => return Err(bad()),
        };
        key.insert(k.clone(), av);
    }
    if key.is_empty() {
        return Err(bad());
    }
    Ok(key)
}

pub(crate) fn next_token(lek: Option<&Item>) -> Result<Option<String>, SsmError> {
    match lek {
        Some(k) if !k.is_empty() => encode_token(k).map(Some),
        _ => Ok(None),
    }
}

/// A sort-key condition on `RequestedDateTime` for [`IndexQuery::sort`].
pub(crate) fn range_condition(
    range: TimeRange,
) -> Option<(&'static str, Vec<(&'static str, AttributeValue)>)> {
    match (range.after, range.before) {
        (Some(a), Some(b)) => Some((
            "RequestedDateTime BETWEEN :after AND :before",
            vec![(":after", n(a)), (":before", n(b))],
        )),
        (Some(a), None) => Some(("RequestedDateTime >= :after", vec![(":after", n(a))])),
        (None, Some(b)) => Some(("RequestedDateTime <= :before", vec![(":before", n(b))])),
        (None, None) => None,
    }
}

// ---------------------------------------------------------------- the store

/// The Run Command store over DynamoDB.
#[derive(Clone, Debug)]
pub struct CommandTable {
    pub(crate) client: Client,
    pub(crate) commands_table: String,
    pub(crate) invocations_table: String,
}

impl CommandTable {
    /// One page of `page` within `range` of `RequestedDateTime`, after the
    /// NextToken `token` (whose key has only the attributes `token_keys`),
    /// and the NextToken after it: `page`'s `sort` and `start` are set here.
    pub(crate) async fn requested_page(
        &self,
        page: IndexQuery<'_>,
        range: TimeRange,
        token_keys: &[&str],
        token: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), SsmError> {
        let start = token.map(|t| decode_token(t, token_keys)).transpose()?;
        let page = IndexQuery {
            sort: range_condition(range),
            start,
            ..page
        };
        let (items, next) = query_page(&self.client, page).await?;
        Ok((items, next_token(next.as_ref())?))
    }

    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            commands_table: stack.settings.commands_table.clone(),
            invocations_table: stack.settings.invocations_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl CommandStore for CommandTable {
    async fn put_command(&self, command: &Command) -> Result<(), SsmError> {
        let item = command_to_item(command);
        put_if_absent(&self.client, &self.commands_table, item, "CommandId")
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn get_command(&self, command_id: &str) -> Result<Option<Command>, SsmError> {
        let key = Item::from([("CommandId".to_string(), s(command_id))]);
        let item = get_consistent(&self.client, &self.commands_table, key).await?;
        Ok(item.as_ref().map(command_from_item))
    }

    async fn query_commands(
        &self,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Command>, SsmError> {
        let page = IndexQuery {
            table: &self.commands_table,
            index: BY_KIND,
            key: ("Kind", s(KIND)),
            sort: None,
            newest_first: true,
            limit: limit as usize,
            start: None,
        };
        let (items, next_token) = self
            .requested_page(
                page,
                range,
                &["CommandId", "Kind", "RequestedDateTime"],
                token,
            )
            .await?;
        Ok(Page {
            items: items.iter().map(command_from_item).collect(),
            next_token,
        })
    }

    async fn set_command_state(
        &self,
        command_id: &str,
        from: (&str, &str),
        to: CommandState,
    ) -> Result<bool, SsmError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.commands_table)
            .key("CommandId", s(command_id))
            .update_expression("SET #st = :st, StatusDetails = :sd")
            .condition_expression("#st = :fst AND StatusDetails = :fsd")
            .expression_attribute_names("#st", "Status")
            .expression_attribute_values(":st", s(to.status))
            .expression_attribute_values(":sd", s(to.details))
            .expression_attribute_values(":fst", s(from.0))
            .expression_attribute_values(":fsd", s(from.1))
            .send()
            .await;
        conditional(r).map_err(internal)
    }

    async fn request_cancel(&self, command_id: &str) -> Result<bool, SsmError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.commands_table)
            .key("CommandId", s(command_id))
            .update_expression("SET CancelRequested = :t")
            .condition_expression("attribute_exists(CommandId) AND #st IN (:p, :i, :c)")
            .expression_attribute_names("#st", "Status")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":p", s("Pending"))
            .expression_attribute_values(":i", s("InProgress"))
            .expression_attribute_values(":c", s("Cancelling"))
            .send()
            .await;
        conditional(r).map_err(internal)
    }

    async fn put_invocation(&self, invocation: &Invocation) -> Result<bool, SsmError> {
        self.put_invocation_item(invocation).await
    }

    async fn raise_released(&self, command_id: &str, end: u32) -> Result<bool, SsmError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.commands_table)
            .key("CommandId", s(command_id))
            .update_expression("SET #r = :e")
            .condition_expression(
                "attribute_exists(CommandId) AND (attribute_not_exists(#r) OR #r < :e)",
            )
            .expression_attribute_names("#r", RELEASED)
            .expression_attribute_values(":e", n(end))
            .send()
            .await;
        conditional(r).map_err(internal)
    }

    async fn get_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Option<Invocation>, SsmError> {
        self.get_invocation_item(command_id, instance_id).await
    }

    async fn query_invocations(
        &self,
        command_id: &str,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError> {
        self.query_command_invocations(command_id, limit, token)
            .await
    }

    async fn query_node_invocations(
        &self,
        instance_id: &str,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError> {
        self.query_by_instance(instance_id, range, limit, token)
            .await
    }

    async fn transition(&self, transition: &Transition) -> Result<bool, SsmError> {
        self.apply_transition(transition).await
    }

    async fn get_invocations(
        &self,
        command_id: &str,
        instance_ids: &[String],
    ) -> Result<Vec<Invocation>, SsmError> {
        self.get_invocation_items(command_id, instance_ids).await
    }

    async fn put_invocations(&self, invocations: &[Invocation]) -> Result<Vec<bool>, SsmError> {
        self.put_invocation_items(invocations).await
    }

    async fn transition_many(&self, transitions: &[Transition]) -> Result<Vec<bool>, SsmError> {
        self.apply_transitions(transitions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attribute_values() {
        let v = json!({"commands": ["a", "b"], "n": 3, "f": 1.5, "t": true, "m": {"x": []}});
        assert_eq!(from_av(&to_av(&v)), v);
    }

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        let key: Item = HashMap::from([
            ("CommandId".to_string(), s("c")),
            ("RequestedDateTime".to_string(), n(12.5)),
        ]);
        let t = encode_token(&key).unwrap();
        assert_eq!(
            decode_token(&t, &["CommandId", "RequestedDateTime"]).unwrap(),
            key
        );
        assert_eq!(
            decode_token(&t, &["CommandId"]).unwrap_err().code(),
            "InvalidNextToken"
        );
        assert_eq!(
            decode_token("!!", &["CommandId"]).unwrap_err().code(),
            "InvalidNextToken"
        );
    }
}

/// Every adapter Run Command needs, built once per process from the stack;
/// [`RunCommandAdapters::ports`] lends them to the core operations.
#[derive(Clone, Debug)]
pub struct RunCommandAdapters {
    pub store: CommandTable,
    pub targets: crate::tag_index::FleetDirectory,
    pub groups: crate::resource_groups::ResourceGroups,
    pub nodes: crate::node_mailbox::SqsNodeMailbox,
    pub work: crate::work_queue::SqsWorkQueue,
    pub outputs: crate::output::OutputBucket,
    pub signer: crate::signer::KmsSigner,
    /// Read for the commands' `{{ssm:…}}` references.
    pub parameters: crate::parameters::ParameterTable,
    pub scope: steward_core::arn::ArnScope,
    /// Read by SendCommand for the account's documents.
    pub documents: crate::documents::DocumentTable,
    /// Woken when a command an automation step sent ends.
    pub automation: crate::automation::SqsAutomationQueue,
    /// Read when a patch step is sent to a node.
    pub patch_baselines: crate::patch_baselines::PatchBaselineTable,
}

impl RunCommandAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: CommandTable::new(stack),
            targets: crate::tag_index::FleetDirectory::new(stack),
            groups: crate::resource_groups::ResourceGroups::new(stack),
            nodes: crate::node_mailbox::SqsNodeMailbox::new(stack),
            work: crate::work_queue::SqsWorkQueue::new(stack),
            outputs: crate::output::OutputBucket::new(stack),
            signer: crate::signer::KmsSigner::new(stack),
            parameters: crate::parameters::ParameterTable::new(stack),
            documents: crate::documents::DocumentTable::new(stack),
            automation: crate::automation::SqsAutomationQueue::new(stack),
            patch_baselines: crate::patch_baselines::PatchBaselineTable::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    pub fn ports(&self) -> steward_core::run_command::RunCommandContext<'_> {
        steward_core::run_command::RunCommandContext {
            store: &self.store,
            targets: &self.targets,
            groups: &self.groups,
            nodes: &self.nodes,
            mailbox: &self.nodes,
            work: &self.work,
            outputs: &self.outputs,
            signer: &self.signer,
            parameters: &self.parameters,
            scope: &self.scope,
            documents: &self.documents,
            automation: &self.automation,
            patch_baselines: &self.patch_baselines,
        }
    }
}
