//! The identity store against the local stack (`source .local/stack.env`):
//! the same conditions as `steward_core::identity::MemoryIdentityStore`.

use steward_aws::identity::IdentityTables;
use steward_aws::key_service::DataKey;
use steward_aws::testing::{stack, unique};
use steward_core::fleet::SecretDecrypter;
use steward_core::identity::model::{AccessKey, User};
use steward_core::identity::{IdentityStore, KeySealer};
use steward_core::secret::Secret;

fn key(id: &str, user: &str, at: f64) -> AccessKey {
    AccessKey {
        access_key_id: id.into(),
        secret_ciphertext: "c".into(),
        user_name: user.into(),
        status: "Active".into(),
        create_date: at,
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn users_and_keys_are_written_under_conditions() {
    let stack = stack().await;
    let store = IdentityTables::new(&stack);
    let name = format!("Test-{}", unique());

    assert_eq!(store.user(&name).await.unwrap(), None);
    let mut u = User::new(&name, 1_700_000_000.5);
    u.policies.insert("p".into(), r#"{"Statement":[]}"#.into());
    assert!(store.create_user(&u).await.unwrap());
    // Unique regardless of case; found in any case.
    let mut other_case = u.clone();
    other_case.user_name = name.to_uppercase();
    assert!(!store.create_user(&other_case).await.unwrap());
    assert_eq!(
        store.user(&name.to_lowercase()).await.unwrap(),
        Some(u.clone())
    );

    // Writes only at the revision read.
    let mut next = u.next();
    next.policies.insert("q".into(), "{}".into());
    assert!(!store.put_user(&next, u.revision + 5).await.unwrap());
    assert!(store.put_user(&next, u.revision).await.unwrap());
    assert!(!store.put_user(&next, u.revision).await.unwrap());
    let u = store.user(&name).await.unwrap().unwrap();
    assert_eq!(u.policies.len(), 2);

    // A key and its user's count in one transaction; a stale user refuses both.
    let id1 = format!("AKSTTEST{}", unique().to_uppercase());
    let mut with_key = u.next();
    with_key.key_count = 1;
    assert!(
        !store
            .add_key(&with_key, u.revision - 1, &key(&id1, &name, 1.0))
            .await
            .unwrap()
    );
    assert_eq!(store.key(&id1).await.unwrap(), None);
    assert!(
        store
            .add_key(&with_key, u.revision, &key(&id1, &name, 1.0))
            .await
            .unwrap()
    );
    // Listed from the index with what a listing shows: never the sealed secret.
    let listed = store.keys_of(&name).await.unwrap();
    let mut want = key(&id1, &name, 1.0);
    want.secret_ciphertext = String::new();
    assert_eq!(listed, vec![want]);

    assert!(
        store
            .set_key_status(&key(&id1, &name, 1.0), "Inactive")
            .await
            .unwrap()
    );
    assert!(!store.key(&id1).await.unwrap().unwrap().is_active());
    assert!(
        !store
            .set_key_status(&key(&id1, "someone-else", 1.0), "Active")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_key_status(&key("AKSTNOSUCHKEY0000000", &name, 1.0), "Active")
            .await
            .unwrap()
    );

    let u = store.user(&name).await.unwrap().unwrap();
    assert_eq!(u.key_count, 1);
    let mut without = u.next();
    without.key_count = 0;
    assert!(
        !store
            .remove_key(&without, u.revision, &key(&id1, "someone-else", 1.0))
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_key(&without, u.revision, &key(&id1, &name, 1.0))
            .await
            .unwrap()
    );
    assert_eq!(store.key(&id1).await.unwrap(), None);

    let u = store.user(&name).await.unwrap().unwrap();
    assert!(!store.delete_user(&u, u.revision - 1).await.unwrap());
    assert!(store.delete_user(&u, u.revision).await.unwrap());
    assert_eq!(store.user(&name).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn users_are_listed_in_pages_in_name_order() {
    let stack = stack().await;
    let store = IdentityTables::new(&stack);
    let prefix = format!("zz-list-{}", unique());
    for i in 0..3 {
        assert!(
            store
                .create_user(&User::new(&format!("{prefix}-{i}"), 1.0))
                .await
                .unwrap()
        );
    }
    // Start just before this test's users.
    let mut after = Some(prefix.clone());
    let mut seen = Vec::new();
    while let Some(a) = after {
        let (page, more) = store.list_users(Some(&a), 2).await.unwrap();
        assert!(page.len() <= 2);
        after = if more {
            page.last().map(|u| u.user_name.to_lowercase())
        } else {
            None
        };
        seen.extend(
            page.into_iter()
                .map(|u| u.user_name)
                .filter(|n| n.starts_with(&prefix)),
        );
    }
    assert_eq!(
        seen,
        (0..3).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_sealed_secret_opens_only_for_its_key_id() {
    let stack = stack().await;
    let kms = DataKey::new(&stack);
    let secret = Secret::new("s".repeat(40));
    let sealed = kms.seal("AKSTSEALTEST00000000", &secret).await.unwrap();
    assert_eq!(
        kms.decrypt("AKSTSEALTEST00000000", &sealed).await.unwrap(),
        secret
    );
    // Under another key id KMS refuses it (the encryption context differs):
    // a record that cannot be opened is the service's fault, never the caller's.
    assert_eq!(
        kms.decrypt("AKSTOTHERKEY00000000", &sealed)
            .await
            .unwrap_err()
            .code(),
        "InternalServerError"
    );
}
