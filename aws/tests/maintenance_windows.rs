//! The maintenance windows' adapter against the local stack (`source
//! .local/stack.env`): the same rules as
//! `steward_core::maintenance_windows::memory`, and the tick over it.

use serde_json::json;
use steward_aws::maintenance_windows::{WindowAdapters, WindowTable};
use steward_aws::testing::{admin, drop_table, stack, table_like, with_settings};
use steward_core::maintenance_windows::model::{Execution, Window, WindowTarget, status};
use steward_core::maintenance_windows::ops::handle;
use steward_core::maintenance_windows::ports::{Due, WindowStore};
use steward_core::schedule::runs::memory::FakeRuns;
use steward_core::targets::Target;

async fn own_table() -> (steward_aws::Stack, String) {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.maintenance_windows_table).await;
    let own = with_settings(&shared, |s| s.maintenance_windows_table = table.clone());
    (own, table)
}

fn window(id: &str, next_due: Option<i64>) -> Window {
    Window {
        id: id.into(),
        name: "nightly".into(),
        description: None,
        start_date: None,
        start_epoch: None,
        end_date: None,
        end_epoch: None,
        schedule: "cron(0 0 * * ? *)".into(),
        schedule_timezone: None,
        schedule_offset: None,
        duration: 2,
        cutoff: 1,
        allow_unassociated_targets: false,
        enabled: true,
        created: 1000.5,
        modified: 1000.5,
        tags: Default::default(),
        next_due,
        next_scheduled: next_due,
        fingerprint: None,
        revision: 1,
    }
}

fn execution(window_id: &str, id: &str, start: f64, due: bool) -> Execution {
    Execution {
        window_id: window_id.into(),
        id: id.into(),
        status: status::IN_PROGRESS.into(),
        status_details: None,
        scheduled: start as i64,
        window_start: start as i64,
        start_time: start,
        end_time: None,
        duration: 2,
        cutoff: 1,
        tasks: Vec::new(),
        cancel_requested: false,
        cut_off: false,
        due,
        revision: 1,
    }
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn maintenance_windows_are_written_once_updated_on_their_revision_and_found_when_due() {
    let (own, table) = own_table().await;
    let store = WindowTable::new(&own);
    let a = window("mw-0000000000000000a", Some(2000));
    let b = window("mw-0000000000000000b", None);
    assert!(store.insert_window(&a).await.unwrap());
    assert!(!store.insert_window(&a).await.unwrap());
    assert!(store.insert_window(&b).await.unwrap());
    assert_eq!(store.get_window(&a.id).await.unwrap(), Some(a.clone()));
    let ids: Vec<String> = store
        .list_windows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, vec![a.id.clone(), b.id.clone()]);

    // Due: the window at its time, not before; executions while due.
    assert!(store.due(1999).await.unwrap().is_empty());
    assert_eq!(store.due(2000).await.unwrap(), vec![Due::Window(a.clone())]);
    let mut claimed = a.clone();
    claimed.next_due = None;
    claimed.revision = 2;
    assert!(store.update_window(&claimed, 1).await.unwrap());
    assert!(!store.update_window(&claimed, 1).await.unwrap());
    assert!(store.due(5000).await.unwrap().is_empty());

    let e1 = execution(&a.id, "e0000000-0000-0000-0000-000000000001", 2000.0, true);
    let e2 = execution(&a.id, "e0000000-0000-0000-0000-000000000002", 3000.0, false);
    assert!(store.insert_execution(&e1).await.unwrap());
    assert!(!store.insert_execution(&e1).await.unwrap());
    assert!(store.insert_execution(&e2).await.unwrap());
    assert_eq!(
        store.due(1).await.unwrap(),
        vec![Due::Execution(e1.clone())]
    );
    let listed: Vec<String> = store
        .list_executions(&a.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(listed, vec![e2.id.clone(), e1.id.clone()]);
    let mut done = e1.clone();
    done.due = false;
    done.status = status::SUCCESS.into();
    done.revision = 2;
    assert!(store.update_execution(&done, 1).await.unwrap());
    assert!(store.due(10_000).await.unwrap().is_empty());

    // Targets: conditional on their revision; the window's delete takes
    // everything under it.
    let t = WindowTarget {
        window_id: a.id.clone(),
        id: "00000000-0000-0000-0000-00000000000t".into(),
        resource_type: "INSTANCE".into(),
        targets: vec![Target {
            key: "InstanceIds".into(),
            values: vec!["mi-0123456789abcdef0".into()],
        }],
        owner_information: Some("team".into()),
        name: None,
        description: None,
        fingerprint: None,
        revision: 1,
    };
    assert!(store.insert_target(&t).await.unwrap());
    assert_eq!(store.list_targets(&a.id).await.unwrap(), vec![t.clone()]);
    let mut stale = t.clone();
    stale.revision = 7;
    assert!(!store.delete_target(&stale).await.unwrap());
    store.delete_window(&a.id).await.unwrap();
    assert_eq!(store.get_window(&a.id).await.unwrap(), None);
    assert!(store.list_targets(&a.id).await.unwrap().is_empty());
    assert!(store.list_executions(&a.id).await.unwrap().is_empty());
    drop_table(&own, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn maintenance_windows_run_a_task_through_the_tick() {
    let (own, table) = own_table().await;
    let adapters = WindowAdapters::new(&own);
    let caller = admin();
    let node = "mi-0123456789abcdef0";
    let runs = FakeRuns::default();
    runs.nodes.lock().unwrap().insert(node.into(), Vec::new());
    let t0 = 1_700_000_000.0;
    let ctx = adapters.context(&caller, t0);
    let w = handle(
        &ctx,
        "CreateMaintenanceWindow",
        &json!({"Name": "nightly", "Schedule": "cron(0 0 * * ? *)", "Duration": 2,
                "Cutoff": 1, "AllowUnassociatedTargets": true}),
    )
    .await
    .unwrap()
    .unwrap()["WindowId"]
        .as_str()
        .unwrap()
        .to_string();
    handle(
        &ctx,
        "RegisterTaskWithMaintenanceWindow",
        &json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
                "Targets": [{"Key": "InstanceIds", "Values": [node]}],
                "TaskInvocationParameters": {"RunCommand": {"Parameters": {"commands": ["true"]}}}}),
    )
    .await
    .unwrap()
    .unwrap();
    let due = 1_700_006_400.0;
    let r = adapters.run_due(&runs, due, 60).await.unwrap();
    assert_eq!(r.opened, 1);
    adapters.run_due(&runs, due + 1.0, 60).await.unwrap();
    let sent: Vec<String> = runs.commands.lock().unwrap().keys().cloned().collect();
    assert_eq!(sent.len(), 1);
    runs.finish(
        &sent[0],
        steward_core::schedule::runs::RunOutcome {
            status: "Success".into(),
            is_final: true,
            nodes: Vec::new(),
        },
    );
    let r = adapters.run_due(&runs, due + 2.0, 60).await.unwrap();
    assert_eq!(r.finished, 1);
    let execs = adapters.store.list_executions(&w).await.unwrap();
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].status, status::SUCCESS);
    assert_eq!(
        adapters
            .store
            .get_window(&w)
            .await
            .unwrap()
            .unwrap()
            .next_due,
        Some(due as i64 + 86_400)
    );
    drop_table(&own, &table).await;
}
