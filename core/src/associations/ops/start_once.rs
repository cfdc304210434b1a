//! StartAssociationsOnce: each association runs at the next tick, besides
//! its schedule.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::associations::context::{
    ATTEMPTS, AssociationContext, check_uuid, does_not_exist, too_many_updates,
};
use crate::error::SsmError;
use crate::error::parse_request as parse;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    association_ids: Option<Vec<String>>,
}

const MAX_IDS: usize = 10;

pub(crate) async fn start_once(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: Input = parse(body)?;
    let ids = i.association_ids.unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'associationIds' failed to satisfy constraint: Member must have length between 1 and {MAX_IDS}"
        )));
    }
    // All are checked before any is started, so a bad id changes nothing.
    let mut heads = Vec::new();
    for id in &ids {
        check_uuid(id, "associationIds.member")?;
        ctx.caller
            .authorize("ssm:StartAssociationsOnce", &ctx.association_arn(id))?;
        heads.push(ctx.store.get(id).await?.ok_or_else(does_not_exist)?);
    }
    for mut head in heads {
        let id = head.association_id.clone();
        let mut done = false;
        for _ in 0..ATTEMPTS {
            let mut next = head.clone();
            next.run_now = true;
            next.revision += 1;
            next.set_next_due(ctx.now);
            if ctx.store.update(&next, head.revision, false).await? {
                done = true;
                break;
            }
            head = ctx.store.get(&id).await?.ok_or_else(does_not_exist)?;
        }
        if !done {
            return Err(too_many_updates(&id));
        }
    }
    Ok(json!({}))
}
