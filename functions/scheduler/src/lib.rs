//! The scheduler function: a scheduled rule puts a tick on the scheduler
//! queue every minute; each tick runs the parameter policies that are due
//! (expiration, expiration and no-change notifications). The rules are in
//! `steward_core::parameters::scheduler`.
//!
//! A tick carries no work of its own: every tick asks the store what is due
//! now, so a late, lost or repeated tick only moves work to the next one.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use steward_aws::Stack;
use steward_core::clock::now_epoch;
use steward_core::parameters::scheduler::run_due_policies;
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

async fn tick(stack: &Stack) -> Result<(), steward_core::SsmError> {
    let p = stack.parameters();
    for round in 0..MAX_ROUNDS {
        let run = run_due_policies(&p.store, &p.events, &p.scope, now_epoch(), BATCH).await?;
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
