//! DeletePatchBaseline: refused, as SSM refuses it, while the baseline is
//! registered to a patch group or is its system's default. Deleting a
//! baseline that is not there succeeds (the request's end state holds).

use serde_json::{Value, json};

use super::get::BaselineIdInput;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::patching::context::{
    ATTEMPTS, Named, PatchingContext, id_of, named, required, too_many_updates,
};

pub(crate) async fn delete(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: BaselineIdInput = parse(body)?;
    let given = required(&i.baseline_id, "baselineId")?;
    let gone = || Ok(json!({ "BaselineId": id_of(given) }));
    let mut stored = match named(ctx, "ssm:DeletePatchBaseline", given).await {
        Ok(Named::Stored(s)) => s,
        Ok(Named::Predefined { .. }) => {
            return Err(SsmError::InvalidResourceId(format!(
                "Patch baseline {given} is predefined by AWS and cannot be deleted."
            )));
        }
        Err(SsmError::DoesNotExistException(_)) => return gone(),
        Err(e) => return Err(e),
    };
    for _ in 0..ATTEMPTS {
        let groups = ctx.store.groups_of(&stored.id).await?;
        if !groups.is_empty() {
            return Err(SsmError::ResourceInUseException(format!(
                "PatchBaseline to be deleted is used for Patch Group: {}",
                groups.join(", ")
            )));
        }
        let os = stored.baseline.operating_system;
        if ctx.store.default_for(os).await?.as_deref() == Some(stored.id.as_str()) {
            return Err(SsmError::ResourceInUseException(format!(
                "PatchBaseline to be deleted is the default patch baseline for OperatingSystem {os}. Register another default (RegisterDefaultPatchBaseline) first."
            )));
        }
        if ctx.store.delete(&stored).await? {
            return gone();
        }
        // A registration, a new default or an update came in between.
        match ctx.store.get(&stored.id).await? {
            Some(s) => stored = s,
            None => return gone(),
        }
    }
    Err(too_many_updates(&stored.id))
}
