//! What an operator does to a running execution: SendAutomationSignal
//! (Approve, Reject, Resume) and StopAutomationExecution. Each changes the
//! record only; the engine, woken after the write, does the rest.

use serde_json::Value;

use super::execution::{AutomationStatus as S, Decision, Execution, Wait};
use crate::error::SsmError;

/// SSM's `SignalType`s that Steward takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Approve,
    Reject,
    Resume,
}

impl Signal {
    pub fn parse(s: &str) -> Result<Self, SsmError> {
        match s {
            "Approve" => Ok(Signal::Approve),
            "Reject" => Ok(Signal::Reject),
            "Resume" => Ok(Signal::Resume),
            "StartStep" | "StopStep" => Err(SsmError::InvalidAutomationSignalException(format!(
                "Signal {s} is for Interactive mode executions; Steward runs executions in Auto mode. Use Approve, Reject or Resume."
            ))),
            other => Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'signalType' failed to satisfy constraint: Member must satisfy enum value set: [Approve, Reject, StartStep, StopStep, Resume]"
            ))),
        }
    }
}

/// Who sends a signal: the names an aws:approve step's `Approvers` may give
/// for them (the user name and the user's ARN).
pub struct Caller<'a> {
    pub names: &'a [&'a str],
}

fn not_waiting(exec: &Execution, what: &str) -> SsmError {
    SsmError::InvalidAutomationSignalException(format!(
        "Automation execution {} is not waiting for {what}: its status is {}.",
        exec.execution_id,
        exec.status.as_str()
    ))
}

/// Records `signal` on the running step.
pub fn signal(
    exec: &mut Execution,
    signal: Signal,
    caller: &Caller<'_>,
    comment: Option<String>,
    now: f64,
) -> Result<(), SsmError> {
    let Some(&top) = exec.active.last() else {
        return Err(not_waiting(exec, "a signal"));
    };
    if exec.status.is_final() || exec.cancel_requested {
        return Err(not_waiting(exec, "a signal"));
    }
    let record = &mut exec.steps[top];
    match (signal, &record.wait) {
        (Signal::Resume, Wait::Resume) => {
            record.decisions.push(Decision {
                approver: caller
                    .names
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                approved: true,
                comment,
                time: now,
            });
            record.wait = Wait::Until { at: now };
            Ok(())
        }
        (Signal::Approve | Signal::Reject, Wait::Approval) => {
            let approvers: Vec<String> = record
                .inputs
                .get("Approvers")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let Some(approver) = caller
                .names
                .iter()
                .find(|n| approvers.iter().any(|a| a == *n))
            else {
                return Err(SsmError::InvalidAutomationSignalException(format!(
                    "{} is not an approver of step {}: its approvers are {}.",
                    caller.names.first().copied().unwrap_or("The caller"),
                    record.name,
                    approvers.join(", ")
                )));
            };
            if record.decisions.iter().any(|d| d.approver == *approver) {
                return Err(SsmError::InvalidAutomationSignalException(format!(
                    "{approver} has already decided on step {}.",
                    record.name
                )));
            }
            record.decisions.push(Decision {
                approver: approver.to_string(),
                approved: signal == Signal::Approve,
                comment,
                time: now,
            });
            Ok(())
        }
        (Signal::Resume, _) => Err(not_waiting(exec, "Resume (an aws:pause step)")),
        _ => Err(not_waiting(exec, "an approval (an aws:approve step)")),
    }
}

/// StopAutomationExecution with Type Cancel.
pub fn stop(exec: &mut Execution) -> Result<(), SsmError> {
    if exec.status.is_final() {
        return Err(SsmError::InvalidAutomationStatusUpdateException(format!(
            "Automation execution {} has already ended ({}); only a running execution can be stopped.",
            exec.execution_id,
            exec.status.as_str()
        )));
    }
    if !exec.cancel_requested {
        exec.cancel_requested = true;
        exec.status = S::Cancelling;
    }
    Ok(())
}
