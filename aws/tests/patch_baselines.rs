//! The patch baselines' adapter against the local stack (`source
//! .local/stack.env`): the same rules as
//! `steward_core::patching::memory`, and the operations over it.

use serde_json::json;
use steward_aws::patch_baselines::PatchBaselineTable;
use steward_aws::testing::{admin, drop_table, stack, table_like, with_settings};
use steward_core::patching::ports::{
    CreateOutcome, GroupRegistration, PatchBaselineStore, StoredBaseline, TokenClaim,
};
use steward_core::patching::{
    CreatePatchBaselineRequest, OperatingSystem, baseline_for_node, predefined,
};
use steward_core::tags::TagSet;

fn stored(id: &str, name: &str, os: &str) -> StoredBaseline {
    let c = CreatePatchBaselineRequest::parse(&json!({
        "Name": name, "OperatingSystem": os, "Description": "d",
        "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
            {"Key": "PRIORITY", "Values": ["Required"]}]}, "ApproveUntilDate": "2025-01-31",
            "ComplianceLevel": "HIGH"}]},
        "RejectedPatches": ["telnet"], "RejectedPatchesAction": "BLOCK"
    }))
    .unwrap();
    StoredBaseline {
        id: id.into(),
        baseline: c.baseline,
        created: 1000.5,
        modified: 1000.5,
        tags: TagSet::from([("team".to_string(), "ops".to_string())]),
        revision: 1,
    }
}

async fn own_table() -> (steward_aws::Stack, String) {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.patch_baselines_table).await;
    let own = with_settings(&shared, |s| s.patch_baselines_table = table.clone());
    (own, table)
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn patching_baselines_are_created_once_per_token_updated_on_their_revision_and_listed() {
    let (own, table) = own_table().await;
    let store = PatchBaselineTable::new(&own);
    let a = stored("pb-0000000000000000a", "alpha", "UBUNTU");
    let claim = TokenClaim {
        token: "tok-1".into(),
        fingerprint: "fp".into(),
    };
    assert_eq!(
        store.create(&a, Some(&claim)).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(store.get(&a.id).await.unwrap(), Some(a.clone()));
    // The token is taken: a second baseline is not written.
    let b = stored("pb-0000000000000000b", "beta", "DEBIAN");
    assert_eq!(
        store.create(&b, Some(&claim)).await.unwrap(),
        CreateOutcome::TokenUsed {
            baseline_id: a.id.clone(),
            fingerprint: "fp".into()
        }
    );
    assert_eq!(store.get(&b.id).await.unwrap(), None);
    assert_eq!(
        store.create(&b, None).await.unwrap(),
        CreateOutcome::Created
    );

    let mut next = a.clone();
    next.baseline.name = "alpha-2".into();
    next.revision = 2;
    assert!(store.update(&next, 1).await.unwrap());
    assert!(!store.update(&next, 1).await.unwrap());
    assert_eq!(
        store.get(&a.id).await.unwrap().unwrap().baseline.name,
        "alpha-2"
    );

    // Listing pages in id order, and the token item is not a baseline.
    let first = store.list(1, None).await.unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].id, a.id);
    let rest = store.list(10, first.next_token.as_deref()).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].id, b.id);
    assert_eq!(rest.next_token, None);
    assert_eq!(
        store.list(1, Some("not-a-token")).await.unwrap_err().code(),
        "InvalidNextToken"
    );
    assert_eq!(store.get("token#tok-1").await.unwrap(), None);
    drop_table(&own, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn patching_groups_and_defaults_hold_a_baseline_against_its_delete() {
    let (own, table) = own_table().await;
    let store = PatchBaselineTable::new(&own);
    let a = stored("pb-0000000000000000a", "alpha", "UBUNTU");
    store.create(&a, None).await.unwrap();
    let web = GroupRegistration {
        patch_group: "web servers".into(),
        operating_system: OperatingSystem::Ubuntu,
        baseline_id: a.id.clone(),
    };
    // Registering on a stale revision writes nothing.
    assert!(!store.register_group(&web, Some(7)).await.unwrap());
    assert_eq!(store.groups_of(&a.id).await.unwrap(), Vec::<String>::new());
    assert!(store.register_group(&web, Some(1)).await.unwrap());
    // One baseline per group and system.
    assert!(!store.register_group(&web, Some(2)).await.unwrap());
    let debian_web = GroupRegistration {
        patch_group: "web servers".into(),
        operating_system: OperatingSystem::Debian,
        baseline_id: predefined::default_id(OperatingSystem::Debian).into(),
    };
    assert!(store.register_group(&debian_web, None).await.unwrap());
    assert_eq!(store.groups_of(&a.id).await.unwrap(), vec!["web servers"]);
    assert_eq!(
        store
            .group_baseline("web servers", OperatingSystem::Ubuntu)
            .await
            .unwrap(),
        Some(a.id.clone())
    );
    let listed = store.list_groups(10, None).await.unwrap();
    assert_eq!(listed.items, vec![debian_web.clone(), web.clone()]);

    // The registration raised the revision: a delete on the one read
    // before it fails, and nothing is deleted.
    assert!(!store.delete(&a).await.unwrap());
    let now = store.get(&a.id).await.unwrap().unwrap();
    assert_eq!(now.revision, 2);

    // The resolver: the group's, then the default.
    assert_eq!(
        baseline_for_node(&store, OperatingSystem::Ubuntu, Some("web servers"))
            .await
            .unwrap()
            .0,
        a.id
    );
    assert_eq!(
        baseline_for_node(&store, OperatingSystem::Ubuntu, Some("db"))
            .await
            .unwrap()
            .0,
        predefined::default_id(OperatingSystem::Ubuntu)
    );

    assert!(!store.deregister_group(&debian_web_for(&a)).await.unwrap());
    assert!(store.deregister_group(&web).await.unwrap());
    assert_eq!(
        store
            .group_baseline("web servers", OperatingSystem::Ubuntu)
            .await
            .unwrap(),
        None
    );

    // A default holds its baseline too.
    assert!(
        !store
            .set_default(OperatingSystem::Ubuntu, &a.id, Some(1))
            .await
            .unwrap()
    );
    assert!(
        store
            .set_default(OperatingSystem::Ubuntu, &a.id, Some(2))
            .await
            .unwrap()
    );
    assert_eq!(
        store.default_for(OperatingSystem::Ubuntu).await.unwrap(),
        Some(a.id.clone())
    );
    assert!(!store.delete(&now).await.unwrap());
    assert_eq!(
        baseline_for_node(&store, OperatingSystem::Ubuntu, None)
            .await
            .unwrap(),
        (a.id.clone(), now.baseline.clone())
    );
    let predefined_ubuntu = predefined::default_id(OperatingSystem::Ubuntu);
    assert!(
        store
            .set_default(OperatingSystem::Ubuntu, predefined_ubuntu, None)
            .await
            .unwrap()
    );
    assert!(store.delete(&now).await.unwrap());
    assert_eq!(store.get(&a.id).await.unwrap(), None);
    drop_table(&own, &table).await;
}

/// A registration of the group for Debian that names the Ubuntu baseline:
/// not the one held, so not removed.
fn debian_web_for(a: &StoredBaseline) -> GroupRegistration {
    GroupRegistration {
        patch_group: "web servers".into(),
        operating_system: OperatingSystem::Debian,
        baseline_id: a.id.clone(),
    }
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn patching_operations_run_over_the_table() {
    let (own, table) = own_table().await;
    let caller = admin();
    let adapters = steward_aws::patch_baselines::PatchingAdapters::new(&own);
    let ctx = adapters.context(&caller, 2000.0);
    let created = steward_core::patching::ops::handle(
        &ctx,
        "CreatePatchBaseline",
        &json!({"Name": "over-the-table", "OperatingSystem": "DEBIAN", "ClientToken": "c-1"}),
    )
    .await
    .unwrap()
    .unwrap();
    let id = created["BaselineId"].as_str().unwrap();
    let got =
        steward_core::patching::ops::handle(&ctx, "GetPatchBaseline", &json!({"BaselineId": id}))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(got["Name"], "over-the-table");
    assert_eq!(got["CreatedDate"], json!(2000.0));
    drop_table(&own, &table).await;
}
