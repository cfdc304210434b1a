use serde_json::{Value, json};

use super::*;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::documents::builtin;
use crate::documents::context::{DocumentContext, load_for_run};
use crate::documents::format::content_hash;
use crate::documents::store::DocumentStore;
use crate::documents::store::MemoryDocumentStore;

const V1: &str = "schemaVersion: '2.2'\ndescription: first\nparameters:\n  who:\n    type: String\n    default: world\n    allowedPattern: '[a-z]+'\n  count:\n    type: Integer\n    default: 2\nmainSteps:\n- action: aws:runShellScript\n  name: hello\n  inputs:\n    runCommand:\n    - echo hello {{ who }} {{ count }}\n";
const V2: &str = "schemaVersion: '2.2'\ndescription: second\nmainSteps:\n- action: aws:runShellScript\n  name: bye\n  inputs:\n    runCommand:\n    - echo bye\n";

const RUNBOOK: &str = "schemaVersion: '0.3'\ndescription: restart\nparameters:\n  Node:\n    type: String\nmainSteps:\n- name: restart\n  action: aws:runCommand\n  inputs:\n    DocumentName: AWS-RunShellScript\n    InstanceIds: ['{{ Node }}']\n    Parameters:\n      commands: ['true']\n";

fn scope() -> ArnScope {
    ArnScope {
        region: "us-east-1".into(),
        account: "123456789012".into(),
    }
}

fn caller(policy: &str) -> Caller {
    Caller {
        access_key_id: "AKTEST".into(),
        user_arn: "arn:aws:iam::123456789012:user/t".into(),
        policy: Policy::parse(policy).unwrap(),
    }
}

const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

struct Fixture {
    store: MemoryDocumentStore,
    caller: Caller,
    scope: ArnScope,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            store: MemoryDocumentStore::new(),
            caller: caller(ADMIN),
            scope: scope(),
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        let ctx = DocumentContext {
            store: &self.store,
            caller: &self.caller,
            scope: &self.scope,
            now: 1000.0,
        };
        handle(&ctx, op, &body).await.expect("a document operation")
    }

    async fn code(&self, op: &str, body: Value) -> String {
        self.call(op, body).await.unwrap_err().code().to_string()
    }

    async fn create(&self, name: &str) -> Value {
        self.call(
            "CreateDocument",
            json!({"Name": name, "Content": V1, "DocumentFormat": "YAML", "VersionName": "one",
                   "Tags": [{"Key": "team", "Value": "ops"}]}),
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn create_describes_as_ssm() {
    let f = Fixture::new();
    let d = &f.create("Hello").await["DocumentDescription"];
    assert_eq!(d["Name"], "Hello");
    assert_eq!(d["Owner"], "123456789012");
    assert_eq!(d["DocumentVersion"], "1");
    assert_eq!(d["LatestVersion"], "1");
    assert_eq!(d["DefaultVersion"], "1");
    assert_eq!(d["HashType"], "Sha256");
    assert_eq!(d["Hash"], content_hash(V1));
    assert_eq!(d["Status"], "Active");
    assert_eq!(d["SchemaVersion"], "2.2");
    assert_eq!(d["DocumentFormat"], "YAML");
    assert_eq!(d["DocumentType"], "Command");
    assert_eq!(d["VersionName"], "one");
    assert_eq!(d["PlatformTypes"], json!(["Linux", "MacOS"]));
    assert_eq!(
        d["Parameters"],
        json!([
            {"Name": "who", "Type": "String", "Description": "", "DefaultValue": "world"},
            {"Name": "count", "Type": "Integer", "Description": "", "DefaultValue": "2"}
        ])
    );
    assert_eq!(d["Tags"], json!([{"Key": "team", "Value": "ops"}]));
    assert_eq!(
        f.code(
            "CreateDocument",
            json!({"Name": "Hello", "Content": V1, "DocumentFormat": "YAML"})
        )
        .await,
        "DocumentAlreadyExists"
    );
}

#[tokio::test]
async fn create_refuses_bad_input_and_changes_nothing() {
    let f = Fixture::new();
    let cases = [
        (
            json!({"Name": "Bad", "Content": "{", "DocumentFormat": "JSON"}),
            "InvalidDocumentContent",
        ),
        (
            json!({"Name": "Bad", "Content": V1}),
            "InvalidDocumentContent",
        ),
        (
            json!({"Name": "Bad", "Content": V1, "DocumentFormat": "YAML", "DocumentType": "Automation"}),
            "InvalidDocumentSchemaVersion",
        ),
        (
            json!({"Name": "Bad", "Content": RUNBOOK, "DocumentFormat": "YAML"}),
            "InvalidDocumentSchemaVersion",
        ),
        (
            json!({"Name": "Bad", "Content": V1, "DocumentFormat": "YAML", "DocumentType": "Session"}),
            "InvalidDocumentContent",
        ),
        (
            json!({"Name": "Bad", "Content": V1, "DocumentFormat": "YAML", "DocumentType": "Bogus"}),
            "ValidationException",
        ),
        (
            json!({"Name": "aws-x", "Content": V1, "DocumentFormat": "YAML"}),
            "ValidationException",
        ),
        (
            json!({"Name": "AmazonX", "Content": V1, "DocumentFormat": "YAML"}),
            "ValidationException",
        ),
        (
            json!({"Name": "x", "Content": V1, "DocumentFormat": "YAML"}),
            "ValidationException",
        ),
        (
            json!({"Name": "Steward-CheckDiskSpace", "Content": V1, "DocumentFormat": "YAML"}),
            "DocumentAlreadyExists",
        ),
        (
            json!({"Name": "Bad", "Content": V1, "DocumentFormat": "YAML", "VersionName": "a b"}),
            "ValidationException",
        ),
        (json!({"Content": V1}), "ValidationException"),
    ];
    for (body, code) in cases {
        assert_eq!(f.code("CreateDocument", body.clone()).await, code, "{body}");
    }
    assert_eq!(f.store.list(None, 10).await.unwrap().0.len(), 0);
}

#[tokio::test]
async fn update_adds_versions_and_reads_select_them() {
    let f = Fixture::new();
    f.create("Doc").await;
    let up = |content: &str, extra: Value| {
        let mut b = json!({"Name": "Doc", "Content": content, "DocumentFormat": "YAML"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    assert_eq!(
        f.code("UpdateDocument", up(V1, json!({}))).await,
        "DuplicateDocumentContent"
    );
    assert_eq!(
        f.code("UpdateDocument", up(V2, json!({"VersionName": "one"})))
            .await,
        "DuplicateDocumentVersionName"
    );
    let d = f
        .call(
            "UpdateDocument",
            up(
                V2,
                json!({"DocumentVersion": "$LATEST", "VersionName": "two"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(d["DocumentDescription"]["DocumentVersion"], "2");
    assert_eq!(d["DocumentDescription"]["LatestVersion"], "2");
    assert_eq!(d["DocumentDescription"]["DefaultVersion"], "1");
    // Only the latest version can be updated.
    assert_eq!(
        f.code("UpdateDocument", up(V1, json!({"DocumentVersion": "1"})))
            .await,
        "InvalidDocumentVersion"
    );
    let desc = |v: Value| {
        let mut b = json!({"Name": "Doc"});
        for (k, x) in v.as_object().unwrap() {
            b[k] = x.clone();
        }
        b
    };
    let get = |v| f.call("DescribeDocument", desc(v));
    assert_eq!(
        get(json!({})).await.unwrap()["Document"]["Description"],
        "first"
    );
    assert_eq!(
        get(json!({"DocumentVersion": "$LATEST"})).await.unwrap()["Document"]["Description"],
        "second"
    );
    assert_eq!(
        get(json!({"VersionName": "two"})).await.unwrap()["Document"]["DocumentVersion"],
        "2"
    );
    assert_eq!(
        f.code("DescribeDocument", desc(json!({"DocumentVersion": "3"})))
            .await,
        "InvalidDocumentVersion"
    );
    assert_eq!(
        f.code(
            "DescribeDocument",
            desc(json!({"DocumentVersion": "1", "VersionName": "two"}))
        )
        .await,
        "InvalidDocumentVersion"
    );
    assert_eq!(
        f.code("DescribeDocument", json!({"Name": "Nope"})).await,
        "InvalidDocument"
    );

    // The default moves; reads without a version follow it.
    let r = f
        .call(
            "UpdateDocumentDefaultVersion",
            json!({"Name": "Doc", "DocumentVersion": "2"}),
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        json!({"Description": {"Name": "Doc", "DefaultVersion": "2", "DefaultVersionName": "two"}})
    );
    assert_eq!(
        get(json!({})).await.unwrap()["Document"]["Description"],
        "second"
    );
    assert_eq!(
        f.code(
            "UpdateDocumentDefaultVersion",
            json!({"Name": "Doc", "DocumentVersion": "9"})
        )
        .await,
        "InvalidDocumentVersion"
    );

    let versions = f
        .call("ListDocumentVersions", json!({"Name": "Doc"}))
        .await
        .unwrap();
    let v = versions["DocumentVersions"].as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["IsDefaultVersion"], false);
    assert_eq!(v[1]["IsDefaultVersion"], true);
    assert_eq!(v[1]["VersionName"], "two");
}

#[tokio::test]
async fn get_document_converts_formats() {
    let f = Fixture::new();
    f.create("Conv").await;
    // YAML as written when asked for.
    let g = f
        .call(
            "GetDocument",
            json!({"Name": "Conv", "DocumentFormat": "YAML"}),
        )
        .await
        .unwrap();
    assert_eq!(g["Content"], V1);
    assert_eq!(g["DocumentFormat"], "YAML");
    // JSON otherwise: SSM's default format, whatever the document was written in.
    for body in [
        json!({"Name": "Conv"}),
        json!({"Name": "Conv", "DocumentFormat": "JSON"}),
    ] {
        let j = f.call("GetDocument", body).await.unwrap();
        assert_eq!(j["DocumentFormat"], "JSON");
        let v: Value = serde_json::from_str(j["Content"].as_str().unwrap()).unwrap();
        assert_eq!(v["mainSteps"][0]["name"], "hello");
    }
    let b = f
        .call("GetDocument", json!({"Name": "arn:aws:ssm:us-east-1::document/AWS-RunShellScript", "DocumentFormat": "YAML"}))
        .await
        .unwrap();
    assert_eq!(b["Name"], "AWS-RunShellScript");
    assert!(b["Content"].as_str().unwrap().contains("runtimeConfig"));
}

#[tokio::test]
async fn builtins_are_read_only() {
    let f = Fixture::new();
    for (op, body) in [
        (
            "UpdateDocument",
            json!({"Name": "AWS-RunShellScript", "Content": V2, "DocumentFormat": "YAML"}),
        ),
        ("DeleteDocument", json!({"Name": "Steward-CheckDiskSpace"})),
        (
            "UpdateDocumentDefaultVersion",
            json!({"Name": "AWS-RunShellScript", "DocumentVersion": "1"}),
        ),
    ] {
        assert_eq!(f.code(op, body).await, "InvalidDocumentOperation", "{op}");
    }
    let d = f
        .call("DescribeDocument", json!({"Name": "AWS-RunShellScript"}))
        .await
        .unwrap();
    assert_eq!(d["Document"]["Owner"], "Amazon");
    assert_eq!(d["Document"]["Hash"], builtin::AWS_RUN_SHELL_SCRIPT.hash());
}

#[tokio::test]
async fn delete_one_version_or_all() {
    let f = Fixture::new();
    f.create("Del").await;
    f.call(
        "UpdateDocument",
        json!({"Name": "Del", "Content": V2, "DocumentFormat": "YAML"}),
    )
    .await
    .unwrap();
    assert_eq!(
        f.code(
            "DeleteDocument",
            json!({"Name": "Del", "DocumentVersion": "1"})
        )
        .await,
        "InvalidDocumentOperation"
    );
    f.call(
        "DeleteDocument",
        json!({"Name": "Del", "DocumentVersion": "2"}),
    )
    .await
    .unwrap();
    let d = f
        .call("DescribeDocument", json!({"Name": "Del"}))
        .await
        .unwrap();
    assert_eq!(d["Document"]["LatestVersion"], "1");
    assert_eq!(f.store.stored_versions("Del"), 1);
    // A number is never given twice.
    let d = f
        .call(
            "UpdateDocument",
            json!({"Name": "Del", "Content": V2, "DocumentFormat": "YAML"}),
        )
        .await
        .unwrap();
    assert_eq!(d["DocumentDescription"]["DocumentVersion"], "3");
    f.call("DeleteDocument", json!({"Name": "Del"}))
        .await
        .unwrap();
    assert_eq!(
        f.code("DescribeDocument", json!({"Name": "Del"})).await,
        "InvalidDocument"
    );
    assert_eq!(
        f.code("DeleteDocument", json!({"Name": "Del"})).await,
        "InvalidDocument"
    );
    assert_eq!(f.store.stored_versions("Del"), 0);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let f = Fixture::new();
    for n in ["Alpha", "Beta", "Zulu"] {
        f.create(n).await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["DocumentIdentifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = f.call("ListDocuments", json!({})).await.unwrap();
    assert_eq!(
        names(&all),
        [
            "AWS-GatherSoftwareInventory",
            "AWS-RunPatchBaseline",
            "AWS-RunShellScript",
            "Alpha",
            "Beta",
            "Steward-CheckDiskSpace",
            "Steward-GatherNodeFacts",
            "Steward-ManageService",
            "Steward-RestartServiceAndVerify",
            "Steward-RunCommandAfterApproval",
            "Steward-TailFile",
            "Zulu"
        ]
    );
    let amazon = f
        .call(
            "ListDocuments",
            json!({"Filters": [{"Key": "Owner", "Values": ["Amazon"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        names(&amazon),
        [
            "AWS-GatherSoftwareInventory",
            "AWS-RunPatchBaseline",
            "AWS-RunShellScript",
            "Steward-CheckDiskSpace",
            "Steward-GatherNodeFacts",
            "Steward-ManageService",
            "Steward-RestartServiceAndVerify",
            "Steward-RunCommandAfterApproval",
            "Steward-TailFile"
        ]
    );
    let mine = f
        .call(
            "ListDocuments",
            json!({"DocumentFilterList": [{"key": "Owner", "value": "Self"}]}),
        )
        .await
        .unwrap();
    assert_eq!(names(&mine), ["Alpha", "Beta", "Zulu"]);
    let tagged = f
        .call("ListDocuments", json!({"Filters": [{"Key": "tag:team", "Values": ["ops"]}, {"Key": "Name", "Values": ["B"]}]}))
        .await
        .unwrap();
    assert_eq!(names(&tagged), ["Beta"]);
    assert_eq!(
        f.code(
            "ListDocuments",
            json!({"Filters": [{"Key": "Color", "Values": ["x"]}]})
        )
        .await,
        "InvalidFilterKey"
    );

    // Pages of two cover everything once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = f.call("ListDocuments", body).await.unwrap();
        seen.extend(names(&page));
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, names(&all));
    assert_eq!(
        f.code("ListDocuments", json!({"NextToken": "garbage!"}))
            .await,
        "InvalidNextToken"
    );
}

#[tokio::test]
async fn documents_are_authorized_by_arn() {
    let mut f = Fixture::new();
    f.create("Open").await;
    f.create("Secret").await;
    f.caller = caller(
        r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"},
            {"Effect":"Deny","Action":"ssm:*","Resource":"arn:aws:ssm:us-east-1:123456789012:document/Secret"}]}"#,
    );
    assert!(f.call("GetDocument", json!({"Name": "Open"})).await.is_ok());
    assert_eq!(
        f.code("GetDocument", json!({"Name": "Secret"})).await,
        "AccessDeniedException"
    );
    assert_eq!(
        f.code("DeleteDocument", json!({"Name": "Secret"})).await,
        "AccessDeniedException"
    );
    assert!(f.store.head("Secret").await.unwrap().is_some());
}

#[tokio::test]
async fn load_for_run_resolves_versions() {
    let f = Fixture::new();
    f.create("Run").await;
    f.call(
        "UpdateDocument",
        json!({"Name": "Run", "Content": V2, "DocumentFormat": "YAML"}),
    )
    .await
    .unwrap();
    let r = load_for_run(&f.store, "Run", None).await.unwrap();
    assert_eq!((r.version, r.document.description.as_str()), (1, "first"));
    let r = load_for_run(&f.store, "Run", Some("$LATEST"))
        .await
        .unwrap();
    assert_eq!(r.version, 2);
    let r = load_for_run(
        &f.store,
        "arn:aws:ssm:us-east-1:123456789012:document/Run",
        Some("1"),
    )
    .await
    .unwrap();
    assert_eq!(r.hash, content_hash(V1));
    assert_eq!(
        load_for_run(&f.store, "AWS-RunShellScript", Some("2"))
            .await
            .err()
            .unwrap()
            .code(),
        "InvalidDocumentVersion"
    );
    assert_eq!(
        load_for_run(&f.store, "Nope", None)
            .await
            .err()
            .unwrap()
            .code(),
        "InvalidDocument"
    );
}

#[tokio::test]
async fn display_name_is_kept_listed_and_updated() {
    let f = Fixture::new();
    assert_eq!(
        f.code(
            "CreateDocument",
            json!({"Name": "Shown", "Content": V1, "DocumentFormat": "YAML", "DisplayName": "bad;name"})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        f.code("DescribeDocument", json!({"Name": "Shown"})).await,
        "InvalidDocument"
    );
    let d = f
        .call(
            "CreateDocument",
            json!({"Name": "Shown", "Content": V1, "DocumentFormat": "YAML", "DisplayName": "Restart web: tier 1"}),
        )
        .await
        .unwrap();
    assert_eq!(
        d["DocumentDescription"]["DisplayName"],
        "Restart web: tier 1"
    );
    let listed = f
        .call(
            "ListDocuments",
            json!({"Filters": [{"Key": "Name", "Values": ["Shown"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        listed["DocumentIdentifiers"][0]["DisplayName"],
        "Restart web: tier 1"
    );
    f.call(
        "UpdateDocument",
        json!({"Name": "Shown", "Content": V2, "DocumentFormat": "YAML", "DocumentVersion": "$LATEST", "DisplayName": "Restart web"}),
    )
    .await
    .unwrap();
    let d = f
        .call(
            "DescribeDocument",
            json!({"Name": "Shown", "DocumentVersion": "1"}),
        )
        .await
        .unwrap();
    assert_eq!(d["Document"]["DisplayName"], "Restart web");
}

/// SSM's own sentences, exactly: scripts match on them.
#[tokio::test]
async fn refusals_in_ssms_words() {
    let f = Fixture::new();
    let refused = |op: &'static str, body: Value| {
        let f = &f;
        async move {
            let e = f.call(op, body).await.expect_err("expected an error");
            (e.code().to_string(), e.to_string())
        }
    };
    let not_found = (
        "InvalidDocument".to_string(),
        "The specified document does not exist.".to_string(),
    );
    for (op, body) in [
        ("GetDocument", json!({"Name": "DNE"})),
        ("DescribeDocument", json!({"Name": "DNE"})),
        ("DeleteDocument", json!({"Name": "DNE"})),
        (
            "UpdateDocumentDefaultVersion",
            json!({"Name": "DNE", "DocumentVersion": "1"}),
        ),
        (
            "UpdateDocument",
            json!({"Name": "DNE", "Content": V1, "DocumentFormat": "YAML", "DocumentVersion": "1"}),
        ),
    ] {
        assert_eq!(refused(op, body).await, not_found, "{op}");
    }
    f.create("TestDocument").await;
    assert_eq!(
        refused(
            "CreateDocument",
            json!({"Name": "TestDocument", "Content": V1, "DocumentFormat": "YAML"}),
        )
        .await,
        (
            "DocumentAlreadyExists".to_string(),
            "The specified document already exists.".to_string()
        )
    );
    // YAML content that says it is JSON.
    assert_eq!(
        refused(
            "CreateDocument",
            json!({"Name": "TestDocument4", "Content": V1, "DocumentFormat": "JSON"}),
        )
        .await,
        (
            "InvalidDocumentContent".to_string(),
            "The content for the document is not valid.".to_string()
        )
    );
    assert_eq!(
        refused(
            "UpdateDocument",
            json!({"Name": "TestDocument", "Content": V2, "DocumentFormat": "YAML", "DocumentVersion": "2"}),
        )
        .await,
        (
            "InvalidDocumentVersion".to_string(),
            "The document version is not valid or does not exist.".to_string()
        )
    );
    assert_eq!(
        refused(
            "UpdateDocument",
            json!({"Name": "TestDocument", "Content": V1, "DocumentFormat": "YAML", "DocumentVersion": "1"}),
        )
        .await,
        (
            "DuplicateDocumentContent".to_string(),
            "The content of the association document matches another document. Change the content of the document and try again.".to_string()
        )
    );
    assert_eq!(
        refused(
            "UpdateDocument",
            json!({"Name": "TestDocument", "Content": V2, "DocumentFormat": "YAML", "DocumentVersion": "1", "VersionName": "one"}),
        )
        .await,
        (
            "DuplicateDocumentVersionName".to_string(),
            "The specified version name is a duplicate.".to_string()
        )
    );
    f.call(
        "UpdateDocument",
        json!({"Name": "TestDocument", "Content": V2, "DocumentFormat": "YAML", "DocumentVersion": "$LATEST"}),
    )
    .await
    .unwrap();
    let default_version = (
        "InvalidDocumentOperation".to_string(),
        "Default version of the document can't be deleted.".to_string(),
    );
    for body in [
        json!({"Name": "TestDocument", "DocumentVersion": "1"}),
        json!({"Name": "TestDocument", "VersionName": "one"}),
    ] {
        assert_eq!(refused("DeleteDocument", body).await, default_version);
    }
}

#[tokio::test]
async fn runbooks_are_stored_described_listed_and_kept_apart_from_commands() {
    let f = Fixture::new();
    let d = f
        .call(
            "CreateDocument",
            json!({"Name": "Restart", "Content": RUNBOOK, "DocumentFormat": "YAML", "DocumentType": "Automation"}),
        )
        .await
        .unwrap();
    let d = &d["DocumentDescription"];
    assert_eq!(d["DocumentType"], "Automation");
    assert_eq!(d["SchemaVersion"], "0.3");
    assert_eq!(d["Description"], "restart");
    assert_eq!(d["Parameters"][0]["Name"], "Node");
    f.create("Hello").await;
    let listed = |t: &'static str| {
        let f = &f;
        async move {
            let l = f
                .call("ListDocuments", json!({"Filters": [{"Key": "DocumentType", "Values": [t]}, {"Key": "Owner", "Values": ["Self"]}]}))
                .await
                .unwrap();
            l["DocumentIdentifiers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap().to_string(),
                        d["DocumentType"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("Automation").await,
        [("Restart".to_string(), "Automation".to_string())]
    );
    assert_eq!(
        listed("Command").await,
        [("Hello".to_string(), "Command".to_string())]
    );
    // A new version is read as the document's own type.
    assert_eq!(
        f.code(
            "UpdateDocument",
            json!({"Name": "Restart", "Content": V1, "DocumentFormat": "YAML"})
        )
        .await,
        "InvalidDocumentSchemaVersion"
    );
    let v2 = RUNBOOK.replace("description: restart", "description: restart v2");
    let u = f
        .call("UpdateDocument", json!({"Name": "Restart", "Content": v2, "DocumentFormat": "YAML", "DocumentVersion": "$LATEST"}))
        .await
        .unwrap();
    assert_eq!(u["DocumentDescription"]["DocumentType"], "Automation");
    let g = f
        .call("GetDocument", json!({"Name": "Restart"}))
        .await
        .unwrap();
    assert_eq!(g["DocumentType"], "Automation");
    // SendCommand does not run a runbook.
    let e = load_for_run(&f.store, "Restart", None).await.err().unwrap();
    assert_eq!(e.code(), "InvalidDocument");
    assert!(e.to_string().contains("StartAutomationExecution"), "{e}");
}
