//! DescribeEffectiveInstanceAssociations: the associations that apply to
//! a node now (its targets name it by id, `*` or its tags; for a resource
//! group, when it has run on the node), each with its document's content.

use serde_json::{Value, json};

use super::instance_status::NodeInput;
use super::required;
use crate::associations::context::{AssociationContext, System, check_instance_id};
use crate::associations::model::targets_match;
use crate::documents::context::DocumentContext;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{max_results, page_of};

pub(crate) async fn describe(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: NodeInput = parse(body)?;
    let node = required(&i.instance_id, "instanceId")?;
    check_instance_id(node)?;
    let limit = max_results(i.max_results, 1, 5, 5)?;
    ctx.caller.authorize(
        "ssm:DescribeEffectiveInstanceAssociations",
        &ctx.scope.node_arn(node),
    )?;
    let Some(found) = ctx.compliance.nodes.get(node).await? else {
        return Err(SsmError::InvalidInstanceId(format!(
            "Instances [[{node}]] not in a valid state for account: it is not a registered managed node."
        )));
    };
    let ran: Vec<String> = ctx
        .store
        .instance_statuses(node)
        .await?
        .into_iter()
        .map(|s| s.association_id)
        .collect();
    let mut applying: Vec<_> = ctx
        .store
        .list()
        .await?
        .into_iter()
        .filter(
            |a| match targets_match(&a.run_targets(), node, &found.tags) {
                Some(m) => m,
                None => ran.contains(&a.association_id),
            },
        )
        .collect();
    applying.sort_by(|a, b| a.association_id.cmp(&b.association_id));
    let (page, next) = page_of(applying, limit, i.next_token.as_deref())?;
    // The content is read with the scheduler's authority: the caller may
    // see the node's associations, which is what was authorized.
    let docs = DocumentContext {
        store: ctx.documents,
        caller: &System,
        scope: ctx.scope,
        now: ctx.now,
    };
    let mut out = Vec::new();
    for a in page {
        let mut get = json!({ "Name": a.name });
        if let Some(v) = &a.document_version {
            get["DocumentVersion"] = json!(v);
        }
        let content = match crate::documents::operations::handle(&docs, "GetDocument", &get).await {
            Some(Ok(d)) => d.get("Content").cloned().unwrap_or(json!("")),
            Some(Err(e)) => {
                tracing::warn!(association_id = %a.association_id, error = %e, "document of association not readable");
                continue;
            }
            None => continue,
        };
        out.push(json!({
            "AssociationId": a.association_id,
            "InstanceId": node,
            "Content": content,
            "AssociationVersion": a.association_version.to_string(),
        }));
    }
    let mut body = json!({ "Associations": out });
    if let Some(t) = next {
        body["NextToken"] = json!(t);
    }
    Ok(body)
}
