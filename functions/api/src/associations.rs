//! State Manager's associations on the API (CreateAssociation, the
//! listings, executions and node statuses; the work is in
//! `steward_core::associations::ops`, the runs in the scheduler's tick).

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::associations::ops;
use steward_core::clock::now_epoch;

use crate::auth::Principal;

/// The association operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.associations().context(stack, &caller, now_epoch());
    let result = ops::handle(&ctx, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)));
    if result.is_ok()
        && matches!(
            op,
            "CreateAssociation"
                | "UpdateAssociation"
                | "DeleteAssociation"
                | "CreateAssociationBatch"
        )
    {
        tracing::info!(operation = op, access_key_id = %p.access_key_id, user = %p.user_name, "association changed");
    }
    result
}
