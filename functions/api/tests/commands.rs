//! Run Command on the SSM wire: signed JSON 1.1 requests through the api
//! function's router, against the local stack (`source .local/stack.env`).

use bytes::Bytes;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::testing::{admin_key, registered_node, signed, stack};

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

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn send_list_get_cancel_on_the_wire() {
    let stack = stack().await;
    let n1 = node(&stack).await;

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

    let (status, sent) = ssm(
        &stack,
        "SendCommand",
        json!({"DocumentName": "AWS-RunShellScript",
        "InstanceIds": [n1], "Parameters": {"commands": ["id"]}, "Comment": "wire test"}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let c = &sent["Command"];
    let cid = c["CommandId"].as_str().unwrap().to_string();
    assert_eq!(c["Status"], "Pending");
    assert_eq!(c["TargetCount"], 1);
    assert_eq!(c["Comment"], "wire test");
    assert_eq!(c["TimeoutSeconds"], 3600);
    assert_eq!(c["MaxErrors"], "0");
    assert!(c["RequestedDateTime"].is_number());

    let (status, listed) = ssm(&stack, "ListCommands", json!({"CommandId": cid})).await;
    assert_eq!(status, 200);
    assert_eq!(listed["Commands"][0]["CommandId"], cid.as_str());
    let (_, by_node) = ssm(&stack, "ListCommands", json!({"InstanceId": n1})).await;
    assert!(by_node["Commands"].as_array().is_some());
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
    let (_, listed) = ssm(&stack, "ListCommands", json!({"CommandId": cid})).await;
    assert_eq!(listed["Commands"][0]["Status"], "Cancelling");
}
