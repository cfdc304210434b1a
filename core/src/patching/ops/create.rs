//! CreatePatchBaseline: checked as SSM checks it, stored with its tags,
//! once per ClientToken.

use serde_json::{Value, json};

use crate::error::SsmError;
use crate::patching::baseline::CreatePatchBaselineRequest;
use crate::patching::context::{PatchingContext, new_baseline_id};
use crate::patching::ports::{CreateOutcome, StoredBaseline, TokenClaim};

pub(crate) async fn create(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let c = CreatePatchBaselineRequest::parse(body)?;
    let id = new_baseline_id();
    ctx.caller
        .authorize("ssm:CreatePatchBaseline", &ctx.baseline_arn(&id))?;
    // What a retry with the same ClientToken must repeat: the baseline
    // and its tags, as checked.
    let fingerprint = json!({"Baseline": c.baseline.to_create_json(), "Tags": c.tags}).to_string();
    let claim = c.client_token.as_ref().map(|token| TokenClaim {
        token: token.clone(),
        fingerprint: fingerprint.clone(),
    });
    let stored = StoredBaseline {
        id: id.clone(),
        baseline: c.baseline,
        created: ctx.now,
        modified: ctx.now,
        tags: c.tags,
        revision: 1,
    };
    match ctx.store.create(&stored, claim.as_ref()).await? {
        CreateOutcome::Created => Ok(json!({ "BaselineId": id })),
        CreateOutcome::TokenUsed {
            baseline_id,
            fingerprint: first,
        } => {
            if first == fingerprint {
                Ok(json!({ "BaselineId": baseline_id }))
            } else {
                Err(SsmError::IdempotentParameterMismatch(format!(
                    "ClientToken {} was given before with other parameters (it created patch baseline {baseline_id}). Repeat that request unchanged, or give a new ClientToken.",
                    c.client_token.unwrap_or_default()
                )))
            }
        }
    }
}
