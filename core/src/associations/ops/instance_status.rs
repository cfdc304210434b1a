//! DescribeInstanceAssociationsStatus: a node's latest status for each
//! association that ran on it.

use serde::Deserialize;
use serde_json::{Value, json};

use super::required;
use crate::associations::context::{AssociationContext, check_instance_id};
use crate::associations::model::InstanceStatus;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{max_results, page_of};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NodeInput {
    pub instance_id: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

pub(crate) async fn describe(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: NodeInput = parse(body)?;
    let node = required(&i.instance_id, "instanceId")?;
    check_instance_id(node)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    ctx.caller.authorize(
        "ssm:DescribeInstanceAssociationsStatus",
        &ctx.scope.node_arn(node),
    )?;
    let mut all = ctx.store.instance_statuses(node).await?;
    all.sort_by(|a, b| a.association_id.cmp(&b.association_id));
    let (page, next) = page_of(all, limit, i.next_token.as_deref())?;
    let mut out = json!({
        "InstanceAssociationStatusInfos": page.iter().map(InstanceStatus::to_json).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
