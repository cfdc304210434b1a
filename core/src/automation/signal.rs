//! SendAutomationSignal: Approve or Reject an aws:approve step (by one of
//! its approvers), or Resume an aws:pause step. The record takes the
//! signal; the engine, woken, goes on.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::AutomationContext;
use super::control::{self, Caller as Signer, Signal};
use super::get::{change_and_wake, named};
use crate::access::Caller;
use crate::error::SsmError;
use crate::error::parse_request as parse;

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
    let e = named(ctx, caller, "ssm:SendAutomationSignal", body).await?;
    // Approvers may be named by user name or by ARN.
    let user_name = super::start::user_name(&caller.user_arn);
    let names = [caller.user_arn.as_str(), user_name.as_str()];
    let signer = Signer { names: &names };
    change_and_wake(ctx, e, |next| {
        control::signal(next, kind, &signer, comment.clone(), ctx.now)
    })
    .await?;
    Ok(json!({}))
}
