use serde_json::json;

use super::*;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::documents::context::DocumentContext;
use crate::documents::operations::handle;
use crate::documents::store::MemoryDocumentStore;
use crate::documents::{DocumentFormat, GivenParameters};

const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

const CHILD: &str = "schemaVersion: '2.2'\nparameters:\n  word:\n    type: String\n    allowedPattern: '^[a-z]+$'\nmainSteps:\n- action: aws:runShellScript\n  name: say\n  inputs:\n    runCommand:\n    - echo child {{ word }}\n";

fn parent(child: &str, params: &str) -> String {
    format!(
        "schemaVersion: '2.2'\nparameters:\n  who:\n    type: String\n    default: bob\nmainSteps:\n- action: aws:runShellScript\n  name: first\n  inputs:\n    runCommand:\n    - echo parent\n- action: aws:runDocument\n  name: nested\n  inputs:\n    documentType: SSMDocument\n    documentPath: {child}\n    documentParameters: {params}\n"
    )
}

fn runs(child: &str) -> String {
    parent(child, "'{}'")
}

struct Fixture {
    store: MemoryDocumentStore,
}

impl Fixture {
    async fn with(docs: &[(&str, &str)]) -> Self {
        let f = Fixture {
            store: MemoryDocumentStore::new(),
        };
        let caller = Caller {
            access_key_id: "AKTEST".into(),
            user_arn: "arn:aws:iam::123456789012:user/t".into(),
            policy: Policy::parse(ADMIN).unwrap(),
        };
        let scope = ArnScope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        let ctx = DocumentContext {
            store: &f.store,
            caller: &caller,
            scope: &scope,
            now: 1000.0,
        };
        for (name, content) in docs {
            handle(
                &ctx,
                "CreateDocument",
                &json!({"Name": name, "Content": content, "DocumentFormat": "YAML"}),
            )
            .await
            .unwrap()
            .unwrap();
        }
        f
    }

    async fn expand(&self, content: &str, given: &[(&str, &str)]) -> Result<Expanded, SsmError> {
        let doc = Document::parse(content, DocumentFormat::Yaml)?;
        let given: GivenParameters = given
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        let params = doc.validate_parameters(&given)?;
        expand(&self.store, "Top", &doc, &params, "Linux").await
    }
}

fn lines(e: &Expanded) -> Vec<(String, Vec<String>)> {
    e.steps
        .iter()
        .filter_map(|s| s.plugin_step())
        .map(|p| (p.name, p.run_command))
        .collect()
}

#[tokio::test]
async fn the_child_is_inlined_with_the_parents_values() {
    let f = Fixture::with(&[("Child", CHILD)]).await;
    for params in ["'{\"word\": \"{{ who }}\"}'", "\n      word: '{{ who }}'"] {
        let e = f
            .expand(&parent("Child", params), &[("who", "alice")])
            .await
            .unwrap();
        assert_eq!(
            lines(&e),
            vec![
                ("first".to_string(), vec!["echo parent".to_string()]),
                (
                    "nested.say".to_string(),
                    vec!["echo child alice".to_string()]
                ),
            ]
        );
        assert_eq!(e.nested_parameters.len(), 1);
    }
    // A version after the name, and a built-in.
    let e = f
        .expand(&parent("Child:1", "'{\"word\": \"x\"}'"), &[])
        .await
        .unwrap();
    assert_eq!(lines(&e)[1].1, vec!["echo child x".to_string()]);
    let e = f
        .expand(
            &parent(
                "AWS-RunShellScript",
                "'{\"commands\": [\"echo a\", \"echo b\"]}'",
            ),
            &[],
        )
        .await
        .unwrap();
    // A schema 1.2 child's step is named after its plugin.
    assert_eq!(lines(&e)[1].0, "nested.aws:runShellScript");
    assert_eq!(
        lines(&e)[1].1,
        vec!["echo a".to_string(), "echo b".to_string()]
    );
}

#[tokio::test]
async fn child_parameters_follow_the_childs_rules() {
    let f = Fixture::with(&[("Child", CHILD)]).await;
    let e = f
        .expand(&parent("Child", "'{\"word\": \"NOT-lower\"}'"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "InvalidParameters");
    assert!(e.to_string().contains("nested"), "{e}");
    // Missing required, and unknown.
    for p in ["'{}'", "'{\"word\": \"a\", \"other\": \"b\"}'"] {
        let e = f.expand(&parent("Child", p), &[]).await.unwrap_err();
        assert_eq!(e.code(), "InvalidParameters", "{p}");
    }
}

#[tokio::test]
async fn a_missing_child_is_an_invalid_document() {
    let f = Fixture::with(&[]).await;
    let e = f.expand(&runs("Nowhere"), &[]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidDocument");
    let f = Fixture::with(&[("Child", CHILD)]).await;
    let e = f
        .expand(&parent("Child:7", "'{\"word\": \"x\"}'"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), "InvalidDocumentVersion");
}

#[tokio::test]
async fn cycles_and_depth_are_refused() {
    // A runs B runs A.
    let f = Fixture::with(&[("DocB", &runs("DocA")), ("DocA", &runs("DocB"))]).await;
    let e = f.expand(&runs("DocA"), &[]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidDocumentContent");
    assert!(e.to_string().contains("itself"), "{e}");

    // Top > L1 > L2 > L3 is as deep as it goes; one more is refused.
    let leaf = "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runShellScript\n  name: leaf\n  inputs:\n    runCommand: echo leaf\n";
    let f = Fixture::with(&[
        ("Lv4", leaf),
        ("Lv3", leaf),
        ("Lv2", &runs("Lv3")),
        ("Lv1", &runs("Lv2")),
        ("Mv3", &runs("Lv4")),
        ("Mv2", &runs("Mv3")),
        ("Mv1", &runs("Mv2")),
    ])
    .await;
    let e = f.expand(&runs("Lv1"), &[]).await.unwrap();
    assert!(
        lines(&e)
            .iter()
            .any(|(n, _)| n == "nested.nested.nested.leaf")
    );
    let e = f.expand(&runs("Mv1"), &[]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidDocumentContent");
    assert!(e.to_string().contains("deep"), "{e}");
}

#[test]
fn unsupported_sources_are_refused_when_the_document_is_read() {
    let step = |inputs: &str| {
        format!(
            "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runDocument\n  name: n\n  inputs:\n{inputs}"
        )
    };
    for (inputs, says) in [
        (
            "    documentType: LocalPath\n    documentPath: /tmp/x.json\n",
            "LocalPath",
        ),
        (
            "    documentType: SSMDocument\n    documentPath: X1\n    sourceType: S3\n",
            "S3",
        ),
        (
            "    documentType: SSMDocument\n",
            "documentPath is required",
        ),
        ("    documentPath: Xyz\n", "documentType is required"),
        (
            "    documentType: SSMDocument\n    documentPath: Xyz\n    documentParameters: 'not json'\n",
            "JSON",
        ),
        (
            "    documentType: SSMDocument\n    documentPath: Xyz\n    onFailure: exit\n",
            "not supported yet",
        ),
    ] {
        let e = Document::parse(&step(inputs), DocumentFormat::Yaml).unwrap_err();
        assert_eq!(e.code(), "InvalidDocumentContent", "{inputs}");
        assert!(e.to_string().contains(says), "{inputs}: {e}");
    }
    let v1 = "{\"schemaVersion\": \"1.2\", \"runtimeConfig\": {\"aws:runDocument\": {\"properties\": [{}]}}}";
    assert_eq!(
        Document::parse(v1, DocumentFormat::Json)
            .unwrap_err()
            .code(),
        "InvalidDocumentContent"
    );
}
