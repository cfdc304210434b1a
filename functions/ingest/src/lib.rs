//! The ingest function: signed reports from agents — invocation updates,
//! heartbeats, refused messages — verified, then applied with conditional
//! writes. The rules are in `steward_core::fleet::uplink`; this is the seam.
//!
//! A record that cannot be verified (malformed, unknown node, bad signature)
//! is logged and dropped: retrying a forged message would only loop it.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::fleet::uplink::{self, Outcome, UplinkPorts};
use steward_sqs_batch::{Record, handle_batch};

/// Handles a batch; a record whose work fails is reported back so SQS
/// redelivers it alone. Every step is idempotent: a redelivered record changes
/// nothing twice.
pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    let ports = &UplinkPorts {
        fleet: stack.fleet().ports(),
        run_command: stack.run_command().ports(),
        patch_states: &stack.patch_states(),
        compliance: stack.compliance().context(),
        inventory: &stack.inventory().store,
    };
    handle_batch(event, |r: Record| async move {
        process(ports, &r.message_id, &r.body).await
    })
    .await
}

async fn process(ports: &UplinkPorts<'_>, message_id: &str, body: &str) -> Result<(), SsmError> {
    if let Outcome::Dropped(reason) = uplink::receive(ports, body, now_epoch()).await? {
        tracing::warn!(message_id, reason, "uplink message dropped");
    }
    Ok(())
}
