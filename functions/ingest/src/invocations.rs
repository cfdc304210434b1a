//! Invocation updates from agents: applied to the sender's own invocation by
//! `steward_core::run_command::ingest`.

use steward_aws::Stack;
use steward_aws::commands::RunCommandAdapters;
use steward_core::SsmError;
use steward_core::channel::InvocationUpdate;
use steward_core::run_command::ingest::{Applied, apply_update};

pub async fn apply(stack: &Stack, node_id: &str, update: InvocationUpdate) -> Result<(), SsmError> {
    let adapters = RunCommandAdapters::new(stack);
    let command_id = update.command_id.clone();
    let detail = update.detail.as_str();
    match apply_update(&adapters.ports(), node_id, update).await? {
        Applied::Changed => {
            tracing::info!(node_id, command_id, detail, "invocation updated")
        }
        Applied::Unchanged => {
            tracing::debug!(
                node_id,
                command_id,
                detail,
                "report changes nothing (repeated or stale)"
            )
        }
        Applied::NotFound => tracing::warn!(
            node_id,
            command_id,
            "report ignored: this node has no invocation of that command"
        ),
    }
    Ok(())
}
