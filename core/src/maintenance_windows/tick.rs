//! The scheduler's tick for maintenance windows: it opens each due window
//! (an execution per occurrence) and advances every running execution —
//! tasks in priority order, equal priorities together, nothing new after
//! the cutoff, CANCEL_TASK tasks cancelled at the window's end.
//!
//! A tick may run twice or late: the execution's id follows from the
//! window and the occurrence and is written conditionally before the window
//! is claimed (conditionally) for its next occurrence; a group of tasks is
//! recorded as started before anything is sent, under command ids and
//! client tokens that follow from the task execution, so a repeat sends
//! nothing twice.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::context::next_occurrence;
use super::model::{Execution, ExecutionTask, Invocation, Window, WindowTask, status};
use super::ports::{Due, WindowStore};
use crate::error::SsmError;
use crate::ids::id_from;
use crate::schedule::Occurrence;
use crate::schedule::runs::{RunOutcome, ScheduledRuns};
use crate::targets::MAX_INSTANCE_IDS;

/// The value of `DueShard` for every due item (one shard).
pub const DUE_SHARD: &str = "due";

/// What a tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DueReport {
    /// Executions opened (including skipped ones).
    pub opened: usize,
    /// Of them, recorded SKIPPED_OVERLAPPING.
    pub skipped_overlapping: usize,
    /// Occurrences whose whole window had passed, not run.
    pub missed: usize,
    /// Executions looked at that were under way.
    pub advanced: usize,
    /// Executions that reached a final status.
    pub finished: usize,
    /// Items that failed (logged; the next tick retries them).
    pub failed: usize,
}

/// Runs what is due at `now` (epoch seconds). `hour_seconds` is the length
/// of an hour for Duration and Cutoff (3600 but in tests).
pub async fn run_due(
    store: &dyn WindowStore,
    runs: &dyn ScheduledRuns,
    now: f64,
    hour_seconds: i64,
) -> Result<DueReport, SsmError> {
    let mut report = DueReport::default();
    let now_s = now.floor() as i64;
    for item in store.due(now_s).await? {
        let outcome = match item {
            Due::Window(w) => open(store, runs, &w, now, hour_seconds, &mut report).await,
            Due::Execution(e) => {
                report.advanced += 1;
                advance(store, runs, &e.id, now, hour_seconds)
                    .await
                    .map(|done| {
                        if done {
                            report.finished += 1;
                        }
                    })
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(
                error = e.code(),
                "a maintenance window item failed this tick"
            );
            report.failed += 1;
        }
    }
    Ok(report)
}

/// The next occurrence after `scheduled` whose window has not wholly passed.
fn next_runnable(w: &Window, scheduled: i64, now: i64, length: i64) -> Option<Occurrence> {
    let mut next = next_occurrence(w, scheduled);
    // Bounded: a window missed for ages does not loop forever.
    for _ in 0..100_000 {
        match next {
            Some(o) if o.due + length <= now => next = next_occurrence(w, o.scheduled),
            _ => break,
        }
    }
    next
}

async fn open(
    store: &dyn WindowStore,
    runs: &dyn ScheduledRuns,
    w: &Window,
    now: f64,
    hour: i64,
    report: &mut DueReport,
) -> Result<(), SsmError> {
    let (Some(due), Some(scheduled)) = (w.next_due, w.next_scheduled) else {
        return Ok(());
    };
    let now_s = now.floor() as i64;
    let length = w.duration * hour;
    let mut opened = None;
    if due + length <= now_s {
        tracing::info!(window = %w.id, scheduled, "a maintenance window occurrence passed unrun");
        report.missed += 1;
    } else {
        let id = id_from(&format!("{}#{scheduled}", w.id));
        // The previous execution still running: this one is skipped.
        let overlapping = store
            .list_executions(&w.id)
            .await?
            .iter()
            .any(|e| e.id != id && !status::is_final(&e.status));
        let mut tasks = store.list_tasks(&w.id).await?;
        tasks.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        let mut e = Execution {
            window_id: w.id.clone(),
            id: id.clone(),
            status: status::IN_PROGRESS.into(),
            status_details: None,
            scheduled,
            window_start: due,
            start_time: now,
            end_time: None,
            duration: w.duration,
            cutoff: w.cutoff,
            tasks: tasks
                .into_iter()
                .map(|task| ExecutionTask {
                    id: id_from(&format!("{id}#{}", task.id)),
                    task,
                    status: status::PENDING.into(),
                    status_details: None,
                    start_time: None,
                    end_time: None,
                    invocations: Vec::new(),
                })
                .collect(),
            cancel_requested: false,
            cut_off: false,
            due: true,
            revision: 1,
        };
        if overlapping {
            e.status = status::SKIPPED_OVERLAPPING.into();
            e.status_details = Some(
                "The maintenance window execution was skipped because the previous execution of the window was still running.".into(),
            );
            for t in &mut e.tasks {
                t.status = status::SKIPPED_OVERLAPPING.into();
            }
            e.end_time = Some(now);
            e.due = false;
        }
        // Written before the claim: a tick that stops between the two
        // finds the execution there and writes nothing new.
        if store.insert_execution(&e).await? {
            report.opened += 1;
            if overlapping {
                report.skipped_overlapping += 1;
            } else {
                opened = Some(id);
            }
        }
    }
    let mut claimed = w.clone();
    let next = next_runnable(w, scheduled, now_s, length);
    claimed.next_due = next.map(|o| o.due);
    claimed.next_scheduled = next.map(|o| o.scheduled);
    claimed.revision = w.revision + 1;
    if !store.update_window(&claimed, w.revision).await? {
        tracing::info!(window = %w.id, "the window changed under the tick; the next tick looks again");
    }
    if let Some(id) = opened
        && advance(store, runs, &id, now, hour).await?
    {
        report.finished += 1;
    }
    Ok(())
}

fn task_status(s: &str) -> &'static str {
    match s {
        "Success" | "CompletedWithSuccess" => status::SUCCESS,
        "TimedOut" | "DeliveryTimedOut" | "ExecutionTimedOut" => status::TIMED_OUT,
        "Cancelled" => status::CANCELLED,
        "Pending" | "InProgress" | "Delayed" | "Cancelling" | "Waiting" | "Running" => {
            status::IN_PROGRESS
        }
        _ => status::FAILED,
    }
}

fn apply_outcome(inv: &mut Invocation, o: &RunOutcome, now: f64) {
    if o.is_final {
        inv.status = task_status(&o.status).into();
        if inv.status == status::IN_PROGRESS {
            inv.status = status::FAILED.into();
        }
        inv.end_time = Some(now);
    } else {
        inv.status = status::IN_PROGRESS.into();
    }
    inv.status_details = Some(o.status.clone());
}

/// Brings an invocation up to date: sends it if it was recorded but not
/// sent (the same id again sends nothing twice), else reads its outcome.
async fn refresh(runs: &dyn ScheduledRuns, run_as: &str, inv: &mut Invocation, now: f64) {
    if status::is_final(&inv.status) {
        return;
    }
    let step: Result<(), SsmError> = async {
        if inv.task_type == "RUN_COMMAND" {
            let Some(id) = inv.execution_id.clone() else {
                return Ok(());
            };
            match runs.command(&id).await? {
                Some(o) => apply_outcome(inv, &o, now),
                None => {
                    runs.send_command(run_as, &id, &inv.parameters).await?;
                    inv.status = status::IN_PROGRESS.into();
                }
            }
        } else {
            match inv.execution_id.clone() {
                Some(id) => {
                    if let Some(o) = runs.automation(&id).await? {
                        apply_outcome(inv, &o, now);
                    }
                }
                None => {
                    let token = inv.client_token.clone().unwrap_or_else(|| inv.id.clone());
                    let id = runs
                        .start_automation(run_as, &token, &inv.parameters)
                        .await?;
                    inv.execution_id = Some(id);
                    inv.status = status::IN_PROGRESS.into();
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = step {
        // A refusal (the user may no longer run it) fails the invocation;
        // it is SSM's answer, so it is kept as the details.
        inv.status = status::FAILED.into();
        inv.status_details = Some(format!("{}: {e}", e.code()));
        inv.end_time = Some(now);
    }
}

/// A task's status from its invocations, once they are all final.
fn settle(t: &mut ExecutionTask, now: f64) {
    if t.status != status::IN_PROGRESS || t.invocations.iter().any(|i| !status::is_final(&i.status))
    {
        return;
    }
    let has = |s: &str| t.invocations.iter().any(|i| i.status == s);
    t.status = if has(status::FAILED) {
        status::FAILED
    } else if has(status::TIMED_OUT) {
        status::TIMED_OUT
    } else if has(status::CANCELLED) {
        status::CANCELLED
    } else {
        status::SUCCESS
    }
    .into();
    t.end_time = Some(now);
}

async fn cancel_runs(runs: &dyn ScheduledRuns, t: &mut ExecutionTask, now: f64, why: &str) {
    for inv in &mut t.invocations {
        if status::is_final(&inv.status) {
            continue;
        }
        if let Some(id) = &inv.execution_id {
            let r = if inv.task_type == "RUN_COMMAND" {
                runs.cancel_command(id).await
            } else {
                runs.stop_automation(id).await
            };
            if let Err(e) = r {
                tracing::warn!(
                    error = e.code(),
                    "cancelling a maintenance window run failed"
                );
            }
        }
        inv.status = status::CANCELLED.into();
        inv.status_details = Some(why.into());
        inv.end_time = Some(now);
    }
    t.status = status::CANCELLED.into();
    t.status_details = Some(why.into());
    t.end_time = Some(now);
}

/// Advances the execution `id`; `true` when it became final.
pub(crate) async fn advance(
    store: &dyn WindowStore,
    runs: &dyn ScheduledRuns,
    id: &str,
    now: f64,
    hour: i64,
) -> Result<bool, SsmError> {
    let Some(cur) = store.get_execution(id).await? else {
        return Ok(false);
    };
    if !cur.due {
        return Ok(false);
    }
    let mut e = cur.clone();
    let now_s = now.floor() as i64;
    let end = e.window_start + e.duration * hour;
    let cutoff_at = end - e.cutoff * hour;

    for t in &mut e.tasks {
        if t.status == status::IN_PROGRESS {
            for inv in &mut t.invocations {
                refresh(runs, &t.task.run_as, inv, now).await;
            }
            settle(t, now);
        }
    }
    if e.cancel_requested {
        for t in &mut e.tasks {
            if t.status == status::IN_PROGRESS {
                cancel_runs(
                    runs,
                    t,
                    now,
                    "The maintenance window execution was cancelled.",
                )
                .await;
            } else if t.status == status::PENDING {
                t.status = status::CANCELLED.into();
                t.status_details = Some(
                    "The maintenance window execution was cancelled before the task started."
                        .into(),
                );
            }
        }
    } else if now_s >= end {
        for t in &mut e.tasks {
            if t.status == status::IN_PROGRESS && t.task.cutoff_behavior == "CANCEL_TASK" {
                cancel_runs(
                    runs,
                    t,
                    now,
                    "The task was cancelled at the end of the maintenance window (CutoffBehavior CANCEL_TASK).",
                )
                .await;
            }
        }
    }
    let running = e.tasks.iter().any(|t| t.status == status::IN_PROGRESS);
    let next_priority = e
        .tasks
        .iter()
        .filter(|t| t.status == status::PENDING)
        .map(|t| t.task.priority)
        .min();
    if let (false, Some(priority)) = (running, next_priority) {
        if now_s >= cutoff_at {
            e.cut_off = true;
            for t in e.tasks.iter_mut().filter(|t| t.status == status::PENDING) {
                t.status = status::CANCELLED.into();
                t.status_details = Some(
                    "The task was not started: the maintenance window's cutoff was reached.".into(),
                );
            }
        } else {
            let mut group = Vec::new();
            for (i, t) in e.tasks.iter_mut().enumerate() {
                if t.status == status::PENDING && t.task.priority == priority {
                    plan(store, runs, &cur, t, now).await?;
                    group.push(i);
                }
            }
            // Recorded as started before anything is sent.
            e.revision = cur.revision + 1;
            if !store.update_execution(&e, cur.revision).await? {
                return Ok(false);
            }
            let recorded = e.clone();
            for i in group {
                let t = &mut e.tasks[i];
                for inv in &mut t.invocations {
                    refresh(runs, &t.task.run_as, inv, now).await;
                }
                settle(t, now);
            }
            return finish(store, e, &recorded, now).await;
        }
    }
    finish(store, e, &cur, now).await
}

/// Settles the execution's status and writes it if it differs from
/// `stored` (the version the store holds).
async fn finish(
    store: &dyn WindowStore,
    mut e: Execution,
    stored: &Execution,
    now: f64,
) -> Result<bool, SsmError> {
    let seen = stored.revision;
    if e.tasks.iter().all(|t| status::is_final(&t.status)) {
        let has = |s: &str| e.tasks.iter().any(|t| t.status == s);
        let ended_by_window = e
            .tasks
            .iter()
            .any(|t| t.status == status::CANCELLED && !e.cancel_requested);
        let (st, details) = if e.cancel_requested {
            (
                status::CANCELLED,
                "The maintenance window execution was cancelled.",
            )
        } else if has(status::FAILED) {
            (
                status::FAILED,
                "One or more tasks in the maintenance window execution failed.",
            )
        } else if e.cut_off || ended_by_window || has(status::TIMED_OUT) {
            (
                status::TIMED_OUT,
                "The maintenance window execution timed out: the cutoff or the end of the window was reached before every task completed.",
            )
        } else {
            (
                status::SUCCESS,
                "All tasks of the maintenance window execution succeeded.",
            )
        };
        e.status = st.into();
        e.status_details = Some(details.into());
        e.end_time = Some(now);
        e.due = false;
    } else if e.cancel_requested {
        e.status = status::CANCELLING.into();
    }
    let done = !e.due;
    e.revision = seen;
    if e == *stored {
        return Ok(false);
    }
    e.revision = seen + 1;
    Ok(store.update_execution(&e, seen).await? && done)
}

/// The nodes a task's targets name: its registered targets' nodes and its
/// own InstanceIds, each once, in order.
async fn resolve(
    store: &dyn WindowStore,
    runs: &dyn ScheduledRuns,
    window_id: &str,
    task: &WindowTask,
) -> Result<Vec<String>, SsmError> {
    let mut nodes = BTreeSet::new();
    for t in &task.targets {
        match t.key.as_str() {
            "WindowTargetIds" => {
                for wt in &t.values {
                    // A target deregistered since resolves to nothing.
                    if let Some(registered) = store.get_target(window_id, wt).await? {
                        nodes.extend(runs.resolve_targets(&registered.targets).await?);
                    }
                }
            }
            "InstanceIds" => nodes.extend(t.values.iter().cloned()),
            _ => {}
        }
    }
    Ok(nodes.into_iter().collect())
}

/// `{{WINDOW_ID}}` and the other pseudo parameters SSM fills in.
fn fill(v: &Value, e: &Execution, t: &ExecutionTask) -> Value {
    let text = v
        .to_string()
        .replace("{{WINDOW_ID}}", &e.window_id)
        .replace("{{WINDOW_EXECUTION_ID}}", &e.id)
        .replace("{{TASK_EXECUTION_ID}}", &t.id)
        .replace("{{WINDOW_TASK_ID}}", &t.task.id);
    serde_json::from_str(&text).unwrap_or_else(|_| v.clone())
}

/// Parameters from the task: its invocation parameters', else the legacy
/// TaskParameters (`{name: {Values: [...]}}`).
fn parameters_of(task: &WindowTask, own: &str) -> Option<Value> {
    if let Some(p) = task
        .invocation
        .as_ref()
        .and_then(|i| i.get(own))
        .and_then(|r| r.get("Parameters"))
    {
        return Some(p.clone());
    }
    let legacy = task.task_parameters.as_ref()?.as_object()?;
    Some(Value::Object(
        legacy
            .iter()
            .map(|(k, v)| (k.clone(), v.get("Values").cloned().unwrap_or(json!([]))))
            .collect(),
    ))
}

/// Makes a pending task's invocations (without sending them): the
/// commands of its resolved nodes, or its automation.
async fn plan(
    store: &dyn WindowStore,
    runs: &dyn ScheduledRuns,
    e: &Execution,
    t: &mut ExecutionTask,
    now: f64,
) -> Result<(), SsmError> {
    t.status = status::IN_PROGRESS.into();
    t.start_time = Some(now);
    let named = super::ops::window_target_ids(&t.task.targets);
    let (owner, window_target) = match named.as_slice() {
        [one] => (
            store
                .get_target(&e.window_id, one)
                .await?
                .and_then(|wt| wt.owner_information),
            Some(one.clone()),
        ),
        _ => (None, None),
    };
    let invocation = |n: usize, parameters: Value| Invocation {
        id: id_from(&format!("{}#invocation#{n}", t.id)),
        execution_id: None,
        client_token: None,
        task_type: t.task.task_type.clone(),
        parameters,
        status: status::PENDING.into(),
        status_details: None,
        start_time: now,
        end_time: None,
        owner_information: owner.clone(),
        window_target_id: window_target.clone(),
    };
    if t.task.task_type == "RUN_COMMAND" {
        let nodes = resolve(store, runs, &e.window_id, &t.task).await?;
        let mut base = Map::new();
        if let Some(rc) = t
            .task
            .invocation
            .as_ref()
            .and_then(|i| i.get("RunCommand"))
            .and_then(Value::as_object)
        {
            base.extend(rc.clone());
        }
        // The legacy LoggingInfo, when the invocation parameters name no
        // output bucket.
        if let Some(log) = &t.task.logging_info
            && !base.contains_key("OutputS3BucketName")
        {
            if let Some(b) = log.get("S3BucketName") {
                base.insert("OutputS3BucketName".into(), b.clone());
            }
            if let Some(p) = log.get("S3KeyPrefix") {
                base.insert("OutputS3KeyPrefix".into(), p.clone());
            }
        }
        base.remove("Parameters");
        if let Some(p) = parameters_of(&t.task, "RunCommand") {
            base.insert("Parameters".into(), fill(&p, e, t));
        }
        if !base.contains_key("ServiceRoleArn")
            && let Some(r) = &t.task.service_role_arn
        {
            base.insert("ServiceRoleArn".into(), json!(r));
        }
        base.insert("DocumentName".into(), json!(t.task.task_arn));
        if let Some(c) = &t.task.max_concurrency {
            base.insert("MaxConcurrency".into(), json!(c));
        }
        if let Some(m) = &t.task.max_errors {
            base.insert("MaxErrors".into(), json!(m));
        }
        let mut invocations = Vec::new();
        for (n, chunk) in nodes.chunks(MAX_INSTANCE_IDS).enumerate() {
            let mut body = base.clone();
            body.insert("InstanceIds".into(), json!(chunk));
            let mut inv = invocation(n, Value::Object(body));
            inv.execution_id = Some(id_from(&format!("{}#command#{n}", t.id)));
            invocations.push(inv);
        }
        if invocations.is_empty() {
            t.status = status::SUCCESS.into();
            t.status_details = Some("No managed node matched the task's targets.".into());
            t.end_time = Some(now);
        }
        t.invocations = invocations;
    } else {
        let mut body = Map::new();
        body.insert("DocumentName".into(), json!(t.task.task_arn));
        if let Some(v) = t
            .task
            .invocation
            .as_ref()
            .and_then(|i| i.get("Automation"))
            .and_then(|a| a.get("DocumentVersion"))
        {
            body.insert("DocumentVersion".into(), v.clone());
        }
        if let Some(p) = parameters_of(&t.task, "Automation") {
            body.insert("Parameters".into(), fill(&p, e, t));
        }
        let mut inv = invocation(0, Value::Object(body));
        inv.client_token = Some(id_from(&format!("{}#automation", t.id)));
        t.invocations = vec![inv];
    }
    Ok(())
}
