//! The ingest function: signed reports from agents — invocation updates,
//! heartbeats, refused messages — verified, then applied with conditional writes.
//!
//! A record that cannot be verified (malformed, unknown node, bad signature)
//! is logged and dropped: retrying a forged message would only loop it.

pub mod invocations;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use steward_aws::Stack;
use steward_aws::node_events::FleetEvents;
use steward_aws::nodes::NodeTable;
use steward_core::SsmError;
use steward_core::channel::{Uplink, open_uplink, uplink_sender};
use steward_core::clock::now_epoch;
use steward_core::fleet::NodeStore;
use steward_sqs_batch::{Record, handle_batch};

/// Handles a batch; a record whose work fails is reported back so SQS
/// redelivers it alone. Every step is idempotent: a redelivered record changes
/// nothing twice.
pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    handle_batch(event, |r: Record| async move {
        process(stack, &r.message_id, &r.body).await
    })
    .await
}

/// What happened to one record that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Dropped without effect, for the reason given (logged).
    Dropped(String),
}

async fn process(stack: &Stack, message_id: &str, body: &str) -> Result<(), SsmError> {
    if let Outcome::Dropped(reason) = process_record(stack, body).await? {
        tracing::warn!(message_id, reason, "uplink message dropped");
    }
    Ok(())
}

/// Verifies and applies one uplink message. `Err` only for faults worth a
/// retry (the store or the bus failed), never for the message's content.
pub async fn process_record(stack: &Stack, body: &str) -> Result<Outcome, SsmError> {
    let env = match uplink_sender(body) {
        Ok(env) => env,
        Err(e) => return Ok(Outcome::Dropped(format!("not an uplink envelope: {e}"))),
    };
    let node_id = env.node_id.clone();
    let nodes = NodeTable::new(stack);
    let Some(node) = nodes.get(&node_id).await? else {
        tracing::warn!(instance_id = %node_id, "uplink from an unknown node");
        return Ok(Outcome::Dropped(format!("unknown node {node_id}")));
    };
    let payload = match open_uplink(&env, &node.public_key) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(instance_id = %node_id, reason = %e, "uplink does not verify");
            return Ok(Outcome::Dropped(format!("from {node_id}: {e}")));
        }
    };
    match payload.message {
        Uplink::Heartbeat(hb) => {
            // The node's clock may run ahead; a heartbeat is never in the future.
            let at = payload.sent_at.min(now_epoch());
            if !nodes.record_heartbeat(&node_id, &hb, at).await? {
                return Ok(Outcome::Dropped(format!("node {node_id} was deregistered")));
            }
            Ok(Outcome::Applied)
        }
        Uplink::MessageRejected(r) => {
            tracing::warn!(
                instance_id = %node_id,
                reason = %r.reason,
                queue_message_id = %r.queue_message_id,
                "agent refused a message from its queue"
            );
            FleetEvents::new(stack)
                .message_rejected(&node_id, &r.reason, &r.queue_message_id)
                .await?;
            Ok(Outcome::Applied)
        }
        Uplink::InvocationUpdate(update) => {
            invocations::apply(stack, &node_id, update).await?;
            Ok(Outcome::Applied)
        }
    }
}
