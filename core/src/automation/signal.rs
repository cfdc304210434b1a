//! SendAutomationSignal: Approve or Reject an aws:approve step (by one of
//! its approvers), or Resume an aws:pause step. The record takes the
//! signal; the engine, woken, goes on.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::AutomationContext;
use super::control::{self, Caller as Signer, Signal};
use super::get::{named, not_found};
use crate::access::Caller;
use crate::error::SsmError;
use crate::error::parse_request as parse;

const ATTEMPTS: usize = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct SignalInput {
    signal_type: Option<String>,
    payload: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

pub(super) async fn signal(
    ctx: &AutomationContext<'_>,
    caller: &Caller,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: SignalInput = parse(body)?;
    let kind = match i.signal_type.as_deref() {
        Some(s) => Signal::parse(s)?,
        None => {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value null at 'signalType' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
    };
    let comment = i
        .payload
        .as_ref()
        .and_then(|p| p.get("Comment"))
        .and_then(|c| c.first())
        .cloned();
    let mut e = named(ctx, caller, "ssm:SendAutomationSignal", body).await?;
    // Approvers may be named by user name or by ARN.
    let user_name = super::start::user_name(&caller.user_arn);
    let names = [caller.user_arn.as_str(), user_name.as_str()];
    let signer = Signer { names: &names };
    for _ in 0..ATTEMPTS {
        let mut next = e.clone();
        control::signal(&mut next, kind, &signer, comment.clone(), ctx.now)?;
        next.revision = e.revision + 1;
        if ctx.store.update(&next, e.revision).await? {
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
