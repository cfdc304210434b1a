//! Tags on documents (ResourceType `Document`, ResourceId the document's
//! name), with the fleet's tag rules: at most 50, `aws:` reserved. Amazon's
//! documents are not the account's to tag.

use serde::Deserialize;
use serde_json::{Value, json};

use super::builtin;
use super::context::{DocumentContext, document_arn, name_of};
use super::store::DocumentHead;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::tags::{self, Tag, TagSet};

/// The resource type this module tags.
pub const DOCUMENT_RESOURCE: &str = "Document";
/// Conditional writes tried before TooManyUpdates.
const MAX_ATTEMPTS: usize = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TagInput {
    resource_id: String,
    tags: Vec<Tag>,
    tag_keys: Vec<String>,
}

fn unknown(name: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "The resource ID \"{name}\" is not valid. Verify the ID and try again."
    ))
}

/// The document's name, once the caller may act on it.
fn target(ctx: &DocumentContext<'_>, op: &str, i: &TagInput) -> Result<String, SsmError> {
    let name = name_of(&i.resource_id).to_string();
    ctx.caller
        .authorize(&format!("ssm:{op}"), &document_arn(ctx.scope, &name))?;
    if builtin::find(&name).is_some() || !super::is_document_name(&name) {
        return Err(unknown(&i.resource_id));
    }
    Ok(name)
}

async fn update_tags(
    ctx: &DocumentContext<'_>,
    name: &str,
    change: impl Fn(&TagSet) -> Result<TagSet, SsmError>,
) -> Result<(), SsmError> {
    for _ in 0..MAX_ATTEMPTS {
        let head = ctx.store.head(name).await?.ok_or_else(|| unknown(name))?;
        let tags = change(&head.tags)?;
        if tags == head.tags {
            return Ok(());
        }
        let next = DocumentHead {
            tags,
            revision: head.revision + 1,
            ..head.clone()
        };
        if ctx.store.update_head(&next, head.revision).await? {
            return Ok(());
        }
    }
    Err(SsmError::TooManyUpdates(format!(
        "Document {name} is being changed by other requests; try again."
    )))
}

pub async fn add_tags(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: TagInput = parse(body)?;
    let name = target(ctx, "AddTagsToResource", &i)?;
    let add = tags::validate_tags(&i.tags)?;
    update_tags(ctx, &name, |current| tags::merged(current, &add)).await?;
    Ok(json!({}))
}

pub async fn remove_tags(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: TagInput = parse(body)?;
    let name = target(ctx, "RemoveTagsFromResource", &i)?;
    update_tags(ctx, &name, |current| {
        Ok(tags::without(current, &i.tag_keys))
    })
    .await?;
    Ok(json!({}))
}

pub async fn list_tags(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: TagInput = parse(body)?;
    let name = target(ctx, "ListTagsForResource", &i)?;
    let head = ctx.store.head(&name).await?.ok_or_else(|| unknown(&name))?;
    Ok(json!({ "TagList": tags::to_list(&head.tags) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Caller, Policy};
    use crate::arn::ArnScope;
    use crate::documents::store::MemoryDocumentStore;

    const CONTENT: &str = "schemaVersion: '2.2'\nmainSteps:\n- action: aws:runShellScript\n  name: run\n  inputs:\n    runCommand:\n    - date\n";

    fn caller(policy: &str) -> Caller {
        Caller {
            access_key_id: "AKST1".into(),
            user_arn: "arn:aws:iam::123456789012:user/u".into(),
            policy: Policy::parse(policy).unwrap(),
        }
    }

    #[tokio::test]
    async fn documents_are_tagged_listed_and_untagged() {
        let store = MemoryDocumentStore::new();
        let scope = ArnScope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        let admin = caller(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#);
        let ctx = DocumentContext {
            store: &store,
            caller: &admin,
            scope: &scope,
            now: 1.0,
        };
        super::super::operations::handle(
            &ctx,
            "CreateDocument",
            &json!({"Name": "Tagged", "Content": CONTENT, "DocumentFormat": "YAML"}),
        )
        .await
        .unwrap()
        .unwrap();
        let id = |extra: Value| {
            let mut b = json!({"ResourceType": "Document", "ResourceId": "Tagged"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        add_tags(
            &ctx,
            &id(json!({"Tags": [{"Key": "team", "Value": "ops"}, {"Key": "tier", "Value": "1"}]})),
        )
        .await
        .unwrap();
        remove_tags(&ctx, &id(json!({"TagKeys": ["tier"]})))
            .await
            .unwrap();
        let listed = list_tags(&ctx, &id(json!({}))).await.unwrap();
        assert_eq!(listed["TagList"], json!([{"Key": "team", "Value": "ops"}]));
        // Missing, Amazon's, and reserved keys are refused; nothing changes.
        for (body, code) in [
            (
                json!({"ResourceType": "Document", "ResourceId": "Nope", "Tags": [{"Key": "a", "Value": "b"}]}),
                "InvalidResourceId",
            ),
            (
                json!({"ResourceType": "Document", "ResourceId": "AWS-RunShellScript", "Tags": [{"Key": "a", "Value": "b"}]}),
                "InvalidResourceId",
            ),
            (
                id(json!({"Tags": [{"Key": "aws:x", "Value": "b"}]})),
                "ValidationException",
            ),
        ] {
            let code_of = add_tags(&ctx, &body).await.unwrap_err();
            assert_eq!(code_of.code(), code, "{body}");
        }
        assert_eq!(
            list_tags(&ctx, &id(json!({}))).await.unwrap()["TagList"],
            json!([{"Key": "team", "Value": "ops"}])
        );
        // Authorized on the document's ARN.
        let other = caller(
            r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"arn:aws:ssm:*:*:document/Other"}]}"#,
        );
        let ctx = DocumentContext {
            caller: &other,
            ..ctx
        };
        assert_eq!(
            list_tags(&ctx, &id(json!({}))).await.unwrap_err().code(),
            "AccessDeniedException"
        );
    }
}
