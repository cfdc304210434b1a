//! The dispatch function: control-plane work from the work queue — fan a
//! command out to its nodes' queues, enforce delivery and execution
//! deadlines, carry cancellations. The rules are in
//! `steward_core::run_command::dispatch`.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::run_command::RunCommandContext;
use steward_core::run_command::dispatch::{self, Outcome};
use steward_sqs_batch::{Record, handle_batch};

/// Handles a batch; a record whose work fails is reported back so SQS
/// redelivers it alone. Every step is idempotent: a redelivered record changes
/// nothing twice.
pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    let ports = &stack.run_command().ports();
    handle_batch(event, |r: Record| async move {
        // Only the code is logged: the message may quote the work item.
        process(ports, &r.message_id, &r.body)
            .await
            .map_err(|e| e.code())
    })
    .await
}

async fn process(ports: &RunCommandContext<'_>, id: &str, body: &str) -> Result<(), SsmError> {
    match dispatch::process(ports, body, now_epoch()).await {
        Ok(Outcome::Done) => {
            tracing::debug!(message_id = %id, "work item done");
            Ok(())
        }
        Ok(Outcome::Postponed(delay)) => {
            tracing::debug!(message_id = %id, delay, "work item not due; enqueued again");
            Ok(())
        }
        Ok(Outcome::Skipped(why)) => {
            tracing::info!(message_id = %id, reason = why, "work item skipped");
            Ok(())
        }
        // Retrying a malformed item cannot help: drop it, loudly.
        Err(SsmError::SerializationException(why)) => {
            tracing::error!(message_id = %id, reason = %why, "work item dropped: not a work item");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
