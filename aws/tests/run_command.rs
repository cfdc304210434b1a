//! The Run Command adapters against the local stack (`source .local/stack.env`):
//! the DynamoDB store's conditional transitions and counters, the KMS signer,
//! and dispatch from a FanOut to a real node queue and a delivery deadline.

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::commands::{CommandTable, RunCommandAdapters};
use steward_aws::signer::KmsSigner;
use steward_aws::testing::{
    admin, queue, receive_all, registered_node, sent_and_fanned_out, stack, with_own_work_queue,
};
use steward_core::channel::{
    CancelMessage, ChannelError, Downlink, DownlinkPayload, DownlinkVerifier, InvocationUpdate,
    PluginResult, seal_downlinks,
};
use steward_core::clock::now_epoch;
use steward_core::run_command::dispatch;
use steward_core::run_command::ingest::{Applied, apply_update};
use steward_core::run_command::model::{Invocation, PluginRecord, Transition, WorkItem};
use steward_core::run_command::operations;
use steward_core::run_command::ports::{CommandStore, TimeRange};
use steward_core::run_command::status::InvocationDetail as D;

async fn node(stack: &Stack) -> (String, String) {
    registered_node(stack, "node").await
}

fn new_node_id() -> String {
    steward_core::ids::new_managed_instance_id()
}

async fn verifier(stack: &Stack) -> DownlinkVerifier {
    let der = KmsSigner::new(stack).public_key_der().await.unwrap();
    DownlinkVerifier::from_der(&der).unwrap()
}

/// Adapters whose work queue is a private one, so that a running local
/// dispatcher does not take this test's work items.
async fn adapters(stack: &Stack) -> (RunCommandAdapters, String) {
    let (own, url) = with_own_work_queue(stack).await;
    (RunCommandAdapters::new(&own), url)
}

fn shell(ids: &[&str]) -> Value {
    json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ids,
           "Parameters": {"commands": ["echo hello"]}, "TimeoutSeconds": 60})
}

fn report(cid: &str, detail: D, code: i32, out: &str) -> InvocationUpdate {
    InvocationUpdate {
        command_id: cid.into(),
        detail,
        response_code: code,
        execution_start: Some(now_epoch()),
        execution_end: detail.is_final().then(now_epoch),
        plugins: vec![PluginResult {
            name: "aws:runShellScript".into(),
            detail,
            response_code: code,
            start: None,
            end: None,
            stdout: out.into(),
            stderr: String::new(),
            uploaded: false,
        }],
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn kms_signed_downlink_verifies_with_the_public_key() {
    let stack = stack().await;
    let signer = KmsSigner::new(&stack);
    let payload = DownlinkPayload {
        v: 1,
        msg_id: "m-1".into(),
        node_id: "mi-00000000000000001".into(),
        issued_at: 100.0,
        expires_at: 200.0,
        message: Downlink::Cancel(CancelMessage {
            command_id: "c".into(),
        }),
    };
    // One payload: a tree of one leaf, its root the leaf, signed by KMS.
    let body = seal_downlinks(std::slice::from_ref(&payload), &signer)
        .await
        .unwrap()
        .remove(0);
    let v = verifier(&stack).await;
    assert_eq!(
        v.open(&body, "mi-00000000000000001", 150.0).unwrap(),
        payload
    );
    // Another node, or too late: refused.
    assert_eq!(
        v.open(&body, "mi-00000000000000002", 150.0),
        Err(ChannelError::WrongNode)
    );
    assert_eq!(
        v.open(&body, "mi-00000000000000001", 250.0),
        Err(ChannelError::Expired)
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn store_transitions_are_conditional_and_counters_exact() {
    let stack = stack().await;
    let (a, _) = adapters(&stack).await;
    let rc = a.ports();
    let (n1, _) = node(&stack).await;
    let (n2, _) = node(&stack).await;
    let cid = sent_and_fanned_out(&rc, &shell(&[&n1, &n2]), now_epoch()).await;
    let store = CommandTable::new(&stack);
    // Targets are released in the order of the resolved list: n1 goes first.
    let c = store.get_command(&cid).await.unwrap().unwrap();
    let [n1, n2] = [0, 1].map(|i| c.resolved_instance_ids[i].clone());

    // Pending → In Progress once; the same move again changes nothing.
    let start = Transition::status_only(&cid, &n1, D::Pending, D::InProgress);
    assert!(store.transition(&start).await.unwrap());
    assert!(!store.transition(&start).await.unwrap());
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(c.tally.started, 1);
    // Rate control's counters: the first target went alone, acknowledged once.
    assert_eq!((c.tally.released, c.tally.acknowledged), (1, 1));
    assert!(store.get_invocation(&cid, &n2).await.unwrap().is_none());
    let release = WorkItem::Release {
        command_id: cid.clone(),
    };
    dispatch::run(&rc, &release, now_epoch()).await.unwrap();
    assert_eq!(
        store
            .get_command(&cid)
            .await
            .unwrap()
            .unwrap()
            .tally
            .released,
        2
    );
    assert!(!store.raise_released(&cid, 2).await.unwrap());

    // A report, redelivered three times: one change, one count.
    for _ in 0..3 {
        apply_update(
            &rc,
            &n1,
            report(&cid, D::Success, 0, "hello\n"),
            now_epoch(),
        )
        .await
        .unwrap();
    }
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(
        (c.tally.success, c.tally.completed(), c.tally.started),
        (1, 1, 1)
    );
    assert_eq!(c.status, "InProgress");
    let inv = store.get_invocation(&cid, &n1).await.unwrap().unwrap();
    assert_eq!(inv.status_details, D::Success);
    assert_eq!(inv.plugins[0].standard_output_content, "hello\n");
    assert_eq!(inv.response_code, 0);

    // Another node's report about n2's invocation is not applied.
    let (stranger, _) = node(&stack).await;
    assert_eq!(
        apply_update(&rc, &stranger, report(&cid, D::Failed, 1, "x"), now_epoch())
            .await
            .unwrap(),
        Applied::NotFound
    );
    apply_update(&rc, &n2, report(&cid, D::Failed, 2, "boom"), now_epoch())
        .await
        .unwrap();
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Failed", "Failed")
    );
    assert_eq!((c.tally.failed, c.tally.completed()), (1, 2));
    // Final: no later report or state write moves it.
    assert!(
        !store
            .set_command_state(
                &cid,
                ("InProgress", "In Progress"),
                steward_core::run_command::status::CommandState {
                    status: "Success",
                    details: "Success"
                }
            )
            .await
            .unwrap()
    );
    assert!(!store.request_cancel(&cid).await.unwrap());

    // SSM's shapes on the way out.
    let got = operations::get_command_invocation(
        &rc,
        &json!({"CommandId": cid, "InstanceId": n2}),
        now_epoch(),
    )
    .await
    .unwrap();
    assert_eq!(got["Status"], "Failed");
    assert_eq!(got["ResponseCode"], 2);
    assert_eq!(got["StandardOutputContent"], "boom");
    let listed = operations::list_commands(&rc, &json!({"CommandId": cid}))
        .await
        .unwrap();
    assert_eq!(listed["Commands"][0]["CompletedCount"], 2);
    assert_eq!(listed["Commands"][0]["ErrorCount"], 1);
    let by_node =
        operations::list_command_invocations(&rc, &json!({"InstanceId": n1, "Details": true}))
            .await
            .unwrap();
    assert_eq!(by_node["CommandInvocations"][0]["CommandId"], cid.as_str());
    assert_eq!(
        by_node["CommandInvocations"][0]["CommandPlugins"][0]["Output"],
        "hello\n"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn commands_list_newest_first_with_tokens() {
    let stack = stack().await;
    let (a, _) = adapters(&stack).await;
    let rc = a.ports();
    let (n1, _) = node(&stack).await;
    let base = now_epoch();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(sent_and_fanned_out(&rc, &shell(&[&n1]), base + i as f64).await);
    }
    let store = CommandTable::new(&stack);
    // The node's invocations, newest first, a page at a time.
    let range = TimeRange::default();
    let p1 = store
        .query_node_invocations(&n1, range, 2, None)
        .await
        .unwrap();
    assert_eq!(
        p1.items
            .iter()
            .map(|i| i.command_id.clone())
            .collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone()]
    );
    let p2 = store
        .query_node_invocations(&n1, range, 2, p1.next_token.as_deref())
        .await
        .unwrap();
    assert_eq!(p2.items[0].command_id, ids[0]);
    // All commands, newest first, within a window that only holds these three.
    let window = TimeRange {
        after: Some(base),
        before: Some(base + 2.0),
    };
    let page = store.query_commands(window, 10, None).await.unwrap();
    let got: Vec<String> = page.items.iter().map(|c| c.command_id.clone()).collect();
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(
        got.iter()
            .filter(|g| ids.contains(g))
            .cloned()
            .collect::<Vec<_>>(),
        expected
    );
    let listed = operations::list_commands(&rc, &json!({"InstanceId": n1, "MaxResults": 2}))
        .await
        .unwrap();
    assert_eq!(listed["Commands"].as_array().unwrap().len(), 2);
    let tok = listed["NextToken"].as_str().unwrap();
    let rest = operations::list_commands(
        &rc,
        &json!({"InstanceId": n1, "MaxResults": 2, "NextToken": tok}),
    )
    .await
    .unwrap();
    assert_eq!(rest["Commands"][0]["CommandId"], ids[0].as_str());
    assert_eq!(
        store
            .query_commands(range, 1, Some("not-a-token"))
            .await
            .unwrap_err()
            .code(),
        "InvalidNextToken"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn fan_out_reaches_the_node_queue_signed_and_deadlines_are_queued() {
    let stack = stack().await;
    let (a, work_url) = adapters(&stack).await;
    let rc = a.ports();
    let (n1, q1) = node(&stack).await;
    let now = now_epoch();
    let mut body = shell(&[&n1]);
    body["OutputS3BucketName"] = json!(stack.settings.output_bucket);
    body["OutputS3KeyPrefix"] = json!("test");
    let sent = operations::send_command(&rc, &admin(), &body, now)
        .await
        .unwrap();
    let cid = sent["Command"]["CommandId"].as_str().unwrap().to_string();

    // The FanOut the API enqueued, as the dispatch function receives it.
    let items = receive_all(&stack, &work_url).await;
    assert_eq!(items.len(), 1);
    let fan: WorkItem = serde_json::from_str(&items[0]).unwrap();
    assert_eq!(
        fan,
        WorkItem::FanOut {
            command_id: cid.clone()
        }
    );
    dispatch::process(&rc, &items[0], now).await.unwrap();
    // Redelivered: the target was released already; nothing is sent twice.
    dispatch::process(&rc, &items[0], now).await.unwrap();

    let v = verifier(&stack).await;
    let msgs = receive_all(&stack, &q1).await;
    assert_eq!(msgs.len(), 1);
    let opened: Vec<DownlinkPayload> = msgs
        .iter()
        .map(|m| v.open(m, &n1, now + 1.0).unwrap())
        .collect();
    assert_eq!(opened[0].expires_at, now + 60.0);
    let Downlink::Run(run) = &opened[0].message else {
        panic!("not a RunCommand")
    };
    assert_eq!(run.command_id, cid);
    assert_eq!(run.steps[0].run_command, vec!["echo hello"]);
    // The presigned URL really writes the object SSM's layout names.
    let put = &run.uploads[0].stdout_put_url;
    let key = format!("test/{cid}/{n1}/awsrunShellScript/0.awsrunShellScript/stdout");
    assert!(put.contains(&key), "{put}");

    // The deadlines wait, delayed, on the work queue (one pair per delivery).
    let attrs = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&work_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed: u32 = attrs
        .attributes
        .unwrap_or_default()
        .get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(delayed, 2);
    let inv = CommandTable::new(&stack)
        .get_invocation(&cid, &n1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inv.status_details, D::Pending);
    assert_eq!(inv.instance_name, format!("host-{n1}"));
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn delivery_deadline_times_out_a_pending_invocation_and_ends_the_command() {
    let stack = stack().await;
    let (a, work_url) = adapters(&stack).await;
    let rc = a.ports();
    let (n1, _) = node(&stack).await;
    let now = now_epoch();
    let cid = sent_and_fanned_out(&rc, &shell(&[&n1]), now).await;
    receive_all(&stack, &work_url).await;

    let deadline = WorkItem::DeliveryDeadline {
        command_id: cid.clone(),
        instance_id: n1.clone(),
        at: now + 60.0,
    };
    // Early: put back on the queue with the remaining delay, nothing changes.
    assert_eq!(
        dispatch::run(&rc, &deadline, now + 10.0).await.unwrap(),
        dispatch::Outcome::Postponed(50)
    );
    let store = CommandTable::new(&stack);
    assert_eq!(
        store
            .get_invocation(&cid, &n1)
            .await
            .unwrap()
            .unwrap()
            .status_details,
        D::Pending
    );
    // Due (twice, as a redelivery would): one change, one count.
    dispatch::run(&rc, &deadline, now + 61.0).await.unwrap();
    dispatch::run(&rc, &deadline, now + 62.0).await.unwrap();
    let inv = store.get_invocation(&cid, &n1).await.unwrap().unwrap();
    assert_eq!(inv.status_details, D::DeliveryTimedOut);
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("TimedOut", "Delivery Timed Out")
    );
    assert_eq!(c.tally.delivery_timed_out, 1);
    // The agent's late report cannot revive it.
    apply_update(&rc, &n1, report(&cid, D::InProgress, -1, ""), now_epoch())
        .await
        .unwrap();
    assert_eq!(
        store
            .get_invocation(&cid, &n1)
            .await
            .unwrap()
            .unwrap()
            .status_details,
        D::DeliveryTimedOut
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn unknown_instance_writes_nothing_and_deleted_queue_is_undeliverable() {
    let stack = stack().await;
    let (a, work_url) = adapters(&stack).await;
    let rc = a.ports();
    let err = operations::send_command(&rc, &admin(), &shell(&[&new_node_id()]), now_epoch())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidInstanceId");
    assert!(receive_all(&stack, &work_url).await.is_empty());

    let (n1, q1) = node(&stack).await;
    stack
        .clients
        .sqs
        .delete_queue()
        .queue_url(&q1)
        .send()
        .await
        .unwrap();
    let now = now_epoch();
    let cid = sent_and_fanned_out(&rc, &shell(&[&n1]), now).await;
    let store = CommandTable::new(&stack);
    assert_eq!(
        store
            .get_invocation(&cid, &n1)
            .await
            .unwrap()
            .unwrap()
            .status_details,
        D::Undeliverable
    );
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(c.status, "Failed");
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn cancel_reaches_running_nodes() {
    let stack = stack().await;
    let (a, work_url) = adapters(&stack).await;
    let rc = a.ports();
    let (n1, q1) = node(&stack).await;
    let (n2, q2) = node(&stack).await;
    let now = now_epoch();
    let mut body = shell(&[&n1, &n2]);
    body["MaxConcurrency"] = json!("1");
    let cid = sent_and_fanned_out(&rc, &body, now).await;
    // Targets are released in the order of the resolved list.
    let store = CommandTable::new(&stack);
    let order = store
        .get_command(&cid)
        .await
        .unwrap()
        .unwrap()
        .resolved_instance_ids;
    let ((n1, q1), (n2, q2)) = if order[0] == n1 {
        ((n1, q1), (n2, q2))
    } else {
        ((n2, q2), (n1, q1))
    };
    receive_all(&stack, &work_url).await;
    receive_all(&stack, &q1).await;
    apply_update(&rc, &n1, report(&cid, D::InProgress, -1, ""), now_epoch())
        .await
        .unwrap();

    operations::cancel_command(&rc, &json!({"CommandId": cid}))
        .await
        .unwrap();
    assert_eq!(
        store.get_command(&cid).await.unwrap().unwrap().status,
        "Cancelling"
    );
    let items = receive_all(&stack, &work_url).await;
    assert_eq!(items.len(), 1);
    dispatch::process(&rc, &items[0], now + 1.0).await.unwrap();
    // n2 was never sent (MaxConcurrency 1): it is closed Canceled, unsent.
    assert!(receive_all(&stack, &q2).await.is_empty());
    assert_eq!(
        store
            .get_invocation(&cid, &n1)
            .await
            .unwrap()
            .unwrap()
            .status_details,
        D::Cancelling
    );
    assert_eq!(
        store
            .get_invocation(&cid, &n2)
            .await
            .unwrap()
            .unwrap()
            .status_details,
        D::Cancelled
    );
    let v = verifier(&stack).await;
    let msgs = receive_all(&stack, &q1).await;
    assert_eq!(msgs.len(), 1);
    assert!(matches!(
        v.open(&msgs[0], &n1, now + 2.0).unwrap().message,
        Downlink::Cancel(_)
    ));
    apply_update(&rc, &n1, report(&cid, D::Cancelled, -1, ""), now_epoch())
        .await
        .unwrap();
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Cancelled", "Canceled")
    );
    assert_eq!(c.tally.cancelled, 2);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn status_changes_reach_an_eventbridge_rule_shaped_as_ssms() {
    use steward_core::events::EventSink;
    let stack = stack().await;
    let target = queue(&stack, "events").await;
    let arn = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&target)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let command_id = steward_core::ids::new_command_id();
    let rule = format!("steward-test-{}", &command_id[..8]);
    stack
        .clients
        .events
        .put_rule()
        .name(&rule)
        .event_bus_name(&stack.settings.event_bus)
        .event_pattern(
            json!({"source": ["steward.ssm"], "detail-type": ["EC2 Command Status-change Notification"],
                   "detail": {"command-id": [command_id]}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    stack
        .clients
        .events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&stack.settings.event_bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let bus = steward_aws::events::EventBus::new(&stack);
    bus.publish(
        "EC2 Command Status-change Notification",
        vec!["mi-00000000000000001".into()],
        json!({"command-id": command_id, "document-name": "AWS-RunShellScript", "status": "Success"}),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got = receive_all(&stack, &target).await;
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got.len(), 1);
    let event: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(event["source"], "steward.ssm");
    assert_eq!(event["detail"]["status"], "Success");
    let expected = format!(
        "arn:aws:ssm:{}::managed-instance/mi-00000000000000001",
        stack.settings.region
    );
    assert_eq!(event["resources"][0], expected.as_str());
    // Nothing left on the bus: a rule left behind adds a delivery to every
    // later event (and the benchmarks count them).
    let events = &stack.clients.events;
    let bus = &stack.settings.event_bus;
    events
        .remove_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .ids("q")
        .send()
        .await
        .unwrap();
    events
        .delete_rule()
        .name(&rule)
        .event_bus_name(bus)
        .send()
        .await
        .unwrap();
}

// ---------------------------------------------------------------- batched ports

/// A command sent to one registered node and not fanned out: its counters
/// at zero and no invocation yet, for the batch tests to write their own.
async fn bare_command(stack: &Stack) -> String {
    let (a, _) = adapters(stack).await;
    let (n1, _) = node(stack).await;
    let sent = operations::send_command(&a.ports(), &admin(), &shell(&[&n1]), now_epoch())
        .await
        .unwrap();
    sent["Command"]["CommandId"].as_str().unwrap().to_string()
}

fn invocation(command_id: &str, instance_id: &str, status: D) -> Invocation {
    Invocation {
        command_id: command_id.into(),
        instance_id: instance_id.into(),
        instance_name: String::new(),
        comment: String::new(),
        document_name: "AWS-RunShellScript".into(),
        document_version: "1".into(),
        requested_date_time: now_epoch(),
        status_details: status,
        response_code: if status.is_final() { 1 } else { -1 },
        execution_start_date_time: None,
        execution_end_date_time: None,
        plugins: Vec::new(),
        output_s3_bucket_name: String::new(),
        output_s3_key_prefix: String::new(),
        output_s3_region: String::new(),
        service_role: String::new(),
        notification_config: None,
        message_id: steward_core::ids::new_command_id(),
        delivery_deadline: now_epoch() + 60.0,
        released_offline: false,
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn put_invocations_creates_the_missing_and_counts_only_them() {
    let stack = stack().await;
    let store = CommandTable::new(&stack);
    let cid = bare_command(&stack).await;
    let [a, b, c] = [D::Undeliverable, D::Success, D::Cancelled]
        .map(|status| invocation(&cid, &new_node_id(), status));
    // b exists already, with another response code than the batch's copy.
    let mut first_b = b.clone();
    first_b.response_code = 7;
    assert!(store.put_invocation(&first_b).await.unwrap());
    let before = store.get_command(&cid).await.unwrap().unwrap().tally;

    let answers = store
        .put_invocations(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    assert_eq!(answers, vec![true, false, true]);
    let mut expected = before;
    expected.add(&a.initial_tally());
    expected.add(&c.initial_tally());
    let after = store.get_command(&cid).await.unwrap().unwrap().tally;
    assert_eq!(after, expected);
    assert_eq!(
        (after.undeliverable, after.success, after.cancelled),
        (
            before.undeliverable + 1,
            before.success,
            before.cancelled + 1
        )
    );
    let stored_b = store
        .get_invocation(&cid, &b.instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored_b.response_code, 7);
    // Everything there now: all false, nothing counted.
    assert_eq!(
        store.put_invocations(&[a, b, c]).await.unwrap(),
        vec![false; 3]
    );
    assert_eq!(store.get_command(&cid).await.unwrap().unwrap().tally, after);
    assert!(store.put_invocations(&[]).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn transition_many_applies_the_current_and_counts_only_them() {
    let stack = stack().await;
    let store = CommandTable::new(&stack);
    let cid = bare_command(&stack).await;
    let ids: Vec<String> = (0..3).map(|_| new_node_id()).collect();
    let pending: Vec<Invocation> = ids
        .iter()
        .map(|id| invocation(&cid, id, D::Pending))
        .collect();
    assert_eq!(
        store.put_invocations(&pending).await.unwrap(),
        vec![true; 3]
    );
    // The first moved on already: a Pending → Success about it is stale.
    let started = Transition::status_only(&cid, &ids[0], D::Pending, D::InProgress);
    assert!(store.transition(&started).await.unwrap());
    let before = store.get_command(&cid).await.unwrap().unwrap().tally;

    let mut batch: Vec<Transition> = ids
        .iter()
        .map(|id| Transition::status_only(&cid, id, D::Pending, D::Success))
        .collect();
    batch[2].to = D::Failed;
    batch[2].response_code = Some(2);
    let answers = store.transition_many(&batch).await.unwrap();
    assert_eq!(answers, vec![false, true, true]);
    let mut expected = before;
    expected.add(&batch[1].tally_delta());
    expected.add(&batch[2].tally_delta());
    let after = store.get_command(&cid).await.unwrap().unwrap().tally;
    assert_eq!(after, expected);
    assert_eq!(
        (after.success, after.failed),
        (before.success + 1, before.failed + 1)
    );
    let got = store.get_invocations(&cid, &ids).await.unwrap();
    let detail = |id: &str| {
        got.iter()
            .find(|i| i.instance_id == id)
            .map(|i| (i.status_details, i.response_code))
    };
    assert_eq!(detail(&ids[0]), Some((D::InProgress, -1)));
    assert_eq!(detail(&ids[1]), Some((D::Success, -1)));
    assert_eq!(detail(&ids[2]), Some((D::Failed, 2)));

    // One invocation twice in a batch: refused before any request.
    let twice = [batch[1].clone(), batch[1].clone()];
    assert_eq!(
        store.transition_many(&twice).await.unwrap_err().code(),
        "InternalServerError"
    );
    assert!(store.transition_many(&[]).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn get_invocations_reads_the_existing_ones() {
    let stack = stack().await;
    let store = CommandTable::new(&stack);
    let cid = bare_command(&stack).await;
    let there: Vec<String> = (0..2).map(|_| new_node_id()).collect();
    let invs: Vec<Invocation> = there
        .iter()
        .map(|id| invocation(&cid, id, D::Pending))
        .collect();
    store.put_invocations(&invs).await.unwrap();
    let asked = vec![
        there[0].clone(),
        new_node_id(),
        there[1].clone(),
        there[0].clone(),
    ];
    let mut got = store.get_invocations(&cid, &asked).await.unwrap();
    got.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let mut expected = invs.clone();
    expected.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    assert_eq!(got, expected);
    assert!(store.get_invocations(&cid, &[]).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn transition_many_over_several_transactions_applies_all() {
    let stack = stack().await;
    let store = CommandTable::new(&stack);
    let cid = bare_command(&stack).await;
    let ids: Vec<String> = (0..150).map(|_| new_node_id()).collect();
    let invs: Vec<Invocation> = ids
        .iter()
        .map(|id| invocation(&cid, id, D::Pending))
        .collect();
    assert_eq!(store.put_invocations(&invs).await.unwrap(), vec![true; 150]);
    let before = store.get_command(&cid).await.unwrap().unwrap().tally;
    // 30 KB of output each: the size, not only the count, cuts the batch.
    let plugins = vec![PluginRecord {
        name: "aws:runShellScript".into(),
        status_details: D::Success,
        response_code: 0,
        response_start_date_time: None,
        response_finish_date_time: None,
        standard_output_content: "x".repeat(30 * 1024),
        standard_error_content: String::new(),
        standard_output_url: String::new(),
        standard_error_url: String::new(),
    }];
    let batch: Vec<Transition> = ids
        .iter()
        .map(|id| Transition {
            response_code: Some(0),
            plugins: Some(plugins.clone()),
            ..Transition::status_only(&cid, id, D::Pending, D::Success)
        })
        .collect();
    assert_eq!(
        store.transition_many(&batch).await.unwrap(),
        vec![true; 150]
    );
    let after = store.get_command(&cid).await.unwrap().unwrap().tally;
    assert_eq!(
        (after.success, after.acknowledged),
        (before.success + 150, before.acknowledged + 150)
    );
    let got = store.get_invocations(&cid, &ids).await.unwrap();
    assert_eq!(got.len(), 150);
    assert!(got.iter().all(|i| i.status_details == D::Success
        && i.plugins[0].standard_output_content.len() == 30 * 1024));
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn node_addresses_answer_in_order() {
    use steward_core::run_command::ports::NodeDirectory;
    let stack = stack().await;
    let (n1, q1) = node(&stack).await;
    let (n2, q2) = node(&stack).await;
    let nodes = steward_aws::node_mailbox::SqsNodeMailbox::new(&stack);
    let asked = vec![n2.clone(), new_node_id(), n1.clone()];
    let got = nodes.node_addresses(&asked).await.unwrap();
    let urls: Vec<Option<String>> = got
        .iter()
        .map(|a| a.as_ref().map(|a| a.queue_url.clone()))
        .collect();
    assert_eq!(urls, vec![Some(q2), None, Some(q1)]);
    // As one at a time answers them.
    for (id, batched) in asked.iter().zip(&got) {
        assert_eq!(&nodes.node_address(id).await.unwrap(), batched);
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn enqueue_many_delivers_every_item() {
    use steward_core::run_command::ports::WorkQueue;
    let stack = stack().await;
    // A queue of the test's own: the control plane consumes the stack's.
    let url = queue(&stack, "work-batch").await;
    let work = steward_aws::work_queue::SqsWorkQueue::with_url(stack.clients.sqs.clone(), &url);
    let items: Vec<(WorkItem, u32)> = (0..23)
        .map(|i| {
            let item = WorkItem::DeliveryDeadline {
                command_id: format!("c-{i}"),
                instance_id: "mi-00000000000000001".into(),
                at: i as f64,
            };
            (item, 0)
        })
        .collect();
    work.enqueue_many(&items).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.extend(receive_all(&stack, &url).await);
        if got.len() >= items.len() {
            break;
        }
    }
    let mut got: Vec<String> = got
        .iter()
        .map(|b| serde_json::to_string(&serde_json::from_str::<WorkItem>(b).unwrap()).unwrap())
        .collect();
    let mut sent: Vec<String> = items
        .iter()
        .map(|(i, _)| serde_json::to_string(i).unwrap())
        .collect();
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
    work.enqueue_many(&[]).await.unwrap();
    stack
        .clients
        .sqs
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn publish_many_delivers_every_event() {
    use steward_core::events::{Event, EventSink};
    let stack = stack().await;
    let target = queue(&stack, "events-batch").await;
    let arn = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&target)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let run = steward_core::ids::new_command_id();
    let rule = format!("steward-test-batch-{}", &run[..8]);
    let events = &stack.clients.events;
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&stack.settings.event_bus)
        .event_pattern(json!({"source": ["steward.ssm"], "detail": {"run": [run]}}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&stack.settings.event_bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let batch: Vec<Event> = (0..23)
        .map(|i| Event {
            detail_type: "EC2 Command Invocation Status-change Notification",
            resources: vec!["mi-00000000000000001".into()],
            detail: json!({"run": run, "n": i}),
        })
        .collect();
    let bus = steward_aws::events::EventBus::new(&stack);
    let published = bus.publish_many(batch).await;
    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(receive_all(&stack, &target).await);
        if got.len() >= 23 {
            break;
        }
    }
    // The rule goes whatever the outcome.
    events
        .remove_targets()
        .rule(&rule)
        .event_bus_name(&stack.settings.event_bus)
        .ids("q")
        .send()
        .await
        .unwrap();
    events
        .delete_rule()
        .name(&rule)
        .event_bus_name(&stack.settings.event_bus)
        .send()
        .await
        .unwrap();
    stack
        .clients
        .sqs
        .delete_queue()
        .queue_url(&target)
        .send()
        .await
        .unwrap();
    published.unwrap();
    let mut ns: Vec<i64> = got
        .iter()
        .map(|b| {
            let e: Value = serde_json::from_str(b).unwrap();
            assert_eq!(e["source"], "steward.ssm");
            e["detail"]["n"].as_i64().unwrap()
        })
        .collect();
    ns.sort();
    assert_eq!(ns, (0..23).collect::<Vec<i64>>());
    bus.publish_many(Vec::new()).await.unwrap();
}

/// `X-Amz-Expires` of a presigned URL.
fn url_lifetime(url: &str) -> u64 {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Expires="))
        .expect("a presigned URL")
        .parse()
        .unwrap()
}

/// PUTs `body` to `url` (plain HTTP, as the local stack serves S3) and
/// returns the answer's status.
async fn put(url: &str, body: &str) -> u16 {
    put_answer(url, body).await.0
}

/// PUTs `body` to `url`; the answer's status and whole text.
async fn put_answer(url: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("a plain HTTP URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn expiring_provider(secs: u64) -> aws_credential_types::provider::SharedCredentialsProvider {
    let key_id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    aws_credential_types::provider::SharedCredentialsProvider::new(
        aws_credential_types::Credentials::new(
            key_id,
            secret,
            Some("session".into()),
            Some(std::time::SystemTime::now() + std::time::Duration::from_secs(secs)),
            "expiring",
        ),
    )
}

/// The local stack's S3 checks presigned URLs' signatures and expiry only
/// when LocalStack runs with S3_SKIP_SIGNATURE_VALIDATION=0 (AWS always
/// does). The test below then shows a URL really dying with its
/// credentials; else it says why it proves less, and stops.
#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn an_upload_url_dies_with_its_credentials_and_a_fresh_one_works() {
    use steward_aws::output::OutputBucket;
    use steward_core::run_command::ports::OutputLocations;

    let stack = stack().await;
    let bucket = stack.settings.output_bucket.clone();
    let outputs = |provider| {
        OutputBucket::with_client(
            stack.clients.s3.clone(),
            Some(provider),
            &stack.settings.region,
            vec![bucket.clone()],
        )
    };
    let key = format!("test/dies-{}", steward_aws::testing::unique());
    // Does this S3 check signatures at all? A URL signed with a wrong secret tells.
    let forged = OutputBucket::with_client(
        stack.clients.s3.clone(),
        Some(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "test",
                    "wrong-secret",
                    None,
                    None,
                    "forged",
                ),
            ),
        ),
        &stack.settings.region,
        vec![bucket.clone()],
    );
    let url = forged.presign_put(&bucket, "", &key, 60).await.unwrap();
    if put(&url.put_url, "forged").await == 200 {
        eprintln!(
            "S3 here does not check presigned URLs (LocalStack's S3_SKIP_SIGNATURE_VALIDATION is not 0): expiry not exercised"
        );
        return;
    }

    let dying = outputs(expiring_provider(3));
    let url = dying.presign_put(&bucket, "", &key, 86_400).await.unwrap();
    let lifetime = url_lifetime(&url.put_url);
    assert!(lifetime <= 3, "{lifetime}");
    tokio::time::sleep(std::time::Duration::from_secs(lifetime + 2)).await;
    let (status, answer) = put_answer(&url.put_url, "too late").await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("AccessDenied"), "{answer}");

    // What the node is handed when it asks again works.
    let fresh = outputs(expiring_provider(3600));
    let url = fresh.presign_put(&bucket, "", &key, 600).await.unwrap();
    assert_eq!(put(&url.put_url, "in time").await, 200);
    let got = stack
        .clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        b"in time"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn an_upload_url_never_outlives_the_credentials_that_signed_it() {
    use steward_aws::output::OutputBucket;
    use steward_core::run_command::ports::OutputLocations;

    let stack = stack().await;
    let bucket = stack.settings.output_bucket.clone();
    let expiring = expiring_provider;
    let outputs = |provider| {
        OutputBucket::with_client(
            stack.clients.s3.clone(),
            Some(provider),
            &stack.settings.region,
            vec![bucket.clone()],
        )
    };
    let key = format!("test/expiry-{}", steward_aws::testing::unique());

    // Credentials that expire in 20 s: asked for a day, the URL says 20 s.
    let short = outputs(expiring(20));
    let url = short.presign_put(&bucket, "", &key, 86_400).await.unwrap();
    let lifetime = url_lifetime(&url.put_url);
    assert!((1..=20).contains(&lifetime), "{lifetime}");
    assert!(url.put_url.contains("X-Amz-Security-Token=session"));
    // And it works while they last: the object is there.
    assert_eq!(put(&url.put_url, "short-lived").await, 200);
    let got = stack
        .clients
        .s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"short-lived");

    // Credentials that outlive the wanted lifetime leave it as asked.
    let long = outputs(expiring(7200));
    let url = long.presign_put(&bucket, "", &key, 600).await.unwrap();
    assert_eq!(url_lifetime(&url.put_url), 600);

    // Credentials about to expire are resolved again (a provider returns
    // fresh ones then); these are all it has, so the URL is cut to them.
    let ending = outputs(expiring(2));
    let url = ending.presign_put(&bucket, "", &key, 600).await.unwrap();
    assert!(url_lifetime(&url.put_url) <= 2);
    assert_eq!(
        ending.allowed_buckets(),
        vec![bucket.clone()],
        "the list it was given"
    );
}
