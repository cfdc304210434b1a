//! Patch Manager's baseline operations by name, one file each (patch
//! groups and defaults share theirs). Each takes SSM's request body and
//! answers SSM's response body.

use serde_json::Value;

use super::context::PatchingContext;
use crate::error::SsmError;

mod create;
mod defaults;
mod delete;
mod describe;
mod filters;
mod get;
mod groups;
pub mod properties;
pub mod tagging;
mod update;

pub const OPERATIONS: [&str; 12] = [
    "CreatePatchBaseline",
    "GetPatchBaseline",
    "UpdatePatchBaseline",
    "DeletePatchBaseline",
    "DescribePatchBaselines",
    "DescribePatchProperties",
    "RegisterDefaultPatchBaseline",
    "GetDefaultPatchBaseline",
    "RegisterPatchBaselineForPatchGroup",
    "DeregisterPatchBaselineForPatchGroup",
    "GetPatchBaselineForPatchGroup",
    "DescribePatchGroups",
];

const TAGGING: [&str; 3] = [
    "AddTagsToResource",
    "RemoveTagsFromResource",
    "ListTagsForResource",
];

/// Whether `op` with this body is Patch Manager's to answer: tagging is,
/// when it names a `PatchBaseline`.
pub fn serves(op: &str, body: &Value) -> bool {
    OPERATIONS.contains(&op)
        || (TAGGING.contains(&op)
            && body.get("ResourceType").and_then(Value::as_str)
                == Some(tagging::PATCH_BASELINE_RESOURCE))
}

/// `None`: not a baseline operation.
pub async fn handle(
    ctx: &PatchingContext<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    if !serves(op, body) {
        return None;
    }
    Some(match op {
        "CreatePatchBaseline" => create::create(ctx, body).await,
        "GetPatchBaseline" => get::get(ctx, body).await,
        "UpdatePatchBaseline" => update::update(ctx, body).await,
        "DeletePatchBaseline" => delete::delete(ctx, body).await,
        "DescribePatchBaselines" => describe::describe_baselines(ctx, body).await,
        "DescribePatchProperties" => properties::describe_properties(ctx, body).await,
        "RegisterDefaultPatchBaseline" => defaults::register_default(ctx, body).await,
        "GetDefaultPatchBaseline" => defaults::get_default(ctx, body).await,
        "RegisterPatchBaselineForPatchGroup" => groups::register(ctx, body).await,
        "DeregisterPatchBaselineForPatchGroup" => groups::deregister(ctx, body).await,
        "GetPatchBaselineForPatchGroup" => groups::get_for_group(ctx, body).await,
        "DescribePatchGroups" => groups::describe_groups(ctx, body).await,
        "AddTagsToResource" => tagging::add_tags(ctx, body).await,
        "RemoveTagsFromResource" => tagging::remove_tags(ctx, body).await,
        "ListTagsForResource" => tagging::list_tags(ctx, body).await,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
