//! Run Command on the SSM wire: signed JSON 1.1 requests through the api
//! function's router, against the local stack (`source .local/stack.env`).
//!
//! The work queue is the test's own (the running control plane's dispatcher
//! polls the shared one): the test runs each work item itself, so every state
//! it reads is the one the operations left, whatever else is running.

use bytes::Bytes;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::testing::{
    admin_key, receive_all, registered_node, signed, stack, with_own_work_queue,
};
use steward_core::clock::now_epoch;
use steward_core::run_command::dispatch;
use steward_core::run_command::model::WorkItem;

async fn node(stack: &Stack) -> String {
    registered_node(stack, "api").await.0
}

async fn call(stack: &Stack, req: http::Request<Bytes>) -> (u16, Value) {
    let resp = steward_fn_api::handle(stack, req).await;
    let status = resp.status().as_u16();
    (status, serde_json::from_slice(resp.body()).unwrap())
}

async fn ssm(stack: &Stack, op: &str, body: Value) -> (u16, Value) {
    let (akid, secret) = admin_key();
    call(stack, signed(op, &body, &akid, &secret)).await
}

/// The work items waiting on the test's own work queue.
async fn work_items(stack: &Stack, url: &str) -> Vec<WorkItem> {
    receive_all(stack, url)
        .await
        .iter()
        .map(|body| serde_json::from_str(body).unwrap())
        .collect()
}

/// Sends `body` on the wire and runs its FanOut as the dispatcher would;
/// returns SendCommand's `Command`.
async fn sent_and_fanned_out(stack: &Stack, work_url: &str, body: Value) -> Value {
    let (status, sent) = ssm(stack, "SendCommand", body).await;
    assert_eq!(status, 200, "{sent}");
    let fan = WorkItem::FanOut {
        command_id: sent["Command"]["CommandId"].as_str().unwrap().to_string(),
    };
    assert_eq!(work_items(stack, work_url).await, vec![fan.clone()]);
    dispatch::run(&stack.run_command().ports(), &fan, now_epoch())
        .await
        .unwrap();
    sent["Command"].clone()
}

fn command_ids(listed: &Value) -> Vec<&str> {
    listed["Commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CommandId"].as_str().unwrap())
        .collect()
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn send_list_get_cancel_on_the_wire() {
    let (stack, work_url) = with_own_work_queue(&stack().await).await;
    let n1 = node(&stack).await;
    let n2 = node(&stack).await;

    let (status, err) = ssm(
        &stack,
        "SendCommand",
        json!({"DocumentName": "AWS-RunShellScript",
        "InstanceIds": ["mi-0123456789abcdef0"], "Parameters": {"commands": ["id"]}}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidInstanceId"))
    );
    let (status, err) = ssm(
        &stack,
        "SendCommand",
        json!({"DocumentName": "AWS-RunShellScript",
        "InstanceIds": [n1], "Parameters": {"commands": ["id"]}, "TimeoutSeconds": 5}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    // SSM's input constraint, word for word.
    assert_eq!(
        err["message"],
        "1 validation error detected: Value '5' at 'timeoutSeconds' failed to satisfy constraint: Member must have value greater than or equal to 30"
    );

    // Neither refusal left work behind.
    assert!(work_items(&stack, &work_url).await.is_empty());

    let c = sent_and_fanned_out(
        &stack,
        &work_url,
        json!({"DocumentName": "AWS-RunShellScript",
        "InstanceIds": [n1], "Parameters": {"commands": ["id"]}, "Comment": "wire test"}),
    )
    .await;
    let cid = c["CommandId"].as_str().unwrap().to_string();
    assert_eq!(c["Status"], "Pending");
    assert_eq!(c["TargetCount"], 1);
    assert_eq!(c["Comment"], "wire test");
    assert_eq!(c["TimeoutSeconds"], 3600);
    assert_eq!(c["MaxErrors"], "0");
    assert!(c["RequestedDateTime"].is_number());
    let other = sent_and_fanned_out(
        &stack,
        &work_url,
        json!({"DocumentName": "AWS-RunShellScript",
        "InstanceIds": [n2], "Parameters": {"commands": ["id"]}}),
    )
    .await;
    let other = other["CommandId"].as_str().unwrap().to_string();

    let (status, listed) = ssm(&stack, "ListCommands", json!({"CommandId": cid})).await;
    assert_eq!(status, 200);
    assert_eq!(command_ids(&listed), vec![cid.as_str()]);
    assert_eq!(listed["Commands"][0]["Status"], "Pending");
    // By node: each node's own command, and only it (the nodes are new).
    let (status, by_node) = ssm(&stack, "ListCommands", json!({"InstanceId": n1})).await;
    assert_eq!(status, 200, "{by_node}");
    assert_eq!(command_ids(&by_node), vec![cid.as_str()]);
    let (_, by_node) = ssm(&stack, "ListCommands", json!({"InstanceId": n2})).await;
    assert_eq!(command_ids(&by_node), vec![other.as_str()]);
    let (status, err) = ssm(
        &stack,
        "ListCommands",
        json!({"Filters": [{"key": "Colour", "value": "x"}]}),
    )
    .await;
    // A key outside SSM's enum is refused by SSM's input constraints.
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set"),
        "{err}"
    );

    let (status, err) = ssm(
        &stack,
        "GetCommandInvocation",
        json!({"CommandId": cid, "InstanceId": "mi-0123456789abcdef0"}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvocationDoesNotExist"))
    );

    let (status, err) = ssm(
        &stack,
        "CancelCommand",
        json!({"CommandId": "00000000-0000-4000-8000-000000000000"}),
    )
    .await;
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidCommandId"))
    );
    let (status, ok) = ssm(&stack, "CancelCommand", json!({"CommandId": cid})).await;
    assert_eq!((status, ok), (200, json!({})));
    // Nothing has carried the cancellation out yet: it waits, queued.
    let (_, listed) = ssm(&stack, "ListCommands", json!({"CommandId": cid})).await;
    assert_eq!(listed["Commands"][0]["Status"], "Cancelling");
    assert_eq!(
        work_items(&stack, &work_url).await,
        vec![WorkItem::Cancel {
            command_id: cid.clone(),
            instance_ids: vec![],
        }]
    );
    // The other command is untouched.
    let (_, listed) = ssm(&stack, "ListCommands", json!({"CommandId": other})).await;
    assert_eq!(listed["Commands"][0]["Status"], "Pending");
}
