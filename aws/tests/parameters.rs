//! The Parameter Store adapters against the local stack (`source .local/stack.env`):
//! the same rules as `steward_core::parameters::memory`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use steward_aws::data_keys::KmsDataKeys;
use steward_aws::parameter_service::ParameterAdapters;
use steward_aws::parameters::{ParameterTable, version_to_item};
use steward_aws::testing::{admin, drop_table, stack, table_like, unique, with_settings};
use steward_core::clock::now_epoch;
use steward_core::parameters::model::{
    Parameter, ParameterType, ParameterVersion, PolicyRecord, StoredValue, Tier,
};
use steward_core::parameters::secrets::Sealer;
use steward_core::parameters::{DataKeys, ParameterStore, get, put};

fn version(name: &str, version: u64, value: &str) -> ParameterVersion {
    ParameterVersion {
        name: name.to_string(),
        version,
        parameter_type: ParameterType::String,
        value: StoredValue::Plain(value.to_string()),
        key_id: None,
        description: Some(format!("v{version}")),
        allowed_pattern: None,
        tier: Tier::Standard,
        policies: Vec::new(),
        data_type: "text".into(),
        labels: BTreeSet::new(),
        last_modified_date: 1_700_000_000.25 + version as f64,
        last_modified_user: "arn:aws:iam::000000000000:user/test".into(),
    }
}

fn head(current: ParameterVersion, oldest: u64, revision: u64) -> Parameter {
    Parameter {
        current,
        oldest_version: oldest,
        labels: BTreeMap::new(),
        tags: BTreeMap::from([("team".to_string(), "ops".to_string())]),
        policy_due: None,
        revision,
    }
}

async fn create(store: &ParameterTable, name: &str) -> Parameter {
    let p = head(version(name, 1, "one"), 1, 0);
    assert!(store.put_version(&p, None, None).await.unwrap());
    p
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn versions_are_written_under_the_head_revision() {
    let stack = stack().await;
    let store = ParameterTable::new(&stack);
    let name = format!("/test-{}/app/db", unique());

    assert_eq!(store.get(&name).await.unwrap(), None);
    let v1 = create(&store, &name).await;
    // A second create loses: the head exists.
    assert!(!store.put_version(&v1, None, None).await.unwrap());
    assert_eq!(store.get(&name).await.unwrap().as_ref(), Some(&v1));

    let mut v2 = head(version(&name, 2, "two"), 1, 1);
    v2.current.policies = vec![PolicyRecord {
        text: r#"{"Type":"Expiration"}"#.into(),
        policy_type: "Expiration".into(),
        status: "Pending".into(),
    }];
    v2.current.tier = Tier::Advanced;
    // A writer that read an older revision loses.
    assert!(!store.put_version(&v2, Some(7), None).await.unwrap());
    assert!(store.put_version(&v2, Some(0), None).await.unwrap());
    assert!(!store.put_version(&v2, Some(0), None).await.unwrap());

    assert_eq!(store.get(&name).await.unwrap().as_ref(), Some(&v2));
    assert_eq!(
        store.get_version(&name, 1).await.unwrap().as_ref(),
        Some(&v1.current)
    );
    assert_eq!(
        store.get_version(&name, 2).await.unwrap().as_ref(),
        Some(&v2.current)
    );
    // Version 0 is the head's key, not a version.
    assert_eq!(store.get_version(&name, 0).await.unwrap(), None);
    assert_eq!(store.get_version(&name, 3).await.unwrap(), None);

    let all = store.versions(&name, 0, 10, 100).await.unwrap();
    assert_eq!(all, vec![v1.current.clone(), v2.current.clone()]);
    assert_eq!(
        store.versions(&name, 2, 2, 100).await.unwrap(),
        vec![v2.current.clone()]
    );
    assert_eq!(
        store.versions(&name, 1, 2, 1).await.unwrap(),
        vec![v1.current.clone()]
    );
    assert!(store.versions(&name, 2, 1, 100).await.unwrap().is_empty());

    // The 101st-write rule: the dropped version goes in the same transaction.
    let v3 = head(version(&name, 3, "three"), 2, 2);
    assert!(store.put_version(&v3, Some(1), Some(1)).await.unwrap());
    assert_eq!(store.get_version(&name, 1).await.unwrap(), None);
    let kept: Vec<u64> = store
        .versions(&name, 1, 3, 100)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, vec![2, 3]);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn update_moves_labels_under_the_head_revision() {
    let stack = stack().await;
    let store = ParameterTable::new(&stack);
    let name = format!("/test-{}/labels", unique());
    let v1 = create(&store, &name).await;
    let v2 = head(version(&name, 2, "two"), 1, 1);
    assert!(store.put_version(&v2, Some(0), None).await.unwrap());

    let mut next = v2.clone();
    next.revision = 2;
    next.labels = BTreeMap::from([("prod".to_string(), 1), ("beta".to_string(), 1)]);
    let mut labelled = v1.current.clone();
    labelled.labels = BTreeSet::from(["prod".to_string(), "beta".to_string()]);
    assert!(!store.update(&next, 0, &[labelled.clone()]).await.unwrap());
    assert!(store.update(&next, 1, &[labelled.clone()]).await.unwrap());
    assert_eq!(store.get(&name).await.unwrap().as_ref(), Some(&next));
    assert_eq!(
        store.get_version(&name, 1).await.unwrap().as_ref(),
        Some(&labelled)
    );

    // Labels move from version 1 to 2, both version items in one go;
    // removing the last label removes the attribute, not the version.
    let mut moved = next.clone();
    moved.revision = 3;
    moved.labels = BTreeMap::from([("prod".to_string(), 2)]);
    let mut to = v2.current.clone();
    to.labels = BTreeSet::from(["prod".to_string()]);
    let from = v1.current.clone();
    moved.current = to.clone();
    assert!(
        store
            .update(&moved, 2, &[from.clone(), to.clone()])
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_version(&name, 1).await.unwrap().as_ref(),
        Some(&from)
    );
    assert_eq!(
        store.get_version(&name, 2).await.unwrap().as_ref(),
        Some(&to)
    );
    assert_eq!(store.get(&name).await.unwrap().as_ref(), Some(&moved));

    // Updating a parameter that does not exist fails its condition.
    let ghost = head(version(&format!("{name}-ghost"), 1, "x"), 1, 1);
    assert!(!store.update(&ghost, 0, &[]).await.unwrap());
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn get_many_returns_the_heads_that_exist() {
    let stack = stack().await;
    let store = ParameterTable::new(&stack);
    let run = unique();
    let a = create(&store, &format!("/test-{run}/a")).await;
    let b = create(&store, &format!("/test-{run}/b")).await;
    let names = vec![
        a.name().to_string(),
        format!("/test-{run}/missing"),
        b.name().to_string(),
        a.name().to_string(),
    ];
    let mut got = store.get_many(&names).await.unwrap();
    got.sort_by(|x, y| x.name().cmp(y.name()));
    assert_eq!(got, vec![a, b]);
    assert!(store.get_many(&[]).await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn delete_removes_head_and_versions_and_leftovers_do_not_block_a_new_parameter() {
    let stack = stack().await;
    let store = ParameterTable::new(&stack);
    let name = format!("/test-{}/gone", unique());
    create(&store, &name).await;
    let v2 = head(version(&name, 2, "two"), 1, 1);
    assert!(store.put_version(&v2, Some(0), None).await.unwrap());

    assert!(!store.delete(&v2, 0).await.unwrap());
    assert!(store.get(&name).await.unwrap().is_some());
    assert!(store.delete(&v2, 1).await.unwrap());
    assert_eq!(store.get(&name).await.unwrap(), None);
    assert!(store.versions(&name, 1, 100, 100).await.unwrap().is_empty());
    assert!(!store.delete(&v2, 1).await.unwrap());

    // A version item a crash left behind (the head deleted, its versions
    // not yet) is overwritten by the next parameter of the name.
    let mut leftover = version(&name, 1, "old");
    leftover.labels = BTreeSet::from(["stale".to_string()]);
    stack
        .clients
        .dynamodb
        .put_item()
        .table_name(&stack.settings.parameters_table)
        .set_item(Some(version_to_item(&leftover)))
        .send()
        .await
        .unwrap();
    let again = create(&store, &name).await;
    assert_eq!(
        store.get_version(&name, 1).await.unwrap().as_ref(),
        Some(&again.current)
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn list_by_prefix_pages_in_name_order() {
    let stack = stack().await;
    let store = ParameterTable::new(&stack);
    let prefix = format!("/test-{}/many/", unique());
    let mut names: Vec<String> = (0..35).map(|i| format!("{prefix}p{i:02}")).collect();
    for name in &names {
        create(&store, name).await;
    }
    // Version items are not heads: they must never show up in listings.
    names.sort();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let (page, more) = store
            .list_by_prefix(&prefix, after.as_deref(), 10)
            .await
            .unwrap();
        pages.push((page.len(), more));
        seen.extend(page.iter().map(|p| p.name().to_string()));
        if !more {
            break;
        }
        after = seen.last().cloned();
    }
    assert_eq!(pages, vec![(10, true), (10, true), (10, true), (5, false)]);
    assert_eq!(seen, names);

    // Exactly one page: no "more".
    let (page, more) = store
        .list_by_prefix(&prefix, Some(&names[24]), 10)
        .await
        .unwrap();
    assert_eq!((page.len(), more), (10, false));

    // `after` outside the prefix: before every match, or after every one.
    let before = prefix.trim_end_matches('/');
    let (page, _) = store
        .list_by_prefix(&prefix, Some(before), 3)
        .await
        .unwrap();
    assert_eq!(page[0].name(), names[0]);
    let beyond = format!("{}~", prefix.trim_end_matches('/'));
    let (page, more) = store
        .list_by_prefix(&prefix, Some(&beyond), 3)
        .await
        .unwrap();
    assert!(page.is_empty() && !more);

    // A prefix that is a whole name lists that name and what extends it.
    let (page, _) = store.list_by_prefix(&names[3], None, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].name(), names[3]);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn list_children_is_one_level() {
    let stack = stack().await;
    let store = ParameterTable::new(&stack);
    let root = format!("/test-{}", unique());
    for leaf in ["b", "a", "a/x", "a/x/deep", "c"] {
        create(&store, &format!("{root}/{leaf}")).await;
    }
    let names =
        |ps: Vec<Parameter>| -> Vec<String> { ps.iter().map(|p| p.name().to_string()).collect() };
    let (page, more) = store.list_children(&root, None, 10).await.unwrap();
    assert!(!more);
    assert_eq!(
        names(page),
        vec![
            format!("{root}/a"),
            format!("{root}/b"),
            format!("{root}/c")
        ]
    );
    let (page, more) = store.list_children(&root, None, 2).await.unwrap();
    assert!(more);
    assert_eq!(names(page), vec![format!("{root}/a"), format!("{root}/b")]);
    let (page, more) = store
        .list_children(&root, Some(&format!("{root}/b")), 2)
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(names(page), vec![format!("{root}/c")]);
    let (page, _) = store
        .list_children(&format!("{root}/a"), None, 10)
        .await
        .unwrap();
    assert_eq!(names(page), vec![format!("{root}/a/x")]);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn due_lists_heads_whose_policy_is_due_earliest_first() {
    // The running control plane's scheduler acts on every head of the shared
    // table that is due (ByPolicyDue, PolicyDue <= now) and takes it out of
    // the index: this test's heads live in a table of their own.
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.parameters_table).await;
    let stack = with_settings(&shared, |s| s.parameters_table = table.clone());
    let store = ParameterTable::new(&stack);
    let root = format!("/test-{}", unique());
    let base = now_epoch();
    let mut later = head(version(&format!("{root}/later"), 1, "x"), 1, 0);
    later.policy_due = Some(base + 2.0);
    let mut sooner = head(version(&format!("{root}/sooner"), 1, "x"), 1, 0);
    sooner.policy_due = Some(base + 1.5);
    let mut not_yet = head(version(&format!("{root}/not-yet"), 1, "x"), 1, 0);
    not_yet.policy_due = Some(base + 3.0);
    let none = head(version(&format!("{root}/none"), 1, "x"), 1, 0);
    for p in [&later, &not_yet, &none, &sooner] {
        assert!(store.put_version(p, None, None).await.unwrap());
    }

    let names =
        |due: Vec<Parameter>| -> Vec<String> { due.iter().map(|p| p.name().to_string()).collect() };
    // Due at base + 2 (inclusive), earliest first; not the later one, nor
    // the one without a policy.
    assert_eq!(
        names(store.due(base + 2.0, 1000).await.unwrap()),
        vec![sooner.name(), later.name()]
    );
    assert_eq!(
        names(store.due(base + 2.0, 1).await.unwrap()),
        vec![sooner.name()]
    );
    assert!(store.due(base + 1.0, 1000).await.unwrap().is_empty());

    // Once the policy is done (no due date), the head leaves the index.
    let mut done = sooner.clone();
    done.policy_due = None;
    done.revision = 1;
    assert!(store.update(&done, 0, &[]).await.unwrap());
    assert_eq!(
        names(store.due(base + 3.0, 1000).await.unwrap()),
        vec![later.name(), not_yet.name()]
    );
    drop_table(&shared, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn kms_data_keys_are_bound_to_their_context() {
    let stack = stack().await;
    let keys = KmsDataKeys::new(&stack);
    let arn = format!(
        "arn:aws:ssm:us-east-1:000000000000:parameter/test-{}",
        unique()
    );
    let key = keys
        .generate(&stack.settings.data_key_id, &[("PARAMETER_ARN", &arn)])
        .await
        .unwrap();
    assert!(key.key_arn.starts_with("arn:aws:kms:"));
    assert!(key.key_arn.ends_with(&stack.settings.data_key_id));
    let opened = keys
        .decrypt(&key.encrypted, &[("PARAMETER_ARN", &arn)])
        .await
        .unwrap();
    assert_eq!(opened, key.plaintext);

    let err = keys
        .decrypt(
            &key.encrypted,
            &[("PARAMETER_ARN", &format!("{arn}-other"))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidKeyId");
    assert_eq!(keys.calls().counts(), (1, 2));

    // The stack's key by alias works; unknown, malformed and non-symmetric keys do not.
    let by_alias = keys
        .generate("alias/steward-DataKey", &[("PARAMETER_ARN", &arn)])
        .await
        .unwrap();
    assert_eq!(by_alias.key_arn, key.key_arn);
    for bad in [
        format!("alias/steward-none-{}", unique()),
        "11111111-2222-3333-4444-555555555555".to_string(),
        "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555".to_string(),
        "arn:bad".to_string(),
        "not a key".to_string(),
        stack.settings.signing_key_id.clone(),
    ] {
        let err = keys
            .generate(&bad, &[("PARAMETER_ARN", &arn)])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "InvalidKeyId", "{bad}");
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn sealer_over_kms_round_trips_and_refuses_a_moved_ciphertext() {
    let stack = stack().await;
    let adapters = ParameterAdapters::new(&stack);
    assert_eq!(adapters.scope.account, stack.settings.account_id);
    let name = format!("/test-{}/secret", unique());
    let arn = adapters.scope.parameter_arn(&name);
    let other = adapters.scope.parameter_arn(&format!("{name}-other"));
    let plaintext = "correct horse battery staple";

    let sealed = adapters
        .sealer
        .seal(&adapters.default_key_id, &arn, plaintext)
        .await
        .unwrap();
    assert!(!sealed.contains(plaintext));
    assert!(
        Sealer::key_arn(&sealed)
            .unwrap()
            .ends_with(&stack.settings.data_key_id)
    );
    assert_eq!(
        adapters.sealer.open(&arn, &sealed).await.unwrap().expose(),
        plaintext
    );
    assert_eq!(
        adapters.sealer.open(&arn, &sealed).await.unwrap().expose(),
        plaintext
    );
    // One Decrypt; the second open was served by the data-key cache.
    assert_eq!(adapters.kms.calls().counts(), (1, 1));

    let err = adapters.sealer.open(&other, &sealed).await.unwrap_err();
    assert_eq!(err.code(), "InvalidKeyId");
    assert!(!err.to_string().contains(plaintext));
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_secure_string_put_leaves_no_plaintext_in_its_items() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use base64::Engine;
    let stack = stack().await;
    let adapters = ParameterAdapters::new(&stack);
    let caller = admin();
    let name = format!("/test-{}/secret", unique());
    let secrets = ["correct horse battery staple", "tr0ub4dor and 3 more"];

    // Through the product's own PutParameter: created, then overwritten.
    for (i, secret) in secrets.iter().enumerate() {
        let put =
            json!({"Name": name, "Value": secret, "Type": "SecureString", "Overwrite": i > 0});
        let ctx = adapters.context(&caller, now_epoch());
        let out = put::put_parameter(&ctx, &put).await.unwrap();
        assert_eq!(out["Version"], i + 1);
    }
    // Every item the parameter has (head, versions 1 and 2), read raw.
    let items = stack
        .clients
        .dynamodb
        .query()
        .table_name(&stack.settings.parameters_table)
        .key_condition_expression("#n = :n")
        .expression_attribute_names("#n", "Name")
        .expression_attribute_values(":n", AttributeValue::S(name.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let versions: Vec<&str> = items
        .iter()
        .filter_map(|i| i.get("Version").and_then(|v| v.as_n().ok()))
        .map(String::as_str)
        .collect();
    assert_eq!(versions, vec!["0", "1", "2"]);
    let b64 = base64::engine::general_purpose::STANDARD;
    for item in &items {
        assert!(item.contains_key("SealedValue"), "{item:?}");
        assert!(!item.contains_key("Value"), "{item:?}");
        let raw = format!("{item:?}");
        for secret in secrets {
            assert!(!raw.contains(secret), "plaintext in {raw}");
            assert!(
                !raw.contains(&b64.encode(secret)),
                "base64 plaintext in {raw}"
            );
        }
    }
    // And the value still round-trips, through the product's GetParameter.
    let ctx = adapters.context(&caller, now_epoch());
    let got = get::get_parameter(&ctx, &json!({"Name": name, "WithDecryption": true}))
        .await
        .unwrap();
    assert_eq!(got["Parameter"]["Value"], secrets[1]);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn without_a_cache_every_open_decrypts() {
    let stack = stack().await;
    let keys = KmsDataKeys::new(&stack);
    let sealer = Sealer::new(Box::new(keys.clone()), Duration::ZERO, 16);
    let arn = format!(
        "arn:aws:ssm:us-east-1:000000000000:parameter/test-{}",
        unique()
    );
    let sealed = sealer
        .seal(&stack.settings.data_key_id, &arn, "v")
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(sealer.open(&arn, &sealed).await.unwrap().expose(), "v");
    }
    assert_eq!(keys.calls().counts(), (1, 3));
}
