//! Inventory's adapter against the local stack (`source .local/stack.env`):
//! the same rules as `steward_core::inventory::memory` (a write only when
//! the hash changed and the capture is not older; the nodes holding a type
//! by index; custom schemas), and the operations over the real table.

use serde_json::json;
use steward_aws::inventory::{InventoryAdapters, InventoryTable};
use steward_aws::testing::{drop_table, registered_node, stack, table_like, with_settings};
use steward_core::access::{Caller, Policy};
use steward_core::inventory::operations::handle;
use steward_core::inventory::ports::InventoryStore;
use steward_core::inventory::{CustomSchema, Entry, StoredType};

fn stored(node: &str, t: &str, at: &str, names: &[&str]) -> StoredType {
    let content: Vec<Entry> = names
        .iter()
        .map(|n| Entry::from([("Name".to_string(), n.to_string())]))
        .collect();
    StoredType {
        instance_id: node.into(),
        type_name: t.into(),
        schema_version: "1.1".into(),
        capture_time: at.into(),
        content_hash: steward_core::inventory::content_hash(&content),
        content,
    }
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn a_type_is_written_only_when_its_hash_changes_and_its_capture_is_not_older() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.inventory_table).await;
    let own = with_settings(&shared, |s| s.inventory_table = table.clone());
    let store = InventoryTable::new(&own);
    let (a, b) = ("mi-0000000000000000a", "mi-0000000000000000b");

    let first = stored(
        a,
        "AWS:Application",
        "2026-12-01T10:00:00Z",
        &["bash", "curl"],
    );
    assert!(store.put_if_changed(&first).await.unwrap());
    let same_later = stored(
        a,
        "AWS:Application",
        "2026-12-01T10:30:00Z",
        &["bash", "curl"],
    );
    assert!(
        !store.put_if_changed(&same_later).await.unwrap(),
        "same hash"
    );
    let older = stored(a, "AWS:Application", "2026-12-01T09:00:00Z", &["old"]);
    assert!(
        !store.put_if_changed(&older).await.unwrap(),
        "older capture"
    );
    assert_eq!(
        store.get(a, "AWS:Application").await.unwrap(),
        Some(first.clone())
    );
    let newer = stored(a, "AWS:Application", "2026-12-01T11:00:00Z", &["bash"]);
    assert!(store.put_if_changed(&newer).await.unwrap());
    assert_eq!(
        store.get(a, "AWS:Application").await.unwrap(),
        Some(newer.clone())
    );

    assert!(
        store
            .put_if_changed(&stored(a, "AWS:Network", "2026-12-01T10:00:00Z", &["eth0"]))
            .await
            .unwrap()
    );
    assert!(
        store
            .put_if_changed(&stored(
                b,
                "AWS:Application",
                "2026-12-01T10:00:00Z",
                &["nginx"]
            ))
            .await
            .unwrap()
    );
    let types: Vec<String> = store
        .instance(a)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.type_name)
        .collect();
    assert_eq!(types, ["AWS:Application", "AWS:Network"]);

    // Custom schemas live beside the data and never show as a node.
    let schema = CustomSchema {
        type_name: "Custom:Rack".into(),
        version: "1.0".into(),
        attributes: vec!["Location".into()],
        disabled_version: None,
    };
    store.put_schema(&schema).await.unwrap();
    assert_eq!(store.schemas().await.unwrap(), [schema]);
    assert!(
        store
            .put_if_changed(&stored(a, "Custom:Rack", "2026-12-01T10:00:00Z", &["r1"]))
            .await
            .unwrap()
    );
    let (holders, more) = store.holders("Custom:Rack", None, 10).await.unwrap();
    assert_eq!((holders, more), (vec![a.to_string()], false));

    // The index lists holders in id order, in pages.
    let (page, more) = store.holders("AWS:Application", None, 1).await.unwrap();
    assert_eq!((page.clone(), more), (vec![a.to_string()], true));
    let (page, more) = store
        .holders("AWS:Application", Some(&page[0]), 1)
        .await
        .unwrap();
    assert_eq!((page, more), (vec![b.to_string()], false));

    store.delete(a, "Custom:Rack").await.unwrap();
    store.delete_schema("Custom:Rack").await.unwrap();
    assert_eq!(store.get(a, "Custom:Rack").await.unwrap(), None);
    assert!(store.schemas().await.unwrap().is_empty());
    drop_table(&shared, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn the_operations_work_over_the_table() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.inventory_table).await;
    let own = with_settings(&shared, |s| s.inventory_table = table.clone());
    let (node, _) = registered_node(&own, "inventory").await;
    let adapters = InventoryAdapters::new(&own);
    let ctx = adapters.context();
    let caller = Caller {
        access_key_id: "AKADMIN".into(),
        user_arn: "arn:aws:iam::000000000000:user/admin".into(),
        policy: Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .unwrap(),
    };
    let call = |op: &'static str, body: serde_json::Value| {
        let (ctx, caller) = (&ctx, &caller);
        async move { handle(ctx, caller, op, &body).await.unwrap() }
    };
    // An AWS:Application of 3,000 packages (about 600 KB of JSON) fits the
    // table, compressed.
    let apps: Vec<serde_json::Value> = (0..3000)
        .map(|i| json!({"Name": format!("package-{i:04}"), "Version": "1.2.3-4", "Architecture": "amd64",
                        "Summary": "a package summary of typical length for a Debian package", "PackageId": format!("package-{i:04}_1.2.3-4_amd64.deb")}))
        .collect();
    let put = json!({"InstanceId": node, "Items": [
        {"TypeName": "AWS:InstanceInformation", "SchemaVersion": "1.0", "CaptureTime": "2026-12-01T10:00:00Z",
         "Content": [{"InstanceId": node, "PlatformType": "Linux"}]},
        {"TypeName": "AWS:Application", "SchemaVersion": "1.1", "CaptureTime": "2026-12-01T10:00:00Z", "Content": apps},
        {"TypeName": "Custom:Rack", "SchemaVersion": "1.0", "CaptureTime": "2026-12-01T10:00:00Z", "Content": [{"Location": "R7"}]}]});
    call("PutInventory", put).await.unwrap();
    let r = call(
        "ListInventoryEntries",
        json!({"InstanceId": node, "TypeName": "AWS:Application"}),
    )
    .await
    .unwrap();
    assert_eq!(r["Entries"].as_array().unwrap().len(), 50);
    assert!(r["NextToken"].is_string());
    let r = call(
        "GetInventory",
        json!({"Filters": [{"Key": "AWS:Application.Name", "Values": ["package-0007"], "Type": "Equal"}]}),
    )
    .await
    .unwrap();
    assert_eq!(r["Entities"][0]["Id"], json!(node));
    let r = call(
        "GetInventory",
        json!({"Aggregators": [{"Expression": "AWS:Application.Version"}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        r["Entities"][0]["Data"]["AWS:Application"]["Content"],
        json!([{"Version": "1.2.3-4", "Count": "1"}])
    );
    let r = call("GetInventorySchema", json!({"TypeName": "Custom:Rack"}))
        .await
        .unwrap();
    assert_eq!(r["Schemas"][0]["Attributes"][0]["Name"], "Location");
    let r = call(
        "DeleteInventory",
        json!({"TypeName": "Custom:Rack", "SchemaDeleteOption": "DeleteSchema"}),
    )
    .await
    .unwrap();
    assert_eq!(r["DeletionSummary"]["TotalCount"], 1);
    assert_eq!(
        adapters.store.get(&node, "Custom:Rack").await.unwrap(),
        None
    );
    drop_table(&shared, &table).await;
}
