//! DeleteAssociation: removes the association and its versions, so it
//! runs no more; executions, results and commands already sent stay.

use serde_json::{Value, json};

use super::describe::NameInput;
use crate::associations::context::{ATTEMPTS, AssociationContext, find, too_many_updates};
use crate::error::SsmError;
use crate::error::parse_request as parse;

pub(crate) async fn delete(ctx: &AssociationContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: NameInput = parse(body)?;
    let mut a = find(
        ctx,
        i.association_id.as_deref(),
        i.name.as_deref(),
        i.instance_id.as_deref(),
    )
    .await?;
    ctx.caller.authorize(
        "ssm:DeleteAssociation",
        &ctx.association_arn(&a.association_id),
    )?;
    for _ in 0..ATTEMPTS {
        if ctx.store.delete(&a).await? {
            tracing::info!(association_id = %a.association_id, "association deleted");
            return Ok(json!({}));
        }
        // A tick or an update came in between.
        match ctx.store.get(&a.association_id).await? {
            Some(next) => a = next,
            None => return Err(crate::associations::context::does_not_exist()),
        }
    }
    Err(too_many_updates(&a.association_id))
}
