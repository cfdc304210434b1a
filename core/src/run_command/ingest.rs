//! The ingest side: agents' InvocationUpdates applied to their own
//! invocations, with the command's counters, in conditional transactions.
//!
//! Reports come in batches (SQS hands the ingest function up to ten). A
//! batch's reports on one command are applied together: their invocations
//! read in one request, their moves and the counters' sum written in one
//! transaction (their events follow from the table's stream), and the
//! command settled and its next release decided once, not once per report.

use std::collections::{BTreeMap, BTreeSet};

use super::RunCommandContext;
use super::model::{Invocation, PluginRecord, Transition, output_key};
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

/// Moves forward at most through every detail there is; more rounds than
/// that cannot be needed, since each failed one saw the invocation move.
const MAX_ATTEMPTS: usize = 12;

/// One report (its sender and what it says), as one of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub node_id: String,
    pub update: InvocationUpdate,
}

/// Applies one report: a batch of one.
pub async fn apply_update(
    rc: &RunCommandContext<'_>,
    node_id: &str,
    update: InvocationUpdate,
    now: f64,
) -> Result<Applied, SsmError> {
    let report = Report {
        node_id: node_id.to_string(),
        update,
    };
    let mut out = apply_updates(rc, vec![report], now).await?;
    out.pop().ok_or_else(SsmError::internal)
}

/// Applies a batch of reports; what became of each, in the order given.
/// Each is applied as if alone and in that order: a report that is no move
/// forward (a repeat, a stale In Progress) changes nothing, whatever batch
/// it comes in.
pub async fn apply_updates(
    rc: &RunCommandContext<'_>,
    reports: Vec<Report>,
    now: f64,
) -> Result<Vec<Applied>, SsmError> {
    let mut outcomes = vec![Applied::Unchanged; reports.len()];
    let mut by_command: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in reports.iter().enumerate() {
        by_command
            .entry(r.update.command_id.as_str())
            .or_default()
            .push(i);
    }
    for (command_id, indices) in by_command {
        apply_to_command(rc, command_id, &reports, &indices, &mut outcomes).await?;
        // Always, even when nothing moved: a crash after an earlier
        // attempt's transaction and before this is healed by the
        // redelivered report. When the counters (acknowledged, finished,
        // errors) make a release due, it is made here and now: the next
        // generation goes out with no trip through the work queue, and a
        // failure fails these reports, whose redelivery decides again.
        if let Some(c) = settle(rc, command_id).await?
            && !c.is_final()
            && !c.rate_control()?.decide().is_empty()
        {
            super::dispatch::release_due(rc, c, now).await?;
        }
    }
    Ok(outcomes)
}

/// One command's reports (`indices` into `reports`, in order).
async fn apply_to_command(
    rc: &RunCommandContext<'_>,
    command_id: &str,
    reports: &[Report],
    indices: &[usize],
    outcomes: &mut [Applied],
) -> Result<(), SsmError> {
    let mut waiting: Vec<usize> = indices.to_vec();
    for _ in 0..MAX_ATTEMPTS {
        if waiting.is_empty() {
            break;
        }
        // One move per invocation per transaction: a node's later report in
        // the same batch waits for the next round, where it is read again.
        let mut nodes = BTreeSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = waiting
            .iter()
            .partition(|i| nodes.insert(reports[**i].node_id.as_str()));
        // Only (command, sender) is looked up: a node cannot touch another's
        // invocation.
        let ids: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        let found: BTreeMap<String, Invocation> = rc
            .store
            .get_invocations(command_id, &ids)
            .await?
            .into_iter()
            .map(|inv| (inv.instance_id.clone(), inv))
            .collect();
        let mut moves = Vec::new();
        for i in round {
            let r = &reports[i];
            let Some(inv) = found.get(&r.node_id) else {
                outcomes[i] = Applied::NotFound;
                continue;
            };
            if !inv.status_details.may_become(r.update.detail) {
                outcomes[i] = Applied::Unchanged;
                continue;
            }
            let t = transition_of(rc, inv, &r.node_id, &r.update).await?;
            moves.push((i, inv, t));
        }
        let transitions: Vec<Transition> = moves.iter().map(|(_, _, t)| t.clone()).collect();
        let applied = rc.store.transition_many(&transitions).await?;
        // A move whose condition failed saw its invocation move since it was
        // read (a duplicate of this report, or another report applied
        // concurrently): read again and decide again next round.
        let mut retry = Vec::new();
        for ((i, _, _), ok) in moves.into_iter().zip(applied) {
            if ok {
                outcomes[i] = Applied::Changed;
            } else {
                retry.push(i);
            }
        }
        waiting = retry.into_iter().chain(later).collect();
        waiting.sort_unstable();
    }
    Ok(())
}

/// The transition a report asks of its invocation, with its plugins'
/// records (output inline, truncated as SSM does, and the object URLs of
/// what the agent uploaded).
async fn transition_of(
    rc: &RunCommandContext<'_>,
    inv: &Invocation,
    node_id: &str,
    update: &InvocationUpdate,
) -> Result<Transition, SsmError> {
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
                standard_output_content: truncate_chars(&p.stdout, STDOUT_INLINE_LIMIT).to_string(),
                standard_error_content: truncate_chars(&p.stderr, STDERR_INLINE_LIMIT).to_string(),
                standard_output_url: out_url,
                standard_error_url: err_url,
            });
        }
        Some(records)
    };
    Ok(Transition {
        response_code: Some(update.response_code),
        execution_start_date_time: update.execution_start,
        execution_end_date_time: update.execution_end,
        plugins,
        ..inv.moved_to(update.detail)
    })
}
