//! The document store against the local stack (`source .local/stack.env`):
//! the same rules as `steward_core::documents::store::MemoryDocumentStore`.

use std::collections::BTreeMap;

use steward_aws::documents::DocumentTable;
use steward_aws::testing::{stack, unique};
use steward_core::documents::DocumentFormat;
use steward_core::documents::store::{DocumentHead, DocumentStore, StoredVersion, VersionSummary};

fn version(name: &str, n: u64) -> StoredVersion {
    StoredVersion {
        name: name.into(),
        version: n,
        version_name: Some(format!("v{n}")),
        content: format!("content {n}"),
        format: DocumentFormat::Yaml,
        hash: format!("hash{n}"),
        created_date: 1_700_000_000.5 + n as f64,
    }
}

fn head(name: &str, latest: u64, revision: u64) -> DocumentHead {
    DocumentHead {
        name: name.into(),
        document_type: "Command".into(),
        owner: "000000000000".into(),
        created_date: 1_700_000_000.5,
        latest_version: latest,
        default_version: 1,
        last_number: latest,
        version_count: latest,
        version_names: (1..=latest).map(|n| (format!("v{n}"), n)).collect(),
        default_summary: VersionSummary {
            version_name: Some("v1".into()),
            schema_version: "2.2".into(),
            format: DocumentFormat::Yaml,
            platform_types: vec!["Linux".into(), "MacOS".into()],
        },
        tags: BTreeMap::from([("team".to_string(), "ops".to_string())]),
        target_type: Some("/".into()),
        display_name: Some("Shown name".into()),
        revision,
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn heads_and_versions_are_written_under_conditions() {
    let stack = stack().await;
    let store = DocumentTable::new(&stack);
    let name = format!("Test-{}", unique());

    assert_eq!(store.head(&name).await.unwrap(), None);
    let h1 = head(&name, 1, 1);
    assert!(
        store
            .put_version(&h1, None, &version(&name, 1))
            .await
            .unwrap()
    );
    // A second create loses: the head exists.
    assert!(
        !store
            .put_version(&h1, None, &version(&name, 1))
            .await
            .unwrap()
    );
    assert_eq!(store.head(&name).await.unwrap(), Some(h1.clone()));
    assert_eq!(
        store.version(&name, 1).await.unwrap(),
        Some(version(&name, 1))
    );
    assert_eq!(store.version(&name, 0).await.unwrap(), None);

    let h2 = head(&name, 2, 2);
    assert!(
        !store
            .put_version(&h2, Some(7), &version(&name, 2))
            .await
            .unwrap()
    );
    assert_eq!(store.version(&name, 2).await.unwrap(), None);
    assert!(
        store
            .put_version(&h2, Some(1), &version(&name, 2))
            .await
            .unwrap()
    );
    let h3 = head(&name, 3, 3);
    assert!(
        store
            .put_version(&h3, Some(2), &version(&name, 3))
            .await
            .unwrap()
    );

    let (page, more) = store.versions(&name, 0, 2).await.unwrap();
    assert_eq!(page.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert!(more);
    let (page, more) = store.versions(&name, 2, 2).await.unwrap();
    assert_eq!(page.iter().map(|v| v.version).collect::<Vec<_>>(), [3]);
    assert!(!more);
    assert_eq!(store.version_before(&name, 3).await.unwrap(), Some(2));
    assert_eq!(store.version_before(&name, 1).await.unwrap(), None);

    let mut h4 = h3.clone();
    h4.revision = 4;
    h4.version_count = 2;
    assert!(!store.delete_version(&h4, 2, 2).await.unwrap());
    assert!(store.delete_version(&h4, 3, 2).await.unwrap());
    assert_eq!(store.version(&name, 2).await.unwrap(), None);
    assert_eq!(store.version_before(&name, 3).await.unwrap(), Some(1));

    let mut h5 = h4.clone();
    h5.default_version = 3;
    h5.revision = 5;
    assert!(!store.update_head(&h5, 3).await.unwrap());
    assert!(store.update_head(&h5, 4).await.unwrap());
    assert_eq!(store.head(&name).await.unwrap().unwrap().default_version, 3);

    // Listed by name, heads only.
    let before = name[..name.len() - 1].to_string();
    let (listed, _) = store.list(Some(&before), 100).await.unwrap();
    assert_eq!(listed.iter().filter(|h| h.name == name).count(), 1);

    assert!(!store.delete(&h5, 4).await.unwrap());
    assert!(store.delete(&h5, 5).await.unwrap());
    assert_eq!(store.head(&name).await.unwrap(), None);
    assert_eq!(store.versions(&name, 0, 10).await.unwrap().0, vec![]);
}
