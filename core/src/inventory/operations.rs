//! Inventory's SSM operations, by name.

use serde_json::Value;

use super::context::InventoryContext;
use crate::access::Authorizer;
use crate::error::SsmError;

/// The operations this area serves.
pub const OPERATIONS: [&str; 5] = [
    "PutInventory",
    "GetInventory",
    "ListInventoryEntries",
    "GetInventorySchema",
    "DeleteInventory",
];

/// Dispatches an SSM operation name; `None`: not an Inventory operation.
pub async fn handle(
    ctx: &InventoryContext<'_>,
    caller: &dyn Authorizer,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "PutInventory" => super::put::put_inventory(ctx, caller, body).await,
        "GetInventory" => super::get::get_inventory(ctx, caller, body).await,
        "ListInventoryEntries" => super::entries::list_inventory_entries(ctx, caller, body).await,
        "GetInventorySchema" => super::schemas::get_inventory_schema(ctx, caller, body).await,
        "DeleteInventory" => super::delete::delete_inventory(ctx, caller, body).await,
        _ => return None,
    })
}
