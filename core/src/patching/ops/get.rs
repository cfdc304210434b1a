//! GetPatchBaseline: an account baseline, or a predefined one by its id or
//! ARN, with the patch groups registered to it.

use serde::Deserialize;
use serde_json::Value;

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::patching::context::{Named, PatchingContext, named, required};
use crate::patching::predefined;
use crate::patching::wire::baseline_view;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BaselineIdInput {
    pub(crate) baseline_id: Option<String>,
}

pub(crate) async fn get(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: BaselineIdInput = parse(body)?;
    let given = required(&i.baseline_id, "baselineId")?;
    match named(ctx, "ssm:GetPatchBaseline", given).await? {
        Named::Predefined { id, baseline } => {
            let groups = ctx.store.groups_of(&id).await?;
            Ok(baseline_view(
                &ctx.shown_id(&id),
                &baseline,
                predefined::CREATED,
                predefined::CREATED,
                Some(&groups),
            ))
        }
        Named::Stored(s) => {
            let groups = ctx.store.groups_of(&s.id).await?;
            Ok(baseline_view(
                &s.id,
                &s.baseline,
                s.created,
                s.modified,
                Some(&groups),
            ))
        }
    }
}
