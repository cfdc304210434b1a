//! The scheduler's part: each tick starts the runs that are due, follows
//! the runs in progress to their end, and gives nodes that newly match an
//! association their run.
//!
//! Everything due is in the store's due index: an association's head (a
//! run asked for, or its next scheduled occurrence), an execution not yet
//! final, a "node changed" marker. Each is handled by conditional writes,
//! so a tick that runs twice or late starts each occurrence once:
//! - a due head: the execution is written first, under an id that follows
//!   from the head's revision and due time, then the head is claimed (its
//!   next occurrence written, conditional on its revision);
//! - a Pending execution: its run is started under the execution's id
//!   (a repeated start sends nothing twice), then it becomes InProgress;
//! - an InProgress execution: each node's final outcome is recorded once
//!   (its result, its status, its Association compliance), and when the
//!   run is final the execution and the association's overview are.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};

use super::context::{ATTEMPTS, AssociationContext, load_document};
use super::model::{
    Association, Execution, ExecutionTarget, InstanceStatus, Marker, Overview, targets_match,
};
use super::ports::{AssociationStore, Due};
use super::request::{next_slot, schedule_of};
use crate::compliance::model::MANAGED_INSTANCE;
use crate::compliance::{
    ComplianceWrite, ExecutionSummary, ItemEntry, Severity, Status, UploadType, put_items,
};
use crate::error::SsmError;
use crate::ids::id_from;
use crate::schedule::runs::{NodeOutcome, RunOutcome, ScheduledRuns};
use crate::targets::Target;

/// The due index's one shard.
pub const DUE_SHARD: &str = "due";
/// Due items handled at once in one tick.
const CONCURRENCY: usize = 16;
/// How long a marker waits for its node to register, and how often it looks.
pub const MARKER_LIFETIME: f64 = 15.0 * 60.0;
pub const MARKER_RECHECK: f64 = 30.0;
/// The compliance type of associations.
pub const ASSOCIATION: &str = "Association";

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DueReport {
    /// Executions written (scheduled, asked for, or for a new node).
    pub started: usize,
    /// Runs started through Run Command or Automation.
    pub sent: usize,
    /// Executions that became final.
    pub finished: usize,
    /// Markers handled (dropped or done).
    pub markers: usize,
    /// Items that failed this tick and stay due.
    pub errors: usize,
}

/// Handles everything due at `now`. One item's failure is logged and
/// counted; the item stays due for the next tick.
pub async fn run_due(
    ctx: &AssociationContext<'_>,
    runs: &dyn ScheduledRuns,
    now: f64,
) -> Result<DueReport, SsmError> {
    let due = ctx.store.due(now).await?;
    // Items are independent (each claimed by its own conditional write):
    // a hundred associations due in the same minute start together rather
    // than one after another.
    let reports: Vec<DueReport> = stream::iter(due)
        .map(|due| async move {
            let mut report = DueReport::default();
            let outcome = match &due {
                Due::Association(id) => due_association(ctx, runs, id, now, &mut report).await,
                Due::Execution {
                    association_id,
                    execution_id,
                } => advance(ctx, runs, association_id, execution_id, now, &mut report).await,
                Due::Marker(node) => due_marker(ctx, runs, node, now, &mut report).await,
            };
            if let Err(e) = outcome {
                tracing::warn!(?due, error = %e, "association work left for the next tick");
                report.errors += 1;
            }
            report
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    Ok(reports
        .into_iter()
        .fold(DueReport::default(), |mut sum, r| {
            sum.started += r.started;
            sum.sent += r.sent;
            sum.finished += r.finished;
            sum.markers += r.markers;
            sum.errors += r.errors;
            sum
        }))
}

/// Reports that a node registered or its tags changed: the next tick
/// looks for associations that newly apply to it.
pub async fn node_changed(
    store: &dyn AssociationStore,
    instance_id: &str,
    now: f64,
) -> Result<(), SsmError> {
    store
        .put_marker(&Marker {
            instance_id: instance_id.to_string(),
            written: now,
            next_due: now,
        })
        .await
}

async fn due_association(
    ctx: &AssociationContext<'_>,
    runs: &dyn ScheduledRuns,
    id: &str,
    now: f64,
    report: &mut DueReport,
) -> Result<(), SsmError> {
    let Some(head) = ctx.store.get(id).await? else {
        return Ok(());
    };
    let Some(due) = head.next_due.filter(|d| *d <= now) else {
        return Ok(());
    };
    let slot_due = head.slot.is_some_and(|s| s.due as f64 <= now);
    let mut next = head.clone();
    next.run_now = false;
    if slot_due {
        // Occurrences missed while no tick ran collapse into this one run.
        let anchor = head.date.floor() as i64;
        let schedule = schedule_of(
            head.schedule_expression.as_deref(),
            head.schedule_offset,
            head.apply_only_at_cron_interval,
        );
        let mut slot = head.slot;
        while let Some(s) = slot.filter(|s| s.due as f64 <= now) {
            slot = schedule
                .as_ref()
                .and_then(|sch| next_slot(sch, s.scheduled, anchor));
        }
        next.slot = slot;
    }
    next.set_next_due(now);
    next.revision += 1;
    let start = head.run_now || slot_due;
    let execution_id = id_from(&format!("{id}/{}/{due}", head.revision));
    if start {
        let e = new_execution(ctx, &head, &execution_id, None, now).await?;
        if ctx.store.put_execution(&e).await? {
            report.started += 1;
        }
    }
    if !ctx.store.update(&next, head.revision, false).await? {
        // Another tick claimed it, or an update came in: the head is read
        // again next tick; an execution already written runs either way.
        return Ok(());
    }
    if start {
        advance(ctx, runs, id, &execution_id, now, report).await?;
    }
    Ok(())
}

fn run_request(a: &Association, node: Option<&str>) -> Value {
    let targets = match node {
        Some(n) => vec![Target {
            key: "InstanceIds".into(),
            values: vec![n.to_string()],
        }],
        None => a.run_targets(),
    };
    let mut body = json!({ "DocumentName": a.name, "Parameters": a.parameters });
    if let Some(v) = &a.document_version {
        body["DocumentVersion"] = json!(v);
    }
    if let Some(c) = &a.max_concurrency {
        body["MaxConcurrency"] = json!(c);
    }
    if let Some(e) = &a.max_errors {
        body["MaxErrors"] = json!(e);
    }
    if !a.automation {
        // Without rate control an association applies to every target at
        // once and one node's failure stops no other (Run Command's own
        // defaults, 50 and 0, would hold back the rest after one failure).
        for (k, all) in [("MaxConcurrency", "100%"), ("MaxErrors", "100%")] {
            if body.get(k).is_none() {
                body[k] = json!(all);
            }
        }
    }
    if a.automation {
        if let Some(p) = &a.automation_target_parameter_name {
            body["TargetParameterName"] = json!(p);
            body["Targets"] = json!(targets);
        }
        return body;
    }
    body["Targets"] = json!(targets);
    body["Comment"] = json!(format!("State Manager association {}", a.association_id));
    if let Some(s3) = a.output_location.as_ref().and_then(|o| o.get("S3Location")) {
        for k in ["OutputS3Region", "OutputS3BucketName", "OutputS3KeyPrefix"] {
            if let Some(v) = s3.get(k) {
                body[k] = v.clone();
            }
        }
    }
    body
}

/// A Pending execution of `a` (for one node, when given). When the
/// document can no longer be run it is Failed at once with the reason.
async fn new_execution(
    ctx: &AssociationContext<'_>,
    a: &Association,
    execution_id: &str,
    node: Option<&str>,
    now: f64,
) -> Result<Execution, SsmError> {
    let loaded = load_document(
        ctx.documents,
        &a.name,
        a.document_version.as_deref(),
        &a.parameters,
        a.automation_target_parameter_name.as_deref(),
    )
    .await;
    let (status, detailed, version, next_due) = match &loaded {
        Ok(d) => (
            "Pending",
            "Pending".to_string(),
            d.version.to_string(),
            Some(now),
        ),
        Err(SsmError::InternalServerError(m)) => {
            return Err(SsmError::InternalServerError(m.clone()));
        }
        Err(e) => (
            "Failed",
            e.code().to_string(),
            a.document_version.clone().unwrap_or_default(),
            // Failed at once: the overview is set by the next step.
            Some(now),
        ),
    };
    Ok(Execution {
        association_id: a.association_id.clone(),
        association_version: a.association_version,
        execution_id: execution_id.to_string(),
        status: status.into(),
        detailed_status: detailed,
        created: now,
        last_execution_date: None,
        resource_counts: BTreeMap::new(),
        request: run_request(a, node),
        automation: a.automation,
        run_as: a.run_as.clone(),
        automation_execution_id: None,
        node: node.map(String::from),
        recorded: Vec::new(),
        document_name: a.name.clone(),
        document_version: version,
        association_name: a.association_name.clone(),
        title: a.title(),
        severity: a
            .compliance_severity
            .clone()
            .unwrap_or_else(|| "UNSPECIFIED".into()),
        sync_auto: a.sync_auto(),
        output_url: output_url(a),
        next_due,
        revision: 1,
    })
}

/// Where a node's output goes, without the command and node parts.
fn output_url(a: &Association) -> Option<String> {
    let s3 = a.output_location.as_ref()?.get("S3Location")?;
    let bucket = s3.get("OutputS3BucketName")?.as_str()?;
    let prefix = s3
        .get("OutputS3KeyPrefix")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_end_matches('/');
    let host = match s3.get("OutputS3Region").and_then(Value::as_str) {
        Some(r) => format!("s3.{r}.amazonaws.com"),
        None => "s3.amazonaws.com".into(),
    };
    Some(if prefix.is_empty() {
        format!("https://{host}/{bucket}")
    } else {
        format!("https://{host}/{bucket}/{prefix}")
    })
}

/// A refusal that another try may not get: the service was busy or broke.
fn is_transient(e: &SsmError) -> bool {
    matches!(
        e,
        SsmError::InternalServerError(_) | SsmError::ThrottlingException(_)
    )
}

/// Moves an execution on: starts its run, or reads its outcome.
async fn advance(
    ctx: &AssociationContext<'_>,
    runs: &dyn ScheduledRuns,
    association_id: &str,
    execution_id: &str,
    now: f64,
    report: &mut DueReport,
) -> Result<(), SsmError> {
    let Some(e) = ctx.store.execution(association_id, execution_id).await? else {
        return Ok(());
    };
    if e.next_due.is_none_or(|d| d > now) {
        return Ok(());
    }
    let mut next = e.clone();
    next.revision += 1;
    match e.status.as_str() {
        "Pending" => {
            if ctx.store.get(association_id).await?.is_none() {
                // Deleted before its run started: it runs no more.
                next.status = "Failed".into();
                next.detailed_status = "AssociationDeleted".into();
                next.next_due = None;
                return finish(ctx, next, e.revision, now, report).await;
            }
            let started = if e.automation {
                runs.start_automation(&e.run_as, &e.execution_id, &e.request)
                    .await
                    .map(Some)
            } else {
                runs.send_command(&e.run_as, &e.execution_id, &e.request)
                    .await
                    .map(|()| None)
            };
            match started {
                Ok(automation_id) => {
                    report.sent += 1;
                    next.status = "InProgress".into();
                    next.detailed_status = "InProgress".into();
                    next.automation_execution_id = automation_id;
                    next.next_due = Some(now);
                    ctx.store.update_execution(&next, e.revision).await?;
                    tracing::info!(%association_id, %execution_id, "association run started");
                    Ok(())
                }
                Err(err) if is_transient(&err) => Err(err),
                Err(err) => {
                    tracing::info!(%association_id, %execution_id, code = err.code(), "association run refused");
                    next.status = "Failed".into();
                    next.detailed_status = err.code().to_string();
                    next.next_due = None;
                    finish(ctx, next, e.revision, now, report).await
                }
            }
        }
        "InProgress" => {
            let outcome = match &e.automation_execution_id {
                Some(a) => runs.automation(a).await?,
                None => runs.command(&e.execution_id).await?,
            };
            let Some(outcome) = outcome else {
                // Not there yet: starting again sends nothing twice.
                next.status = "Pending".into();
                ctx.store.update_execution(&next, e.revision).await?;
                return Ok(());
            };
            record_nodes(ctx, &mut next, &outcome, now).await?;
            if !outcome.is_final {
                next.next_due = Some(now);
                if next.recorded != e.recorded || next.resource_counts != e.resource_counts {
                    ctx.store.update_execution(&next, e.revision).await?;
                }
                return Ok(());
            }
            // A command that reached no node is as its status says.
            let succeeded = if e.automation || outcome.nodes.is_empty() {
                outcome.status == "Success"
            } else {
                outcome.nodes.iter().all(|n| n.status == "Success")
            };
            next.status = if succeeded { "Success" } else { "Failed" }.into();
            next.detailed_status = outcome.status.clone();
            next.next_due = None;
            finish(ctx, next, e.revision, now, report).await
        }
        // Failed at creation (its document could not be loaded).
        "Failed" => {
            next.next_due = None;
            finish(ctx, next, e.revision, now, report).await
        }
        _ => Ok(()),
    }
}

/// Records each node that became final and was not recorded yet.
async fn record_nodes(
    ctx: &AssociationContext<'_>,
    e: &mut Execution,
    outcome: &RunOutcome,
    now: f64,
) -> Result<(), SsmError> {
    let mut counts = BTreeMap::new();
    let mut nodes: Vec<NodeOutcome> = outcome.nodes.clone();
    if e.automation && outcome.is_final && nodes.is_empty() {
        // An automation run for one node stands for that node.
        if let Some(n) = &e.node {
            nodes.push(NodeOutcome {
                instance_id: n.clone(),
                status: outcome.status.clone(),
                details: outcome.status.clone(),
                is_final: true,
            });
        }
    }
    for n in nodes.iter().filter(|n| n.is_final) {
        *counts.entry(n.status.clone()).or_insert(0u32) += 1;
        if e.recorded.contains(&n.instance_id) {
            continue;
        }
        record_node(ctx, e, n, now).await?;
        e.recorded.push(n.instance_id.clone());
    }
    e.resource_counts = counts;
    Ok(())
}

fn severity(s: &str) -> Severity {
    match s {
        "CRITICAL" => Severity::Critical,
        "HIGH" => Severity::High,
        "MEDIUM" => Severity::Medium,
        "LOW" => Severity::Low,
        _ => Severity::Unspecified,
    }
}

async fn record_node(
    ctx: &AssociationContext<'_>,
    e: &Execution,
    n: &NodeOutcome,
    now: f64,
) -> Result<(), SsmError> {
    let source = e
        .automation_execution_id
        .clone()
        .unwrap_or_else(|| e.execution_id.clone());
    let detailed = if n.details.is_empty() {
        n.status.clone()
    } else {
        n.details.clone()
    };
    ctx.store
        .put_target(&ExecutionTarget {
            association_id: e.association_id.clone(),
            association_version: e.association_version,
            execution_id: e.execution_id.clone(),
            resource_id: n.instance_id.clone(),
            resource_type: MANAGED_INSTANCE.into(),
            status: n.status.clone(),
            detailed_status: detailed.clone(),
            last_execution_date: now,
            output_source_id: source.clone(),
            output_source_type: if e.automation {
                "Automation"
            } else {
                "RunCommand"
            }
            .into(),
        })
        .await?;
    let success = n.status == "Success";
    ctx.store
        .put_instance_status(&InstanceStatus {
            association_id: e.association_id.clone(),
            instance_id: n.instance_id.clone(),
            name: e.document_name.clone(),
            document_version: e.document_version.clone(),
            association_version: e.association_version,
            execution_date: now,
            status: n.status.clone(),
            detailed_status: detailed,
            execution_summary: format!(
                "{} {} on the node: {}.",
                if e.automation {
                    "Automation"
                } else {
                    "Command"
                },
                source,
                n.status
            ),
            error_code: (!success).then(|| n.status.clone()),
            output_url: e
                .output_url
                .as_ref()
                .map(|u| format!("{u}/{source}/{}", n.instance_id)),
            association_name: e.association_name.clone(),
        })
        .await?;
    if e.sync_auto {
        let write = ComplianceWrite {
            resource_id: n.instance_id.clone(),
            resource_type: MANAGED_INSTANCE.into(),
            compliance_type: ASSOCIATION.into(),
            execution: ExecutionSummary {
                execution_time: now,
                execution_id: Some(e.execution_id.clone()),
                execution_type: Some("Command".into()),
            },
            items: vec![ItemEntry {
                id: e.association_id.clone(),
                title: e.title.clone(),
                severity: severity(&e.severity),
                status: if success {
                    Status::Compliant
                } else {
                    Status::NonCompliant
                },
                details: BTreeMap::from([
                    ("DocumentName".to_string(), e.document_name.clone()),
                    ("DocumentVersion".to_string(), e.document_version.clone()),
                ]),
            }],
            item_content_hash: None,
            upload_type: UploadType::Partial,
        };
        match put_items(&ctx.compliance, write).await {
            Ok(_) => {}
            Err(err) if is_transient(&err) => return Err(err),
            // A node deregistered since has no compliance to keep.
            Err(err) => {
                tracing::warn!(instance_id = %n.instance_id, error = %err, "association compliance not written");
            }
        }
    }
    Ok(())
}

/// Writes a final execution, then the association's overview.
async fn finish(
    ctx: &AssociationContext<'_>,
    mut e: Execution,
    expected_revision: u64,
    now: f64,
    report: &mut DueReport,
) -> Result<(), SsmError> {
    e.last_execution_date = Some(now);
    if !ctx.store.update_execution(&e, expected_revision).await? {
        return Ok(());
    }
    report.finished += 1;
    let success = e.status == "Success";
    for _ in 0..ATTEMPTS {
        let Some(head) = ctx.store.get(&e.association_id).await? else {
            return Ok(());
        };
        let mut next = head.clone();
        next.revision += 1;
        next.last_execution_date = Some(now);
        if success {
            next.last_successful_execution_date = Some(now);
        }
        next.overview = match &e.node {
            None => Overview {
                status: e.status.clone(),
                detailed_status: e.detailed_status.clone(),
                counts: e.resource_counts.clone(),
            },
            // One new node's run adds to the last full run's counts.
            Some(_) => {
                let mut counts = head.overview.counts.clone();
                for (k, v) in &e.resource_counts {
                    *counts.entry(k.clone()).or_insert(0) += v;
                }
                let all_ok = counts.keys().all(|k| k == "Success") && !counts.is_empty();
                let status = if all_ok { "Success" } else { "Failed" };
                Overview {
                    status: status.into(),
                    detailed_status: if success {
                        status.to_string()
                    } else {
                        e.detailed_status.clone()
                    },
                    counts,
                }
            }
        };
        if ctx.store.update(&next, head.revision, false).await? {
            tracing::info!(association_id = %e.association_id, execution_id = %e.execution_id, status = %e.status, "association execution finished");
            return Ok(());
        }
    }
    Err(super::context::too_many_updates(&e.association_id))
}

async fn due_marker(
    ctx: &AssociationContext<'_>,
    runs: &dyn ScheduledRuns,
    node: &str,
    now: f64,
    report: &mut DueReport,
) -> Result<(), SsmError> {
    let Some(m) = ctx.store.marker(node).await? else {
        return Ok(());
    };
    if m.next_due > now {
        return Ok(());
    }
    let Some(tags) = runs.node_tags(node).await? else {
        if now - m.written >= MARKER_LIFETIME {
            if ctx.store.delete_marker(node, m.written).await? {
                report.markers += 1;
            }
        } else {
            ctx.store
                .postpone_marker(&Marker {
                    next_due: now + MARKER_RECHECK,
                    ..m
                })
                .await?;
        }
        return Ok(());
    };
    let tags: BTreeMap<String, String> = tags.into_iter().collect();
    let ran: BTreeSet<String> = ctx
        .store
        .instance_statuses(node)
        .await?
        .into_iter()
        .map(|s| s.association_id)
        .collect();
    for a in ctx.store.list().await? {
        // Only at its cron times (ApplyOnlyAtCronInterval): the node gets
        // it at the next one, as every other target does.
        if ran.contains(&a.association_id) || a.run_now || a.apply_only_at_cron_interval {
            continue;
        }
        // A runbook without a target parameter does not run per node.
        if a.automation && a.automation_target_parameter_name.is_none() {
            continue;
        }
        let matches = match targets_match(&a.run_targets(), node, &tags) {
            Some(m) => m,
            None => runs
                .resolve_targets(&a.run_targets())
                .await?
                .iter()
                .any(|n| n == node),
        };
        if !matches {
            continue;
        }
        // A run not final that resolves its targets after the change (or
        // is the node's own) will record it.
        let covered = ctx
            .store
            .executions(&a.association_id)
            .await?
            .iter()
            .any(|e| {
                !e.is_final()
                    && match e.node.as_deref() {
                        Some(n) => n == node,
                        None => e.status == "Pending" || e.created >= m.written,
                    }
            });
        if covered {
            continue;
        }
        let execution_id = id_from(&format!("{}/node/{node}/{}", a.association_id, m.written));
        let e = new_execution(ctx, &a, &execution_id, Some(node), now).await?;
        if ctx.store.put_execution(&e).await? {
            report.started += 1;
        }
        advance(ctx, runs, &a.association_id, &execution_id, now, report).await?;
    }
    if ctx.store.delete_marker(node, m.written).await? {
        report.markers += 1;
    }
    Ok(())
}
