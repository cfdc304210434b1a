//! The dispatch side: work items from the work queue fan a command out to
//! its nodes, enforce its deadlines and carry cancellations to the nodes.
//! Each step is idempotent: a redelivered work item changes nothing twice.

use futures::{StreamExt, TryStreamExt, stream};

use super::RunCommandContext;
use super::events::invocation_status_changed;
use super::model::{Command, Invocation, PluginRecord, Transition, WorkItem, output_key};
use super::ports::Delivery;
use super::progress::settle;
use crate::channel::PluginStep;
use crate::channel::{
    CancelMessage, Downlink, DownlinkPayload, RunMessage, StepUpload, VERSION, seal_downlink,
};
use crate::error::SsmError;
use crate::parameters::references::{PlainResolver, ResolveError};
use crate::run_command::status::InvocationDetail;

/// Time allowed past a node's last possible finish before an invocation
/// still running is declared `Execution Timed Out` (seconds).
pub const EXECUTION_MARGIN: f64 = 300.0;
/// SQS's longest DelaySeconds.
pub const MAX_DELAY_SECONDS: u32 = 900;
/// Deliveries of one fan-out in flight at once.
pub const FAN_OUT_CONCURRENCY: usize = 16;

/// An existing Pending invocation younger than this is not resent (see
/// `deliver`). Well under the work queue's visibility timeout (360 s), so a
/// redelivered run after a crash always resends.
pub const RESEND_AFTER_SECONDS: f64 = 60.0;
/// SigV4 presigned URLs live at most a week.
const MAX_PRESIGN_SECONDS: u64 = 604_800;

/// What became of a work item, for the shell's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Not due yet: enqueued again with this delay.
    Postponed(u32),
    /// Nothing to do (unknown command or invocation, already final…).
    Skipped(&'static str),
}

/// Parses and runs one work item.
pub async fn process(
    rc: &RunCommandContext<'_>,
    body: &str,
    now: f64,
) -> Result<Outcome, SsmError> {
    let item: WorkItem = serde_json::from_str(body)
        .map_err(|e| SsmError::SerializationException(format!("work item is not valid: {e}")))?;
    run(rc, &item, now).await
}

pub async fn run(
    rc: &RunCommandContext<'_>,
    item: &WorkItem,
    now: f64,
) -> Result<Outcome, SsmError> {
    match item {
        // The fan-out is the first release.
        WorkItem::FanOut { command_id } | WorkItem::Release { command_id } => {
            release(rc, command_id, now).await
        }
        WorkItem::DeliveryDeadline {
            command_id,
            instance_id,
            at,
        }
        | WorkItem::ExecutionDeadline {
            command_id,
            instance_id,
            at,
        } => {
            if now < *at {
                let delay = delay_until(*at, now);
                rc.work.enqueue(item, delay).await?;
                return Ok(Outcome::Postponed(delay));
            }
            let execution = matches!(item, WorkItem::ExecutionDeadline { .. });
            let outcome = deadline(rc, command_id, instance_id, execution).await?;
            // Also when the invocation had moved on already: a crash after
            // a move and before its release is healed here.
            release(rc, command_id, now).await?;
            Ok(outcome)
        }
        WorkItem::Cancel {
            command_id,
            instance_ids,
        } => cancel(rc, command_id, instance_ids, now).await,
    }
}

/// Whole seconds from `now` to `at`, within SQS's bounds.
pub fn delay_until(at: f64, now: f64) -> u32 {
    let d = (at - now).ceil();
    if d <= 0.0 {
        0
    } else {
        (d as u64).min(MAX_DELAY_SECONDS as u64) as u32
    }
}

/// Sends what the command's rate control allows now, and closes the targets
/// it will never send (`rate_control`). Each run is one decision from the
/// counters as stored: a report that moves them enqueues the next
/// [`WorkItem::Release`], so no loop waits anywhere. Repeating it is
/// harmless: an invocation is put only if absent, a Pending one is resent
/// with its `msg_id`, and `released` is raised (conditionally) only after
/// the sends.
async fn release(
    rc: &RunCommandContext<'_>,
    command_id: &str,
    now: f64,
) -> Result<Outcome, SsmError> {
    let Some(mut c) = rc.store.get_command(command_id).await? else {
        return Ok(Outcome::Skipped("no such command"));
    };
    if c.rate_control()?.decide().is_empty() {
        settle(rc, command_id).await?;
        return Ok(Outcome::Skipped("nothing to release"));
    }
    // A round that sent to nodes not Online, or ended invocations at once,
    // frees slots no report will: the next round goes at once rather than
    // after a trip through the work queue. Bounded, so one work item stays
    // short; what is left is the next item's.
    for _ in 0..RELEASE_ROUNDS {
        match release_round(rc, &c, now).await? {
            Some(after) if !after.is_final() && !after.rate_control()?.decide().is_empty() => {
                c = after;
            }
            _ => return Ok(Outcome::Done),
        }
    }
    rc.work
        .enqueue(
            &WorkItem::Release {
                command_id: command_id.to_string(),
            },
            0,
        )
        .await?;
    Ok(Outcome::Done)
}

/// Rounds of release one work item makes at most.
const RELEASE_ROUNDS: usize = 8;

/// One decision from `c`'s counters, carried out; the command as it stands
/// after (settled), `None` if it is gone.
async fn release_round(
    rc: &RunCommandContext<'_>,
    c: &Command,
    now: f64,
) -> Result<Option<Command>, SsmError> {
    let command_id = c.command_id.as_str();
    let decision = c.rate_control()?.decide();
    let due = decision.release_of(&c.resolved_instance_ids);
    if !due.is_empty() {
        // `{{ssm:…}}` values are read once per release and go only into
        // the signed messages; the record keeps the references. A reference
        // that no longer resolves fails each node's invocation (retrying
        // cannot help); a store failure retries the work item.
        let steps = match PlainResolver::new(rc.parameters)
            .resolve_steps(&c.steps)
            .await
        {
            Ok(steps) => Ok(steps),
            Err(e @ ResolveError::Unresolvable { .. }) => Err(e.to_string()),
            Err(ResolveError::Store(e)) => return Err(e),
        };
        // Deliveries are independent (each is its own conditional write and
        // message), so they overlap; a failure retries the whole item, which
        // resends only what is still Pending.
        // Built before awaiting: a closure held across the await would make
        // the future's Send-ness depend on higher-ranked lifetimes the
        // compiler cannot prove when the handler is spawned.
        let deliveries: Vec<_> = due
            .iter()
            .map(|node| deliver(rc, c, &steps, node, now))
            .collect();
        stream::iter(deliveries)
            .buffer_unordered(FAN_OUT_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        rc.store
            .raise_released(command_id, decision.release.end)
            .await?;
    }
    if let Some(closing) = &decision.close {
        for node in decision.close_of(&c.resolved_instance_ids) {
            let mut inv = pending_invocation(c, node, None, now);
            inv.status_details = closing.detail;
            for p in &mut inv.plugins {
                p.status_details = closing.detail;
            }
            // One already there was sent by a release that raced the stop:
            // it is left to finish.
            if rc.store.put_invocation(&inv).await? {
                rc.emit(invocation_status_changed(&inv)).await;
            }
        }
        rc.store
            .raise_released(command_id, c.tally.target_count)
            .await?;
    }
    // A delivery may have ended an invocation at once (Undeliverable, a
    // reference gone) or gone to a node not Online: that moved the
    // counters, and no report will follow.
    settle(rc, command_id).await
}

/// Moves an invocation and, when it moved, tells EventBridge.
async fn apply(
    rc: &RunCommandContext<'_>,
    inv: &Invocation,
    t: Transition,
) -> Result<bool, SsmError> {
    if !inv.status_details.may_become(t.to) {
        return Ok(false);
    }
    let moved = rc.store.transition(&t).await?;
    if moved {
        let mut after = inv.clone();
        after.status_details = t.to;
        rc.emit(invocation_status_changed(&after)).await;
    }
    Ok(moved)
}

fn mv(inv: &Invocation, to: InvocationDetail) -> Transition {
    inv.moved_to(to)
}

/// Fails an invocation whose `{{ssm:…}}` references no longer resolve:
/// nothing is sent, and the reason is the first plugin's error output.
async fn unresolvable(
    rc: &RunCommandContext<'_>,
    inv: &Invocation,
    why: &str,
    now: f64,
) -> Result<(), SsmError> {
    let plugins = inv
        .plugins
        .iter()
        .enumerate()
        .map(|(i, p)| PluginRecord {
            status_details: InvocationDetail::Failed,
            response_code: -1,
            response_finish_date_time: Some(now),
            standard_error_content: if i == 0 {
                format!("{why}; nothing ran on this node.")
            } else {
                String::new()
            },
            ..p.clone()
        })
        .collect();
    let t = Transition {
        response_code: Some(-1),
        execution_end_date_time: Some(now),
        plugins: Some(plugins),
        ..mv(inv, InvocationDetail::Failed)
    };
    apply(rc, inv, t).await?;
    Ok(())
}

/// A target's invocation as it is created: Pending, to be sent now.
fn pending_invocation(
    c: &Command,
    node: &str,
    address: Option<&super::ports::NodeAddress>,
    now: f64,
) -> Invocation {
    Invocation {
        command_id: c.command_id.clone(),
        instance_id: node.to_string(),
        instance_name: address.map(|a| a.computer_name.clone()).unwrap_or_default(),
        comment: c.comment.clone(),
        document_name: c.document_name.clone(),
        document_version: c.document_version.clone(),
        requested_date_time: c.requested_date_time,
        status_details: InvocationDetail::Pending,
        response_code: -1,
        execution_start_date_time: None,
        execution_end_date_time: None,
        plugins: c
            .steps
            .iter()
            .map(|s| PluginRecord {
                name: s.name.clone(),
                status_details: InvocationDetail::Pending,
                response_code: -1,
                response_start_date_time: None,
                response_finish_date_time: None,
                standard_output_content: String::new(),
                standard_error_content: String::new(),
                standard_output_url: String::new(),
                standard_error_url: String::new(),
            })
            .collect(),
        output_s3_bucket_name: c.output_s3_bucket_name.clone(),
        output_s3_key_prefix: c.output_s3_key_prefix.clone(),
        output_s3_region: c.output_s3_region.clone(),
        service_role: c.service_role.clone(),
        notification_config: c.notification_config.clone(),
        message_id: uuid::Uuid::new_v4().to_string(),
        delivery_deadline: now + c.timeout_seconds as f64,
        released_offline: address.is_some_and(|a| !a.online),
    }
}

/// Creates (unless it exists) the node's invocation and sends it the signed
/// RunCommand with `steps` (the command's, `{{ssm:…}}` resolved, or why they
/// cannot be). A redelivery finds the invocation, and resends only while it
/// is still Pending, with the same `msg_id` so the agent drops the repeat.
async fn deliver(
    rc: &RunCommandContext<'_>,
    c: &Command,
    steps: &Result<Vec<PluginStep>, String>,
    node: &str,
    now: f64,
) -> Result<(), SsmError> {
    let address = rc.nodes.node_address(node).await?;
    let fresh = pending_invocation(c, node, address.as_ref(), now);
    let inv = if rc.store.put_invocation(&fresh).await? {
        fresh
    } else {
        let existing = match rc.store.get_invocation(&c.command_id, node).await? {
            Some(existing) => existing,
            None => return Err(SsmError::internal()),
        };
        // Put moments ago by another release run (reports start runs that
        // overlap): that run is sending it, and resending would only make
        // the agent refuse a repeat. A run that died before sending is
        // redelivered after the work queue's visibility timeout, by when
        // the invocation is older than this and is resent.
        let created = existing.delivery_deadline - c.timeout_seconds as f64;
        if existing.status_details == InvocationDetail::Pending
            && now - created < RESEND_AFTER_SECONDS
        {
            return Ok(());
        }
        existing
    };
    if inv.status_details != InvocationDetail::Pending {
        return Ok(());
    }
    if c.cancel_requested || c.is_final() {
        apply(rc, &inv, mv(&inv, InvocationDetail::Cancelled)).await?;
        return Ok(());
    }
    let Some(address) = address else {
        apply(rc, &inv, mv(&inv, InvocationDetail::Undeliverable)).await?;
        return Ok(());
    };
    if now >= inv.delivery_deadline {
        apply(rc, &inv, mv(&inv, InvocationDetail::DeliveryTimedOut)).await?;
        return Ok(());
    }
    let steps = match steps {
        Ok(steps) => steps,
        Err(why) => return unresolvable(rc, &inv, why, now).await,
    };
    let steps = match super::patch_dispatch::complete_for_node(
        rc.patch_baselines,
        steps,
        &address,
        &c.command_id,
    )
    .await?
    {
        Ok(steps) => steps,
        Err(why) => return unresolvable(rc, &inv, &why, now).await,
    };
    let execution_deadline = inv.delivery_deadline + c.execution_budget() as f64 + EXECUTION_MARGIN;
    let mut uploads = Vec::new();
    if !c.output_s3_bucket_name.is_empty() {
        let ttl = ((execution_deadline - now).ceil() as u64).clamp(1, MAX_PRESIGN_SECONDS);
        for (i, step) in c.steps.iter().enumerate() {
            let key = |stream| {
                output_key(
                    &c.output_s3_key_prefix,
                    &c.command_id,
                    node,
                    &step.name,
                    i,
                    stream,
                )
            };
            let out = rc
                .outputs
                .presign_put(
                    &c.output_s3_bucket_name,
                    &c.output_s3_region,
                    &key("stdout"),
                    ttl,
                )
                .await?;
            let err = rc
                .outputs
                .presign_put(
                    &c.output_s3_bucket_name,
                    &c.output_s3_region,
                    &key("stderr"),
                    ttl,
                )
                .await?;
            uploads.push(StepUpload {
                stdout_put_url: out.put_url,
                stderr_put_url: err.put_url,
            });
        }
    }
    let payload = DownlinkPayload {
        v: VERSION,
        msg_id: inv.message_id.clone(),
        node_id: node.to_string(),
        issued_at: now,
        expires_at: inv.delivery_deadline,
        message: Downlink::Run(RunMessage {
            command_id: c.command_id.clone(),
            document_name: c.document_name.clone(),
            document_version: c.document_version.clone(),
            steps,
            uploads,
        }),
    };
    let body = seal_downlink(&payload, rc.signer)
        .await
        .map_err(|_| SsmError::internal())?;
    if rc.mailbox.send(&address.queue_url, &body).await? == Delivery::QueueGone {
        apply(rc, &inv, mv(&inv, InvocationDetail::Undeliverable)).await?;
        return Ok(());
    }
    let deadlines = [
        WorkItem::DeliveryDeadline {
            command_id: c.command_id.clone(),
            instance_id: node.to_string(),
            at: inv.delivery_deadline,
        },
        WorkItem::ExecutionDeadline {
            command_id: c.command_id.clone(),
            instance_id: node.to_string(),
            at: execution_deadline,
        },
    ];
    for d in &deadlines {
        let at = match d {
            WorkItem::DeliveryDeadline { at, .. } | WorkItem::ExecutionDeadline { at, .. } => *at,
            _ => now,
        };
        rc.work.enqueue(d, delay_until(at, now)).await?;
    }
    Ok(())
}

async fn deadline(
    rc: &RunCommandContext<'_>,
    command_id: &str,
    node: &str,
    execution: bool,
) -> Result<Outcome, SsmError> {
    use InvocationDetail as D;
    let Some(inv) = rc.store.get_invocation(command_id, node).await? else {
        return Ok(Outcome::Skipped("no such invocation"));
    };
    let to = match (inv.status_details, execution) {
        (D::Pending | D::Delayed, _) => D::DeliveryTimedOut,
        (D::InProgress, true) => D::ExecutionTimedOut,
        (D::Cancelling, true) => D::Cancelled,
        _ => return Ok(Outcome::Skipped("invocation already moved on")),
    };
    apply(rc, &inv, mv(&inv, to)).await?;
    Ok(Outcome::Done)
}

async fn cancel(
    rc: &RunCommandContext<'_>,
    command_id: &str,
    instance_ids: &[String],
    now: f64,
) -> Result<Outcome, SsmError> {
    use InvocationDetail as D;
    let Some(c) = rc.store.get_command(command_id).await? else {
        return Ok(Outcome::Skipped("no such command"));
    };
    let mut invocations = Vec::new();
    if instance_ids.is_empty() {
        let mut token: Option<String> = None;
        loop {
            let page = rc
                .store
                .query_invocations(command_id, 50, token.as_deref())
                .await?;
            invocations.extend(page.items);
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
    } else {
        for node in instance_ids {
            if let Some(inv) = rc.store.get_invocation(command_id, node).await? {
                invocations.push(inv);
            }
        }
    }
    for inv in invocations {
        let to = match inv.status_details {
            D::Pending | D::Delayed => D::Cancelled,
            D::InProgress => D::Cancelling,
            // A redelivered Cancel resends the message to nodes still cancelling.
            D::Cancelling => D::Cancelling,
            _ => continue,
        };
        if to != inv.status_details {
            apply(rc, &inv, mv(&inv, to)).await?;
        }
        // Told even when it was only Pending: a RunCommand may still wait in
        // its queue, and the agent must not run it.
        if let Some(address) = rc.nodes.node_address(&inv.instance_id).await? {
            let payload = DownlinkPayload {
                v: VERSION,
                msg_id: uuid::Uuid::new_v4().to_string(),
                node_id: inv.instance_id.clone(),
                issued_at: now,
                expires_at: inv.delivery_deadline.max(now)
                    + c.execution_budget() as f64
                    + EXECUTION_MARGIN,
                message: Downlink::Cancel(CancelMessage {
                    command_id: command_id.to_string(),
                }),
            };
            let body = seal_downlink(&payload, rc.signer)
                .await
                .map_err(|_| SsmError::internal())?;
            rc.mailbox.send(&address.queue_url, &body).await?;
        }
    }
    // A cancelled command releases nothing more and closes what it never
    // sent; a cancelled invocation frees its slot.
    release(rc, command_id, now).await?;
    Ok(Outcome::Done)
}
