//! The operations end to end over the in-memory ports.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::memory::*;
use super::model::WorkItem;
use super::{RunCommandContext, dispatch, ingest, operations};
use crate::channel::{Downlink, InvocationUpdate, PluginResult};
use crate::run_command::status::InvocationDetail as D;

fn node(n: u8) -> String {
    format!("mi-{n:017x}")
}

struct World {
    store: Store,
    fleet: Fleet,
    groups: BTreeMap<String, crate::targets::GroupQuery>,
    mailbox: Mailbox,
    work: Work,
    automation: crate::automation::memory::MemoryQueue,
    signer: Signer,
    parameters: crate::parameters::memory::MemoryParameterStore,
    scope: crate::arn::ArnScope,
    documents: crate::documents::store::MemoryDocumentStore,
    patch_baselines: crate::patching::memory::MemoryPatchBaselines,
}

/// A caller allowed everything.
fn admin() -> crate::access::Caller {
    crate::access::Caller {
        access_key_id: "AKSTADMIN".into(),
        user_arn: "arn:aws:iam::123456789012:user/admin".into(),
        policy: crate::access::Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .unwrap(),
    }
}

impl World {
    fn new(nodes: &[(u8, &[(&str, &str)])]) -> Self {
        let mut fleet = Fleet::default();
        for (n, tags) in nodes {
            fleet.nodes.insert(
                node(*n),
                tags.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            );
        }
        Self {
            store: Store::default(),
            fleet,
            groups: BTreeMap::new(),
            mailbox: Mailbox::default(),
            work: Work::default(),
            automation: Default::default(),
            signer: Signer::new(),
            parameters: Default::default(),
            scope: crate::arn::ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            documents: crate::documents::store::MemoryDocumentStore::new(),
            patch_baselines: Default::default(),
        }
    }

    fn rc(&self) -> RunCommandContext<'_> {
        RunCommandContext {
            store: &self.store,
            targets: &self.fleet,
            groups: &self.groups,
            nodes: &self.fleet,
            mailbox: &self.mailbox,
            work: &self.work,
            outputs: &Outputs,
            signer: &self.signer,
            parameters: &self.parameters,
            scope: &self.scope,
            documents: &self.documents,
            automation: &self.automation,
            patch_baselines: &self.patch_baselines,
        }
    }

    async fn send(&self, body: Value) -> Result<Value, crate::SsmError> {
        operations::send_command(&self.rc(), &admin(), &body, 1000.0).await
    }

    /// Runs queued work items at `now` until only items not yet due remain
    /// (those `run` puts back on the queue).
    async fn drain(&self, now: f64) {
        loop {
            let items: Vec<(WorkItem, u32)> = std::mem::take(&mut *self.work.items.lock().unwrap());
            let mut progressed = false;
            for (item, _) in items {
                let outcome = dispatch::run(&self.rc(), &item, now).await.unwrap();
                progressed |= !matches!(outcome, dispatch::Outcome::Postponed(_));
            }
            if !progressed {
                return;
            }
        }
    }

    fn command(&self, id: &str) -> super::model::Command {
        self.store
            .commands
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap()
    }

    fn detail(&self, id: &str, n: u8) -> D {
        self.store.get_invocation_now(id, n).unwrap().status_details
    }
}

impl Store {
    fn get_invocation_now(&self, id: &str, n: u8) -> Option<super::model::Invocation> {
        self.invocations
            .lock()
            .unwrap()
            .get(&(id.to_string(), node(n)))
            .cloned()
    }
}

fn shell(ids: &[String]) -> Value {
    json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ids, "Parameters": {"commands": ["echo hi"]}, "TimeoutSeconds": 60})
}

fn update(cid: &str, detail: D, code: i32, stdout: &str) -> InvocationUpdate {
    InvocationUpdate {
        command_id: cid.into(),
        detail,
        response_code: code,
        execution_start: Some(1001.0),
        execution_end: detail.is_final().then_some(1002.5),
        plugins: vec![PluginResult {
            name: "aws:runShellScript".into(),
            detail,
            response_code: code,
            start: Some(1001.0),
            end: detail.is_final().then_some(1002.5),
            stdout: stdout.into(),
            stderr: String::new(),
            uploaded: false,
        }],
    }
}

#[tokio::test]
async fn send_fan_out_and_reports_reach_success() {
    let w = World::new(&[(1, &[]), (2, &[])]);
    let answer = w.send(shell(&[node(1), node(2)])).await.unwrap();
    let c = &answer["Command"];
    assert_eq!(c["Status"], "Pending");
    assert_eq!(c["TargetCount"], 2);
    assert_eq!(c["ExpiresAfter"], 1060.0);
    assert_eq!(c["MaxConcurrency"], "50");
    let cid = c["CommandId"].as_str().unwrap().to_string();

    w.drain(1000.0).await;
    // Rate control: the first target goes alone, the next once it is acknowledged.
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
    assert!(w.store.get_invocation_now(&cid, 2).is_none());
    let rc = w.rc();
    assert_eq!(
        ingest::apply_update(&rc, &node(1), update(&cid, D::InProgress, -1, ""), 1001.0)
            .await
            .unwrap(),
        ingest::Applied::Changed
    );
    assert_eq!(w.command(&cid).status, "InProgress");
    w.drain(1000.0).await;
    let sent = w.mailbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let verifier = w.signer.verifier();
    for (queue, body) in &sent {
        let id = queue.trim_start_matches("q-");
        let p = verifier.open(body, id, 1001.0).unwrap();
        // Node 2 was released by node 1's report, at its time.
        let released_at = if id == node(1) { 1000.0 } else { 1001.0 };
        assert_eq!(p.expires_at, released_at + 60.0);
        match p.message {
            Downlink::Run(r) => {
                assert_eq!(r.command_id, cid);
                assert_eq!(r.steps[0].run_command, vec!["echo hi"]);
                assert!(r.uploads.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(w.detail(&cid, 2), D::Pending);

    ingest::apply_update(&rc, &node(1), update(&cid, D::Success, 0, "hi\n"), 1001.0)
        .await
        .unwrap();
    // A redelivered report changes nothing and counts nothing twice.
    assert_eq!(
        ingest::apply_update(&rc, &node(1), update(&cid, D::Success, 0, "hi\n"), 1001.0)
            .await
            .unwrap(),
        ingest::Applied::Unchanged
    );
    assert_eq!(w.command(&cid).tally.success, 1);
    assert_eq!(w.command(&cid).status, "InProgress");
    ingest::apply_update(&rc, &node(2), update(&cid, D::Success, 0, "hi\n"), 1001.0)
        .await
        .unwrap();
    let done = w.command(&cid);
    assert_eq!(
        (done.status.as_str(), done.status_details.as_str()),
        ("Success", "Success")
    );
    assert_eq!(done.tally.completed(), 2);

    let got = operations::get_command_invocation(
        &rc,
        &json!({"CommandId": cid, "InstanceId": node(1)}),
        2000.0,
    )
    .await
    .unwrap();
    assert_eq!(got["StandardOutputContent"], "hi\n");
    assert_eq!(got["ResponseCode"], 0);
    assert_eq!(got["Status"], "Success");
    assert_eq!(got["ExecutionElapsedTime"], "PT1.5S");
    assert_eq!(got["ExecutionStartDateTime"], "1970-01-01T00:16:41.000Z");

    let listed =
        operations::list_command_invocations(&rc, &json!({"CommandId": cid, "Details": true}))
            .await
            .unwrap();
    let invs = listed["CommandInvocations"].as_array().unwrap();
    assert_eq!(invs.len(), 2);
    assert_eq!(invs[0]["CommandPlugins"][0]["Output"], "hi\n");
    assert_eq!(invs[0]["InstanceName"], format!("host-{}", node(1)));

    // The stream's events: one per status change, none for the redelivered
    // report or the counters.
    let feed = w.store.feed.lock().unwrap().clone();
    let invocation_events: Vec<(String, String)> = feed
        .iter()
        .filter(|e| e.detail_type == super::events::INVOCATION_STATUS_CHANGE)
        .map(|e| {
            let d = &e.detail;
            (
                d["instance-id"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        invocation_events,
        [(1, "InProgress"), (1, "Success"), (2, "Success")]
            .map(|(n, status)| (node(n), status.to_string()))
            .to_vec()
    );
    let command_statuses: Vec<&str> = feed
        .iter()
        .filter(|e| e.detail_type == super::events::COMMAND_STATUS_CHANGE)
        .map(|e| e.detail["status"].as_str().unwrap())
        .collect();
    assert_eq!(command_statuses, vec!["Pending", "InProgress", "Success"]);
    let last_command_event = w
        .store
        .feed
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e.detail_type == super::events::COMMAND_STATUS_CHANGE)
        .cloned()
        .unwrap();
    assert_eq!(last_command_event.detail["status"], "Success");
    assert_eq!(last_command_event.detail["command-id"], cid.as_str());
}

#[tokio::test]
async fn redelivered_fan_out_creates_nothing_twice() {
    let w = World::new(&[(1, &[])]);
    let mut body = shell(&[node(1)]);
    body["TimeoutSeconds"] = json!(600);
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let fan = WorkItem::FanOut {
        command_id: cid.clone(),
    };
    dispatch::run(&w.rc(), &fan, 1000.0).await.unwrap();
    // Released already: a redelivered fan-out sends nothing.
    dispatch::run(&w.rc(), &fan, 1001.0).await.unwrap();
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
    // A crash between the send and raising `released` repeats the send.
    w.forget_released(&cid);
    // Moments later it is taken for a run overlapping this one, which is
    // sending it: not resent.
    dispatch::run(&w.rc(), &fan, 1001.0).await.unwrap();
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
    // Redelivered after the visibility timeout, it is.
    w.forget_released(&cid);
    let later = 1000.0 + dispatch::RESEND_AFTER_SECONDS;
    dispatch::run(&w.rc(), &fan, later).await.unwrap();
    assert_eq!(w.store.invocations.lock().unwrap().len(), 1);
    // Resent while Pending, with the same msg_id: the agent drops the repeat.
    let sent = w.mailbox.sent.lock().unwrap().clone();
    let v = w.signer.verifier();
    let ids: Vec<String> = sent
        .iter()
        .map(|(_, b)| v.open(b, &node(1), later).unwrap().msg_id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    // Once started, a redelivered fan-out sends nothing.
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::InProgress, -1, ""),
        1001.0,
    )
    .await
    .unwrap();
    w.forget_released(&cid);
    dispatch::run(&w.rc(), &fan, later + 1.0).await.unwrap();
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_release_that_dies_before_its_sends_is_sent_again() {
    use std::sync::atomic::Ordering;
    let w = World::new(&[(1, &[])]);
    let mut body = shell(&[node(1)]);
    body["TimeoutSeconds"] = json!(600);
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    let fan = WorkItem::FanOut {
        command_id: cid.clone(),
    };
    // The process dies after writing the invocation, before its send;
    // what started it (the fan-out item) is gone with it.
    w.work.items.lock().unwrap().clear();
    w.mailbox.down.store(true, Ordering::SeqCst);
    assert!(dispatch::run(&w.rc(), &fan, 1000.0).await.is_err());
    assert_eq!(w.detail(&cid, 1), D::Pending);
    assert!(w.mailbox.sent.lock().unwrap().is_empty());
    w.mailbox.down.store(false, Ordering::SeqCst);
    // Queued before the write: its deadlines, the delivery one due back
    // early for the resend.
    let queued: Vec<(WorkItem, u32)> = w.work.items.lock().unwrap().clone();
    let early = dispatch::RESEND_AFTER_SECONDS as u32;
    assert!(
        matches!(
            queued.as_slice(),
            [(WorkItem::DeliveryDeadlines { instance_ids, resent: false, .. }, d), (WorkItem::ExecutionDeadlines { .. }, _)]
                if instance_ids == &vec![node(1)] && *d == early
        ),
        "{queued:?}"
    );
    // Its early return sends it, under its message id, and waits on for
    // the deadline.
    let at = 1000.0 + dispatch::RESEND_AFTER_SECONDS;
    let (early_item, _) = queued[0].clone();
    w.work.items.lock().unwrap().clear();
    let outcome = dispatch::run(&w.rc(), &early_item, at).await.unwrap();
    assert!(
        matches!(outcome, dispatch::Outcome::Postponed(_)),
        "{outcome:?}"
    );
    let sent = w.mailbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let msg_id = w.store.get_invocation_now(&cid, 1).unwrap().message_id;
    let v = w.signer.verifier();
    assert_eq!(v.open(&sent[0].1, &node(1), at).unwrap().msg_id, msg_id);
    // Put back once, marked: the resend is not made again, and a resend
    // queues no new deadlines.
    let requeued: Vec<WorkItem> = w
        .work
        .items
        .lock()
        .unwrap()
        .iter()
        .map(|(i, _)| i.clone())
        .collect();
    assert!(
        matches!(requeued.as_slice(), [WorkItem::DeliveryDeadlines { resent: true, at: a, .. }] if *a == 1600.0),
        "{requeued:?}"
    );
    // At the deadline, still unacknowledged: Delivery Timed Out.
    w.drain(1600.0).await;
    assert_eq!(w.detail(&cid, 1), D::DeliveryTimedOut);
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_acknowledged_round_is_not_sent_again() {
    let w = World::new(&[(1, &[])]);
    let mut body = shell(&[node(1)]);
    body["TimeoutSeconds"] = json!(600);
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::InProgress, -1, ""),
        1001.0,
    )
    .await
    .unwrap();
    w.drain(1000.0 + dispatch::RESEND_AFTER_SECONDS).await;
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
    assert_eq!(w.detail(&cid, 1), D::InProgress);
}

#[tokio::test]
async fn unknown_instance_is_refused_and_nothing_written() {
    let w = World::new(&[(1, &[])]);
    let err = w.send(shell(&[node(1), node(9)])).await.unwrap_err();
    assert_eq!(err.code(), "InvalidInstanceId");
    assert!(w.store.commands.lock().unwrap().is_empty());
    assert!(w.work.items.lock().unwrap().is_empty());
    let err = w
        .send(json!({"DocumentName": "Nope", "InstanceIds": [node(1)]}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidDocument");
}

#[tokio::test]
async fn tag_targets_and_empty_matches() {
    let w = World::new(&[(1, &[("env", "dev")]), (2, &[("env", "prod")])]);
    let c = w.send(json!({"DocumentName": "AWS-RunShellScript", "Targets": [{"Key": "tag:env", "Values": ["dev"]}],
        "Parameters": {"commands": ["id"]}})).await.unwrap();
    assert_eq!(c["Command"]["TargetCount"], 1);
    assert_eq!(c["Command"]["InstanceIds"], json!([]));
    let none = w.send(json!({"DocumentName": "AWS-RunShellScript", "Targets": [{"Key": "tag:env", "Values": ["qa"]}],
        "Parameters": {"commands": ["id"]}})).await.unwrap();
    assert_eq!(none["Command"]["TargetCount"], 0);
    assert_eq!(none["Command"]["Status"], "Success");
}

#[tokio::test]
async fn resource_group_targets() {
    let mut w = World::new(&[(1, &[("env", "dev")]), (2, &[("env", "prod")])]);
    w.groups.insert(
        "devs".into(),
        crate::targets::GroupQuery {
            query_type: crate::targets::TAG_FILTERS.into(),
            query: r#"{"ResourceTypeFilters":["AWS::EC2::Instance"],"TagFilters":[{"Key":"env","Values":["dev"]}]}"#.into(),
        },
    );
    let group = |name: &str| {
        json!({"DocumentName": "AWS-RunShellScript",
        "Targets": [{"Key": "resource-groups:Name", "Values": [name]}],
        "Parameters": {"commands": ["id"]}})
    };
    let c = w.send(group("devs")).await.unwrap();
    assert_eq!(c["Command"]["TargetCount"], 1);
    let cid = c["Command"]["CommandId"].as_str().unwrap().to_string();
    assert_eq!(w.store.commands.lock().unwrap().len(), 1);
    let err = w.send(group("nope")).await.unwrap_err();
    assert_eq!(err.code(), "InvalidTarget");
    // The refused request stored nothing.
    let stored = w.store.commands.lock().unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored.contains_key(&cid));
}

#[tokio::test]
async fn delivery_deadline_times_out_pending_invocations() {
    let w = World::new(&[(1, &[]), (2, &[])]);
    let cid = w.send(shell(&[node(1), node(2)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::InProgress, -1, ""),
        1001.0,
    )
    .await
    .unwrap();
    // Not yet due: postponed with the remaining delay.
    let dl = WorkItem::DeliveryDeadline {
        command_id: cid.clone(),
        instance_id: node(2),
        at: 1060.0,
    };
    assert_eq!(
        dispatch::run(&w.rc(), &dl, 1010.0).await.unwrap(),
        dispatch::Outcome::Postponed(50)
    );
    let far = WorkItem::DeliveryDeadline {
        command_id: cid.clone(),
        instance_id: node(2),
        at: 5000.0,
    };
    assert_eq!(
        dispatch::run(&w.rc(), &far, 1010.0).await.unwrap(),
        dispatch::Outcome::Postponed(900)
    );
    // Due: node 2 never started, node 1 did.
    for n in [1, 2] {
        let dl = WorkItem::DeliveryDeadline {
            command_id: cid.clone(),
            instance_id: node(n),
            at: 1060.0,
        };
        dispatch::run(&w.rc(), &dl, 1061.0).await.unwrap();
        dispatch::run(&w.rc(), &dl, 1062.0).await.unwrap();
    }
    assert_eq!(w.detail(&cid, 1), D::InProgress);
    assert_eq!(w.detail(&cid, 2), D::DeliveryTimedOut);
    assert_eq!(w.command(&cid).tally.delivery_timed_out, 1);
    ingest::apply_update(&w.rc(), &node(1), update(&cid, D::Success, 0, "ok"), 1001.0)
        .await
        .unwrap();
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Failed", "Incomplete")
    );
    // A late report for the timed-out node changes nothing.
    ingest::apply_update(
        &w.rc(),
        &node(2),
        update(&cid, D::Success, 0, "late"),
        1001.0,
    )
    .await
    .unwrap();
    assert_eq!(w.detail(&cid, 2), D::DeliveryTimedOut);
    assert_eq!(w.command(&cid).status, "Failed");
}

#[tokio::test]
async fn all_delivery_timeouts_make_the_command_timed_out() {
    let w = World::new(&[(1, &[])]);
    let cid = w.send(shell(&[node(1)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    w.drain(1061.0).await;
    assert_eq!(w.detail(&cid, 1), D::DeliveryTimedOut);
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("TimedOut", "Delivery Timed Out")
    );
}

#[tokio::test]
async fn execution_deadline_catches_a_dead_agent() {
    let w = World::new(&[(1, &[])]);
    let cid = w.send(shell(&[node(1)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::InProgress, -1, ""),
        1001.0,
    )
    .await
    .unwrap();
    // Delivery deadline passes: the invocation had started, it stays.
    w.drain(1061.0).await;
    assert_eq!(w.detail(&cid, 1), D::InProgress);
    // 1060 + 3600 (executionTimeout) + 300.
    w.drain(4959.0).await;
    assert_eq!(w.detail(&cid, 1), D::InProgress);
    w.drain(4961.0).await;
    assert_eq!(w.detail(&cid, 1), D::ExecutionTimedOut);
    assert_eq!(w.command(&cid).status, "TimedOut");
}

#[tokio::test]
async fn another_nodes_report_is_ignored() {
    let w = World::new(&[(1, &[]), (2, &[])]);
    let cid = w.send(shell(&[node(1)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    let r = ingest::apply_update(
        &w.rc(),
        &node(2),
        update(&cid, D::Success, 0, "forged"),
        1001.0,
    )
    .await
    .unwrap();
    assert_eq!(r, ingest::Applied::NotFound);
    assert_eq!(w.detail(&cid, 1), D::Pending);
    assert_eq!(w.command(&cid).tally.success, 0);
}

#[tokio::test]
async fn undeliverable_when_the_queue_is_gone() {
    let mut w = World::new(&[(1, &[]), (2, &[])]);
    w.mailbox.gone.push(format!("q-{}", node(1)));
    let cid = w.send(shell(&[node(1), node(2)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    assert_eq!(w.detail(&cid, 1), D::Undeliverable);
    // No report will come for it: its end released the next target.
    assert_eq!(w.detail(&cid, 2), D::Pending);
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn cancel_pending_and_running() {
    let w = World::new(&[(1, &[]), (2, &[])]);
    let cid = w.send(shell(&[node(1), node(2)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::InProgress, -1, ""),
        1001.0,
    )
    .await
    .unwrap();
    w.drain(1000.0).await;
    let before = w.mailbox.sent.lock().unwrap().len();
    assert_eq!(before, 2);

    let err = operations::cancel_command(
        &w.rc(),
        &json!({"CommandId": "00000000-0000-4000-8000-000000000000"}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "InvalidCommandId");
    operations::cancel_command(&w.rc(), &json!({"CommandId": cid}))
        .await
        .unwrap();
    assert_eq!(w.command(&cid).status, "Cancelling");
    w.drain(1010.0).await;
    assert_eq!(w.detail(&cid, 1), D::Cancelling);
    assert_eq!(w.detail(&cid, 2), D::Cancelled);
    let sent = w.mailbox.sent.lock().unwrap().clone();
    assert_eq!(sent.len() - before, 2);
    let v = w.signer.verifier();
    for (q, b) in &sent[before..] {
        let p = v.open(b, q.trim_start_matches("q-"), 1011.0).unwrap();
        assert!(matches!(p.message, Downlink::Cancel(_)));
    }
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::Cancelled, -1, ""),
        1001.0,
    )
    .await
    .unwrap();
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Cancelled", "Canceled")
    );
    // Cancelling a final command is a no-op.
    operations::cancel_command(&w.rc(), &json!({"CommandId": cid}))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_output_bucket_the_stack_cannot_write_is_refused_and_nothing_is_stored() {
    let w = World::new(&[(1, &[])]);
    let mut body = shell(&[node(1)]);
    body["OutputS3BucketName"] = json!("someone-elses-bucket");
    let err = w.send(body).await.unwrap_err();
    assert_eq!(err.code(), "InvalidOutputFolder");
    assert!(err.to_string().contains("out-bucket, logs"), "{err}");
    assert!(w.store.commands.lock().unwrap().is_empty());
    assert!(w.store.invocations.lock().unwrap().is_empty());
    assert!(w.work.items.lock().unwrap().is_empty());
    assert!(w.store.feed.lock().unwrap().is_empty());
    w.drain(1000.0).await;
    assert!(w.mailbox.sent.lock().unwrap().is_empty());
    // The same command to an allowed bucket goes.
    let mut body = shell(&[node(1)]);
    body["OutputS3BucketName"] = json!("logs");
    w.send(body).await.unwrap();
    assert_eq!(w.store.commands.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn s3_output_urls() {
    let w = World::new(&[(1, &[])]);
    let mut body = shell(&[node(1)]);
    body["OutputS3BucketName"] = json!("out-bucket");
    body["OutputS3KeyPrefix"] = json!("runs");
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    let (_, b) = w.mailbox.sent.lock().unwrap()[0].clone();
    let p = w.signer.verifier().open(&b, &node(1), 1001.0).unwrap();
    let Downlink::Run(r) = p.message else {
        panic!()
    };
    assert_eq!(r.uploads.len(), 1);
    assert!(r.uploads[0].stdout_put_url.contains(&format!(
        "runs/{cid}/{}/awsrunShellScript/0.awsrunShellScript/stdout",
        node(1)
    )));
    let mut u = update(&cid, D::Success, 0, "ok");
    u.plugins[0].uploaded = true;
    ingest::apply_update(&w.rc(), &node(1), u, 1001.0)
        .await
        .unwrap();
    let got = operations::get_command_invocation(
        &w.rc(),
        &json!({"CommandId": cid, "InstanceId": node(1)}),
        2000.0,
    )
    .await
    .unwrap();
    assert_eq!(
        got["StandardOutputUrl"],
        format!(
            "https://s3.local/out-bucket/runs/{cid}/{}/awsrunShellScript/0.awsrunShellScript/stdout",
            node(1)
        )
    );
}

#[tokio::test]
async fn listing_and_paging() {
    let w = World::new(&[(1, &[])]);
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = operations::send_command(&w.rc(), &admin(), &shell(&[node(1)]), 1000.0 + i as f64)
            .await
            .unwrap();
        ids.push(c["Command"]["CommandId"].as_str().unwrap().to_string());
    }
    w.drain(1010.0).await;
    let rc = w.rc();
    let p1 = operations::list_commands(&rc, &json!({"MaxResults": 2}))
        .await
        .unwrap();
    assert_eq!(p1["Commands"].as_array().unwrap().len(), 2);
    assert_eq!(p1["Commands"][0]["CommandId"], ids[4].as_str());
    let tok = p1["NextToken"].as_str().unwrap();
    let p2 = operations::list_commands(&rc, &json!({"MaxResults": 2, "NextToken": tok}))
        .await
        .unwrap();
    assert_eq!(p2["Commands"][0]["CommandId"], ids[2].as_str());
    let all = operations::list_commands(&rc, &json!({"InstanceId": node(1)}))
        .await
        .unwrap();
    assert_eq!(all["Commands"].as_array().unwrap().len(), 5);
    assert!(all.get("NextToken").is_none());
    let after = operations::list_commands(
        &rc,
        &json!({"Filters": [{"key": "InvokedAfter", "value": "1970-01-01T00:16:43Z"}]}),
    )
    .await
    .unwrap();
    assert_eq!(after["Commands"].as_array().unwrap().len(), 2);
    let one = operations::list_commands(&rc, &json!({"CommandId": ids[0]}))
        .await
        .unwrap();
    assert_eq!(one["Commands"].as_array().unwrap().len(), 1);
    assert_eq!(
        operations::list_commands(
            &rc,
            &json!({"CommandId": "00000000-0000-4000-8000-000000000000"})
        )
        .await
        .unwrap_err()
        .code(),
        "InvalidCommandId"
    );
    assert_eq!(
        operations::list_commands(&rc, &json!({"NextToken": "garbage"}))
            .await
            .unwrap_err()
            .code(),
        "InvalidNextToken"
    );

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = operations::list_command_invocations(&rc, &body)
            .await
            .unwrap();
        for inv in page["CommandInvocations"].as_array().unwrap() {
            seen.push(inv["CommandId"].as_str().unwrap().to_string());
        }
        match page.get("NextToken") {
            Some(t) => token = Some(t.as_str().unwrap().into()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    let by_node = operations::list_command_invocations(
        &rc,
        &json!({"InstanceId": node(1), "Filters": [{"key": "Status", "value": "Pending"}]}),
    )
    .await
    .unwrap();
    assert_eq!(by_node["CommandInvocations"].as_array().unwrap().len(), 5);
    let err = operations::get_command_invocation(
        &rc,
        &json!({"CommandId": ids[0], "InstanceId": node(2)}),
        0.0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "InvocationDoesNotExist");
}

#[tokio::test]
async fn a_result_racing_its_in_progress_report_is_still_applied() {
    let w = World::new(&[(1, &[])]);
    let answer = w.send(shell(&[node(1)])).await.unwrap();
    let cid = answer["Command"]["CommandId"].as_str().unwrap().to_string();
    w.drain(1000.0).await;
    assert_eq!(w.detail(&cid, 1), D::Pending);
    // The In Progress report lands between the result's read and its write.
    *w.store.interleave.lock().unwrap() = Some(super::model::Transition::status_only(
        &cid,
        &node(1),
        D::Pending,
        D::InProgress,
    ));
    let result = ingest::apply_update(&w.rc(), &node(1), update(&cid, D::Failed, 3, "x"), 1001.0)
        .await
        .unwrap();
    assert_eq!(result, ingest::Applied::Changed);
    assert_eq!(w.detail(&cid, 1), D::Failed);
    let c = w.command(&cid);
    assert_eq!((c.tally.started, c.tally.failed), (1, 1));
    assert_eq!(c.status, "Failed");
}

// ------------------------------------------------ `{{ssm:…}}` references

async fn put_parameter(
    w: &World,
    name: &str,
    t: crate::parameters::ParameterType,
    value: crate::parameters::StoredValue,
) {
    use crate::parameters::ParameterStore;
    use crate::parameters::model::{Parameter, ParameterVersion, Tier};
    let head = Parameter {
        current: ParameterVersion {
            name: name.into(),
            version: 1,
            parameter_type: t,
            value,
            key_id: None,
            description: None,
            allowed_pattern: None,
            tier: Tier::Standard,
            policies: Vec::new(),
            data_type: "text".into(),
            labels: Default::default(),
            last_modified_date: 0.0,
            last_modified_user: "u".into(),
        },
        oldest_version: 1,
        labels: Default::default(),
        tags: Default::default(),
        policy_due: None,
        revision: 1,
    };
    assert!(w.parameters.put_version(&head, None, None).await.unwrap());
}

fn shell_with(ids: &[String], commands: &[&str]) -> Value {
    json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ids, "Parameters": {"commands": commands}, "TimeoutSeconds": 60})
}

#[tokio::test]
async fn plain_references_are_resolved_in_the_message_only() {
    use crate::parameters::{ParameterType, StoredValue};
    let w = World::new(&[(1, &[])]);
    put_parameter(
        &w,
        "/app/url",
        ParameterType::String,
        StoredValue::Plain("https://x".into()),
    )
    .await;
    let line = "curl {{ ssm:/app/url }} -H {{ssm-secure:/app/token}}";
    // The SecureString named by ssm-secure must exist too.
    let err = w.send(shell_with(&[node(1)], &[line])).await.unwrap_err();
    assert_eq!(err.code(), "InvalidParameters");
    assert!(w.store.commands.lock().unwrap().is_empty());

    let answer = w
        .send(shell_with(&[node(1)], &["curl {{ ssm:/app/url }}"]))
        .await
        .unwrap();
    assert_eq!(
        answer["Command"]["Parameters"]["commands"][0],
        "curl {{ ssm:/app/url }}"
    );
    let cid = answer["Command"]["CommandId"].as_str().unwrap().to_string();
    w.drain(1000.0).await;
    assert_eq!(w.first_run_command(1), vec!["curl https://x"]);
    // The record keeps what was written.
    let c = w.command(&cid);
    assert_eq!(c.steps[0].run_command, vec!["curl {{ ssm:/app/url }}"]);
    assert_eq!(c.parameters["commands"], vec!["curl {{ ssm:/app/url }}"]);
}

#[tokio::test]
async fn a_reference_gone_before_dispatch_fails_the_invocation_once() {
    use crate::parameters::{ParameterStore, ParameterType, StoredValue};
    let w = World::new(&[(1, &[]), (2, &[])]);
    put_parameter(
        &w,
        "/x",
        ParameterType::String,
        StoredValue::Plain("v".into()),
    )
    .await;
    let answer = w
        .send(shell_with(&[node(1), node(2)], &["echo {{ssm:/x}}"]))
        .await
        .unwrap();
    let cid = answer["Command"]["CommandId"].as_str().unwrap().to_string();
    let head = w.parameters.get("/x").await.unwrap().unwrap();
    assert!(w.parameters.delete(&head, head.revision).await.unwrap());
    w.drain(1000.0).await;
    assert!(w.mailbox.sent.lock().unwrap().is_empty());
    // MaxErrors 0: the first failure stops the command; node 2 is never sent.
    assert_eq!(w.detail(&cid, 1), D::Failed);
    assert_eq!(w.detail(&cid, 2), D::Terminated);
    let inv = w.store.invocations.lock().unwrap()[&(cid.clone(), node(1))].clone();
    assert!(
        inv.plugins[0]
            .standard_error_content
            .starts_with("cannot resolve {{ssm:/x}}: parameter /x does not exist"),
        "{}",
        inv.plugins[0].standard_error_content
    );
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.tally.failed, c.tally.terminated),
        ("Failed", 1, 1)
    );
    // A redelivered fan-out changes nothing.
    w.work.items.lock().unwrap().push((
        WorkItem::FanOut {
            command_id: cid.clone(),
        },
        0,
    ));
    w.drain(1000.0).await;
    assert_eq!(w.command(&cid).tally.failed, 1);
}

// ------------------------------------------------ rate control

fn rated(ids: &[String], max_concurrency: &str, max_errors: &str) -> Value {
    let mut body = shell(ids);
    body["MaxConcurrency"] = json!(max_concurrency);
    body["MaxErrors"] = json!(max_errors);
    body
}

impl World {
    /// The first step's lines of the first RunCommand sent to node `n`.
    fn first_run_command(&self, n: u8) -> Vec<String> {
        let sent = self.mailbox.sent.lock().unwrap().clone();
        let (_, body) = sent
            .iter()
            .find(|(q, _)| q.trim_start_matches("q-") == node(n))
            .expect("a message to the node");
        match self
            .signer
            .verifier()
            .open(body, &node(n), 1001.0)
            .unwrap()
            .message
        {
            Downlink::Run(r) => r.steps[0].run_command.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// As if a release crashed after its sends, before raising `released`.
    fn forget_released(&self, cid: &str) {
        self.store
            .commands
            .lock()
            .unwrap()
            .get_mut(cid)
            .unwrap()
            .tally
            .released = 0;
    }

    /// The command's invocations by node number (absent: never released).
    fn invocations_of(&self, cid: &str, nodes: u8) -> Vec<Option<D>> {
        (1..=nodes)
            .map(|n| {
                self.store
                    .get_invocation_now(cid, n)
                    .map(|i| i.status_details)
            })
            .collect()
    }

    async fn report(&self, cid: &str, n: u8, detail: D, code: i32) -> ingest::Applied {
        ingest::apply_update(&self.rc(), &node(n), update(cid, detail, code, ""), 1001.0)
            .await
            .unwrap()
    }

    fn sent_to(&self) -> Vec<String> {
        self.mailbox
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|(q, _)| q.trim_start_matches("q-").to_string())
            .collect()
    }
}

#[tokio::test]
async fn max_concurrency_2_of_10_never_has_more_than_2_in_flight() {
    let nodes: Vec<(u8, &[(&str, &str)])> = (1..=10).map(|n| (n, &[][..])).collect();
    let w = World::new(&nodes);
    let ids: Vec<String> = (1..=10).map(node).collect();
    let cid = w.send(rated(&ids, "2", "0")).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    // The first target goes alone.
    assert_eq!(w.sent_to(), vec![node(1)]);
    let mut most = 0;
    for _ in 0..100 {
        let invs = w.invocations_of(&cid, 10);
        let live: Vec<u8> = (1..=10u8)
            .filter(|n| invs[*n as usize - 1].is_some_and(|d| !d.is_final()))
            .collect();
        most = most.max(live.len());
        assert!(live.len() <= 2, "{invs:?}");
        let Some(&n) = live.first() else { break };
        // Each report arrives twice; the second counts nothing.
        let next = if invs[n as usize - 1] == Some(D::Pending) {
            D::InProgress
        } else {
            D::Success
        };
        assert_eq!(w.report(&cid, n, next, 0).await, ingest::Applied::Changed);
        assert_eq!(w.report(&cid, n, next, 0).await, ingest::Applied::Unchanged);
        // Release items may be repeated too.
        let again = w.work.items.lock().unwrap().clone();
        w.work.items.lock().unwrap().extend(again);
        w.drain(1001.0).await;
    }
    assert_eq!(most, 2);
    assert!(
        w.invocations_of(&cid, 10)
            .iter()
            .all(|d| *d == Some(D::Success))
    );
    // Each node was sent its command once.
    let mut sent = w.sent_to();
    sent.sort();
    assert_eq!(sent, ids);
    let c = w.command(&cid);
    assert_eq!((c.status.as_str(), c.tally.success), ("Success", 10));
    assert_eq!((c.tally.released, c.tally.acknowledged), (10, 10));
}

#[tokio::test]
async fn max_errors_0_stops_at_the_first_error_and_terminates_the_rest() {
    let w = World::new(&[(1, &[]), (2, &[]), (3, &[]), (4, &[])]);
    let ids: Vec<String> = (1..=4).map(node).collect();
    let cid = w.send(rated(&ids, "1", "0")).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    w.report(&cid, 1, D::InProgress, -1).await;
    w.drain(1001.0).await;
    // MaxConcurrency 1: the acknowledgement alone releases nothing more.
    assert_eq!(w.sent_to(), vec![node(1)]);
    w.report(&cid, 1, D::Failed, 1).await;
    w.report(&cid, 1, D::Failed, 1).await;
    w.drain(1002.0).await;
    assert_eq!(
        w.invocations_of(&cid, 4),
        vec![
            Some(D::Failed),
            Some(D::Terminated),
            Some(D::Terminated),
            Some(D::Terminated)
        ]
    );
    assert_eq!(w.sent_to(), vec![node(1)]);
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Failed", "Failed")
    );
    assert_eq!((c.tally.failed, c.tally.terminated), (1, 3));
    // Every invocation's end was published, Terminated included.
    let terminated = w
        .store
        .feed
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            e.detail_type == super::events::INVOCATION_STATUS_CHANGE
                && e.detail["status"] == "Failed"
        })
        .count();
    assert_eq!(terminated, 4);
    // Nothing more happens on a redelivered release.
    w.work.items.lock().unwrap().push((
        WorkItem::Release {
            command_id: cid.clone(),
        },
        0,
    ));
    w.drain(1003.0).await;
    assert_eq!(w.command(&cid).tally.terminated, 3);
}

#[tokio::test]
async fn max_errors_1_lets_the_second_error_stop_it() {
    let nodes: Vec<(u8, &[(&str, &str)])> = (1..=6).map(|n| (n, &[][..])).collect();
    let w = World::new(&nodes);
    let ids: Vec<String> = (1..=6).map(node).collect();
    let cid = w.send(rated(&ids, "1", "1")).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    for n in 1..=6u8 {
        if w.store.get_invocation_now(&cid, n).is_none() {
            break;
        }
        w.report(&cid, n, D::InProgress, -1).await;
        w.report(&cid, n, D::Failed, 2).await;
        w.drain(1001.0).await;
    }
    let invs = w.invocations_of(&cid, 6);
    assert_eq!(&invs[..2], &[Some(D::Failed), Some(D::Failed)]);
    assert!(
        invs[2..].iter().all(|d| *d == Some(D::Terminated)),
        "{invs:?}"
    );
    assert_eq!(w.sent_to(), vec![node(1), node(2)]);
    assert_eq!(w.command(&cid).status, "Failed");
}

#[tokio::test]
async fn delivery_time_outs_are_not_errors() {
    let w = World::new(&[(1, &[]), (2, &[])]);
    let cid = w.send(rated(&[node(1), node(2)], "1", "0")).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    // Node 1 never picks it up: its delivery deadline releases node 2.
    w.drain(1061.0).await;
    assert_eq!(w.detail(&cid, 1), D::DeliveryTimedOut);
    assert_eq!(w.detail(&cid, 2), D::Pending);
    w.report(&cid, 2, D::Success, 0).await;
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Failed", "Incomplete")
    );
}

#[tokio::test]
async fn cancel_closes_the_targets_never_sent() {
    let w = World::new(&[(1, &[]), (2, &[]), (3, &[])]);
    let ids: Vec<String> = (1..=3).map(node).collect();
    let cid = w.send(rated(&ids, "1", "0")).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    w.report(&cid, 1, D::InProgress, -1).await;
    operations::cancel_command(&w.rc(), &json!({"CommandId": cid}))
        .await
        .unwrap();
    w.drain(1001.0).await;
    assert_eq!(
        w.invocations_of(&cid, 3),
        vec![Some(D::Cancelling), Some(D::Cancelled), Some(D::Cancelled)]
    );
    // Only node 1 ever heard of it: its RunCommand, then its CancelCommand.
    assert_eq!(w.sent_to(), vec![node(1), node(1)]);
    w.report(&cid, 1, D::Cancelled, -1).await;
    w.drain(1002.0).await;
    let c = w.command(&cid);
    assert_eq!(
        (c.status.as_str(), c.status_details.as_str()),
        ("Cancelled", "Canceled")
    );
    assert_eq!(w.sent_to().len(), 2);
}

#[tokio::test]
async fn cancelling_a_target_not_yet_sent_is_refused_and_changes_nothing() {
    let w = World::new(&[(1, &[]), (2, &[]), (3, &[])]);
    let ids: Vec<String> = (1..=3).map(node).collect();
    let cid = w.send(rated(&ids, "1", "0")).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    assert_eq!(
        w.invocations_of(&cid, 3),
        vec![Some(D::Pending), None, None]
    );
    let queued = w.work.items.lock().unwrap().len();
    let err = operations::cancel_command(
        &w.rc(),
        &json!({"CommandId": cid, "InstanceIds": [node(1), node(3)]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "InvalidInstanceId");
    assert!(
        err.to_string().contains(&node(3)) && !err.to_string().contains(&node(1)),
        "{err}"
    );
    assert_eq!(w.work.items.lock().unwrap().len(), queued);
    assert!(!w.command(&cid).cancel_requested);
    // A target already sent is cancelled alone; the others still run.
    operations::cancel_command(
        &w.rc(),
        &json!({"CommandId": cid, "InstanceIds": [node(1)]}),
    )
    .await
    .unwrap();
    w.drain(1001.0).await;
    assert_eq!(w.invocations_of(&cid, 3)[0], Some(D::Cancelled));
    assert_eq!(w.invocations_of(&cid, 3)[1], Some(D::Pending));
}

/// A document store holding `docs` (name, YAML content), created through
/// CreateDocument as a user would.
async fn document_store(docs: &[(&str, &str)]) -> crate::documents::store::MemoryDocumentStore {
    let store = crate::documents::store::MemoryDocumentStore::new();
    let caller = admin();
    let scope = crate::arn::ArnScope {
        region: "us-east-1".into(),
        account: "123456789012".into(),
    };
    let ctx = crate::documents::context::DocumentContext {
        store: &store,
        caller: &caller,
        scope: &scope,
        now: 1000.0,
    };
    for (name, content) in docs {
        crate::documents::operations::handle(
            &ctx,
            "CreateDocument",
            &json!({"Name": name, "Content": content, "DocumentFormat": "YAML"}),
        )
        .await
        .unwrap()
        .unwrap();
    }
    store
}

#[tokio::test]
async fn windows_only_documents_are_unsupported_on_steward_nodes() {
    let w = World::new(&[(1, &[])]);
    let docs = document_store(&[
        (
            "WindowsOnly",
            "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runPowerShellScript\n  name: win\n  inputs:\n    runCommand:\n    - Get-Date\n",
        ),
        (
            "OldMixed",
            "schemaVersion: '1.2'\nruntimeConfig:\n  aws:runShellScript:\n    properties:\n    - runCommand:\n      - date\n  aws:runPowerShellScript:\n    properties:\n    - runCommand:\n      - Get-Date\n",
        ),
        (
            "CrossPlatform",
            "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runPowerShellScript\n  name: win\n  precondition:\n    StringEquals: [platformType, Windows]\n  inputs:\n    runCommand:\n    - Get-Date\n- action: aws:runShellScript\n  name: lin\n  inputs:\n    runCommand:\n    - date\n",
        ),
    ])
    .await;
    let send = |name: &str| json!({"DocumentName": name, "InstanceIds": [node(1)]});
    for (name, says) in [
        ("WindowsOnly", "runs on Windows only"),
        (
            "OldMixed",
            "aws:runPowerShellScript is not supported in current platform",
        ),
    ] {
        let err = operations::send_command(
            &RunCommandContext {
                documents: &docs,
                ..w.rc()
            },
            &admin(),
            &send(name),
            1000.0,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "UnsupportedPlatformType", "{name}");
        assert!(err.to_string().contains(says), "{name}: {err}");
        assert!(w.store.commands.lock().unwrap().is_empty());
        assert!(w.work.items.lock().unwrap().is_empty());
    }
    // A cross-platform document runs its Linux step; the Windows one is
    // not sent.
    let out = operations::send_command(
        &RunCommandContext {
            documents: &docs,
            ..w.rc()
        },
        &admin(),
        &send("CrossPlatform"),
        1000.0,
    )
    .await
    .unwrap();
    let cid = out["Command"]["CommandId"].as_str().unwrap().to_string();
    let steps = &w.command(&cid).steps;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].name, "lin");
}

#[tokio::test]
async fn a_default_that_is_a_reference_is_checked_at_send_command() {
    use crate::parameters::{ParameterType, StoredValue};
    let w = World::new(&[(1, &[])]);
    let docs = document_store(&[(
        "FromStore",
        "schemaVersion: '2.2'\nparameters:\n  commands:\n    type: String\n    default: '{{ssm:/run/cmd}}'\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n    - '{{commands}}'\n",
    )])
    .await;
    let body = json!({"DocumentName": "FromStore", "InstanceIds": [node(1)]});
    let err = operations::send_command(
        &RunCommandContext {
            documents: &docs,
            ..w.rc()
        },
        &admin(),
        &body,
        1000.0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameters");
    assert!(err.to_string().contains("/run/cmd"), "{err}");
    assert!(w.store.commands.lock().unwrap().is_empty());

    put_parameter(
        &w,
        "/run/cmd",
        ParameterType::String,
        StoredValue::Plain("echo stored".into()),
    )
    .await;
    operations::send_command(
        &RunCommandContext {
            documents: &docs,
            ..w.rc()
        },
        &admin(),
        &body,
        1000.0,
    )
    .await
    .unwrap();
    w.drain(1000.0).await;
    assert_eq!(w.first_run_command(1), vec!["echo stored"]);
}

/// A key allowed to send commands and write documents everywhere, but to
/// read parameters only under `/P/dev/`.
fn dev_reader() -> crate::access::Caller {
    crate::access::Caller {
        access_key_id: "AKSTDEV".into(),
        user_arn: "arn:aws:iam::123456789012:user/dev".into(),
        policy: crate::access::Policy::parse(
            r#"{"Statement":[
                {"Effect":"Allow","Action":["ssm:SendCommand","ssm:CreateDocument"],"Resource":"*"},
                {"Effect":"Allow","Action":"ssm:GetParameters","Resource":"arn:aws:ssm:*:*:parameter/P/dev/*"}]}"#,
        )
        .unwrap(),
    }
}

#[tokio::test]
async fn references_a_sender_may_not_read_are_refused_wherever_the_steps_get_them() {
    use crate::parameters::{ParameterType, StoredValue};
    let w = World::new(&[(1, &[])]);
    for name in ["/P/prod/db-url", "/P/dev/db-url"] {
        put_parameter(
            &w,
            name,
            ParameterType::String,
            StoredValue::Plain(format!("value-of-{name}")),
        )
        .await;
    }
    let docs = document_store(&[
        (
            "Embedded",
            "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n    - 'echo {{ssm:/P/prod/db-url}}'\n",
        ),
        (
            "Joined",
            "schemaVersion: '2.2'\nparameters:\n  a:\n    type: String\n  b:\n    type: String\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n    - 'echo {{a}}{{b}}'\n",
        ),
        (
            "Child",
            "schemaVersion: '2.2'\nparameters:\n  url:\n    type: String\n    default: '{{ssm:/P/prod/db-url}}'\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n    - 'echo {{url}}'\n",
        ),
        (
            "Parent",
            "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runDocument\n  name: nested\n  inputs:\n    documentType: SSMDocument\n    documentPath: Child\n",
        ),
        (
            "InDirectory",
            "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    workingDirectory: '/tmp/{{ssm:/P/prod/db-url}}'\n    runCommand:\n    - pwd\n",
        ),
    ])
    .await;
    let sender = dev_reader();
    let refused = [
        json!({"DocumentName": "Embedded", "InstanceIds": [node(1)]}),
        json!({"DocumentName": "Joined", "InstanceIds": [node(1)],
               "Parameters": {"a": ["{{ssm:/P/pr"], "b": ["od/db-url}}"]}}),
        json!({"DocumentName": "Parent", "InstanceIds": [node(1)]}),
        json!({"DocumentName": "InDirectory", "InstanceIds": [node(1)]}),
    ];
    for body in &refused {
        let err = operations::send_command(
            &RunCommandContext {
                documents: &docs,
                ..w.rc()
            },
            &sender,
            body,
            1000.0,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException", "{body}: {err}");
        assert!(err.to_string().contains("parameter/P/prod/db-url"), "{err}");
        assert!(!err.to_string().contains("value-of"), "{err}");
        assert!(w.store.commands.lock().unwrap().is_empty(), "{body}");
        assert!(w.work.items.lock().unwrap().is_empty(), "{body}");
    }
    // The same shapes over a parameter the sender may read run, resolved.
    let out = operations::send_command(
        &RunCommandContext {
            documents: &docs,
            ..w.rc()
        },
        &sender,
        &json!({"DocumentName": "Joined", "InstanceIds": [node(1)],
                "Parameters": {"a": ["{{ssm:/P/de"], "b": ["v/db-url}}"]}}),
        1000.0,
    )
    .await
    .unwrap();
    assert!(out["Command"]["CommandId"].is_string());
    w.drain(1000.0).await;
    assert_eq!(w.first_run_command(1), vec!["echo value-of-/P/dev/db-url"]);
}

#[tokio::test]
async fn oversized_parameters_and_steps_are_refused_before_anything_is_stored() {
    let w = World::new(&[(1, &[])]);
    let lines: Vec<String> = (0..100_000).map(|i| format!("echo {i}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let err = w.send(shell_with(&[node(1)], &lines)).await.unwrap_err();
    assert_eq!(err.code(), "InvalidParameters");
    assert!(err.to_string().contains("at most 65536"), "{err}");
    // Within the parameter limit, but a document that repeats a parameter
    // many times expands past what a node is sent.
    let repeated = format!(
        "schemaVersion: '2.2'\nparameters:\n  p:\n    type: String\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n{}",
        "    - 'echo {{p}}'\n".repeat(40)
    );
    let docs = document_store(&[("Repeats", &repeated)]).await;
    let body = json!({"DocumentName": "Repeats", "InstanceIds": [node(1)],
                      "Parameters": {"p": ["x".repeat(60 * 1024)]}});
    let err = operations::send_command(
        &RunCommandContext {
            documents: &docs,
            ..w.rc()
        },
        &admin(),
        &body,
        1000.0,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "InvalidParameters");
    assert!(err.to_string().contains("at most 131072"), "{err}");
    assert!(w.store.commands.lock().unwrap().is_empty());
    assert!(w.work.items.lock().unwrap().is_empty());
}

/// An automation step's command: sent under the id the step chose (a
/// second send answers the same command and sends nothing more), and its
/// end wakes the execution, once, and only at the end.
#[tokio::test]
async fn a_command_an_automation_step_sent_is_sent_once_and_wakes_it_at_its_end() {
    let w = World::new(&[(1, &[])]);
    let id = "0b5f5a34-6c3e-4a2b-9a53-7f1d1d2c9e01";
    let rc = w.rc();
    for _ in 0..2 {
        let answer = operations::send_command_as(
            &rc,
            &admin(),
            &shell(&[node(1)]),
            1000.0,
            id,
            Some("exec-7"),
        )
        .await
        .unwrap();
        assert_eq!(answer["Command"]["CommandId"], id);
    }
    assert_eq!(w.store.commands.lock().unwrap().len(), 1);
    assert_eq!(w.work.items.lock().unwrap().len(), 1, "fanned out once");
    w.drain(1000.0).await;
    ingest::apply_update(&rc, &node(1), update(id, D::InProgress, -1, ""), 1001.0)
        .await
        .unwrap();
    assert!(
        w.automation.wakes.lock().unwrap().is_empty(),
        "not woken before the end"
    );
    ingest::apply_update(&rc, &node(1), update(id, D::Success, 0, "ok\n"), 1001.0)
        .await
        .unwrap();
    assert_eq!(w.command(id).status, "Success");
    assert_eq!(
        w.automation.wakes.lock().unwrap().as_slice(),
        [("exec-7".to_string(), 0)]
    );
}

/// Sends the node's final Success report.
async fn succeed(w: &World, cid: &str, n: u8) {
    let rc = w.rc();
    ingest::apply_update(&rc, &node(n), update(cid, D::Success, 0, "ok"), 1001.0)
        .await
        .unwrap();
}

#[tokio::test]
async fn nodes_not_online_take_no_slot_from_the_living() {
    // Ten targets, four of them dead (ConnectionLost), the first among them.
    let ids: Vec<u8> = (1..=10).collect();
    let mut w = World::new(&ids.iter().map(|n| (*n, &[][..])).collect::<Vec<_>>());
    let dead = [1u8, 3, 5, 7];
    for n in dead {
        w.fleet.offline.insert(node(n));
    }
    let mut body = shell(&ids.iter().map(|n| node(*n)).collect::<Vec<_>>());
    body["MaxConcurrency"] = json!("2");
    body["TimeoutSeconds"] = json!(30);
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    let live: Vec<u8> = ids.iter().copied().filter(|n| !dead.contains(n)).collect();
    // The living finish one after another, each report freeing its slot;
    // no delivery deadline is needed for any of them to be sent.
    for _ in 0..live.len() {
        let pending: Vec<u8> = live
            .iter()
            .copied()
            .filter(|n| {
                w.store
                    .get_invocation_now(&cid, *n)
                    .map(|i| i.status_details)
                    == Some(D::Pending)
            })
            .collect();
        assert!(!pending.is_empty(), "a live node is waiting for a slot");
        assert!(
            pending.len() <= 2,
            "MaxConcurrency 2 among the living: {pending:?}"
        );
        for n in pending {
            succeed(&w, &cid, n).await;
        }
        w.drain(1001.0).await;
        if live.iter().all(|n| w.detail(&cid, *n) == D::Success) {
            break;
        }
    }
    for n in &live {
        assert_eq!(w.detail(&cid, *n), D::Success, "live node {n}");
    }
    // The dead were sent the command too, and still wait for their nodes.
    let sent: Vec<String> = w
        .mailbox
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(q, _)| q.clone())
        .collect();
    for n in dead {
        assert!(
            sent.contains(&format!("q-{}", node(n))),
            "dead node {n} was sent the command"
        );
        assert_eq!(w.detail(&cid, n), D::Pending);
    }
    assert_eq!(w.command(&cid).status, "InProgress");
    // Their delivery time-out ends the command.
    w.drain(1031.0).await;
    for n in dead {
        assert_eq!(w.detail(&cid, n), D::DeliveryTimedOut);
    }
    let c = w.command(&cid);
    assert_eq!((c.tally.success, c.tally.delivery_timed_out), (6, 4));
    assert_eq!(c.status, "Failed", "some targets timed out: Incomplete");
    assert_eq!(c.status_details, "Incomplete");
}

#[tokio::test]
async fn a_dead_node_that_comes_back_runs_and_is_counted_once() {
    let mut w = World::new(&[(1, &[]), (2, &[]), (3, &[])]);
    w.fleet.offline.insert(node(1));
    let mut body = shell(&[node(1), node(2), node(3)]);
    body["MaxConcurrency"] = json!("1");
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    // Node 1 was sent and holds no slot: node 2 went too.
    assert_eq!(w.detail(&cid, 1), D::Pending);
    assert_eq!(w.detail(&cid, 2), D::Pending);
    assert!(
        w.store.get_invocation_now(&cid, 3).is_none(),
        "MaxConcurrency 1 among the living"
    );
    // Node 1 comes back and runs it, In Progress then Success: its moves
    // free nobody's slot and count in the tally once.
    let rc = w.rc();
    ingest::apply_update(&rc, &node(1), update(&cid, D::InProgress, -1, ""), 1001.0)
        .await
        .unwrap();
    succeed(&w, &cid, 1).await;
    w.drain(1001.0).await;
    assert!(
        w.store.get_invocation_now(&cid, 3).is_none(),
        "node 2's slot is still taken"
    );
    succeed(&w, &cid, 2).await;
    w.drain(1001.0).await;
    assert_eq!(w.detail(&cid, 3), D::Pending);
    succeed(&w, &cid, 3).await;
    w.drain(1002.0).await;
    let c = w.command(&cid);
    assert_eq!(c.tally.success, 3);
    assert_eq!((c.tally.offline_released, c.tally.offline_finished), (1, 1));
    assert_eq!(c.tally.acknowledged, 3);
    assert_eq!(c.status, "Success");
}

/// A command on nodes 1..=n whose invocations are all released and Pending.
async fn all_released(w: &World, n: u8) -> String {
    let ids: Vec<String> = (1..=n).map(node).collect();
    let mut body = shell(&ids);
    body["MaxConcurrency"] = json!("100%");
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    let first = w.store.get_invocation_now(&cid, 1).unwrap();
    let rc = w.rc();
    for i in 2..=n {
        let inv = super::model::Invocation {
            instance_id: node(i),
            message_id: format!("m-{i}"),
            ..first.clone()
        };
        rc.store.put_invocation(&inv).await.unwrap();
    }
    rc.store.raise_released(&cid, u32::from(n)).await.unwrap();
    cid
}

mod batched_reports {
    use super::*;
    use proptest::prelude::*;

    /// (node, report): 0 In Progress, 1 Success, 2 Failed.
    fn stream() -> impl Strategy<Value = (u8, Vec<(u8, u8)>, Vec<usize>)> {
        (1u8..=6).prop_flat_map(|n| {
            // Each node's final kind, then its reports with duplicates.
            let finals = proptest::collection::vec(1u8..=2, n as usize);
            let dups = proptest::collection::vec((0usize..3, 1usize..3, any::<bool>()), n as usize);
            (Just(n), finals, dups).prop_flat_map(|(n, finals, dups)| {
                let mut reports = Vec::new();
                for (i, (fin, (ip, fc, _))) in finals.iter().zip(&dups).enumerate() {
                    let node_n = i as u8 + 1;
                    reports.extend(std::iter::repeat_n((node_n, 0u8), *ip));
                    reports.extend(std::iter::repeat_n((node_n, *fin), *fc));
                }
                let len = reports.len();
                (
                    Just(n),
                    Just(reports).prop_shuffle(),
                    proptest::collection::vec(1usize..=10, len.max(1)),
                )
            })
        })
    }

    fn report_of(cid: &str, kind: u8) -> InvocationUpdate {
        match kind {
            0 => update(cid, D::InProgress, -1, ""),
            1 => update(cid, D::Success, 0, "ok"),
            _ => update(cid, D::Failed, 1, "no"),
        }
    }

    fn statuses(w: &World, cid: &str, n: u8) -> Vec<D> {
        (1..=n).map(|i| w.detail(cid, i)).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn batches_match_one_at_a_time((n, reports, sizes) in stream()) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let nodes: Vec<(u8, &[(&str, &str)])> = (1..=n).map(|i| (i, &[][..])).collect();
                let alone = World::new(&nodes);
                let batched = World::new(&nodes);
                let a = all_released(&alone, n).await;
                let b = all_released(&batched, n).await;
                for (node_n, kind) in &reports {
                    ingest::apply_update(&alone.rc(), &node(*node_n), report_of(&a, *kind), 1001.0).await.unwrap();
                }
                // The same stream, split into batches of the sizes drawn.
                let mut rest = reports.as_slice();
                let mut sizes = sizes.iter().cycle();
                while !rest.is_empty() {
                    let k = (*sizes.next().unwrap()).min(rest.len());
                    let (batch, tail) = rest.split_at(k);
                    rest = tail;
                    let batch = batch
                        .iter()
                        .map(|(node_n, kind)| ingest::Report { node_id: node(*node_n), update: report_of(&b, *kind) })
                        .collect();
                    ingest::apply_updates(&batched.rc(), batch, 1001.0).await.unwrap();
                }
                let (ca, cb) = (alone.command(&a), batched.command(&b));
                prop_assert_eq!(ca.tally, cb.tally);
                prop_assert_eq!((&ca.status, &ca.status_details), (&cb.status, &cb.status_details));
                prop_assert_eq!(statuses(&alone, &a, n), statuses(&batched, &b, n));
                // And both are right: every node ends as its final report says,
                // counted once.
                let finals: Vec<D> = (1..=n)
                    .map(|i| {
                        let k = reports.iter().find(|(m, k)| *m == i && *k != 0).map(|(_, k)| *k);
                        if k == Some(1) { D::Success } else { D::Failed }
                    })
                    .collect();
                prop_assert_eq!(statuses(&batched, &b, n), finals.clone());
                let success = finals.iter().filter(|d| **d == D::Success).count() as u32;
                prop_assert_eq!((cb.tally.success, cb.tally.failed), (success, u32::from(n) - success));
                prop_assert_eq!(cb.tally.acknowledged, u32::from(n));
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn a_round_is_signed_once_and_its_deadlines_are_two_work_items() {
    use std::sync::atomic::Ordering;
    let ids: Vec<u8> = (1..=8).collect();
    let w = World::new(&ids.iter().map(|n| (*n, &[][..])).collect::<Vec<_>>());
    let mut body = shell(&ids.iter().map(|n| node(*n)).collect::<Vec<_>>());
    body["MaxConcurrency"] = json!("100%");
    let cid = w.send(body).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    assert_eq!(w.signer.signed.load(Ordering::SeqCst), 1);
    w.work.items.lock().unwrap().clear();
    // Node 1 acknowledges: the ramp releases two more, in one round, made
    // by the report's own handling.
    ingest::apply_update(
        &w.rc(),
        &node(1),
        update(&cid, D::InProgress, -1, ""),
        1000.5,
    )
    .await
    .unwrap();
    assert_eq!(w.mailbox.sent.lock().unwrap().len(), 3);
    assert_eq!(
        w.signer.signed.load(Ordering::SeqCst),
        2,
        "one signature per round"
    );
    let deadlines: Vec<WorkItem> = w
        .work
        .items
        .lock()
        .unwrap()
        .iter()
        .map(|(i, _)| i.clone())
        .collect();
    let [
        WorkItem::DeliveryDeadlines {
            instance_ids: d, ..
        },
        WorkItem::ExecutionDeadlines {
            instance_ids: e, ..
        },
    ] = deadlines.as_slice()
    else {
        panic!("two deadline items for the round: {deadlines:?}");
    };
    assert_eq!((d, e), (&vec![node(2), node(3)], &vec![node(2), node(3)]));
    // Each node's message opens for that node alone.
    let v = w.signer.verifier();
    for (q, b) in w.mailbox.sent.lock().unwrap().iter() {
        let id = q.trim_start_matches("q-");
        assert!(v.open(b, id, 1001.0).is_ok());
        let other = if id == node(1) { node(2) } else { node(1) };
        assert!(v.open(b, &other, 1001.0).is_err());
    }
    // When due, the round's deadline time both out together.
    w.drain(1061.0).await;
    assert_eq!(w.detail(&cid, 2), D::DeliveryTimedOut);
    assert_eq!(w.detail(&cid, 3), D::DeliveryTimedOut);
}

#[tokio::test]
async fn deadline_items_of_a_final_command_are_dropped_not_put_back() {
    let w = World::new(&[(1, &[])]);
    let cid = w.send(shell(&[node(1)])).await.unwrap()["Command"]["CommandId"]
        .as_str()
        .unwrap()
        .to_string();
    w.drain(1000.0).await;
    assert!(
        !w.work.items.lock().unwrap().is_empty(),
        "the deadlines wait"
    );
    succeed(&w, &cid, 1).await;
    assert_eq!(w.command(&cid).status, "Success");
    // Before the deadlines: they come back from SQS's longest delay, see the
    // command final, and are not enqueued again.
    w.drain(1010.0).await;
    assert!(w.work.items.lock().unwrap().is_empty());
}
