//! Tags on parameters (ResourceType `Parameter`, ResourceId the name), with
//! the fleet's tag rules: at most 50, `aws:` reserved.

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::put::{MAX_ATTEMPTS, too_many_updates};
use super::requests::TagRequest;
use crate::error::SsmError;
use crate::tags::{self, TagSet};

fn unknown(name: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "The resource ID \"{name}\" is not valid: no parameter has this name. Verify the name (case sensitive, hierarchies begin with /) and try again."
    ))
}

/// Reads the parameter, computes its next tags and writes them if nobody
/// changed the head meanwhile.
async fn update_tags(
    ctx: &ParameterContext<'_>,
    name: &str,
    change: impl Fn(&TagSet) -> Result<TagSet, SsmError>,
) -> Result<(), SsmError> {
    for _ in 0..MAX_ATTEMPTS {
        let head = ctx.store.find(name).await?.ok_or_else(|| unknown(name))?;
        let tags = change(&head.tags)?;
        if tags == head.tags {
            return Ok(());
        }
        let next = super::model::Parameter {
            tags,
            revision: head.revision + 1,
            ..head.clone()
        };
        if ctx.store.update(&next, head.revision, &[]).await? {
            return Ok(());
        }
    }
    Err(too_many_updates(name))
}

pub async fn add_tags(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = TagRequest::from_json(body)?;
    let name = ctx.scope.resolve_name(&req.name);
    ctx.caller
        .authorize("ssm:AddTagsToResource", &ctx.scope.parameter_arn(&name))?;
    if req.tags.is_empty() {
        return Err(SsmError::ValidationException(
            "Tags is empty; give at least one tag to add.".into(),
        ));
    }
    let add = tags::validate_tags(&req.tags)?;
    update_tags(ctx, &name, |current| tags::merged(current, &add)).await?;
    Ok(json!({}))
}

pub async fn remove_tags(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = TagRequest::from_json(body)?;
    let name = ctx.scope.resolve_name(&req.name);
    ctx.caller.authorize(
        "ssm:RemoveTagsFromResource",
        &ctx.scope.parameter_arn(&name),
    )?;
    if req.tag_keys.is_empty() {
        return Err(SsmError::ValidationException(
            "TagKeys is empty; give at least one tag key to remove.".into(),
        ));
    }
    update_tags(ctx, &name, |current| {
        Ok(tags::without(current, &req.tag_keys))
    })
    .await?;
    Ok(json!({}))
}

pub async fn list_tags(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = TagRequest::from_json(body)?;
    let name = ctx.scope.resolve_name(&req.name);
    ctx.caller
        .authorize("ssm:ListTagsForResource", &ctx.scope.parameter_arn(&name))?;
    let head = ctx.store.find(&name).await?.ok_or_else(|| unknown(&name))?;
    Ok(json!({ "TagList": tags::to_list(&head.tags) }))
}
