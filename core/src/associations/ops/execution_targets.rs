//! DescribeAssociationExecutionTargets: each node's result in one
//! execution, with SSM's Status, ResourceId and ResourceType filters.

use serde::Deserialize;
use serde_json::{Value, json};

use super::required;
use crate::associations::context::{AssociationContext, check_uuid, execution_does_not_exist};
use crate::associations::model::ExecutionTarget;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{max_results, page_of};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    association_id: Option<String>,
    execution_id: Option<String>,
    filters: Option<Vec<Filter>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(crate) async fn describe_targets(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: Input = parse(body)?;
    let id = required(&i.association_id, "associationId")?;
    let exec = required(&i.execution_id, "executionId")?;
    check_uuid(id, "associationId")?;
    check_uuid(exec, "executionId")?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let filters = i.filters.unwrap_or_default();
    for f in &filters {
        if !["Status", "ResourceId", "ResourceType"].contains(&f.key.as_str()) {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{}' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [Status, ResourceId, ResourceType]",
                f.key
            )));
        }
    }
    ctx.caller.authorize(
        "ssm:DescribeAssociationExecutionTargets",
        &ctx.association_arn(id),
    )?;
    if ctx.store.execution(id, exec).await?.is_none() {
        return Err(execution_does_not_exist());
    }
    let mut kept: Vec<ExecutionTarget> = ctx
        .store
        .targets(id, exec)
        .await?
        .into_iter()
        .filter(|t| {
            filters.iter().all(|f| match f.key.as_str() {
                "Status" => t.status == f.value,
                "ResourceId" => t.resource_id == f.value,
                _ => t.resource_type == f.value,
            })
        })
        .collect();
    kept.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
    let (page, next) = page_of(kept, limit, i.next_token.as_deref())?;
    let mut out = json!({
        "AssociationExecutionTargets": page.iter().map(ExecutionTarget::to_json).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
