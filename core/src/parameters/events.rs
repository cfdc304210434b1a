//! Parameter Store's events, shaped as SSM's on EventBridge: detail-types
//! `Parameter Store Change` and `Parameter Store Policy Action`, resources
//! `[parameter ARN]`. They never carry a value.

use serde_json::json;

use super::context::ParameterContext;
use super::model::{Parameter, ParameterVersion, PolicyRecord};
use crate::events::Event;

pub const PARAMETER_CHANGE: &str = "Parameter Store Change";
pub const POLICY_ACTION: &str = "Parameter Store Policy Action";

/// SSM's `operation` values in a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    LabelParameterVersion,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "Create",
            Operation::Update => "Update",
            Operation::Delete => "Delete",
            Operation::LabelParameterVersion => "LabelParameterVersion",
        }
    }
}

/// `Parameter Store Change`: `{operation, name, type, description}`;
/// `description` only when the parameter has one.
pub fn parameter_change(op: Operation, v: &ParameterVersion, arn: &str) -> Event {
    let mut detail = json!({
        "operation": op.as_str(),
        "name": v.name,
        "type": v.parameter_type.as_str(),
    });
    if let Some(d) = &v.description {
        detail["description"] = json!(d);
    }
    Event {
        detail_type: PARAMETER_CHANGE,
        resources: vec![arn.to_string()],
        detail,
    }
}

/// `Parameter Store Policy Action`: `{parameter-name, parameter-type,
/// policy-type, policy-content, action-status, action-reason}`, as SSM's
/// example event has them.
pub fn policy_action(
    p: &Parameter,
    arn: &str,
    policy: &PolicyRecord,
    action_status: &str,
    action_reason: &str,
) -> Event {
    Event {
        detail_type: POLICY_ACTION,
        resources: vec![arn.to_string()],
        detail: json!({
            "parameter-name": p.name(),
            "parameter-type": p.current.parameter_type.as_str(),
            "policy-type": policy.policy_type,
            "policy-content": policy.text,
            "action-status": action_status,
            "action-reason": action_reason,
        }),
    }
}

/// Publishes after the state change it reports. A failure is logged and
/// swallowed: the stored state is the truth, and the write it reports has
/// already happened (failing the call would invite a retry that writes again).
pub async fn publish(ctx: &ParameterContext<'_>, event: Event) {
    if let Err(e) = ctx
        .events
        .publish(event.detail_type, event.resources.clone(), event.detail)
        .await
    {
        tracing::warn!(
            detail_type = event.detail_type,
            resource = event
                .resources
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
            error = e.code(),
            "parameter event not published"
        );
    }
}
