//! Compliance's adapter against the local stack (`source .local/stack.env`):
//! the same rules as `steward_core::compliance::memory`, and the operation's
//! write over the real tables.

use std::collections::BTreeMap;

use steward_aws::compliance::ComplianceTable;
use steward_aws::testing::{drop_table, registered_node, stack, table_like, with_settings};
use steward_core::compliance::model::{
    ComplianceRecord, ExecutionSummary, ItemEntry, Severity, Status, StoredItem,
};
use steward_core::compliance::ports::{ComplianceStore, SummaryKey};
use steward_core::compliance::put::MAX_ITEMS_BYTES;
use steward_core::compliance::{ComplianceWrite, UploadType, put_items};

fn execution() -> ExecutionSummary {
    ExecutionSummary {
        execution_time: 1_700_000_000.0,
        execution_id: Some("run-1".into()),
        execution_type: Some("Command".into()),
    }
}

fn entry(id: &str, status: Status) -> ItemEntry {
    ItemEntry {
        id: id.into(),
        title: format!("{id} title"),
        severity: Severity::High,
        status,
        details: BTreeMap::from([("Source".to_string(), "test".to_string())]),
    }
}

fn record(resource: &str, ctype: &str, items: Vec<ItemEntry>, revision: u64) -> ComplianceRecord {
    ComplianceRecord {
        resource_id: resource.into(),
        resource_type: "ManagedInstance".into(),
        compliance_type: ctype.into(),
        execution: execution(),
        items: items
            .into_iter()
            .map(|entry| StoredItem {
                entry,
                execution: execution(),
            })
            .collect(),
        content_hash: None,
        revision,
    }
}

fn keys(page: &[steward_core::compliance::model::ResourceSummary]) -> Vec<String> {
    page.iter()
        .map(|s| format!("{}/{}", s.compliance_type, s.resource_id))
        .collect()
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn records_are_written_on_their_revision_and_summaries_listed_by_type_then_node() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.compliance_table).await;
    let own = with_settings(&shared, |s| s.compliance_table = table.clone());
    let store = ComplianceTable::new(&own);
    let (a, b) = ("mi-0000000000000000a", "mi-0000000000000000b");

    let first = record(a, "Custom:Disk", vec![entry("x", Status::Compliant)], 1);
    assert!(store.put(&first, None).await.unwrap());
    assert!(
        !store.put(&first, None).await.unwrap(),
        "a record is created once"
    );
    assert_eq!(
        store.get(a, "Custom:Disk").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get(a, "Custom:Other").await.unwrap(), None);

    let next = record(a, "Custom:Disk", vec![entry("y", Status::NonCompliant)], 2);
    assert!(store.put(&next, Some(1)).await.unwrap());
    let stale = record(a, "Custom:Disk", vec![entry("z", Status::Compliant)], 2);
    assert!(
        !store.put(&stale, Some(1)).await.unwrap(),
        "a write on an old revision is refused"
    );
    assert_eq!(
        store.get(a, "Custom:Disk").await.unwrap(),
        Some(next.clone())
    );

    for (resource, ctype) in [(a, "Custom:DiskB"), (b, "Custom:Disk"), (a, "Patch")] {
        assert!(
            store
                .put(&record(resource, ctype, vec![], 1), None)
                .await
                .unwrap()
        );
    }
    let types: Vec<String> = store
        .resource(a)
        .await
        .unwrap()
        .iter()
        .map(|r| r.compliance_type.clone())
        .collect();
    assert_eq!(types, ["Custom:Disk", "Custom:DiskB", "Patch"]);

    // A type's nodes come together, before a longer type's.
    let (all, more) = store.summaries(None, 10).await.unwrap();
    assert!(!more);
    assert_eq!(
        keys(&all),
        [
            format!("Custom:Disk/{a}"),
            format!("Custom:Disk/{b}"),
            format!("Custom:DiskB/{a}"),
            format!("Patch/{a}"),
        ]
    );
    assert_eq!(all[0].summary.status, Status::NonCompliant);
    assert_eq!(all[0].summary.non_compliant.high, 1);
    let (page, more) = store.summaries(None, 1).await.unwrap();
    assert!(more);
    assert_eq!(keys(&page), [format!("Custom:Disk/{a}")]);
    let after_node = SummaryKey {
        compliance_type: "Custom:Disk".into(),
        resource_id: Some(a.into()),
    };
    let (page, _) = store.summaries(Some(&after_node), 10).await.unwrap();
    assert_eq!(keys(&page)[0], format!("Custom:Disk/{b}"));
    let after_type = SummaryKey {
        compliance_type: "Custom:Disk".into(),
        resource_id: None,
    };
    let (page, more) = store.summaries(Some(&after_type), 10).await.unwrap();
    assert!(!more);
    assert_eq!(
        keys(&page),
        [format!("Custom:DiskB/{a}"), format!("Patch/{a}")]
    );
    drop_table(&shared, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn a_put_at_the_size_limit_fits_in_the_table_and_only_registered_nodes_take_puts() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.compliance_table).await;
    let own = with_settings(&shared, |s| s.compliance_table = table.clone());
    let (node, _) = registered_node(&own, "compliance").await;
    let adapters = steward_aws::compliance::ComplianceAdapters::new(&own);
    let ctx = adapters.context();

    // Items that take almost all Steward allows: DynamoDB keeps them.
    let detail = "d".repeat(4000);
    let mut items = Vec::new();
    let mut size = 0;
    for n in 0.. {
        let mut e = entry(&format!("item-{n:05}"), Status::Compliant);
        e.details.insert("Long".into(), detail.clone());
        size += serde_json::to_vec(&e).unwrap().len() + 120;
        if size > MAX_ITEMS_BYTES - 8 * 1024 {
            break;
        }
        items.push(e);
    }
    let write = ComplianceWrite {
        resource_id: node.clone(),
        resource_type: "ManagedInstance".into(),
        compliance_type: "Custom:Big".into(),
        execution: execution(),
        items: items.clone(),
        item_content_hash: None,
        upload_type: UploadType::Complete,
    };
    let change = put_items(&ctx, write.clone()).await.unwrap().unwrap();
    assert_eq!(change.status, Status::Compliant);
    let kept = adapters
        .store
        .get(&node, "Custom:Big")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.items.len(), items.len());

    // Twice as many is refused, and what was kept stays.
    let mut too_big = write.clone();
    too_big.items = items
        .iter()
        .chain(items.iter())
        .enumerate()
        .map(|(n, e)| ItemEntry {
            id: format!("big-{n:05}"),
            ..e.clone()
        })
        .collect();
    assert_eq!(
        put_items(&ctx, too_big).await.unwrap_err().code(),
        "TotalSizeLimitExceededException"
    );
    assert_eq!(
        adapters
            .store
            .get(&node, "Custom:Big")
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );

    let mut unknown = write;
    unknown.resource_id = "mi-00000000000000000".into();
    assert_eq!(
        put_items(&ctx, unknown).await.unwrap_err().code(),
        "InvalidResourceId"
    );
    drop_table(&shared, &table).await;
}
