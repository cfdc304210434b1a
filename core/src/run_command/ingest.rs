//! The ingest side: an agent's InvocationUpdate applied to its own
//! invocation, with the command's counters, in one conditional transaction.

use super::RunCommandContext;
use super::events::invocation_status_changed;
use super::model::{PluginRecord, Transition, WorkItem, output_key};
use super::progress::settle;
use crate::channel::InvocationUpdate;
use crate::error::SsmError;
use crate::output::{STDERR_INLINE_LIMIT, STDOUT_INLINE_LIMIT, truncate_chars};

/// What became of a report, for the shell's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// Already applied, or not a move forward: nothing changed.
    Unchanged,
    /// No invocation of this command on this node (unknown command, or a
    /// report about another node's invocation).
    NotFound,
}

/// Moves forward at most through every detail there is; more attempts than
/// that cannot be needed, since each failed one saw the invocation move.
const MAX_ATTEMPTS: usize = 12;

pub async fn apply_update(
    rc: &RunCommandContext<'_>,
    node_id: &str,
    update: InvocationUpdate,
) -> Result<Applied, SsmError> {
    // Only (command, sender) is looked up: a node cannot touch another's invocation.
    let Some(mut inv) = rc.store.get_invocation(&update.command_id, node_id).await? else {
        return Ok(Applied::NotFound);
    };
    let mut outcome = Applied::Unchanged;
    // A failed condition means the invocation moved since we read it: a
    // duplicate of this report, or another report (In Progress and the result
    // can be applied concurrently). Read again and decide again; only when the
    // move is no longer allowed is this report a no-op.
    for _ in 0..MAX_ATTEMPTS {
        if !inv.status_details.may_become(update.detail) {
            break;
        }
        let plugins = if update.plugins.is_empty() {
            None
        } else {
            let mut records = Vec::with_capacity(update.plugins.len());
            for (i, p) in update.plugins.iter().enumerate() {
                let (mut out_url, mut err_url) = (String::new(), String::new());
                if p.uploaded && !inv.output_s3_bucket_name.is_empty() {
                    let key = |stream| {
                        output_key(
                            &inv.output_s3_key_prefix,
                            &inv.command_id,
                            node_id,
                            &p.name,
                            i,
                            stream,
                        )
                    };
                    let bucket = &inv.output_s3_bucket_name;
                    let region = &inv.output_s3_region;
                    out_url = rc
                        .outputs
                        .presign_put(bucket, region, &key("stdout"), 1)
                        .await?
                        .object_url;
                    err_url = rc
                        .outputs
                        .presign_put(bucket, region, &key("stderr"), 1)
                        .await?
                        .object_url;
                }
                records.push(PluginRecord {
                    name: p.name.clone(),
                    status_details: p.detail,
                    response_code: p.response_code,
                    response_start_date_time: p.start,
                    response_finish_date_time: p.end,
                    standard_output_content: truncate_chars(&p.stdout, STDOUT_INLINE_LIMIT)
                        .to_string(),
                    standard_error_content: truncate_chars(&p.stderr, STDERR_INLINE_LIMIT)
                        .to_string(),
                    standard_output_url: out_url,
                    standard_error_url: err_url,
                });
            }
            Some(records)
        };
        let t = Transition {
            command_id: inv.command_id.clone(),
            instance_id: inv.instance_id.clone(),
            from: inv.status_details,
            to: update.detail,
            response_code: Some(update.response_code),
            execution_start_date_time: update.execution_start,
            execution_end_date_time: update.execution_end,
            plugins,
            released_offline: inv.released_offline,
        };
        if rc.store.transition(&t).await? {
            let mut after = inv.clone();
            after.status_details = update.detail;
            rc.emit(invocation_status_changed(&after)).await;
            outcome = Applied::Changed;
            break;
        }
        match rc.store.get_invocation(&update.command_id, node_id).await? {
            Some(now) => inv = now,
            None => return Ok(Applied::NotFound),
        }
    }
    // Always: a crash after the transaction and before this is healed by the
    // redelivered report. The release is the dispatch's: enqueued when the
    // counters (acknowledged, finished, errors) make one due.
    if let Some(c) = settle(rc, &update.command_id).await?
        && !c.is_final()
        && !c.rate_control()?.decide().is_empty()
    {
        let item = WorkItem::Release {
            command_id: update.command_id.clone(),
        };
        rc.work.enqueue(&item, 0).await?;
    }
    Ok(outcome)
}
