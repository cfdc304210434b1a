//! Ingest's invocation updates against the local stack
//! (`source .local/stack.env`): one node's report moves its own invocation
//! once, and the command follows.

use serde_json::json;
use steward_aws::Stack;
use steward_aws::commands::{CommandTable, RunCommandAdapters};
use steward_aws::testing::{registered_node, sent_and_fanned_out, stack};
use steward_core::channel::{InvocationUpdate, PluginResult};
use steward_core::clock::now_epoch;
use steward_core::run_command::ingest::apply_update;
use steward_core::run_command::ports::CommandStore;
use steward_core::run_command::status::InvocationDetail as D;

async fn node(stack: &Stack) -> String {
    registered_node(stack, "ingest").await.0
}

fn update(cid: &str, detail: D, stdout: String) -> InvocationUpdate {
    InvocationUpdate {
        command_id: cid.into(),
        detail,
        response_code: if detail == D::Success { 0 } else { -1 },
        execution_start: Some(now_epoch()),
        execution_end: detail.is_final().then(now_epoch),
        plugins: vec![PluginResult {
            name: "aws:runShellScript".into(),
            detail,
            response_code: if detail == D::Success { 0 } else { -1 },
            start: None,
            end: None,
            stdout,
            stderr: String::new(),
            uploaded: false,
        }],
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn reports_apply_once_to_the_senders_invocation() {
    let stack = stack().await;
    let (n1, n2) = (node(&stack).await, node(&stack).await);
    let adapters = RunCommandAdapters::new(&stack);
    let rc = adapters.ports();
    let cid = sent_and_fanned_out(
        &rc,
        &json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": [n1],
                "Parameters": {"commands": ["yes | head -c 30000"]}}),
        now_epoch(),
    )
    .await;

    // n2 has no invocation of this command: its report is ignored.
    apply_update(&rc, &n2, update(&cid, D::Success, "x".into()), now_epoch())
        .await
        .unwrap();
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

    apply_update(
        &rc,
        &n1,
        update(&cid, D::InProgress, String::new()),
        now_epoch(),
    )
    .await
    .unwrap();
    // Too long for SSM's inline limit: kept to its first 24,000 characters.
    let long = "y\n".repeat(15_000);
    for _ in 0..2 {
        apply_update(
            &rc,
            &n1,
            update(&cid, D::Success, long.clone()),
            now_epoch(),
        )
        .await
        .unwrap();
    }
    let inv = store.get_invocation(&cid, &n1).await.unwrap().unwrap();
    assert_eq!(inv.status_details, D::Success);
    assert_eq!(
        inv.plugins[0].standard_output_content.chars().count(),
        24_000
    );
    let c = store.get_command(&cid).await.unwrap().unwrap();
    assert_eq!(
        (c.status.as_str(), c.tally.success, c.tally.started),
        ("Success", 1, 1)
    );
}
