//! Session Manager on the API (StartSession, ResumeSession,
//! TerminateSession, DescribeSessions, GetConnectionStatus; the work is in
//! `steward_core::sessions::ops`).

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::sessions::ops;

use crate::auth::Principal;

pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.sessions().context(stack, &caller, now_epoch());
    ops::handle(&ctx, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)))
}
