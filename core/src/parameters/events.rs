//! Parameter Store's events, shaped as SSM's on EventBridge: detail-types
//! `Parameter Store Change` and `Parameter Store Policy Action`, resources
//! `[parameter ARN]`. They never carry a value.

use serde_json::json;

use super::model::{Parameter, ParameterVersion, PolicyRecord};
use super::policies::{FINISHED, PENDING, Policy, policy_of_record};
use super::scheduler::expiration_of;
use crate::arn::ArnScope;
use crate::clock::iso8601_seconds;
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

/// The events a change of a parameter's head makes, as its table's stream
/// tells it, in order:
/// - a `Parameter Store Policy Action` for each policy the write marked
///   `Finished` (the scheduler's: a notification given, an expiration
///   reached);
/// - a `Parameter Store Change`: `Create` when the head appears, `Delete`
///   when it goes, `Update` when its latest version changes,
///   `LabelParameterVersion` when a label is put on (or moved to) a version.
///   Removing a label, tags, and a policy's progress make none, as with SSM.
pub fn of_parameter_change(
    old: Option<&Parameter>,
    new: Option<&Parameter>,
    scope: &ArnScope,
) -> Vec<Event> {
    let mut events = Vec::new();
    if let (Some(old), Some(new)) = (old, new)
        && old.current.version == new.current.version
    {
        let arn = scope.parameter_arn(new.name());
        let mut finished: Vec<&PolicyRecord> = old
            .current
            .policies
            .iter()
            .zip(&new.current.policies)
            .filter(|(before, after)| before.status == PENDING && after.status == FINISHED)
            .map(|(_, after)| after)
            .collect();
        // A warning given with the expiration itself goes out before it.
        finished.sort_by_key(|r| matches!(policy_of_record(r), Some(Policy::Expiration { .. })));
        for record in finished {
            let reason = policy_reason(new, record);
            events.push(policy_action(new, &arn, record, FINISHED, &reason));
        }
    }
    let change = match (old, new) {
        (None, Some(new)) => Some((Operation::Create, new)),
        (Some(old), None) => Some((Operation::Delete, old)),
        (Some(old), Some(new)) if new.current.version != old.current.version => {
            Some((Operation::Update, new))
        }
        (Some(old), Some(new)) if new.labels.iter().any(|(l, v)| old.labels.get(l) != Some(v)) => {
            Some((Operation::LabelParameterVersion, new))
        }
        _ => None,
    };
    if let Some((op, head)) = change {
        let arn = scope.parameter_arn(head.name());
        events.push(parameter_change(op, &head.current, &arn));
    }
    events
}

/// The `action-reason` of a policy that acted on `head`.
fn policy_reason(head: &Parameter, record: &PolicyRecord) -> String {
    let expiration = expiration_of(head);
    let last_modified = head.current.last_modified_date;
    match policy_of_record(record) {
        Some(Policy::Expiration { at }) => format!(
            "The parameter expired at {} and was deleted.",
            iso8601_seconds(at)
        ),
        Some(Policy::ExpirationNotification { .. }) => format!(
            "The parameter expires at {}.",
            iso8601_seconds(expiration.unwrap_or(last_modified))
        ),
        Some(Policy::NoChangeNotification { .. }) => format!(
            "The parameter has not changed since {}.",
            iso8601_seconds(last_modified)
        ),
        None => String::new(),
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
