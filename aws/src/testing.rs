//! Support for tests against the local stack, shared by every crate's adapter
//! and end-to-end tests (feature `testing`; never in a shipped binary).
//! Panics are the point here: a test that cannot set up must stop loudly.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use serde_json::Value;
use steward_core::clock::now_epoch;
use steward_core::fleet::Node;

use crate::Stack;
use crate::nodes::node_to_item;

/// The local stack, from `.local/stack.env` (which `make test` sources).
pub async fn stack() -> Stack {
    Stack::from_env()
        .await
        .expect("STEWARD_* variables missing: source .local/stack.env (make test does)")
}

/// A value no other test run uses.
pub fn unique() -> String {
    steward_core::ids::new_command_id()[..8].to_string()
}

/// A queue of the calling test's own: nothing else consumes it.
pub async fn queue(stack: &Stack, purpose: &str) -> String {
    stack
        .clients
        .sqs
        .create_queue()
        .queue_name(format!("steward-test-{purpose}-{}", unique()))
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .expect("create a test queue")
        .queue_url
        .expect("a queue url")
}

/// Every message waiting on the queue at `url`, received and deleted, in the
/// order received; returns once a receive comes back empty.
pub async fn receive_all(stack: &Stack, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let msgs = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive from a test queue")
            .messages
            .unwrap_or_default();
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            out.push(m.body.unwrap_or_default());
            stack
                .clients
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete from a test queue");
        }
    }
}

/// The stack, with `change` made to its settings: resources of the calling
/// test's own in place of the shared ones. Its adapters are its own too.
pub fn with_settings(stack: &Stack, change: impl FnOnce(&mut crate::Settings)) -> Stack {
    let mut settings = stack.settings.clone();
    change(&mut settings);
    Stack::new(settings, stack.clients.clone())
}

/// The stack with a work queue of the calling test's own: the running
/// control plane's dispatcher polls the shared one, so only what the test
/// itself runs is ever done with its work items. Returns the queue's url too.
pub async fn with_own_work_queue(stack: &Stack) -> (Stack, String) {
    let url = queue(stack, "work").await;
    let own = with_settings(stack, |s| s.work_queue_url = url.clone());
    (own, url)
}

/// A new, empty table of the calling test's own, with the keys and indexes
/// of `like` (read from the table itself, so it cannot drift from the
/// template). Nothing running reads it. Returns its name.
pub async fn table_like(stack: &Stack, like: &str) -> String {
    use aws_sdk_dynamodb::client::Waiters;
    use aws_sdk_dynamodb::types::{BillingMode, GlobalSecondaryIndex};
    let ddb = &stack.clients.dynamodb;
    let shape = ddb
        .describe_table()
        .table_name(like)
        .send()
        .await
        .expect("describe the shared table")
        .table
        .expect("a table description");
    let indexes: Vec<GlobalSecondaryIndex> = shape
        .global_secondary_indexes()
        .iter()
        .map(|ix| {
            GlobalSecondaryIndex::builder()
                .set_index_name(ix.index_name.clone())
                .set_key_schema(ix.key_schema.clone())
                .set_projection(ix.projection.clone())
                .build()
                .expect("an index definition")
        })
        .collect();
    let name = format!("steward-test-{}", unique());
    ddb.create_table()
        .table_name(&name)
        .set_attribute_definitions(shape.attribute_definitions.clone())
        .set_key_schema(shape.key_schema.clone())
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create a test table");
    // DynamoDB creates tables asynchronously; a bounded wait, as every wait here.
    ddb.wait_until_table_exists()
        .table_name(&name)
        .wait(std::time::Duration::from_secs(60))
        .await
        .expect("the test table becomes active");
    name
}

/// Deletes a table [`table_like`] made.
pub async fn drop_table(stack: &Stack, name: &str) {
    stack
        .clients
        .dynamodb
        .delete_table()
        .table_name(name)
        .send()
        .await
        .expect("delete a test table");
}

/// A node written straight into the nodes table, with a queue of its own
/// (registration itself is the fleet's, and tested there). Returns (id, queue url).
pub async fn registered_node(stack: &Stack, purpose: &str) -> (String, String) {
    let id = steward_core::ids::new_managed_instance_id();
    let queue_url = queue(stack, purpose).await;
    let n = Node {
        instance_id: id.clone(),
        resource_type: steward_core::fleet::node::ResourceType::ManagedInstance,
        activation_id: "test".into(),
        name: "test".into(),
        iam_role: "StewardNode".into(),
        registration_date: now_epoch(),
        last_ping_date_time: now_epoch(),
        agent_version: "0.1.0".into(),
        platform_type: "Linux".into(),
        platform_name: "Debian".into(),
        platform_version: "12".into(),
        computer_name: format!("host-{id}"),
        ip_address: "10.0.0.1".into(),
        public_key: String::new(),
        queue_url: queue_url.clone(),
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
        .expect("write a test node");
    (id, queue_url)
}

/// The local stack's bootstrap admin key: (access key id, secret), from the
/// AWS CLI config provisioning wrote.
pub fn admin_key() -> (String, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../.local/aws/config");
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

/// An `AmazonSSM.<target>` request signed now, as an AWS SDK signs it.
pub fn signed(target: &str, body: &Value, akid: &str, secret: &str) -> http::Request<Bytes> {
    signed_at(target, body, akid, secret, SystemTime::now())
}

/// The same, signed at `time` (for clock-skew checks).
pub fn signed_at(
    target: &str,
    body: &Value,
    akid: &str,
    secret: &str,
    time: SystemTime,
) -> http::Request<Bytes> {
    const URL: &str = "http://127.0.0.1:7070/";
    let body = Bytes::from(body.to_string());
    let mut req = http::Request::builder()
        .method("POST")
        .uri(URL)
        .header("host", "127.0.0.1:7070")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AmazonSSM.{target}"))
        .body(body.clone())
        .expect("a request");
    let identity = Credentials::new(akid, secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ssm")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        "POST",
        URL,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .expect("a signable request");
    let (instructions, _) = sign(signable, &params).expect("a signature").into_parts();
    instructions.apply_to_request_http1x(&mut req);
    req
}

/// A caller allowed everything, as the bootstrap admin key is.
pub fn admin() -> steward_core::access::Caller {
    steward_core::access::Caller {
        access_key_id: "AKSTTESTADMIN".into(),
        user_arn: "arn:aws:iam::000000000000:user/admin".into(),
        policy: steward_core::access::Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .expect("the admin policy parses"),
    }
}

/// Sends a command through the real operation and runs its FanOut work item
/// at once, as the dispatch function would; returns the command id.
pub async fn sent_and_fanned_out(
    rc: &steward_core::run_command::RunCommandContext<'_>,
    request: &Value,
    now: f64,
) -> String {
    use steward_core::run_command::{dispatch, model::WorkItem, operations};
    let sent = operations::send_command(rc, &admin(), request, now)
        .await
        .expect("SendCommand");
    let command_id = sent["Command"]["CommandId"]
        .as_str()
        .expect("a command id")
        .to_string();
    dispatch::run(
        rc,
        &WorkItem::FanOut {
            command_id: command_id.clone(),
        },
        now,
    )
    .await
    .expect("FanOut");
    command_id
}

/// A new instance in the local stack's EC2 (LocalStack's: it runs nothing)
/// with `tags`; returns its id. Sent as the adapter sends DescribeTags.
pub async fn ec2_instance(stack: &Stack, tags: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", "RunInstances")
        .append_pair("Version", "2016-11-15")
        // One of LocalStack's listed images.
        .append_pair("ImageId", "ami-03cf127a")
        .append_pair("InstanceType", "t2.micro")
        .append_pair("MinCount", "1")
        .append_pair("MaxCount", "1")
        .append_pair("TagSpecification.1.ResourceType", "instance");
    for (i, (k, v)) in tags.iter().enumerate() {
        form.append_pair(&format!("TagSpecification.1.Tag.{}.Key", i + 1), k)
            .append_pair(&format!("TagSpecification.1.Tag.{}.Value", i + 1), v);
    }
    let form = form.finish();
    let answer = crate::instance_tags::Ec2InstanceTags::new(stack)
        .call(form)
        .await
        .unwrap_or_else(|e| panic!("RunInstances in the local stack's EC2: {e}"));
    let start = answer
        .find("<instanceId>")
        .map(|i| i + "<instanceId>".len())
        .expect("RunInstances answers an instanceId");
    let len = answer[start..].find('<').expect("a closed instanceId");
    answer[start..start + len].to_string()
}

/// Terminates an instance [`ec2_instance`] made.
pub async fn terminate_ec2_instance(stack: &Stack, instance_id: &str) {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "TerminateInstances")
        .append_pair("Version", "2016-11-15")
        .append_pair("InstanceId.1", instance_id)
        .finish();
    crate::instance_tags::Ec2InstanceTags::new(stack)
        .call(form)
        .await
        .unwrap_or_else(|e| panic!("TerminateInstances in the local stack's EC2: {e}"));
}
