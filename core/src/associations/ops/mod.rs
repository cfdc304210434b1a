//! State Manager's association operations by name, one file each (the
//! batch with CreateAssociation). Each takes SSM's request body and
//! answers SSM's response body.

use serde_json::Value;

use super::context::AssociationContext;
use crate::error::SsmError;

mod create;
mod delete;
mod describe;
mod effective;
mod execution_targets;
mod executions;
mod instance_status;
mod list;
mod start_once;
mod update;
mod update_status;
mod versions;

pub const OPERATIONS: &[&str] = &[
    "CreateAssociation",
    "CreateAssociationBatch",
    "UpdateAssociation",
    "DescribeAssociation",
    "ListAssociations",
    "ListAssociationVersions",
    "DeleteAssociation",
    "StartAssociationsOnce",
    "DescribeAssociationExecutions",
    "DescribeAssociationExecutionTargets",
    "UpdateAssociationStatus",
    "DescribeInstanceAssociationsStatus",
    "DescribeEffectiveInstanceAssociations",
];

/// `None`: not an association operation.
pub async fn handle(
    ctx: &AssociationContext<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "CreateAssociation" => create::create(ctx, body).await,
        "CreateAssociationBatch" => create::create_batch(ctx, body).await,
        "UpdateAssociation" => update::update(ctx, body).await,
        "DescribeAssociation" => describe::describe(ctx, body).await,
        "ListAssociations" => list::list(ctx, body).await,
        "ListAssociationVersions" => versions::list_versions(ctx, body).await,
        "DeleteAssociation" => delete::delete(ctx, body).await,
        "StartAssociationsOnce" => start_once::start_once(ctx, body).await,
        "DescribeAssociationExecutions" => executions::describe_executions(ctx, body).await,
        "DescribeAssociationExecutionTargets" => {
            execution_targets::describe_targets(ctx, body).await
        }
        "UpdateAssociationStatus" => update_status::update_status(ctx, body).await,
        "DescribeInstanceAssociationsStatus" => instance_status::describe(ctx, body).await,
        "DescribeEffectiveInstanceAssociations" => effective::describe(ctx, body).await,
        _ => return None,
    })
}

/// A member SSM requires.
pub(crate) fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, SsmError> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}
