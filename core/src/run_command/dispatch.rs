//! The dispatch side: work items from the work queue fan a command out to
//! its nodes, enforce its deadlines and carry cancellations to the nodes.
//! Each step is idempotent: a redelivered work item changes nothing twice.

use futures::{StreamExt, TryStreamExt, stream};

use super::RunCommandContext;
use super::model::{Command, Invocation, PluginRecord, Transition, WorkItem, output_key};
use super::ports::Delivery;
use super::progress::settle;
use crate::channel::PluginStep;
use crate::channel::{
    CancelMessage, Downlink, DownlinkPayload, RunMessage, StepUpload, VERSION, seal_downlinks,
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
            let execution = matches!(item, WorkItem::ExecutionDeadline { .. });
            deadlines_due(
                rc,
                item,
                command_id,
                std::slice::from_ref(instance_id),
                *at,
                execution,
                now,
            )
            .await
        }
        WorkItem::DeliveryDeadlines {
            command_id,
            instance_ids,
            at,
            resent,
        } if !*resent && now < *at => {
            resend_unacknowledged(rc, command_id, instance_ids, *at, now).await
        }
        WorkItem::DeliveryDeadlines {
            command_id,
            instance_ids,
            at,
            ..
        }
        | WorkItem::ExecutionDeadlines {
            command_id,
            instance_ids,
            at,
        } => {
            let execution = matches!(item, WorkItem::ExecutionDeadlines { .. });
            deadlines_due(rc, item, command_id, instance_ids, *at, execution, now).await
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
    let Some(c) = rc.store.get_command(command_id).await? else {
        return Ok(Outcome::Skipped("no such command"));
    };
    if c.rate_control()?.decide().is_empty() {
        settle(rc, command_id).await?;
        return Ok(Outcome::Skipped("nothing to release"));
    }
    release_due(rc, c, now).await
}

/// [`release`] of a command just read (and settled) whose counters make a
/// release due: the ingest side calls it with the command it settled, so
/// the next generation is sent by the batch of reports that allowed it,
/// without a trip through the work queue.
pub(crate) async fn release_due(
    rc: &RunCommandContext<'_>,
    mut c: Command,
    now: f64,
) -> Result<Outcome, SsmError> {
    let command_id = c.command_id.clone();
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
        .enqueue(&WorkItem::Release { command_id }, 0)
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
        let steps = resolved_steps(rc, c).await?;
        for chunk in due.chunks(DELIVERY_BATCH) {
            deliver(rc, c, &steps, chunk, true, now).await?;
        }
        rc.store
            .raise_released(command_id, decision.release.end)
            .await?;
    }
    if let Some(closing) = &decision.close {
        let closed: Vec<Invocation> = decision
            .close_of(&c.resolved_instance_ids)
            .iter()
            .map(|node| {
                let mut inv = pending_invocation(c, node, None, now);
                inv.status_details = closing.detail;
                for p in &mut inv.plugins {
                    p.status_details = closing.detail;
                }
                inv
            })
            .collect();
        for chunk in closed.chunks(DELIVERY_BATCH) {
            // One already there was sent by a release that raced the stop:
            // it is left to finish.
            rc.store.put_invocations(chunk).await?;
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

/// The command's steps with their `{{ssm:…}}` values: read once per
/// release and put only into the signed messages; the record keeps the
/// references. A reference that no longer resolves fails each node's
/// invocation (retrying cannot help); a store failure retries the work item.
async fn resolved_steps(
    rc: &RunCommandContext<'_>,
    c: &Command,
) -> Result<Result<Vec<PluginStep>, String>, SsmError> {
    match PlainResolver::new(rc.parameters)
        .resolve_steps(&c.steps)
        .await
    {
        Ok(steps) => Ok(Ok(steps)),
        Err(e @ ResolveError::Unresolvable { .. }) => Ok(Err(e.to_string())),
        Err(ResolveError::Store(e)) => Err(e),
    }
}

/// The first return of a round's [`WorkItem::DeliveryDeadlines`]: sends
/// again what the round released and its nodes never acknowledged, then
/// waits for the deadline. Normally the command is final by then and this
/// is one read, as any deadline item's return.
async fn resend_unacknowledged(
    rc: &RunCommandContext<'_>,
    command_id: &str,
    nodes: &[String],
    at: f64,
    now: f64,
) -> Result<Outcome, SsmError> {
    let Some(c) = rc.store.get_command(command_id).await? else {
        return Ok(Outcome::Skipped("no such command"));
    };
    if c.is_final() {
        return Ok(Outcome::Skipped("command final before the deadline"));
    }
    let pending: Vec<String> = rc
        .store
        .get_invocations(command_id, nodes)
        .await?
        .into_iter()
        .filter(|inv| inv.status_details == InvocationDetail::Pending)
        .map(|inv| inv.instance_id)
        .collect();
    if !pending.is_empty() {
        tracing::info!(
            command_id,
            count = pending.len(),
            "sending again what nodes have not acknowledged"
        );
        let steps = resolved_steps(rc, &c).await?;
        for chunk in pending.chunks(DELIVERY_BATCH) {
            deliver(rc, &c, &steps, chunk, false, now).await?;
        }
    }
    let item = WorkItem::DeliveryDeadlines {
        command_id: command_id.to_string(),
        instance_ids: nodes.to_vec(),
        at,
        resent: true,
    };
    let delay = delay_until(at, now);
    rc.work.enqueue(&item, delay).await?;
    Ok(Outcome::Postponed(delay))
}

/// Targets one delivery reads, writes and signs together: one BatchGetItem
/// of their addresses, one transaction of their invocations (DynamoDB's
/// limit is 100 items), one signature.
const DELIVERY_BATCH: usize = 100;

/// Applies moves (distinct invocations); their events follow from the
/// table's stream.
async fn apply_all(
    rc: &RunCommandContext<'_>,
    moves: Vec<(Invocation, Transition)>,
) -> Result<(), SsmError> {
    let moves: Vec<_> = moves
        .into_iter()
        .filter(|(inv, t)| inv.status_details.may_become(t.to))
        .collect();
    if moves.is_empty() {
        return Ok(());
    }
    let transitions: Vec<Transition> = moves.iter().map(|(_, t)| t.clone()).collect();
    rc.store.transition_many(&transitions).await?;
    Ok(())
}

fn mv(inv: &Invocation, to: InvocationDetail) -> Transition {
    inv.moved_to(to)
}

/// The move that fails an invocation whose `{{ssm:…}}` references no longer
/// resolve: nothing is sent, and the reason is the first plugin's error output.
fn unresolvable(inv: &Invocation, why: &str, now: f64) -> Transition {
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
    Transition {
        response_code: Some(-1),
        execution_end_date_time: Some(now),
        plugins: Some(plugins),
        ..mv(inv, InvocationDetail::Failed)
    }
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

/// Creates (unless they exist) the nodes' invocations and sends each node
/// the signed RunCommand with `steps` (the command's, `{{ssm:…}}` resolved,
/// or why they cannot be). A redelivery finds the invocations, and resends
/// only those still Pending, with the same `msg_id` so the agent drops the
/// repeat. The nodes' addresses are read in one request, their invocations
/// put in one transaction, their messages signed once (`seal_downlinks`),
/// and their deadlines enqueued as two work items, not two per node.
/// Sends `nodes` their invocations of `c`: created Pending if absent, sent
/// while still Pending. A release queues their deadlines first; a resend
/// (`release: false`) has them already.
async fn deliver(
    rc: &RunCommandContext<'_>,
    c: &Command,
    steps: &Result<Vec<PluginStep>, String>,
    nodes: &[String],
    release: bool,
    now: f64,
) -> Result<(), SsmError> {
    let command_id = c.command_id.as_str();
    let addresses = rc.nodes.node_addresses(nodes).await?;
    let fresh: Vec<Invocation> = nodes
        .iter()
        .zip(&addresses)
        .map(|(node, address)| pending_invocation(c, node, address.as_ref(), now))
        .collect();
    // The deadlines go first, before any write: whatever this round writes
    // and then fails to send (the process dies) is sent again by their first
    // return, and no invocation is ever left without its deadlines.
    if release {
        rc.work
            .enqueue_many(&deadline_items(c, &fresh, now))
            .await?;
    }
    let created = rc.store.put_invocations(&fresh).await?;
    let existed: Vec<String> = nodes
        .iter()
        .zip(&created)
        .filter(|(_, created)| !**created)
        .map(|(n, _)| n.clone())
        .collect();
    let mut existing: std::collections::BTreeMap<String, Invocation> = if existed.is_empty() {
        Default::default()
    } else {
        rc.store
            .get_invocations(command_id, &existed)
            .await?
            .into_iter()
            .map(|inv| (inv.instance_id.clone(), inv))
            .collect()
    };
    let mut moves = Vec::new();
    let mut sends = Vec::new();
    for ((inv, created), address) in fresh.into_iter().zip(created).zip(addresses) {
        let inv = if created {
            inv
        } else {
            let Some(existing) = existing.remove(&inv.instance_id) else {
                return Err(SsmError::internal());
            };
            // Put moments ago by another release run (reports start runs
            // that overlap): that run is sending it, and resending would
            // only make the agent refuse a repeat. A run that died before
            // sending is redelivered after the work queue's visibility
            // timeout, by when the invocation is older than this and is
            // resent.
            let created_at = existing.delivery_deadline - c.timeout_seconds as f64;
            if existing.status_details == InvocationDetail::Pending
                && now - created_at < RESEND_AFTER_SECONDS
            {
                continue;
            }
            existing
        };
        if inv.status_details != InvocationDetail::Pending {
            continue;
        }
        if c.cancel_requested || c.is_final() {
            let t = mv(&inv, InvocationDetail::Cancelled);
            moves.push((inv, t));
            continue;
        }
        let Some(address) = address else {
            let t = mv(&inv, InvocationDetail::Undeliverable);
            moves.push((inv, t));
            continue;
        };
        if now >= inv.delivery_deadline {
            let t = mv(&inv, InvocationDetail::DeliveryTimedOut);
            moves.push((inv, t));
            continue;
        }
        let steps = match steps {
            Ok(steps) => steps,
            Err(why) => {
                let t = unresolvable(&inv, why, now);
                moves.push((inv, t));
                continue;
            }
        };
        let steps = match super::patch_dispatch::complete_for_node(
            rc.patch_baselines,
            steps,
            &address,
            command_id,
        )
        .await?
        {
            Ok(steps) => steps,
            Err(why) => {
                let t = unresolvable(&inv, &why, now);
                moves.push((inv, t));
                continue;
            }
        };
        let execution_deadline =
            inv.delivery_deadline + c.execution_budget() as f64 + EXECUTION_MARGIN;
        let uploads = uploads_for(rc, c, &inv.instance_id, execution_deadline, now).await?;
        let payload = DownlinkPayload {
            v: VERSION,
            msg_id: inv.message_id.clone(),
            node_id: inv.instance_id.clone(),
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
        sends.push((inv, address, payload, execution_deadline));
    }
    apply_all(rc, moves).await?;
    if sends.is_empty() {
        return Ok(());
    }
    let payloads: Vec<DownlinkPayload> = sends.iter().map(|(_, _, p, _)| p.clone()).collect();
    let bodies = seal_downlinks(&payloads, rc.signer)
        .await
        .map_err(|_| SsmError::internal())?;
    // Each node has its own queue, so the sends are one request each; they
    // overlap. A failure retries the whole item, which resends only what is
    // still Pending.
    // Built before awaiting: a closure held across the await would make the
    // future's Send-ness depend on higher-ranked lifetimes the compiler
    // cannot prove when the handler is spawned.
    let queued: Vec<_> = sends
        .iter()
        .zip(&bodies)
        .map(|((_, address, _, _), body)| rc.mailbox.send(&address.queue_url, body))
        .collect();
    let deliveries: Vec<Delivery> = stream::iter(queued)
        .buffered(FAN_OUT_CONCURRENCY)
        .try_collect()
        .await?;
    let gone: Vec<_> = sends
        .into_iter()
        .zip(deliveries)
        .filter(|(_, delivery)| *delivery == Delivery::QueueGone)
        .map(|((inv, _, _, _), _)| {
            let t = mv(&inv, InvocationDetail::Undeliverable);
            (inv, t)
        })
        .collect();
    apply_all(rc, gone).await
}

/// The deadline work items of a round's invocations: one for each time,
/// with its nodes. The delivery deadline's first comes back early, for the
/// resend of what was not acknowledged.
fn deadline_items(c: &Command, fresh: &[Invocation], now: f64) -> Vec<(WorkItem, u32)> {
    let mut deadlines: std::collections::BTreeMap<(u64, u64), Vec<String>> = Default::default();
    for inv in fresh {
        let execution_deadline =
            inv.delivery_deadline + c.execution_budget() as f64 + EXECUTION_MARGIN;
        deadlines
            .entry((
                inv.delivery_deadline.to_bits(),
                execution_deadline.to_bits(),
            ))
            .or_default()
            .push(inv.instance_id.clone());
    }
    let mut items = Vec::new();
    for ((delivery, execution), instance_ids) in deadlines {
        let (delivery, execution) = (f64::from_bits(delivery), f64::from_bits(execution));
        let resend_at = now + RESEND_AFTER_SECONDS;
        items.push((
            WorkItem::DeliveryDeadlines {
                command_id: c.command_id.clone(),
                instance_ids: instance_ids.clone(),
                at: delivery,
                resent: delivery <= resend_at,
            },
            delay_until(delivery.min(resend_at), now),
        ));
        items.push((
            WorkItem::ExecutionDeadlines {
                command_id: c.command_id.clone(),
                instance_ids,
                at: execution,
            },
            delay_until(execution, now),
        ));
    }
    items
}

/// Presigned PUTs for each step's whole output, when the command asked for
/// S3 (presigning makes no request).
async fn uploads_for(
    rc: &RunCommandContext<'_>,
    c: &Command,
    node: &str,
    execution_deadline: f64,
    now: f64,
) -> Result<Vec<StepUpload>, SsmError> {
    let mut uploads = Vec::new();
    if c.output_s3_bucket_name.is_empty() {
        return Ok(uploads);
    }
    let ttl = upload_lifetime(execution_deadline, now);
    for i in 0..c.steps.len() {
        uploads.push(step_upload(rc.outputs, c, node, i, ttl).await?);
    }
    Ok(uploads)
}

/// How long an upload URL is asked to live: until the invocation's
/// execution deadline (the signing credentials may cut it shorter).
pub(crate) fn upload_lifetime(execution_deadline: f64, now: f64) -> u64 {
    ((execution_deadline - now).ceil().max(0.0) as u64).clamp(1, MAX_PRESIGN_SECONDS)
}

/// The presigned PUTs of step `step`'s stdout and stderr on `node`, at the
/// keys SSM uses; also what a node gets when it asks again
/// (`operations::upload_urls`). Callers check that the command has the step.
pub(crate) async fn step_upload(
    outputs: &dyn super::ports::OutputLocations,
    c: &Command,
    node: &str,
    step: usize,
    ttl: u64,
) -> Result<StepUpload, SsmError> {
    let Some(s) = c.steps.get(step) else {
        return Err(SsmError::internal());
    };
    let key = |stream| {
        output_key(
            &c.output_s3_key_prefix,
            &c.command_id,
            node,
            &s.name,
            step,
            stream,
        )
    };
    let out = outputs
        .presign_put(
            &c.output_s3_bucket_name,
            &c.output_s3_region,
            &key("stdout"),
            ttl,
        )
        .await?;
    let err = outputs
        .presign_put(
            &c.output_s3_bucket_name,
            &c.output_s3_region,
            &key("stderr"),
            ttl,
        )
        .await?;
    Ok(StepUpload {
        stdout_put_url: out.put_url,
        stderr_put_url: err.put_url,
    })
}

/// A deadline item at `now`: put back if not due, else applied to its
/// invocations.
async fn deadlines_due(
    rc: &RunCommandContext<'_>,
    item: &WorkItem,
    command_id: &str,
    nodes: &[String],
    at: f64,
    execution: bool,
    now: f64,
) -> Result<Outcome, SsmError> {
    if now < at {
        // SQS delays at most 900 s, so a deadline an hour out comes back
        // four times: once the command is final, its invocations are too,
        // and the item has nothing left to watch.
        match rc.store.get_command(command_id).await? {
            Some(c) if !c.is_final() => {}
            _ => return Ok(Outcome::Skipped("command final before the deadline")),
        }
        let delay = delay_until(at, now);
        rc.work.enqueue(item, delay).await?;
        return Ok(Outcome::Postponed(delay));
    }
    let outcome = deadline(rc, command_id, nodes, execution).await?;
    // Also when the invocations had moved on already: a crash after a move
    // and before its release is healed here.
    release(rc, command_id, now).await?;
    Ok(outcome)
}

async fn deadline(
    rc: &RunCommandContext<'_>,
    command_id: &str,
    nodes: &[String],
    execution: bool,
) -> Result<Outcome, SsmError> {
    use InvocationDetail as D;
    let mut moves = Vec::new();
    for chunk in nodes.chunks(DELIVERY_BATCH) {
        for inv in rc.store.get_invocations(command_id, chunk).await? {
            let to = match (inv.status_details, execution) {
                (D::Pending | D::Delayed, _) => D::DeliveryTimedOut,
                (D::InProgress, true) => D::ExecutionTimedOut,
                (D::Cancelling, true) => D::Cancelled,
                _ => continue,
            };
            let t = mv(&inv, to);
            moves.push((inv, t));
        }
    }
    if moves.is_empty() {
        return Ok(Outcome::Skipped("invocations already moved on"));
    }
    for chunk in moves.chunks(DELIVERY_BATCH) {
        apply_all(rc, chunk.to_vec()).await?;
    }
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
        for chunk in instance_ids.chunks(DELIVERY_BATCH) {
            invocations.extend(rc.store.get_invocations(command_id, chunk).await?);
        }
    }
    let mut moves = Vec::new();
    let mut told = Vec::new();
    for inv in invocations {
        let to = match inv.status_details {
            D::Pending | D::Delayed => D::Cancelled,
            D::InProgress => D::Cancelling,
            // A redelivered Cancel resends the message to nodes still cancelling.
            D::Cancelling => D::Cancelling,
            _ => continue,
        };
        // Told even when it was only Pending: a RunCommand may still wait in
        // its queue, and the agent must not run it.
        told.push(DownlinkPayload {
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
        });
        if to != inv.status_details {
            let t = mv(&inv, to);
            moves.push((inv, t));
        }
    }
    for chunk in moves.chunks(DELIVERY_BATCH) {
        apply_all(rc, chunk.to_vec()).await?;
    }
    for chunk in told.chunks(DELIVERY_BATCH) {
        let ids: Vec<String> = chunk.iter().map(|p| p.node_id.clone()).collect();
        let addresses = rc.nodes.node_addresses(&ids).await?;
        let (payloads, queues): (Vec<DownlinkPayload>, Vec<String>) = chunk
            .iter()
            .zip(addresses)
            .filter_map(|(p, a)| a.map(|a| (p.clone(), a.queue_url)))
            .unzip();
        let bodies = seal_downlinks(&payloads, rc.signer)
            .await
            .map_err(|_| SsmError::internal())?;
        let sends: Vec<_> = queues
            .iter()
            .zip(&bodies)
            .map(|(q, b)| rc.mailbox.send(q, b))
            .collect();
        stream::iter(sends)
            .buffer_unordered(FAN_OUT_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
    }
    // A cancelled command releases nothing more and closes what it never
    // sent; a cancelled invocation frees its slot.
    release(rc, command_id, now).await?;
    Ok(Outcome::Done)
}
