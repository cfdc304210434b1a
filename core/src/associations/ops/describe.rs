//! DescribeAssociation: by AssociationId, or Name and InstanceId; a given
//! AssociationVersion shows that version's settings.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::associations::context::{AssociationContext, find, invalid_version};
use crate::error::SsmError;
use crate::error::parse_request as parse;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NameInput {
    pub association_id: Option<String>,
    pub name: Option<String>,
    pub instance_id: Option<String>,
    pub association_version: Option<String>,
}

pub(crate) async fn describe(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: NameInput = parse(body)?;
    let head = find(
        ctx,
        i.association_id.as_deref(),
        i.name.as_deref(),
        i.instance_id.as_deref(),
    )
    .await?;
    ctx.caller.authorize(
        "ssm:DescribeAssociation",
        &ctx.association_arn(&head.association_id),
    )?;
    let shown = match i.association_version.as_deref() {
        None | Some("$LATEST") => head,
        Some(v) => {
            let n: u32 = v.parse().map_err(|_| invalid_version(v))?;
            if n == head.association_version {
                head
            } else {
                let mut old = ctx
                    .store
                    .versions(&head.association_id)
                    .await?
                    .into_iter()
                    .find(|a| a.association_version == n)
                    .ok_or_else(|| invalid_version(v))?;
                // A version's settings with the association's state.
                old.overview = head.overview;
                old.last_execution_date = head.last_execution_date;
                old.last_successful_execution_date = head.last_successful_execution_date;
                old
            }
        }
    };
    Ok(json!({ "AssociationDescription": shown.description() }))
}
