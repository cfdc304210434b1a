//! Run Command on the SSM wire: signed JSON 1.1 requests through the api
//! function's router, against the local stack (`source .local/stack.env`).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::nodes::node_to_item;
use steward_core::clock::now_epoch;
use steward_core::fleet::Node;

async fn stack() -> Stack {
    Stack::from_env()
        .await
        .expect("STEWARD_* variables missing: source .local/stack.env (make test does)")
}

/// The admin key of the local stack: (access key id, secret).
fn admin_key() -> (String, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.local/aws/config");
    let text = std::fs::read_to_string(path)
        .expect("no .local/aws/config: provision the local stack first");
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("{name} missing from .local/aws/config"))
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}

fn signed(target: &str, body: &Value, akid: &str, secret: &str) -> http::Request<Bytes> {
    let body = Bytes::from(body.to_string());
    let mut req = http::Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:7070/")
        .header("host", "127.0.0.1:7070")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AmazonSSM.{target}"))
        .body(body.clone())
        .unwrap();
    let identity = Credentials::new(akid, secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ssm")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        "http://127.0.0.1:7070/",
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut req);
    req
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

async fn node(stack: &Stack) -> String {
    let id = steward_core::ids::new_managed_instance_id();
    let url = stack
        .clients
        .sqs
        .create_queue()
        .queue_name(format!("steward-test-api-{}", &id[3..]))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let n = Node {
        instance_id: id.clone(),
        activation_id: "test".into(),
        name: "test".into(),
        iam_role: "StewardNode".into(),
        registration_date: now_epoch(),
        last_ping_date_time: now_epoch(),
        agent_version: "0.1.0".into(),
        platform_type: "Linux".into(),
        platform_name: "Debian".into(),
        platform_version: "12".into(),
        computer_name: "host".into(),
        ip_address: "10.0.0.1".into(),
        public_key: String::new(),
        queue_url: url,
        queue_arn: String::new(),
        tags: Default::default(),
        tags_version: 0,
    };
    stack
        .clients
        .dynamodb
        .put_item()
        .table_name(&stack.settings.nodes_table)
        .set_item(Some(node_to_item(&n)))
        .send()
        .await
        .unwrap();
    id
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
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidFilterKey"))
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
