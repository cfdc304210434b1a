//! Nodes' patch states on the API (DescribeInstancePatchStates and the
//! rest; the work is in `steward_core::patching::instance_state`). Agents
//! write them through ingest, never here.

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::patching::instance_state::describe::{self, PatchStateReads};

use crate::auth::Principal;

pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let states = stack.patch_states();
    let scope = stack.settings.arn_scope();
    let ctx = PatchStateReads {
        states: &states,
        nodes: stack.fleet().ports().nodes,
        caller: &caller,
        scope: &scope,
    };
    describe::handle(&ctx, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)))
}
