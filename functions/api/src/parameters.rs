//! Parameter Store on the API. The work is in
//! `steward_core::parameters::operations`; this is the seam.

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::parameters::operations;

use crate::auth::Principal;

/// `None`: not a Parameter Store operation.
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    if !operations::claims(op, body) {
        return None;
    }
    let caller = p.caller(&stack.settings.account_id);
    let adapters = stack.parameters();
    let ctx = adapters.context(&caller, now_epoch());
    operations::handle(&ctx, op, body).await
}
