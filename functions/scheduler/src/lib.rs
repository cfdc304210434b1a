//! The scheduler function: a scheduled rule puts a tick on the scheduler
//! queue every minute; each tick runs what is due:
//! - parameter policies (expiration, expiration and no-change
//!   notifications; the rules are in `steward_core::parameters::scheduler`);
//! - State Manager associations: runs whose time has come, nodes that newly
//!   match an association, executions waiting for their command;
//! - maintenance windows: windows whose time has come, and executions in
//!   progress (the next priority, the cutoff, the end);
//! - sessions no agent will end: never connected, or past their maximum
//!   duration (`steward_core::sessions::sweep`).
//!
//! A tick carries no work of its own: every tick asks the stores what is due
//! now (one Query per table when nothing is), and each due item is claimed by
//! a conditional write, so a late, lost or repeated tick only moves work to
//! the next one and never starts it twice. The local stack also ticks every
//! few seconds (steward-local's `STEWARD_SCHEDULER_TICK_SECONDS`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::parameters::scheduler::run_due_policies;
use steward_fn_api::scheduled_runs::StackRuns;
use steward_sqs_batch::handle_batch;

/// Parameters handled per store read.
const BATCH: usize = 100;
/// Store reads per tick; what remains waits for the next tick.
const MAX_ROUNDS: usize = 20;

pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    // Every record is a tick; its body says nothing.
    handle_batch(
        event,
        |_| async move { tick(stack).await.map_err(|e| e.code()) },
    )
    .await
}

/// One tick: every area runs what is due; one area's failure does not keep
/// the others from running, and fails the tick (retried by the queue).
pub async fn tick(stack: &Stack) -> Result<(), SsmError> {
    let policies = parameter_policies(stack).await;
    let runs = StackRuns { stack };
    let associations = match stack
        .associations()
        .run_due(stack, &runs, now_epoch())
        .await
    {
        Ok(report) => {
            // Every few seconds locally: only a tick that did something is news.
            if report != Default::default() {
                tracing::info!(?report, "associations run");
            }
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = e.code(), "associations tick failed");
            Err(e)
        }
    };
    let windows = match stack
        .maintenance_windows()
        .run_due(
            &runs,
            now_epoch(),
            stack.settings.window_hour_seconds as i64,
        )
        .await
    {
        Ok(report) => {
            if report != Default::default() {
                tracing::info!(?report, "maintenance windows run");
            }
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = e.code(), "maintenance windows tick failed");
            Err(e)
        }
    };
    let sessions = {
        let s = stack.sessions();
        let sweep = steward_core::sessions::sweep::end_overdue(
            &s.store,
            &s.queues,
            &stack.fleet().nodes,
            stack.settings.connection_lost_seconds,
            now_epoch(),
        );
        match sweep.await {
            Ok(report) => {
                if report != Default::default() {
                    tracing::info!(?report, "overdue sessions ended");
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = e.code(), "sessions sweep failed");
                Err(e)
            }
        }
    };
    policies.and(associations).and(windows).and(sessions)
}

async fn parameter_policies(stack: &Stack) -> Result<(), SsmError> {
    let p = stack.parameters();
    for round in 0..MAX_ROUNDS {
        let run = run_due_policies(&p.store, now_epoch(), BATCH).await?;
        if run.expired + run.notified + run.skipped == 0 {
            break;
        }
        tracing::info!(
            round,
            expired = run.expired,
            notified = run.notified,
            skipped = run.skipped,
            "parameter policies run"
        );
        // A short read means nothing else is due; a round without progress
        // means what is left waits for the next tick.
        let examined = run.expired + run.notified + run.skipped;
        if examined < BATCH || run.expired + run.notified == 0 {
            break;
        }
    }
    Ok(())
}
