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
use steward_sqs_batch::{Record, handle_together};

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
        sessions: &stack.sessions().store,
        session_queues: &stack.sessions().queues,
    };
    handle_together(event, |records: Vec<Record>| async move {
        let bodies: Vec<&str> = records.iter().map(|r| r.body.as_str()).collect();
        let outcomes = uplink::receive_batch(ports, &bodies, now_epoch()).await;
        records
            .iter()
            .zip(outcomes)
            .map(|(r, o)| match o {
                Ok(Outcome::Dropped(reason)) => {
                    tracing::warn!(message_id = %r.message_id, reason, "uplink message dropped");
                    Ok(())
                }
                Ok(Outcome::Applied) => Ok(()),
                Err(e) => Err::<(), SsmError>(e),
            })
            .collect()
    })
    .await
}
