//! Run Command on the API: SendCommand, ListCommands, ListCommandInvocations,
//! GetCommandInvocation, CancelCommand. The work is in
//! `steward_core::run_command::operations`; this is the seam.

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::run_command::operations;

use crate::auth::Principal;

/// The Run Command operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    // SendCommand reads the parameters its `{{ssm:…}}` references name, as
    // this caller: its policy must allow that too.
    let caller = p.caller(&stack.settings.account_id);
    let ports = stack.run_command().ports();
    let result = operations::handle(&ports, &caller, op, body, now_epoch())
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)));
    if let Ok(answer) = &result
        && op == "SendCommand"
    {
        tracing::info!(
            command_id = answer["Command"]["CommandId"].as_str().unwrap_or_default(),
            target_count = answer["Command"]["TargetCount"]
                .as_u64()
                .unwrap_or_default(),
            "command sent"
        );
    }
    result
}
