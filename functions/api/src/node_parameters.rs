//! `Steward.GetNodeParameters`: a node reads the `{{ssm-secure:…}}` values of
//! a command it is running. The rules are in
//! `steward_core::parameters::node_access`; this is the seam.

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::parameters::node_access::{NodeAccess, get_node_parameters};

pub async fn handle(stack: &Stack, body: &Value, now: f64) -> Result<Value, SsmError> {
    // The stack's own adapters: one data-key cache for the whole process.
    let p = stack.parameters();
    let ports = NodeAccess {
        nodes: &stack.fleet().nodes,
        commands: &stack.run_command().store,
        store: &p.store,
        sealer: &p.sealer,
        scope: &p.scope,
    };
    get_node_parameters(&ports, body, now).await
}
