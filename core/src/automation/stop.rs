//! StopAutomationExecution (Type Cancel): the record asks to cancel; the
//! engine, woken, cancels the running step and runs its onCancel step.

use serde_json::{Value, json};

use super::context::AutomationContext;
use super::control;
use super::get::{change_and_wake, named};
use crate::access::Authorizer;
use crate::error::SsmError;

pub(super) async fn stop(
    ctx: &AutomationContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    match body.get("Type").and_then(Value::as_str) {
        None | Some("Cancel") => {}
        Some("Complete") => {
            return Err(SsmError::InvalidAutomationStatusUpdateException(
                "Type Complete is for change-template runbooks, which Steward does not run; give Type Cancel.".into(),
            ));
        }
        Some(other) => {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [Complete, Cancel]"
            )));
        }
    }
    let e = named(ctx, caller, "ssm:StopAutomationExecution", body).await?;
    change_and_wake(ctx, e, control::stop).await?;
    Ok(json!({}))
}
