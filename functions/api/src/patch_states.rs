//! Nodes' patch states on the API (DescribeInstancePatchStates and the
//! rest; the work is in `steward_core::patching::instance_state`). Agents
//! write them through ingest, never here.

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::patching::instance_state::describe::{self, PatchStateReads};

pub async fn handle(stack: &Stack, op: &str, body: &Value) -> Result<Value, SsmError> {
    let states = stack.patch_states();
    let ctx = PatchStateReads {
        states: &states,
        nodes: stack.fleet().ports().nodes,
    };
    describe::handle(&ctx, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)))
}
