//! Nodes' patch states over DynamoDB, in `PatchStatesTable`: per node
//! (`InstanceId`), one `state` item (the summary, as JSON, with
//! `OperationEndTime` and `SnapshotId` beside it for the conditional write,
//! and `PatchGroup` for the sparse `ByPatchGroup` index) and one item per
//! part of a snapshot's patch list (`part#<snapshot>#<part>`).

use aws_sdk_dynamodb::Client;
use steward_core::SsmError;
use steward_core::patching::instance_state::{Adopted, InstancePatchState, PatchStateStore};
use steward_core::patching::report::PatchEntry;

use crate::Stack;
use crate::internal;
use crate::item::{Item, get_consistent, get_s, n, query_items, s};

const STATE: &str = "state";

fn part_key(snapshot_id: &str, part: u32) -> String {
    // Zero-padded so the parts sort in order.
    format!("part#{snapshot_id}#{part:05}")
}

fn state_from(item: &Item) -> Result<InstancePatchState, SsmError> {
    serde_json::from_str(&get_s(item, "Record")).map_err(|e| {
        tracing::error!(error = %e, "a patch state item cannot be read");
        SsmError::internal()
    })
}

#[derive(Clone, Debug)]
pub struct PatchStateTable {
    client: Client,
    table: String,
}

impl PatchStateTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.patch_states_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl PatchStateStore for PatchStateTable {
    async fn put_part(
        &self,
        instance_id: &str,
        snapshot_id: &str,
        part: u32,
        patches: &[PatchEntry],
    ) -> Result<(), SsmError> {
        let record = serde_json::to_string(patches).map_err(|_| SsmError::internal())?;
        // A part is the same whenever it is sent: writing it again is harmless.
        self.client
            .put_item()
            .table_name(&self.table)
            .item("InstanceId", s(instance_id))
            .item("Key", s(part_key(snapshot_id, part)))
            .item("Record", s(record))
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn adopt(&self, state: &InstancePatchState) -> Result<Adopted, SsmError> {
        let record = serde_json::to_string(state).map_err(|_| SsmError::internal())?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("InstanceId", s(&state.instance_id))
            .item("Key", s(STATE))
            .item("OperationEndTime", n(state.operation_end_time))
            .item("SnapshotId", s(&state.snapshot_id))
            .item("Record", s(record))
            // Same order as `InstancePatchState::supersedes`.
            .condition_expression(
                "attribute_not_exists(InstanceId) OR OperationEndTime < :end \
                 OR (OperationEndTime = :end AND SnapshotId < :snapshot)",
            )
            .expression_attribute_values(":end", n(state.operation_end_time))
            .expression_attribute_values(":snapshot", s(&state.snapshot_id))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::None,
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld);
        if let Some(group) = &state.patch_group {
            put = put.item("PatchGroup", s(group));
        }
        match put.send().await {
            Ok(out) => Ok(Adopted::Replaced(
                out.attributes
                    .filter(|a| !a.is_empty())
                    .as_ref()
                    .map(state_from)
                    .transpose()?,
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(Adopted::Kept)
            }
            Err(e) => Err(internal(e)),
        }
    }

    async fn get(&self, instance_id: &str) -> Result<Option<InstancePatchState>, SsmError> {
        let key = Item::from([
            ("InstanceId".to_string(), s(instance_id)),
            ("Key".to_string(), s(STATE)),
        ]);
        get_consistent(&self.client, &self.table, key)
            .await?
            .as_ref()
            .map(state_from)
            .transpose()
    }

    async fn in_group(&self, patch_group: &str) -> Result<Vec<InstancePatchState>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("ByPatchGroup")
            .key_condition_expression("PatchGroup = :g")
            .expression_attribute_values(":g", s(patch_group));
        query_items(query, None, |_| true)
            .await?
            .iter()
            .map(state_from)
            .collect()
    }

    async fn patches(
        &self,
        instance_id: &str,
        snapshot_id: &str,
    ) -> Result<Vec<PatchEntry>, SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("InstanceId = :i AND begins_with(#k, :prefix)")
            .expression_attribute_names("#k", "Key")
            .expression_attribute_values(":i", s(instance_id))
            .expression_attribute_values(":prefix", s(format!("part#{snapshot_id}#")))
            .consistent_read(true);
        let mut out = Vec::new();
        for item in query_items(query, None, |_| true).await? {
            let part: Vec<PatchEntry> =
                serde_json::from_str(&get_s(&item, "Record")).map_err(|e| {
                    tracing::error!(error = %e, "a patch list item cannot be read");
                    SsmError::internal()
                })?;
            out.extend(part);
        }
        Ok(out)
    }
}
