//! Tags on managed nodes (ResourceType `ManagedInstance`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids;

use crate::fleet::FleetContext;
use crate::fleet::node::RESOURCE_TYPE;
use crate::tags::{self, Tag, TagSet};

fn check_resource(resource_type: &str, resource_id: &str) -> Result<(), SsmError> {
    if resource_type != RESOURCE_TYPE {
        return Err(SsmError::InvalidResourceType(format!(
            "Resource type {resource_type} is not supported by Steward's tagging; use ManagedInstance."
        )));
    }
    if !ids::is_instance_id(resource_id) {
        return Err(unknown_resource(resource_id));
    }
    Ok(())
}

fn unknown_resource(resource_id: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "The resource ID \"{resource_id}\" is not valid. Verify the ID with describe-instance-information and try again."
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagRequest {
    resource_type: String,
    resource_id: String,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

/// Read the node, compute its next tags, write them if nobody changed them
/// meanwhile; a few attempts, then TooManyUpdates.
async fn update_tags(
    ctx: &FleetContext<'_>,
    resource_id: &str,
    change: impl Fn(&TagSet) -> Result<TagSet, SsmError>,
) -> Result<(), SsmError> {
    for _ in 0..4 {
        let node = ctx
            .nodes
            .get(resource_id)
            .await?
            .ok_or_else(|| unknown_resource(resource_id))?;
        let next = change(&node.tags)?;
        if next == node.tags {
            return Ok(());
        }
        if ctx.nodes.replace_tags(&node, &next).await? {
            return Ok(());
        }
    }
    Err(SsmError::TooManyUpdates(format!(
        "The tags of {resource_id} are being changed by other requests; retry shortly."
    )))
}

pub async fn add_tags_to_resource(ctx: &FleetContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req: TagRequest = parse(body)?;
    check_resource(&req.resource_type, &req.resource_id)?;
    if req.tags.is_empty() {
        return Err(SsmError::ValidationException(
            "Tags is empty; give at least one tag to add.".into(),
        ));
    }
    let add = tags::validate_tags(&req.tags)?;
    update_tags(ctx, &req.resource_id, |current| tags::merged(current, &add)).await?;
    Ok(json!({}))
}

pub async fn remove_tags_from_resource(
    ctx: &FleetContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: TagRequest = parse(body)?;
    check_resource(&req.resource_type, &req.resource_id)?;
    update_tags(ctx, &req.resource_id, |current| {
        Ok(tags::without(current, &req.tag_keys))
    })
    .await?;
    Ok(json!({}))
}

pub async fn list_tags_for_resource(
    ctx: &FleetContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: TagRequest = parse(body)?;
    check_resource(&req.resource_type, &req.resource_id)?;
    let node = ctx
        .nodes
        .get(&req.resource_id)
        .await?
        .ok_or_else(|| unknown_resource(&req.resource_id))?;
    Ok(json!({ "TagList": tags::to_list(&node.tags) }))
}
