//! The dispatch function's handler against the local stack
//! (`source .local/stack.env`): an SQS batch in, signed messages on the
//! node's queue and partial batch failures out.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::json;
use steward_aws::Stack;
use steward_aws::commands::{CommandTable, RunCommandAdapters};
use steward_aws::signer::KmsSigner;
use steward_aws::testing::{admin, registered_node, stack};
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

async fn command(stack: &Stack, node: &str) -> Command {
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
    CommandTable::new(stack)
        .get_command(id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_fan_out_batch_delivers_a_signed_run_command() {
    let stack = stack().await;
    let (n1, q1) = node(&stack).await;
    let c = command(&stack, &n1).await;
    let fan = json!({"kind": "FanOut", "command_id": c.command_id}).to_string();
    let mut event = SqsEvent::default();
    event.records = vec![record("m-1", fan), record("m-2", "not a work item".into())];
    let resp = steward_fn_dispatch::handle(&stack, event).await;
    // The malformed record is dropped (a retry cannot fix it), not failed.
    assert!(resp.batch_item_failures.is_empty());

    let msgs = stack
        .clients
        .sqs
        .receive_message()
        .queue_url(&q1)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    // The running control plane may fan the same command out too (SendCommand
    // enqueued it): a second copy is allowed, but only under the same message
    // id, which the agent drops as a replay.
    assert!(!msgs.is_empty());
    let der = KmsSigner::new(&stack).public_key_der().await.unwrap();
    let v = DownlinkVerifier::from_der(&der).unwrap();
    let opened: Vec<_> = msgs
        .iter()
        .map(|m| {
            v.open(m.body.as_deref().unwrap(), &n1, now_epoch())
                .unwrap()
        })
        .collect();
    assert!(opened.iter().all(|p| p.msg_id == opened[0].msg_id));
    let Downlink::Run(run) = opened[0].message.clone() else {
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
    let stack = stack().await;
    let (n1, _) = node(&stack).await;
    let c = command(&stack, &n1).await;
    let mut event = SqsEvent::default();
    event.records = vec![record(
        "m-1",
        json!({"kind": "FanOut", "command_id": c.command_id}).to_string(),
    )];
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
