//! RegisterDefaultPatchBaseline and GetDefaultPatchBaseline: each system's
//! default is the baseline registered for it, else the predefined one.

use serde::Deserialize;
use serde_json::{Value, json};

use super::get::BaselineIdInput;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::patching::baseline::OperatingSystem;
use crate::patching::context::{
    ATTEMPTS, Named, PatchingContext, default_id, does_not_exist, named, required, too_many_updates,
};

pub(crate) async fn register_default(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: BaselineIdInput = parse(body)?;
    let given = required(&i.baseline_id, "baselineId")?;
    let mut baseline = named(ctx, "ssm:RegisterDefaultPatchBaseline", given).await?;
    for _ in 0..ATTEMPTS {
        let (id, os, revision) = match &baseline {
            Named::Predefined { id, baseline } => (id.clone(), baseline.operating_system, None),
            Named::Stored(s) => (s.id.clone(), s.baseline.operating_system, Some(s.revision)),
        };
        if ctx.store.set_default(os, &id, revision).await? {
            return Ok(json!({ "BaselineId": ctx.shown_id(&id) }));
        }
        baseline = Named::Stored(ctx.store.get(&id).await?.ok_or_else(does_not_exist)?);
    }
    Err(too_many_updates(given))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct SystemInput {
    operating_system: Option<String>,
}

pub(crate) async fn get_default(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: SystemInput = parse(body)?;
    let os = OperatingSystem::parse(i.operating_system.as_deref())?;
    ctx.caller
        .authorize("ssm:GetDefaultPatchBaseline", &ctx.baseline_arn("*"))?;
    let id = default_id(ctx.store, os).await?;
    Ok(json!({ "BaselineId": ctx.shown_id(&id), "OperatingSystem": os.as_str() }))
}
