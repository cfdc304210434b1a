//! The dispatch function: control-plane work from the work queue — fan a
//! command out to its nodes' queues, enforce delivery deadlines, cancel.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use steward_aws::Stack;

/// Handles a batch; a record whose work fails is reported back so SQS
/// redelivers it alone. Every step is idempotent: a redelivered record changes
/// nothing twice.
pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        if let Err(e) = process(stack, body).await {
            tracing::warn!(message_id = %id, error = %e, "work item failed; it will be retried");
            failures.push(BatchItemFailure { item_identifier: id, ..Default::default() });
        }
    }
    SqsBatchResponse { batch_item_failures: failures, ..Default::default() }
}

async fn process(_stack: &Stack, _body: &str) -> Result<(), steward_core::SsmError> {
    Err(steward_core::SsmError::internal())
}
