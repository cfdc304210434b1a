//! Executions as SSM's API shows them: `AutomationExecution` (Get),
//! `AutomationExecutionMetadata` (Describe) and `StepExecution`.

use serde_json::{Map, Value, json};

use super::execution::{Execution, StepRecord};
use super::runbook::{OnFailure, Runbook};

/// SSM shows parameter and output values as lists of strings.
pub fn strings(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => json!(s),
                    other => json!(other.to_string()),
                })
                .collect(),
        ),
        Value::String(s) => json!([s]),
        other => json!([other.to_string()]),
    }
}

fn map_of_strings<'a>(entries: impl Iterator<Item = (&'a String, &'a Value)>) -> Value {
    Value::Object(entries.map(|(k, v)| (k.clone(), strings(v))).collect())
}

fn set_time(out: &mut Value, key: &str, t: Option<f64>) {
    if let Some(t) = t {
        out[key] = json!(t);
    }
}

/// `StepExecution`. `runbook` gives the step's fields as written (absent
/// when the version that ran is gone).
pub fn step_execution(r: &StepRecord, runbook: Option<&Runbook>) -> Value {
    let inputs: Map<String, Value> = r
        .inputs
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), json!(text))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = json!({
        "StepName": r.name,
        "Action": r.action,
        "StepStatus": r.status.as_str(),
        "StepExecutionId": r.step_execution_id,
        "ExecutionStartTime": r.start_time,
        "Inputs": inputs,
        "Outputs": map_of_strings(r.outputs.iter()),
    });
    set_time(&mut out, "ExecutionEndTime", r.end_time);
    if let Some(m) = &r.failure_message {
        out["FailureMessage"] = json!(m);
        out["FailureDetails"] = json!({
            "FailureStage": "Execution",
            "FailureType": if r.status.as_str() == "TimedOut" { "Timeout" } else { "Step" },
            "Details": {"Message": [m]},
        });
    }
    if let Some(code) = r.outputs.get("ResponseCode").and_then(Value::as_i64) {
        out["ResponseCode"] = json!(code.to_string());
    }
    if let Some(step) = runbook.and_then(|rb| rb.step(&r.name)) {
        out["MaxAttempts"] = json!(step.max_attempts);
        out["IsEnd"] = json!(step.is_end);
        out["IsCritical"] = json!(step.is_critical);
        out["OnFailure"] = json!(match &step.on_failure {
            OnFailure::Abort => "Abort".to_string(),
            OnFailure::Continue => "Continue".to_string(),
            OnFailure::Step(s) => format!("step:{s}"),
        });
        if let Some(t) = step.timeout_seconds {
            out["TimeoutSeconds"] = json!(t);
        }
        if let Some(n) = &step.next_step {
            out["NextStep"] = json!(n);
        }
        let valid = step.action.branch_targets(&step.inputs);
        if !valid.is_empty() {
            out["ValidNextSteps"] = json!(valid);
        }
    }
    out
}

fn common(e: &Execution) -> Value {
    let mut out = json!({
        "AutomationExecutionId": e.execution_id,
        "DocumentName": e.document_name,
        "DocumentVersion": e.document_version,
        "AutomationExecutionStatus": e.status.as_str(),
        "ExecutedBy": e.executed_by,
        "Mode": "Auto",
        "Outputs": map_of_strings(e.outputs.iter()),
    });
    set_time(
        &mut out,
        "ExecutionStartTime",
        e.start_time.or(Some(e.requested_time)),
    );
    set_time(&mut out, "ExecutionEndTime", e.end_time);
    if let Some(m) = &e.failure_message {
        out["FailureMessage"] = json!(m);
    }
    if let Some(r) = e.current() {
        out["CurrentStepName"] = json!(r.name);
        out["CurrentAction"] = json!(r.action);
    }
    if let Some(p) = &e.parent_execution_id {
        out["ParentAutomationExecutionId"] = json!(p);
    }
    if let Some(t) = &e.target {
        out["Target"] = json!(t);
    }
    if let Some(f) = &e.fan_out {
        if let Some(n) = &f.target_parameter_name {
            out["TargetParameterName"] = json!(n);
        }
        if !f.targets.is_null() {
            out["Targets"] = f.targets.clone();
        }
        if !f.target_maps.is_null() {
            out["TargetMaps"] = f.target_maps.clone();
        }
        out["MaxConcurrency"] = json!(f.max_concurrency);
        out["MaxErrors"] = json!(f.max_errors);
        out["ResolvedTargets"] = json!({
            "ParameterValues": f.children.iter().map(|c| c.target.clone()).collect::<Vec<_>>(),
            "Truncated": false,
        });
    }
    out
}

/// `AutomationExecution`, as GetAutomationExecution shows it.
pub fn execution(e: &Execution, runbook: Option<&Runbook>) -> Value {
    let mut out = common(e);
    out["Parameters"] = map_of_strings(e.parameters.iter());
    out["StepExecutions"] =
        Value::Array(e.steps.iter().map(|r| step_execution(r, runbook)).collect());
    out["StepExecutionsTruncated"] = json!(false);
    out
}

/// `AutomationExecutionMetadata`, as DescribeAutomationExecutions lists it.
pub fn metadata(e: &Execution) -> Value {
    let mut out = common(e);
    out["AutomationType"] = json!("Local");
    out
}
