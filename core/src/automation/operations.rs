//! Automation's SSM operations, by name.

use serde_json::Value;

use super::context::AutomationContext;
use crate::access::Caller;
use crate::error::SsmError;

/// Dispatches an SSM operation name; `None`: not an Automation operation.
pub async fn handle(
    ctx: &AutomationContext<'_>,
    caller: &Caller,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "StartAutomationExecution" => super::start::start(ctx, caller, body).await,
        "GetAutomationExecution" => super::get::get(ctx, caller, body).await,
        "DescribeAutomationExecutions" => {
            super::describe_executions::describe_executions(ctx, caller, body).await
        }
        "DescribeAutomationStepExecutions" => {
            super::describe_step_executions::describe_step_executions(ctx, caller, body).await
        }
        "StopAutomationExecution" => super::stop::stop(ctx, caller, body).await,
        "SendAutomationSignal" => super::signal::signal(ctx, caller, body).await,
        _ => return None,
    })
}
