//! Maintenance windows on the API (CreateMaintenanceWindow, targets, tasks,
//! executions, …; the work is in `steward_core::maintenance_windows::ops`).

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::maintenance_windows::ops;

use crate::auth::Principal;

/// The maintenance window operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.maintenance_windows().context(&caller, now_epoch());
    ops::handle(&ctx, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)))
}
