//! Automation's adapters against the local stack (`source .local/stack.env`):
//! the same rules as `steward_core::automation::memory`.

use std::collections::BTreeMap;

use serde_json::json;
use steward_aws::automation::{ExecutionTable, SqsAutomationQueue, Wake};
use steward_aws::testing::{drop_table, queue, receive_all, stack, table_like, with_settings};
use steward_core::automation::execution::{AutomationStatus, Execution};
use steward_core::automation::ports::{AutomationQueue, ExecutionStore};

fn execution(id: &str, requested: f64) -> Execution {
    let mut e = Execution::new(
        id.into(),
        "Restart".into(),
        "1".into(),
        BTreeMap::from([("Node".to_string(), json!("mi-0123456789abcdef0"))]),
        "arn:aws:iam::000000000000:user/alice".into(),
    );
    e.requested_time = requested;
    e.run_as = "alice".into();
    e
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn executions_are_created_once_updated_on_their_revision_and_listed_newest_first() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.automation_table).await;
    let own = with_settings(&shared, |s| s.automation_table = table.clone());
    let store = ExecutionTable::new(&own);

    let first = execution("e-1", 100.0);
    assert!(store.create(&first).await.unwrap());
    assert!(
        !store.create(&first).await.unwrap(),
        "an id is created once"
    );
    assert_eq!(store.get("e-1").await.unwrap(), Some(first.clone()));
    assert_eq!(store.get("e-none").await.unwrap(), None);

    let mut next = first.clone();
    next.status = AutomationStatus::InProgress;
    next.revision = 1;
    assert!(store.update(&next, 0).await.unwrap());
    let mut stale = first.clone();
    stale.status = AutomationStatus::Failed;
    stale.revision = 1;
    assert!(
        !store.update(&stale, 0).await.unwrap(),
        "a write on an old revision is refused"
    );
    assert_eq!(
        store.get("e-1").await.unwrap().unwrap().status,
        AutomationStatus::InProgress
    );

    for (id, t) in [("e-2", 200.0), ("e-3", 300.0)] {
        assert!(store.create(&execution(id, t)).await.unwrap());
    }
    let page = store.list(2, None).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|e| e.execution_id.as_str()).collect();
    assert_eq!(ids, ["e-3", "e-2"]);
    let rest = store.list(2, page.next_token.as_deref()).await.unwrap();
    let ids: Vec<&str> = rest.items.iter().map(|e| e.execution_id.as_str()).collect();
    assert_eq!(ids, ["e-1"]);
    assert_eq!(
        store.list(2, Some("garbage")).await.unwrap_err().code(),
        "InvalidNextToken"
    );
    drop_table(&shared, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn a_record_too_large_for_an_item_is_refused_in_words() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.automation_table).await;
    let own = with_settings(&shared, |s| s.automation_table = table.clone());
    let store = ExecutionTable::new(&own);
    let mut big = execution("e-big", 1.0);
    big.parameters
        .insert("Blob".into(), json!("x".repeat(400 * 1024)));
    let e = store.create(&big).await.unwrap_err();
    assert_eq!(e.code(), "AutomationExecutionLimitExceededException");
    assert!(e.to_string().contains("350 KB"), "{e}");
    assert_eq!(store.get("e-big").await.unwrap(), None);
    drop_table(&shared, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn wake_ups_carry_the_execution_id() {
    let shared = stack().await;
    let url = queue(&shared, "automation").await;
    let own = with_settings(&shared, |s| s.automation_queue_url = url.clone());
    SqsAutomationQueue::new(&own).wake("e-9", 0).await.unwrap();
    let got = receive_all(&shared, &url).await;
    let wakes: Vec<Wake> = got
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(
        wakes,
        [Wake {
            execution_id: "e-9".into()
        }]
    );
}
