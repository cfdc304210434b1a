//! Every operation and every refusal over the in-memory store; a refusal
//! changes nothing.

use super::access_keys::*;
use super::store::FakeSealer;
use super::user_policies::*;
use super::users::*;
use super::*;
use crate::access::{Caller, Policy};

const ACCOUNT: &str = "123456789012";
const READ_DEV: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/app/dev/*"}]}"#;

fn caller(policy: &str) -> Caller {
    Caller {
        access_key_id: "AKSTCALLER0000000000".into(),
        user_arn: format!("arn:aws:iam::{ACCOUNT}:user/admin"),
        policy: Policy::parse(policy).unwrap(),
    }
}

fn admin() -> Caller {
    caller(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
}

fn cx<'a>(store: &'a MemoryIdentityStore, who: &'a Caller) -> Identity<'a> {
    Identity {
        store,
        sealer: &FakeSealer,
        caller: who,
        caller_user: "admin",
        account: ACCOUNT,
        now: 1_700_000_000.0,
    }
}

/// Runs `f`, asserts it is refused with `code` and that nothing changed.
macro_rules! refused {
    ($store:expr, $code:expr, $call:expr) => {{
        let before = $store.snapshot();
        let e = $call.await.unwrap_err();
        assert_eq!(e.code(), $code, "{e}");
        assert_eq!($store.snapshot(), before, "a refusal changed the store");
        e
    }};
}

#[tokio::test]
async fn users_are_created_listed_read_and_deleted() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    let c = cx(&store, &a);
    let u = create_user(&c, "alice", None).await.unwrap();
    assert_eq!(u.arn(ACCOUNT), "arn:aws:iam::123456789012:user/alice");
    assert!(u.user_id.starts_with("AIDA") && u.user_id.len() == 21);
    assert_eq!(u.path, "/");
    create_user(&c, "Bob", Some("/")).await.unwrap();
    let e = refused!(store, "EntityAlreadyExists", create_user(&c, "ALICE", None));
    assert_eq!(e.to_string(), "User with name ALICE already exists.");
    refused!(store, "ValidationError", create_user(&c, "no spaces", None));
    refused!(
        store,
        "ValidationError",
        create_user(&c, &"x".repeat(65), None)
    );
    refused!(
        store,
        "ValidationError",
        create_user(&c, "carol", Some("/ops/"))
    );

    // Case-insensitive lookup, the name as created.
    assert_eq!(get_user(&c, Some("BOB")).await.unwrap().user_name, "Bob");
    let e = refused!(store, "NoSuchEntity", get_user(&c, Some("nobody")));
    assert_eq!(e.to_string(), "The user with name nobody cannot be found.");

    let all = list_users(&c, None, &PageRequest::default()).await.unwrap();
    let names: Vec<_> = all.items.iter().map(|u| u.user_name.as_str()).collect();
    assert_eq!(names, ["alice", "Bob"]);
    assert_eq!(all.marker, None);
    let none = list_users(&c, Some("/ops/"), &PageRequest::default())
        .await
        .unwrap();
    assert!(none.items.is_empty());

    delete_user(&c, "alice").await.unwrap();
    refused!(store, "NoSuchEntity", delete_user(&c, "alice"));
    assert_eq!(store.snapshot().0.len(), 1);
}

#[tokio::test]
async fn listing_users_pages_with_marker_and_max_items() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    let c = cx(&store, &a);
    for i in 0..5 {
        create_user(&c, &format!("u{i}"), None).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut req = PageRequest {
        marker: None,
        max_items: Some(2),
    };
    loop {
        let page = list_users(&c, None, &req).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|u| u.user_name));
        match page.marker {
            Some(m) => req.marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, ["u0", "u1", "u2", "u3", "u4"]);
    for bad in [0, 1001] {
        let req = PageRequest {
            marker: None,
            max_items: Some(bad),
        };
        assert_eq!(
            list_users(&c, None, &req).await.unwrap_err().code(),
            "ValidationError"
        );
    }
}

#[tokio::test]
async fn inline_policies_are_put_read_listed_and_deleted() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    let c = cx(&store, &a);
    create_user(&c, "dev", None).await.unwrap();
    put_user_policy(&c, "dev", "read-dev", READ_DEV)
        .await
        .unwrap();
    let p = get_user_policy(&c, "DEV", "read-dev").await.unwrap();
    assert_eq!(p.user_name, "dev");
    assert_eq!(p.document, READ_DEV);
    // Replacing keeps one policy of the name.
    put_user_policy(&c, "dev", "read-dev", READ_DEV)
        .await
        .unwrap();
    put_user_policy(&c, "dev", "b", READ_DEV).await.unwrap();
    let names = list_user_policies(&c, "dev", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(names.items, ["b", "read-dev"]);
    let first = list_user_policies(
        &c,
        "dev",
        &PageRequest {
            marker: None,
            max_items: Some(1),
        },
    )
    .await
    .unwrap();
    assert_eq!(first.items, ["b"]);
    let second = list_user_policies(
        &c,
        "dev",
        &PageRequest {
            marker: first.marker,
            max_items: Some(1),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (second.items, second.marker),
        (vec!["read-dev".to_string()], None)
    );

    let e = refused!(store, "NoSuchEntity", get_user_policy(&c, "dev", "nope"));
    assert!(e.to_string().contains("nope"));
    refused!(store, "NoSuchEntity", delete_user_policy(&c, "dev", "nope"));
    refused!(
        store,
        "NoSuchEntity",
        put_user_policy(&c, "ghost", "p", READ_DEV)
    );
    refused!(
        store,
        "ValidationError",
        put_user_policy(&c, "dev", "bad name", READ_DEV)
    );
    refused!(
        store,
        "ValidationError",
        put_user_policy(&c, "dev", &"p".repeat(129), READ_DEV)
    );

    delete_user_policy(&c, "dev", "b").await.unwrap();
    assert_eq!(
        list_user_policies(&c, "dev", &PageRequest::default())
            .await
            .unwrap()
            .items,
        ["read-dev"]
    );
}

#[tokio::test]
async fn malformed_and_oversized_policies_change_nothing() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    let c = cx(&store, &a);
    create_user(&c, "dev", None).await.unwrap();
    let e = refused!(
        store,
        "MalformedPolicyDocument",
        put_user_policy(&c, "dev", "p", "not json")
    );
    assert!(!e.to_string().is_empty());
    refused!(
        store,
        "MalformedPolicyDocument",
        put_user_policy(
            &c,
            "dev",
            "p",
            r#"{"Statement":[{"Effect":"Maybe","Action":"*"}]}"#
        )
    );
    // Steward does not evaluate conditions: refused, never stored and ignored.
    let e = refused!(
        store,
        "MalformedPolicyDocument",
        put_user_policy(
            &c,
            "dev",
            "p",
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#
        )
    );
    assert!(e.to_string().contains("Condition"), "{e}");
    refused!(
        store,
        "ValidationError",
        put_user_policy(&c, "dev", "p", "")
    );
    // 2,048 characters for all of a user's policies, whitespace not counted.
    let pad = |n: usize| {
        let base = r#"{"Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/"#;
        let end = r#""}]}"#;
        format!("{base}{}{end}", "a".repeat(n - base.len() - end.len()))
    };
    put_user_policy(&c, "dev", "one", &pad(1500)).await.unwrap();
    let e = refused!(
        store,
        "LimitExceeded",
        put_user_policy(&c, "dev", "two", &pad(549))
    );
    assert_eq!(
        e.to_string(),
        "Maximum policy size of 2048 bytes exceeded for user dev"
    );
    put_user_policy(&c, "dev", "two", &pad(548)).await.unwrap();
    // Replacing a policy counts its new size, not both.
    put_user_policy(&c, "dev", "one", &format!("  {}  ", pad(1500)))
        .await
        .unwrap();
}

#[tokio::test]
async fn access_keys_are_capped_at_two_and_deleting_a_user_needs_none() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    let c = cx(&store, &a);
    create_user(&c, "ops", None).await.unwrap();
    let k1 = create_access_key(&c, Some("ops")).await.unwrap();
    assert!(k1.key.access_key_id.starts_with("AKST") && k1.key.access_key_id.len() == 20);
    assert_eq!(k1.secret.expose().len(), 40);
    assert_eq!(k1.key.status, "Active");
    assert_eq!(
        k1.key.secret_ciphertext,
        format!("sealed:{}:40", k1.key.access_key_id)
    );
    let k2 = create_access_key(&c, Some("OPS")).await.unwrap();
    assert_eq!(k2.key.user_name, "ops");
    let e = refused!(store, "LimitExceeded", create_access_key(&c, Some("ops")));
    assert_eq!(
        e.to_string(),
        "Cannot exceed quota for AccessKeysPerUser: 2"
    );
    refused!(store, "NoSuchEntity", create_access_key(&c, Some("ghost")));

    let listed = list_access_keys(&c, Some("ops"), &PageRequest::default())
        .await
        .unwrap();
    let mut want = vec![k1.key.access_key_id.clone(), k2.key.access_key_id.clone()];
    want.sort();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|k| k.access_key_id.clone())
            .collect::<Vec<_>>(),
        want
    );

    put_user_policy(&c, "ops", "p", READ_DEV).await.unwrap();
    let e = refused!(store, "DeleteConflict", delete_user(&c, "ops"));
    assert_eq!(
        e.to_string(),
        "Cannot delete entity, must delete access keys first."
    );

    update_access_key(&c, Some("ops"), &k1.key.access_key_id, "Inactive")
        .await
        .unwrap();
    assert!(
        !store
            .key(&k1.key.access_key_id)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    refused!(
        store,
        "ValidationError",
        update_access_key(&c, Some("ops"), &k1.key.access_key_id, "Off")
    );
    let e = refused!(
        store,
        "NoSuchEntity",
        update_access_key(&c, Some("ops"), "AKSTNOSUCHKEY0000000", "Active")
    );
    assert_eq!(
        e.to_string(),
        "The Access Key with id AKSTNOSUCHKEY0000000 cannot be found."
    );

    // Another user's key is not found under this user.
    create_user(&c, "other", None).await.unwrap();
    refused!(
        store,
        "NoSuchEntity",
        delete_access_key(&c, Some("other"), &k1.key.access_key_id)
    );

    delete_access_key(&c, Some("ops"), &k1.key.access_key_id)
        .await
        .unwrap();
    // A key freed makes room for another.
    create_access_key(&c, Some("ops")).await.unwrap();
    for k in list_access_keys(&c, Some("ops"), &PageRequest::default())
        .await
        .unwrap()
        .items
    {
        delete_access_key(&c, Some("ops"), &k.access_key_id)
            .await
            .unwrap();
    }
    let e = refused!(store, "DeleteConflict", delete_user(&c, "ops"));
    assert_eq!(
        e.to_string(),
        "Cannot delete entity, must delete policies first."
    );
    delete_user_policy(&c, "ops", "p").await.unwrap();
    delete_user(&c, "ops").await.unwrap();
    assert!(store.user("ops").await.unwrap().is_none());
}

#[tokio::test]
async fn key_operations_default_to_the_callers_user() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    let c = cx(&store, &a);
    create_user(&c, "admin", None).await.unwrap();
    let k = create_access_key(&c, None).await.unwrap();
    assert_eq!(k.key.user_name, "admin");
    assert_eq!(get_user(&c, None).await.unwrap().user_name, "admin");
    let listed = list_access_keys(&c, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn without_iam_rights_everything_is_access_denied_and_nothing_read() {
    let store = MemoryIdentityStore::new();
    let a = admin();
    create_user(&cx(&store, &a), "dev", None).await.unwrap();
    let reader = caller(READ_DEV);
    let c = cx(&store, &reader);
    let e = refused!(
        store,
        "AccessDenied",
        list_users(&c, None, &PageRequest::default())
    );
    assert!(e.to_string().contains("iam:ListUsers"), "{e}");
    refused!(store, "AccessDenied", create_user(&c, "x", None));
    refused!(store, "AccessDenied", get_user(&c, Some("dev")));
    // Refused before reading: a missing user is not revealed.
    refused!(store, "AccessDenied", get_user(&c, Some("ghost")));
    refused!(
        store,
        "AccessDenied",
        put_user_policy(&c, "dev", "p", READ_DEV)
    );
    refused!(store, "AccessDenied", create_access_key(&c, Some("dev")));
    refused!(store, "AccessDenied", delete_user(&c, "dev"));

    // Narrowed to one user's keys.
    let own = caller(
        r#"{"Statement":[{"Effect":"Allow","Action":["iam:*AccessKey*"],"Resource":"arn:aws:iam::*:user/dev"}]}"#,
    );
    let c = cx(&store, &own);
    create_access_key(&c, Some("dev")).await.unwrap();
    refused!(store, "AccessDenied", create_access_key(&c, Some("admin")));
}
