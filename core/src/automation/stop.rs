//! StopAutomationExecution (Type Cancel): the record asks to cancel; the
//! engine, woken, cancels the running step and runs its onCancel step.

use serde_json::{Value, json};

use super::context::AutomationContext;
use super::control;
use super::get::{named, not_found};
use crate::access::Authorizer;
use crate::error::SsmError;

/// Conditional writes tried before answering TooManyUpdates.
const ATTEMPTS: usize = 5;

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
    let mut e = named(ctx, caller, "ssm:StopAutomationExecution", body).await?;
    for _ in 0..ATTEMPTS {
        let mut next = e.clone();
        control::stop(&mut next)?;
        next.revision = e.revision + 1;
        if next.status == e.status && next.cancel_requested == e.cancel_requested
            || ctx.store.update(&next, e.revision).await?
        {
            ctx.queue.wake(&e.execution_id, 0).await?;
            return Ok(json!({}));
        }
        e = ctx
            .store
            .get(&e.execution_id)
            .await?
            .ok_or_else(|| not_found(&e.execution_id))?;
    }
    Err(SsmError::TooManyUpdates(format!(
        "Automation execution {} is being changed by other requests; try again.",
        e.execution_id
    )))
}
