//! Inventory on the API (PutInventory, GetInventory, ListInventoryEntries,
//! GetInventorySchema, DeleteInventory; the work is in
//! `steward_core::inventory`).

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::inventory::operations;

use crate::auth::Principal;

/// The inventory operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.inventory().context();
    let result = operations::handle(&ctx, &caller, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)));
    if result.is_ok() && matches!(op, "PutInventory" | "DeleteInventory") {
        tracing::info!(operation = op, access_key_id = %p.access_key_id, user = %p.user_name, "inventory changed");
    }
    result
}
