//! The dispatch function: control-plane work from the work queue — fan a
//! command out to its nodes' queues, enforce delivery and execution
//! deadlines, carry cancellations. The rules are in
//! `steward_core::run_command::dispatch`.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use steward_aws::Stack;
use steward_aws::commands::RunCommandAdapters;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::run_command::dispatch::{self, Outcome};

/// Handles a batch; a record whose work fails is reported back so SQS
/// redelivers it alone. Every step is idempotent: a redelivered record changes
/// nothing twice.
pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    let adapters = RunCommandAdapters::new(stack);
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        if let Err(e) = process(&adapters, &id, body).await {
            tracing::warn!(message_id = %id, error = %e.code(), "work item failed; it will be retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

async fn process(adapters: &RunCommandAdapters, id: &str, body: &str) -> Result<(), SsmError> {
    match dispatch::process(&adapters.ports(), body, now_epoch()).await {
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
