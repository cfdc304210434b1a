//! Patch Manager's baselines on the API (CreatePatchBaseline, patch groups,
//! defaults, …; the work is in `steward_core::patching::ops`).

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::patching::ops;

use crate::auth::Principal;

/// The baseline operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.patching().context(&caller, now_epoch());
    ops::handle(&ctx, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)))
}
