//! The associations' adapter against the local stack (`source
//! .local/stack.env`): the same conditions as
//! `steward_core::associations::memory`, and the tick over it.

use std::collections::BTreeMap;

use steward_aws::associations::AssociationTable;
use steward_aws::testing::{drop_table, stack, table_like, with_settings};
use steward_core::associations::model::{
    Association, Execution, ExecutionTarget, InstanceStatus, Marker, Overview, legacy_key,
};
use steward_core::associations::ports::{AssociationStore, Due};
use steward_core::targets::Target;

fn association(id: &str, instance: Option<&str>) -> Association {
    Association {
        association_id: id.into(),
        association_version: 1,
        name: "AWS-RunShellScript".into(),
        document_version: None,
        instance_id: instance.map(String::from),
        targets: if instance.is_some() {
            Vec::new()
        } else {
            vec![Target {
                key: "tag:env".into(),
                values: vec!["dev".into()],
            }]
        },
        parameters: BTreeMap::from([("commands".to_string(), vec!["echo hi".to_string()])]),
        schedule_expression: None,
        apply_only_at_cron_interval: false,
        schedule_offset: None,
        max_concurrency: None,
        max_errors: None,
        compliance_severity: None,
        sync_compliance: None,
        association_name: Some("say-hi".into()),
        output_location: None,
        automation_target_parameter_name: None,
        automation: false,
        tags: BTreeMap::new(),
        date: 1000.0,
        last_update: 1000.0,
        overview: Overview::pending(),
        last_execution_date: None,
        last_successful_execution_date: None,
        run_as: "alice".into(),
        run_now: true,
        slot: None,
        next_due: Some(1000.0),
        revision: 1,
    }
}

fn execution(association_id: &str, id: &str) -> Execution {
    Execution {
        association_id: association_id.into(),
        association_version: 1,
        execution_id: id.into(),
        status: "Pending".into(),
        detailed_status: "Pending".into(),
        created: 1000.0,
        last_execution_date: None,
        resource_counts: BTreeMap::new(),
        request: serde_json::json!({"DocumentName": "AWS-RunShellScript"}),
        automation: false,
        run_as: "alice".into(),
        automation_execution_id: None,
        node: None,
        recorded: Vec::new(),
        document_name: "AWS-RunShellScript".into(),
        document_version: "1".into(),
        association_name: None,
        title: "AWS-RunShellScript".into(),
        severity: "UNSPECIFIED".into(),
        sync_auto: true,
        output_url: None,
        next_due: Some(1000.0),
        revision: 1,
    }
}

async fn own_table() -> (steward_aws::Stack, String) {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.associations_table).await;
    let own = with_settings(&shared, |s| s.associations_table = table.clone());
    (own, table)
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn associations_are_written_on_their_revision_and_listed() {
    let (own, table) = own_table().await;
    let store = AssociationTable::new(&own);
    let a = association(
        "11111111-0000-0000-0000-000000000001",
        Some("mi-0123456789abcdef0"),
    );
    let key = a.legacy_key();
    assert!(store.create(&a, key.as_deref()).await.unwrap());
    assert_eq!(store.get(&a.association_id).await.unwrap(), Some(a.clone()));
    // The legacy key is taken: a second association for the pair is refused.
    let b = association(
        "11111111-0000-0000-0000-000000000002",
        Some("mi-0123456789abcdef0"),
    );
    assert!(!store.create(&b, key.as_deref()).await.unwrap());
    assert_eq!(
        store
            .legacy(&legacy_key("AWS-RunShellScript", "mi-0123456789abcdef0"))
            .await
            .unwrap(),
        Some(a.association_id.clone())
    );
    let c = association("11111111-0000-0000-0000-000000000003", None);
    assert!(store.create(&c, None).await.unwrap());
    assert_eq!(store.list().await.unwrap().len(), 2);

    let mut next = a.clone();
    next.association_version = 2;
    next.revision = 2;
    next.next_due = None;
    assert!(store.update(&next, 1, true).await.unwrap());
    assert!(!store.update(&next, 1, true).await.unwrap());
    let versions = store.versions(&a.association_id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1], next);

    // Only c is due now (a's head has nothing due any more).
    let due = store.due(2000.0).await.unwrap();
    assert_eq!(due, vec![Due::Association(c.association_id.clone())]);
    assert!(store.due(10.0).await.unwrap().is_empty());

    assert!(!store.delete(&a).await.unwrap());
    assert!(store.delete(&next).await.unwrap());
    assert_eq!(store.get(&a.association_id).await.unwrap(), None);
    assert!(store.versions(&a.association_id).await.unwrap().is_empty());
    // The key is free again.
    assert!(store.create(&b, key.as_deref()).await.unwrap());
    drop_table(&own, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn associations_executions_results_and_markers_round_trip() {
    let (own, table) = own_table().await;
    let store = AssociationTable::new(&own);
    let id = "11111111-0000-0000-0000-000000000009";
    let e = execution(id, "22222222-0000-0000-0000-000000000001");
    assert!(store.put_execution(&e).await.unwrap());
    assert!(!store.put_execution(&e).await.unwrap());
    let mut next = e.clone();
    next.status = "Success".into();
    next.next_due = None;
    next.revision = 2;
    assert!(store.update_execution(&next, 1).await.unwrap());
    assert!(!store.update_execution(&next, 1).await.unwrap());
    assert_eq!(
        store.execution(id, &e.execution_id).await.unwrap(),
        Some(next.clone())
    );
    assert_eq!(store.executions(id).await.unwrap(), vec![next]);
    assert!(store.due(5000.0).await.unwrap().is_empty());

    let t = ExecutionTarget {
        association_id: id.into(),
        association_version: 1,
        execution_id: e.execution_id.clone(),
        resource_id: "mi-0123456789abcdef0".into(),
        resource_type: "ManagedInstance".into(),
        status: "Success".into(),
        detailed_status: "Success".into(),
        last_execution_date: 1001.0,
        output_source_id: e.execution_id.clone(),
        output_source_type: "RunCommand".into(),
    };
    store.put_target(&t).await.unwrap();
    store.put_target(&t).await.unwrap();
    assert_eq!(store.targets(id, &e.execution_id).await.unwrap(), vec![t]);

    let st = InstanceStatus {
        association_id: id.into(),
        instance_id: "mi-0123456789abcdef0".into(),
        name: "AWS-RunShellScript".into(),
        document_version: "1".into(),
        association_version: 1,
        execution_date: 1001.0,
        status: "Success".into(),
        detailed_status: "Success".into(),
        execution_summary: "ok".into(),
        error_code: None,
        output_url: None,
        association_name: None,
    };
    store.put_instance_status(&st).await.unwrap();
    assert_eq!(
        store
            .instance_statuses("mi-0123456789abcdef0")
            .await
            .unwrap(),
        vec![st]
    );

    let m = Marker {
        instance_id: "mi-0123456789abcdef0".into(),
        written: 1000.0,
        next_due: 1000.0,
    };
    store.put_marker(&m).await.unwrap();
    assert_eq!(
        store.due(1000.0).await.unwrap(),
        vec![Due::Marker(m.instance_id.clone())]
    );
    let later = Marker {
        next_due: 1030.0,
        ..m.clone()
    };
    assert!(store.postpone_marker(&later).await.unwrap());
    assert!(store.due(1000.0).await.unwrap().is_empty());
    assert!(!store.delete_marker(&m.instance_id, 999.0).await.unwrap());
    assert!(store.delete_marker(&m.instance_id, 1000.0).await.unwrap());
    assert_eq!(store.marker(&m.instance_id).await.unwrap(), None);
    drop_table(&own, &table).await;
}
