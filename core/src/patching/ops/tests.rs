//! The baseline operations over the in-memory store: SSM's answers, its
//! refusals by code and words, and that a refusal changes nothing.

use serde_json::{Value, json};

use super::handle;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::patching::baseline::OperatingSystem;
use crate::patching::context::PatchingContext;
use crate::patching::memory::MemoryPatchBaselines;
use crate::patching::predefined;
use crate::patching::resolve::baseline_for_node;

const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

struct Env {
    store: MemoryPatchBaselines,
    caller: Caller,
    scope: ArnScope,
}

impl Env {
    fn new(policy: &str) -> Self {
        Env {
            store: MemoryPatchBaselines::default(),
            caller: Caller {
                access_key_id: "AKST1".into(),
                user_arn: "arn:aws:iam::123456789012:user/u".into(),
                policy: Policy::parse(policy).unwrap(),
            },
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        let ctx = PatchingContext {
            store: &self.store,
            caller: &self.caller,
            scope: &self.scope,
            now: 1_700_000_000.0,
        };
        handle(&ctx, op, &body).await.expect("served")
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{op} {body} refused: {e:?}"),
        }
    }

    async fn refused(&self, op: &str, body: Value) -> SsmError {
        match self.call(op, body.clone()).await {
            Ok(v) => panic!("{op} {body} accepted: {v}"),
            Err(e) => e,
        }
    }

    async fn create(&self, name: &str, os: &str) -> String {
        let r = self
            .ok(
                "CreatePatchBaseline",
                json!({"Name": name, "OperatingSystem": os}),
            )
            .await;
        r["BaselineId"].as_str().unwrap().to_string()
    }
}

fn predefined_arn(os: OperatingSystem) -> String {
    format!(
        "arn:aws:ssm:us-east-1::patchbaseline/{}",
        predefined::default_id(os)
    )
}

#[tokio::test]
async fn a_baseline_is_created_read_updated_and_deleted() {
    let env = Env::new(ADMIN);
    let created = env
        .ok(
            "CreatePatchBaseline",
            json!({"Name": "web-security", "OperatingSystem": "UBUNTU", "Description": "first",
                   "ApprovedPatches": ["openssl"], "RejectedPatches": ["telnet"],
                   "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [
                       {"Key": "PRIORITY", "Values": ["Required"]}]}, "ApproveAfterDays": 3}]},
                   "Tags": [{"Key": "team", "Value": "ops"}]}),
        )
        .await;
    let id = created["BaselineId"].as_str().unwrap().to_string();
    assert!(crate::patching::context::is_baseline_id(&id), "{id}");
    let got = env.ok("GetPatchBaseline", json!({"BaselineId": id})).await;
    assert_eq!(got["Name"], "web-security");
    assert_eq!(got["OperatingSystem"], "UBUNTU");
    assert_eq!(got["Description"], "first");
    assert_eq!(got["ApprovedPatches"], json!(["openssl"]));
    assert_eq!(got["PatchGroups"], json!([]));
    assert_eq!(got["CreatedDate"], json!(1_700_000_000.0));
    assert_eq!(
        got["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"],
        json!(3)
    );

    // Members not given stay; those given replace.
    let updated = env
        .ok(
            "UpdatePatchBaseline",
            json!({"BaselineId": id, "Description": "second", "RejectedPatches": []}),
        )
        .await;
    assert_eq!(updated["Description"], "second");
    assert_eq!(updated["Name"], "web-security");
    assert_eq!(updated["ApprovedPatches"], json!(["openssl"]));
    assert_eq!(updated["RejectedPatches"], json!([]));
    assert_eq!(updated.get("PatchGroups"), None);

    // Replace: what is not given takes CreatePatchBaseline's default.
    let e = env
        .refused(
            "UpdatePatchBaseline",
            json!({"BaselineId": id, "Replace": true, "Description": "third"}),
        )
        .await;
    assert_eq!(
        e,
        SsmError::ValidationException("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null".into())
    );
    let replaced = env
        .ok(
            "UpdatePatchBaseline",
            json!({"BaselineId": id, "Replace": true, "Name": "web-2"}),
        )
        .await;
    assert_eq!(replaced["Name"], "web-2");
    assert_eq!(replaced.get("Description"), None);
    assert_eq!(replaced["ApprovedPatches"], json!([]));
    assert_eq!(replaced["ApprovalRules"], json!({"PatchRules": []}));
    assert_eq!(replaced["OperatingSystem"], "UBUNTU");

    // A bad update changes nothing.
    let e = env
        .refused(
            "UpdatePatchBaseline",
            json!({"BaselineId": id, "ApprovedPatches": ["curl.x86_64"]}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let e = env
        .refused(
            "UpdatePatchBaseline",
            json!({"BaselineId": id, "OperatingSystem": "DEBIAN"}),
        )
        .await;
    assert_eq!(e.code(), "SerializationException");
    assert_eq!(
        env.ok("GetPatchBaseline", json!({"BaselineId": id})).await["Name"],
        "web-2"
    );

    let tags = env
        .ok(
            "ListTagsForResource",
            json!({"ResourceType": "PatchBaseline", "ResourceId": id}),
        )
        .await;
    assert_eq!(tags["TagList"], json!([{"Key": "team", "Value": "ops"}]));

    assert_eq!(
        env.ok("DeletePatchBaseline", json!({"BaselineId": id}))
            .await,
        json!({"BaselineId": id})
    );
    assert_eq!(
        env.refused("GetPatchBaseline", json!({"BaselineId": id}))
            .await,
        SsmError::DoesNotExistException("Patch Baseline to be retrieved does not exist.".into())
    );
    // Deleting again answers as the first time.
    env.ok("DeletePatchBaseline", json!({"BaselineId": id}))
        .await;
}

#[tokio::test]
async fn a_client_token_creates_once_and_must_be_repeated_unchanged() {
    let env = Env::new(ADMIN);
    let body = json!({"Name": "once", "OperatingSystem": "DEBIAN", "ClientToken": "t-1"});
    let first = env.ok("CreatePatchBaseline", body.clone()).await;
    let again = env.ok("CreatePatchBaseline", body).await;
    assert_eq!(first, again);
    let e = env
        .refused(
            "CreatePatchBaseline",
            json!({"Name": "other", "OperatingSystem": "DEBIAN", "ClientToken": "t-1"}),
        )
        .await;
    assert_eq!(e.code(), "IdempotentParameterMismatch");
    let listed = env
        .ok(
            "DescribePatchBaselines",
            json!({"Filters": [{"Key": "OWNER", "Values": ["Self"]}]}),
        )
        .await;
    assert_eq!(listed["BaselineIdentities"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn predefined_baselines_are_read_by_id_or_arn_and_are_the_defaults() {
    let env = Env::new(ADMIN);
    for os in OperatingSystem::ALL {
        let id = predefined::default_id(os);
        for given in [id.to_string(), predefined_arn(os)] {
            let got = env
                .ok("GetPatchBaseline", json!({"BaselineId": given}))
                .await;
            assert_eq!(got["BaselineId"], json!(predefined_arn(os)));
            assert_eq!(got["OperatingSystem"], os.as_str());
        }
        let d = env
            .ok(
                "GetDefaultPatchBaseline",
                json!({"OperatingSystem": os.as_str()}),
            )
            .await;
        assert_eq!(
            d,
            json!({"BaselineId": predefined_arn(os), "OperatingSystem": os.as_str()})
        );
        let e = env
            .refused("DeletePatchBaseline", json!({"BaselineId": id}))
            .await;
        assert_eq!(e.code(), "InvalidResourceId");
    }
    let e = env.refused("GetDefaultPatchBaseline", json!({})).await;
    assert_eq!(e.code(), "UnsupportedOperatingSystem");
    let e = env
        .refused(
            "GetPatchBaseline",
            json!({"BaselineId": "not-a-baseline-id-at-all"}),
        )
        .await;
    assert_eq!(e.code(), "InvalidResourceId");
}

#[tokio::test]
async fn defaults_and_patch_groups_decide_a_nodes_baseline() {
    let env = Env::new(ADMIN);
    let ubuntu = OperatingSystem::Ubuntu;
    let (id, b) = baseline_for_node(&env.store, ubuntu, Some("web"))
        .await
        .unwrap();
    assert_eq!(id, predefined::default_id(ubuntu));
    assert_eq!(b.name, "AWS-UbuntuDefaultPatchBaseline");

    let mine = env.create("my-default", "UBUNTU").await;
    assert_eq!(
        env.ok("RegisterDefaultPatchBaseline", json!({"BaselineId": mine}))
            .await,
        json!({"BaselineId": mine})
    );
    assert_eq!(
        env.ok(
            "GetDefaultPatchBaseline",
            json!({"OperatingSystem": "UBUNTU"})
        )
        .await["BaselineId"],
        json!(mine)
    );
    assert_eq!(
        env.ok(
            "GetDefaultPatchBaseline",
            json!({"OperatingSystem": "DEBIAN"})
        )
        .await["BaselineId"],
        json!(predefined_arn(OperatingSystem::Debian))
    );
    assert_eq!(
        baseline_for_node(&env.store, ubuntu, Some("web"))
            .await
            .unwrap()
            .0,
        mine
    );
    // The default cannot be deleted.
    let e = env
        .refused("DeletePatchBaseline", json!({"BaselineId": mine}))
        .await;
    assert_eq!(e.code(), "ResourceInUseException");

    let web = env.create("web-group", "UBUNTU").await;
    let r = env
        .ok(
            "RegisterPatchBaselineForPatchGroup",
            json!({"BaselineId": web, "PatchGroup": "web"}),
        )
        .await;
    assert_eq!(r, json!({"BaselineId": web, "PatchGroup": "web"}));
    assert_eq!(
        baseline_for_node(&env.store, ubuntu, Some("web"))
            .await
            .unwrap(),
        (web.clone(), env.store_baseline(&web).await)
    );
    // Another system's node in the group gets its own system's default.
    assert_eq!(
        baseline_for_node(&env.store, OperatingSystem::Debian, Some("web"))
            .await
            .unwrap()
            .0,
        predefined::default_id(OperatingSystem::Debian)
    );
    assert_eq!(
        env.ok(
            "GetPatchBaselineForPatchGroup",
            json!({"PatchGroup": "web", "OperatingSystem": "UBUNTU"})
        )
        .await,
        json!({"BaselineId": web, "PatchGroup": "web", "OperatingSystem": "UBUNTU"})
    );
    assert_eq!(
        env.ok(
            "GetPatchBaselineForPatchGroup",
            json!({"PatchGroup": "db", "OperatingSystem": "UBUNTU"})
        )
        .await["BaselineId"],
        json!(mine)
    );

    // One baseline per group and system.
    let other = env.create("other", "UBUNTU").await;
    let e = env
        .refused(
            "RegisterPatchBaselineForPatchGroup",
            json!({"BaselineId": other, "PatchGroup": "web"}),
        )
        .await;
    assert_eq!(
        e,
        SsmError::AlreadyExistsException(
            "Patch Group web already has a baseline registered for OperatingSystem UBUNTU.".into()
        )
    );
    // A Debian baseline may join the same group.
    env.ok(
        "RegisterPatchBaselineForPatchGroup",
        json!({"BaselineId": predefined_arn(OperatingSystem::Debian), "PatchGroup": "web"}),
    )
    .await;

    // In use: refused, and nothing changed.
    let e = env
        .refused("DeletePatchBaseline", json!({"BaselineId": web}))
        .await;
    assert_eq!(
        e,
        SsmError::ResourceInUseException(
            "PatchBaseline to be deleted is used for Patch Group: web".into()
        )
    );
    let got = env.ok("GetPatchBaseline", json!({"BaselineId": web})).await;
    assert_eq!(got["PatchGroups"], json!(["web"]));

    let groups = env.ok("DescribePatchGroups", json!({})).await;
    let mappings = groups["Mappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 2);
    let filtered = env
        .ok(
            "DescribePatchGroups",
            json!({"Filters": [{"Key": "OPERATING_SYSTEM", "Values": ["UBUNTU"]}]}),
        )
        .await;
    assert_eq!(
        filtered["Mappings"],
        json!([{"PatchGroup": "web", "BaselineIdentity": {
            "BaselineId": web, "BaselineName": "web-group", "OperatingSystem": "UBUNTU",
            "DefaultBaseline": false}}])
    );

    let e = env
        .refused(
            "DeregisterPatchBaselineForPatchGroup",
            json!({"BaselineId": other, "PatchGroup": "web"}),
        )
        .await;
    assert_eq!(e.code(), "InvalidResourceId");
    env.ok(
        "DeregisterPatchBaselineForPatchGroup",
        json!({"BaselineId": web, "PatchGroup": "web"}),
    )
    .await;
    assert_eq!(
        baseline_for_node(&env.store, ubuntu, Some("web"))
            .await
            .unwrap()
            .0,
        mine
    );
    env.ok("DeletePatchBaseline", json!({"BaselineId": web}))
        .await;

    // Registering an unknown baseline: SSM's words for it.
    let e = env
        .refused(
            "RegisterPatchBaselineForPatchGroup",
            json!({"BaselineId": "pb-0123456789abcdef0", "PatchGroup": "web"}),
        )
        .await;
    assert_eq!(
        e,
        SsmError::DoesNotExistException(
            "Maintenance window pb-0123456789abcdef0 does not exist".into()
        )
    );
}

impl Env {
    async fn store_baseline(&self, id: &str) -> crate::patching::PatchBaseline {
        use crate::patching::ports::PatchBaselineStore;
        self.store.get(id).await.unwrap().unwrap().baseline
    }
}

#[tokio::test]
async fn describe_patch_baselines_filters_and_pages() {
    let env = Env::new(ADMIN);
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(env.create(&format!("mine-{i}"), "DEBIAN").await);
    }
    env.create("other-1", "UBUNTU").await;
    let all = env.ok("DescribePatchBaselines", json!({})).await;
    assert_eq!(all["BaselineIdentities"].as_array().unwrap().len(), 8);
    assert_eq!(all.get("NextToken"), None);
    let aws = env
        .ok(
            "DescribePatchBaselines",
            json!({"Filters": [{"Key": "OWNER", "Values": ["AWS"]}]}),
        )
        .await;
    let aws = aws["BaselineIdentities"].as_array().unwrap().clone();
    assert_eq!(aws.len(), 2);
    assert!(aws.iter().all(|b| b["DefaultBaseline"] == json!(true)));
    let debian = env
        .ok(
            "DescribePatchBaselines",
            json!({"Filters": [{"Key": "OPERATING_SYSTEM", "Values": ["DEBIAN"]},
                               {"Key": "NAME_PREFIX", "Values": ["mine-"]}]}),
        )
        .await;
    assert_eq!(debian["BaselineIdentities"].as_array().unwrap().len(), 5);

    // Page by page, everything once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 3});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = env.ok("DescribePatchBaselines", body).await;
        let items = page["BaselineIdentities"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|b| b["BaselineId"].clone()));
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    for id in &mine {
        assert!(seen.contains(&json!(id)), "{id}");
    }

    let e = env
        .refused(
            "DescribePatchBaselines",
            json!({"Filters": [{"Key": "COLOR", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let e = env
        .refused("DescribePatchBaselines", json!({"NextToken": "garbage!"}))
        .await;
    assert_eq!(e.code(), "InvalidNextToken");
    let e = env
        .refused("DescribePatchBaselines", json!({"MaxResults": 101}))
        .await;
    assert_eq!(e.code(), "ValidationException");
}

#[tokio::test]
async fn patch_properties_list_products_and_priorities() {
    let env = Env::new(ADMIN);
    let p = env
        .ok(
            "DescribePatchProperties",
            json!({"OperatingSystem": "DEBIAN", "Property": "PRIORITY"}),
        )
        .await;
    assert_eq!(
        p,
        json!({"Properties": [{"Name": "Required"}, {"Name": "Important"}, {"Name": "Standard"},
                              {"Name": "Optional"}, {"Name": "Extra"}]})
    );
    let first = env
        .ok(
            "DescribePatchProperties",
            json!({"OperatingSystem": "UBUNTU", "Property": "PRODUCT", "MaxResults": 10}),
        )
        .await;
    assert_eq!(first["Properties"][7], json!({"Name": "Ubuntu22.04"}));
    let rest = env
        .ok(
            "DescribePatchProperties",
            json!({"OperatingSystem": "UBUNTU", "Property": "PRODUCT",
                   "NextToken": first["NextToken"]}),
        )
        .await;
    assert_eq!(rest["Properties"].as_array().unwrap().len(), 2);
    assert_eq!(rest.get("NextToken"), None);
    let e = env
        .refused(
            "DescribePatchProperties",
            json!({"OperatingSystem": "UBUNTU", "Property": "CLASSIFICATION"}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let e = env
        .refused(
            "DescribePatchProperties",
            json!({"OperatingSystem": "AMAZON_LINUX_2023", "Property": "PRODUCT"}),
        )
        .await;
    assert_eq!(e.code(), "UnsupportedOperatingSystem");
}

#[tokio::test]
async fn every_baseline_is_authorized_by_its_arn() {
    let admin = Env::new(ADMIN);
    let id = admin.create("guarded", "UBUNTU").await;
    let limited = Env {
        store: admin.store,
        ..Env::new(
            r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"arn:aws:ssm:*:*:patchbaseline/pb-00000000000000000"}]}"#,
        )
    };
    for (op, body) in [
        ("GetPatchBaseline", json!({"BaselineId": id})),
        ("DeletePatchBaseline", json!({"BaselineId": id})),
        (
            "UpdatePatchBaseline",
            json!({"BaselineId": id, "Name": "x-y-z"}),
        ),
        ("RegisterDefaultPatchBaseline", json!({"BaselineId": id})),
        (
            "RegisterPatchBaselineForPatchGroup",
            json!({"BaselineId": id, "PatchGroup": "g"}),
        ),
        (
            "AddTagsToResource",
            json!({"ResourceType": "PatchBaseline", "ResourceId": id, "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
    ] {
        assert_eq!(
            limited.refused(op, body).await.code(),
            "AccessDeniedException",
            "{op}"
        );
    }
    let got = limited.store.get_baseline(&id).await;
    assert_eq!(got.name, "guarded");
    assert!(got_tags_empty(&limited.store, &id).await);
}

impl MemoryPatchBaselines {
    async fn get_baseline(&self, id: &str) -> crate::patching::PatchBaseline {
        use crate::patching::ports::PatchBaselineStore;
        self.get(id).await.unwrap().unwrap().baseline
    }
}

async fn got_tags_empty(store: &MemoryPatchBaselines, id: &str) -> bool {
    use crate::patching::ports::PatchBaselineStore;
    let s = store.get(id).await.unwrap().unwrap();
    s.tags.is_empty() && s.revision == 1
}

#[tokio::test]
async fn tags_follow_ssms_rules_and_aws_baselines_take_none() {
    let env = Env::new(ADMIN);
    let id = env.create("tagged", "DEBIAN").await;
    let body = |extra: Value| {
        let mut b = json!({"ResourceType": "PatchBaseline", "ResourceId": id});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    env.ok(
        "AddTagsToResource",
        body(json!({"Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]})),
    )
    .await;
    env.ok("RemoveTagsFromResource", body(json!({"TagKeys": ["a"]})))
        .await;
    assert_eq!(
        env.ok("ListTagsForResource", body(json!({}))).await["TagList"],
        json!([{"Key": "b", "Value": "2"}])
    );
    let e = env
        .refused(
            "AddTagsToResource",
            json!({"ResourceType": "PatchBaseline",
                   "ResourceId": predefined::default_id(OperatingSystem::Debian),
                   "Tags": [{"Key": "a", "Value": "1"}]}),
        )
        .await;
    assert_eq!(e.code(), "InvalidResourceId");
    let e = env
        .refused(
            "AddTagsToResource",
            body(json!({"Tags": [{"Key": "aws:x", "Value": "1"}]})),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
}
