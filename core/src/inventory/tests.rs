//! Inventory's operations over the in-memory store.

use serde_json::{Value, json};

use super::context::InventoryContext;
use super::memory::MemoryInventory;
use super::model::{Entry, InventoryItem};
use super::operations::handle;
use super::put::put_items;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::fleet::memory::{MemoryFleet, node};

const A: &str = "mi-00000000000000001";
const B: &str = "mi-00000000000000002";

struct World {
    store: MemoryInventory,
    fleet: MemoryFleet,
    scope: ArnScope,
    caller: Caller,
}

impl World {
    fn new() -> Self {
        let fleet = MemoryFleet::default();
        fleet.nodes.insert(node(A, "key", 1.0));
        fleet.nodes.insert(node(B, "key", 1.0));
        Self {
            store: MemoryInventory::default(),
            fleet,
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            caller: Caller {
                access_key_id: "AKIA".into(),
                user_arn: "arn:aws:iam::123456789012:user/admin".into(),
                policy: Policy::parse(
                    r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                )
                .unwrap(),
            },
        }
    }

    fn ctx(&self) -> InventoryContext<'_> {
        InventoryContext {
            store: &self.store,
            nodes: &self.fleet.nodes,
            scope: &self.scope,
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, crate::error::SsmError> {
        handle(&self.ctx(), &self.caller, op, &body).await.unwrap()
    }
}

fn apps(list: &[(&str, &str)]) -> Vec<Entry> {
    list.iter()
        .map(|(n, v)| {
            [
                ("Name".to_string(), n.to_string()),
                ("Version".to_string(), v.to_string()),
            ]
            .into()
        })
        .collect()
}

fn item(type_name: &str, version: &str, at: &str, content: Vec<Entry>) -> InventoryItem {
    InventoryItem {
        type_name: type_name.into(),
        schema_version: version.into(),
        capture_time: at.into(),
        content_hash: None,
        content: Some(content),
        context: Default::default(),
    }
}

fn info(id: &str) -> InventoryItem {
    item(
        "AWS:InstanceInformation",
        "1.0",
        "2026-12-01T10:00:00Z",
        vec![
            [
                ("InstanceId".to_string(), id.to_string()),
                ("PlatformType".into(), "Linux".into()),
            ]
            .into(),
        ],
    )
}

async fn seed(w: &World) {
    for (id, list) in [
        (A, apps(&[("bash", "5.2"), ("curl", "7.88")])),
        (B, apps(&[("bash", "5.2"), ("nginx", "1.22")])),
    ] {
        let items = [
            info(id),
            item("AWS:Application", "1.1", "2026-12-01T10:00:00Z", list),
        ];
        put_items(&w.ctx(), id, &items).await.unwrap();
    }
}

#[tokio::test]
async fn an_unchanged_hash_writes_nothing_and_a_late_capture_never_overwrites() {
    let w = World::new();
    seed(&w).await;
    let writes = *w.store.writes.lock().unwrap();
    let again = [item(
        "AWS:Application",
        "1.1",
        "2026-12-01T10:30:00Z",
        apps(&[("bash", "5.2"), ("curl", "7.88")]),
    )];
    let o = put_items(&w.ctx(), A, &again).await.unwrap();
    assert_eq!(o.unchanged, ["AWS:Application"]);
    assert_eq!(*w.store.writes.lock().unwrap(), writes);
    // The stored capture time is the first one's.
    let r = w
        .call(
            "ListInventoryEntries",
            json!({"InstanceId": A, "TypeName": "AWS:Application"}),
        )
        .await
        .unwrap();
    assert_eq!(r["CaptureTime"], "2026-12-01T10:00:00Z");
    // An older capture of different content (a late delivery) is kept out.
    let late = [item(
        "AWS:Application",
        "1.1",
        "2026-12-01T09:00:00Z",
        apps(&[("old", "1")]),
    )];
    assert_eq!(
        put_items(&w.ctx(), A, &late).await.unwrap().unchanged,
        ["AWS:Application"]
    );
    // A newer one replaces it.
    let newer = [item(
        "AWS:Application",
        "1.1",
        "2026-12-01T11:00:00Z",
        apps(&[("bash", "5.3")]),
    )];
    assert_eq!(
        put_items(&w.ctx(), A, &newer).await.unwrap().written,
        ["AWS:Application"]
    );
}

#[tokio::test]
async fn puts_are_checked_as_ssm_checks_them() {
    let w = World::new();
    let code = |r: Result<Value, crate::error::SsmError>| r.unwrap_err().code();
    let put = |items: Value| json!({"InstanceId": A, "Items": items});
    let one = |t: &str, v: &str, content: Value| {
        put(
            json!([{"TypeName": t, "SchemaVersion": v, "CaptureTime": "2026-12-01T10:00:00Z", "Content": content}]),
        )
    };
    assert_eq!(
        code(
            w.call("PutInventory", one("AWS:Nope", "1.0", json!([])))
                .await
        ),
        "InvalidTypeNameException"
    );
    assert_eq!(
        code(
            w.call("PutInventory", one("AWS:Application", "2.0", json!([])))
                .await
        ),
        "UnsupportedInventorySchemaVersionException"
    );
    assert_eq!(
        code(
            w.call(
                "PutInventory",
                one("AWS:Application", "1.1", json!([{"Colour": "red"}]))
            )
            .await
        ),
        "InvalidItemContentException"
    );
    let big = "x".repeat(4000);
    let entries: Vec<Value> = (0..60)
        .map(|i| json!({"Id": i.to_string(), "Blob": big}))
        .collect();
    assert_eq!(
        code(
            w.call("PutInventory", one("Custom:Big", "1.0", json!(entries)))
                .await
        ),
        "ItemSizeLimitExceededException"
    );
    let many: Vec<Value> = (0..51).map(|i| json!({"Name": format!("a{i}")})).collect();
    let attrs: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        code(
            w.call("PutInventory", one("Custom:Wide", "1.0", json!([attrs])))
                .await
        ),
        "InvalidItemContentException"
    );
    assert!(
        w.call("PutInventory", one("Custom:Many", "1.0", json!(many)))
            .await
            .is_ok()
    );
    let mut ctx_item = one("Custom:Rack", "1.0", json!([]));
    ctx_item["Items"][0]["Context"] = json!({"ExecutionId": "x"});
    assert_eq!(
        code(w.call("PutInventory", ctx_item).await),
        "UnsupportedInventoryItemContextException"
    );
    let unknown = json!({"InstanceId": "mi-0000000000000000f", "Items": one("Custom:Rack", "1.0", json!([]))["Items"]});
    assert_eq!(
        code(w.call("PutInventory", unknown).await),
        "InvalidInstanceId"
    );
    // Twenty custom types per account.
    for i in 0..19 {
        w.call(
            "PutInventory",
            one(&format!("Custom:T{i}"), "1.0", json!([{"A": "1"}])),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        code(
            w.call("PutInventory", one("Custom:OneTooMany", "1.0", json!([])))
                .await
        ),
        "CustomSchemaCountLimitExceededException"
    );
    // A hash that is not the stored data's is a mismatch; the stored one's is nothing to do.
    let hash_only = |h: &str| {
        put(
            json!([{"TypeName": "Custom:Many", "SchemaVersion": "1.0", "CaptureTime": "2026-12-01T10:00:00Z", "ContentHash": h}]),
        )
    };
    assert_eq!(
        code(w.call("PutInventory", hash_only("nope")).await),
        "ItemContentMismatchException"
    );
    let stored = w
        .store
        .types
        .lock()
        .unwrap()
        .get(&(A.to_string(), "Custom:Many".to_string()))
        .unwrap()
        .content_hash
        .clone();
    w.call("PutInventory", hash_only(&stored)).await.unwrap();
}

#[tokio::test]
async fn get_inventory_filters_and_counts_by_name_and_version() {
    let w = World::new();
    seed(&w).await;
    let ids = |r: &Value| -> Vec<String> {
        r["Entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Id"].as_str().unwrap().to_string())
            .collect()
    };
    let r = w.call("GetInventory", json!({})).await.unwrap();
    assert_eq!(ids(&r), [A, B]);
    assert_eq!(
        r["Entities"][0]["Data"]["AWS:InstanceInformation"]["Content"][0]["InstanceId"],
        A
    );
    let f = |key: &str, kind: &str, values: &[&str]| json!({"Filters": [{"Key": key, "Values": values, "Type": kind}]});
    let r = w
        .call(
            "GetInventory",
            f("AWS:Application.Name", "Equal", &["nginx"]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), [B]);
    let r = w
        .call(
            "GetInventory",
            f("AWS:Application.Name", "NotEqual", &["nginx"]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), [A]);
    let r = w
        .call(
            "GetInventory",
            f("AWS:Application.Name", "BeginWith", &["cu"]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), [A]);
    let r = w
        .call(
            "GetInventory",
            f("AWS:Application.Version", "GreaterThan", &["7"]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), [A]);
    let r = w
        .call(
            "GetInventory",
            f("AWS:Application.Version", "LessThan", &["5.3"]),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), [A, B]);
    assert_eq!(
        w.call("GetInventory", f("AWS:Nope.Name", "Equal", &["x"]))
            .await
            .unwrap_err()
            .code(),
        "InvalidTypeNameException"
    );
    // Pages of one.
    let r = w
        .call("GetInventory", json!({"MaxResults": 1}))
        .await
        .unwrap();
    assert_eq!(ids(&r), [A]);
    let r = w
        .call(
            "GetInventory",
            json!({"MaxResults": 1, "NextToken": r["NextToken"]}),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r), [B]);
    assert!(r.get("NextToken").is_none());
    // Result attributes choose the types shown.
    let r = w
        .call(
            "GetInventory",
            json!({"ResultAttributes": [{"TypeName": "AWS:Application"}]}),
        )
        .await
        .unwrap();
    let data = r["Entities"][1]["Data"].as_object().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["AWS:Application"]);
    // Aggregated: nodes per name, and per name and version.
    let r = w
        .call(
            "GetInventory",
            json!({"Aggregators": [{"Expression": "AWS:Application.Name"}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        r["Entities"][0]["Data"]["AWS:Application"]["Content"],
        json!([{"Name": "bash", "Count": "2"}, {"Name": "curl", "Count": "1"}, {"Name": "nginx", "Count": "1"}])
    );
    let r = w
        .call(
            "GetInventory",
            json!({"Aggregators": [{"Expression": "AWS:Application.Name",
                                    "Aggregators": [{"Expression": "AWS:Application.Version"}]}],
                   "Filters": [{"Key": "AWS:Application.Name", "Values": ["nginx"], "Type": "Equal"}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        r["Entities"][0]["Data"]["AWS:Application"]["Content"],
        json!([{"Name": "bash", "Version": "5.2", "Count": "1"}, {"Name": "nginx", "Version": "1.22", "Count": "1"}])
    );
    for bad in [
        json!([{"Expression": "AWS:Application.Colour"}]),
        json!([{"Expression": "Name"}]),
        json!([{"Expression": "AWS:Application.Name", "Aggregators": [{"Expression": "AWS:Network.Name"}]}]),
    ] {
        let e = w
            .call("GetInventory", json!({"Aggregators": bad}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "InvalidAggregatorException", "{bad}");
    }
}

#[tokio::test]
async fn entries_page_and_filter() {
    let w = World::new();
    let list: Vec<(String, String)> = (0..120)
        .map(|i| (format!("pkg{i:03}"), format!("{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    put_items(
        &w.ctx(),
        A,
        &[item(
            "AWS:Application",
            "1.1",
            "2026-12-01T10:00:00Z",
            apps(&refs),
        )],
    )
    .await
    .unwrap();
    let mut names = Vec::new();
    let mut token: Option<Value> = None;
    loop {
        let mut body = json!({"InstanceId": A, "TypeName": "AWS:Application"});
        if let Some(t) = token.take() {
            body["NextToken"] = t;
        }
        let r = w.call("ListInventoryEntries", body).await.unwrap();
        assert!(r["Entries"].as_array().unwrap().len() <= 50);
        names.extend(
            r["Entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["Name"].as_str().unwrap().to_string()),
        );
        match r.get("NextToken") {
            Some(t) => token = Some(t.clone()),
            None => break,
        }
    }
    assert_eq!(names.len(), 120);
    let r = w
        .call(
            "ListInventoryEntries",
            json!({"InstanceId": A, "TypeName": "AWS:Application",
                   "Filters": [{"Key": "AWS:Application.Name", "Values": ["pkg11"], "Type": "BeginWith"}]}),
        )
        .await
        .unwrap();
    assert_eq!(r["Entries"].as_array().unwrap().len(), 10);
    let r = w
        .call(
            "ListInventoryEntries",
            json!({"InstanceId": B, "TypeName": "Custom:None"}),
        )
        .await
        .unwrap();
    assert_eq!(r["Entries"], json!([]));
}

#[tokio::test]
async fn custom_types_show_in_the_schema_and_are_deleted_with_it() {
    let w = World::new();
    seed(&w).await;
    let rack = |id: &str, v: &str, loc: &str| {
        json!({"InstanceId": id, "Items": [{"TypeName": "Custom:Rack", "SchemaVersion": v,
               "CaptureTime": "2026-12-01T10:00:00Z", "Content": [{"Location": loc}]}]})
    };
    w.call("PutInventory", rack(A, "1.0", "R1")).await.unwrap();
    w.call("PutInventory", rack(B, "1.0", "R2")).await.unwrap();
    let r = w
        .call("GetInventorySchema", json!({"TypeName": "Custom:Rack"}))
        .await
        .unwrap();
    assert_eq!(
        r["Schemas"][0]["Attributes"],
        json!([{"Name": "Location", "DataType": "string"}])
    );
    let all = w.call("GetInventorySchema", json!({})).await.unwrap();
    assert_eq!(all["Schemas"].as_array().unwrap().len(), 6);
    assert_eq!(
        w.call("DeleteInventory", json!({"TypeName": "AWS:Application"}))
            .await
            .unwrap_err()
            .code(),
        "InvalidTypeNameException"
    );
    assert_eq!(
        w.call(
            "DeleteInventory",
            json!({"TypeName": "Custom:Rack", "SchemaDeleteOption": "Nope"})
        )
        .await
        .unwrap_err()
        .code(),
        "InvalidOptionException"
    );
    let dry = w
        .call(
            "DeleteInventory",
            json!({"TypeName": "Custom:Rack", "DryRun": true}),
        )
        .await
        .unwrap();
    assert_eq!(dry["DeletionSummary"]["TotalCount"], 2);
    assert_eq!(dry["DeletionSummary"]["RemainingCount"], 2);
    assert!(w.store.get_sync(A, "Custom:Rack").is_some());
    // DisableSchema: the data goes, and puts at that version are ignored.
    let r = w
        .call(
            "DeleteInventory",
            json!({"TypeName": "Custom:Rack", "SchemaDeleteOption": "DisableSchema"}),
        )
        .await
        .unwrap();
    assert_eq!(
        r["DeletionSummary"]["SummaryItems"],
        json!([{"Version": "1.0", "Count": 2, "RemainingCount": 0}])
    );
    assert!(w.store.get_sync(A, "Custom:Rack").is_none());
    w.call("PutInventory", rack(A, "1.0", "R9")).await.unwrap();
    assert!(w.store.get_sync(A, "Custom:Rack").is_none());
    w.call("PutInventory", rack(A, "1.1", "R9")).await.unwrap();
    assert!(w.store.get_sync(A, "Custom:Rack").is_some());
    w.call(
        "DeleteInventory",
        json!({"TypeName": "Custom:Rack", "SchemaDeleteOption": "DeleteSchema"}),
    )
    .await
    .unwrap();
    assert!(w.store.get_sync(A, "Custom:Rack").is_none());
    assert_eq!(
        w.call("GetInventorySchema", json!({"TypeName": "Custom:Rack"}))
            .await
            .unwrap_err()
            .code(),
        "InvalidTypeNameException"
    );
}

impl MemoryInventory {
    fn get_sync(&self, id: &str, t: &str) -> Option<super::model::StoredType> {
        self.types
            .lock()
            .unwrap()
            .get(&(id.to_string(), t.to_string()))
            .cloned()
    }
}
