//! Tags on patch baselines (ResourceType `PatchBaseline`, ResourceId the
//! baseline's id), with SSM's tag rules. AWS's baselines are not the
//! account's to tag.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::patching::context::{
    ATTEMPTS, Named, PatchingContext, does_not_exist, named, too_many_updates,
};
use crate::patching::ports::StoredBaseline;
use crate::tags::{self, Tag, TagSet};

/// The resource type this module tags.
pub const PATCH_BASELINE_RESOURCE: &str = "PatchBaseline";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TagInput {
    resource_id: String,
    tags: Vec<Tag>,
    tag_keys: Vec<String>,
}

fn unknown(id: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "The resource ID \"{id}\" is not valid. Verify the ID and try again."
    ))
}

async fn target(ctx: &PatchingContext<'_>, op: &str, id: &str) -> Result<StoredBaseline, SsmError> {
    match named(ctx, &format!("ssm:{op}"), id).await {
        Ok(Named::Stored(s)) => Ok(s),
        Ok(Named::Predefined { .. })
        | Err(SsmError::DoesNotExistException(_))
        | Err(SsmError::InvalidResourceId(_)) => Err(unknown(id)),
        Err(e) => Err(e),
    }
}

async fn update_tags(
    ctx: &PatchingContext<'_>,
    mut s: StoredBaseline,
    change: impl Fn(&TagSet) -> Result<TagSet, SsmError>,
) -> Result<(), SsmError> {
    for _ in 0..ATTEMPTS {
        let tags = change(&s.tags)?;
        if tags == s.tags {
            return Ok(());
        }
        let next = StoredBaseline {
            tags,
            revision: s.revision + 1,
            ..s.clone()
        };
        if ctx.store.update(&next, s.revision).await? {
            return Ok(());
        }
        s = ctx.store.get(&s.id).await?.ok_or_else(does_not_exist)?;
    }
    Err(too_many_updates(&s.id))
}

pub(crate) async fn add_tags(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: TagInput = parse(body)?;
    let add = tags::validate_tags(&i.tags)?;
    let s = target(ctx, "AddTagsToResource", &i.resource_id).await?;
    update_tags(ctx, s, |current| tags::merged(current, &add)).await?;
    Ok(json!({}))
}

pub(crate) async fn remove_tags(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: TagInput = parse(body)?;
    let s = target(ctx, "RemoveTagsFromResource", &i.resource_id).await?;
    update_tags(ctx, s, |current| Ok(tags::without(current, &i.tag_keys))).await?;
    Ok(json!({}))
}

pub(crate) async fn list_tags(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: TagInput = parse(body)?;
    let s = target(ctx, "ListTagsForResource", &i.resource_id).await?;
    Ok(json!({ "TagList": tags::to_list(&s.tags) }))
}
