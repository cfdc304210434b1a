//! The dispatch function's handler against the local stack
//! (`source .local/stack.env`): an SQS batch in, signed messages on the
//! node's queue and partial batch failures out.
//!
//! Each test's work queue is its own (the running control plane polls the
//! shared one), so what reaches a node's queue was sent by `handle` alone.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::json;
use steward_aws::Stack;
use steward_aws::commands::{CommandTable, RunCommandAdapters};
use steward_aws::signer::KmsSigner;
use steward_aws::testing::{admin, receive_all, registered_node, stack, with_own_work_queue};
use steward_core::channel::{Downlink, DownlinkVerifier};
use steward_core::clock::now_epoch;
use steward_core::run_command::ports::CommandStore;
use steward_core::run_command::status::InvocationDetail;
use steward_core::run_command::{model::Command, operations};

async fn node(stack: &Stack) -> (String, String) {
    registered_node(stack, "dispatch").await
}

fn record(id: &str, body: String) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.body = Some(body);
    m
}

/// Sends a command to `node` through the real operation; returns it and the
/// FanOut work item SendCommand enqueued, as SQS hands it to the function.
async fn command(stack: &Stack, work_url: &str, node: &str) -> (Command, SqsMessage) {
    let adapters = RunCommandAdapters::new(stack);
    let sent = operations::send_command(
        &adapters.ports(),
        &admin(),
        &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": [node],
                "Parameters": {"commands": ["uptime"]}}),
        now_epoch(),
    )
    .await
    .unwrap();
    let id = sent["Command"]["CommandId"].as_str().unwrap();
    let c = CommandTable::new(stack)
        .get_command(id)
        .await
        .unwrap()
        .unwrap();
    let items = receive_all(stack, work_url).await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&items[0]).unwrap(),
        json!({"kind": "FanOut", "command_id": id})
    );
    (c, record("m-1", items[0].clone()))
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_fan_out_batch_delivers_a_signed_run_command() {
    let (stack, work_url) = with_own_work_queue(&stack().await).await;
    let (n1, q1) = node(&stack).await;
    let (c, fan) = command(&stack, &work_url, &n1).await;
    let mut event = SqsEvent::default();
    event.records = vec![fan, record("m-2", "not a work item".into())];
    let resp = steward_fn_dispatch::handle(&stack, event).await;
    // The malformed record is dropped (a retry cannot fix it), not failed.
    assert!(resp.batch_item_failures.is_empty());

    // Nothing else could have sent it: exactly one message, from handle().
    let msgs = receive_all(&stack, &q1).await;
    assert_eq!(msgs.len(), 1);
    let der = KmsSigner::new(&stack).public_key_der().await.unwrap();
    let v = DownlinkVerifier::from_der(&der).unwrap();
    let opened = v.open(&msgs[0], &n1, now_epoch()).unwrap();
    let Downlink::Run(run) = opened.message else {
        panic!("not a RunCommand")
    };
    assert_eq!(run.command_id, c.command_id);
    assert_eq!(run.steps[0].run_command, vec!["uptime"]);
    let inv = CommandTable::new(&stack)
        .get_invocation(&c.command_id, &n1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inv.status_details, InvocationDetail::Pending);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_due_delivery_deadline_times_the_invocation_out() {
    let (stack, work_url) = with_own_work_queue(&stack().await).await;
    let (n1, _) = node(&stack).await;
    let (c, fan) = command(&stack, &work_url, &n1).await;
    let mut event = SqsEvent::default();
    event.records = vec![fan];
    steward_fn_dispatch::handle(&stack, event).await;
    // A deadline already past, as the queue would deliver it late.
    let mut event = SqsEvent::default();
    event.records = vec![record(
        "m-2",
        json!({"kind": "DeliveryDeadline", "command_id": c.command_id, "instance_id": n1, "at": now_epoch() - 1.0}).to_string(),
    )];
    let resp = steward_fn_dispatch::handle(&stack, event).await;
    assert!(resp.batch_item_failures.is_empty());
    let store = CommandTable::new(&stack);
    let inv = store
        .get_invocation(&c.command_id, &n1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inv.status_details, InvocationDetail::DeliveryTimedOut);
    let c = store.get_command(&c.command_id).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("TimedOut", "Delivery Timed Out")
    );
}
