//! Compliance on the API (PutComplianceItems and the listings; the work is
//! in `steward_core::compliance`).

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::compliance::operations;

use crate::auth::Principal;

/// The compliance operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.compliance().context();
    let result = operations::handle(&ctx, &caller, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)));
    if result.is_ok() && op == "PutComplianceItems" {
        tracing::info!(operation = op, access_key_id = %p.access_key_id, user = %p.user_name, "compliance put");
    }
    result
}
