//! The step engine: from an execution's record, what it observes of the
//! world, and the time, the next record and the effects to carry out.
//!
//! [`advance`] is pure. The function around it loads the record, gathers
//! what the running step waits on ([`Observed`]), calls `advance`, writes
//! the record conditionally, and only then carries out the effects. So:
//! - a message delivered twice advances a record that has already moved,
//!   which does nothing or the same thing again;
//! - a function that dies after the write and before the effects leaves a
//!   record that asks for them again: every effect is harmless to repeat
//!   (a command is created under an id chosen in the record; a wake-up or an
//!   event twice is only a second look), except an API call, which is
//!   guarded by a lease in the record and, past it, repeated only when it
//!   only reads.

use serde_json::{Value, json};

use super::actions::ActionKind;
use super::branch::{Choice, choose};
use super::execution::{AutomationStatus as S, Execution, StepRecord, Wait};
use super::runbook::{OnCancel, OnFailure, Runbook, RunbookStep};
use super::selector::Selector;
use super::variables::{self, Reference, Values};
use crate::clock;

/// How long an API call may take before its caller is taken to have died.
pub const API_LEASE_SECONDS: f64 = 60.0;
/// How often a step waiting on a command looks again, in case the command's
/// own notice was lost; and how often aws:waitForAwsResourceProperty calls.
pub const POLL_SECONDS: f64 = 60.0;
pub const WAIT_FOR_PROPERTY_SECONDS: f64 = 5.0;
/// Transitions one advance makes before it hands over to a fresh message
/// (a runbook that loops on aws:branch cannot hold a function forever).
const MAX_TRANSITIONS: usize = 200;
/// Step executions one execution may record.
pub const MAX_STEP_EXECUTIONS: usize = 1000;

/// What the function around the engine is asked to do once the record is
/// written.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create this command, under this id, unless it exists.
    CreateCommand {
        step_execution_id: String,
        command_id: String,
        inputs: Value,
    },
    /// Call an SSM operation as the execution's caller, then advance again
    /// with its answer.
    CallApi {
        step_execution_id: String,
        api: String,
        request: Value,
    },
    /// Look at the execution again at this time.
    WakeAt(f64),
    /// A step's status changed (index into `steps`, and the status it
    /// changed to: a later change in the same advance may follow).
    StepChanged(usize, S),
    /// The execution's status changed, to this.
    ExecutionChanged(S),
}

/// The outcome of a command, once it is final.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutcome {
    pub command_id: String,
    /// The command's SSM status: Success, Failed, TimedOut or Cancelled.
    pub status: String,
    pub response_code: i64,
    pub output: String,
}

/// What the function saw for the running step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The command the step waits on, once final.
    pub command: Option<CommandOutcome>,
    /// The command the step waits on does not exist: the function that
    /// chose its id died before creating it.
    pub missing_command: Option<String>,
    /// SendCommand refused the step's command (id, why): the step fails.
    pub command_refused: Option<(String, String)>,
    /// The answer to the API call of this step execution.
    pub api: Option<(String, Result<Value, String>)>,
}

/// What the engine needs besides the record.
#[derive(Debug, Clone)]
pub struct Env {
    pub now: f64,
    pub account_id: String,
    pub region: String,
    pub partition: String,
}

/// How long a person has to approve or resume when the step does not say:
/// seven days, SSM's longest wait.
pub const DEFAULT_WAIT_SECONDS: u64 = 7 * 24 * 3600;

/// The step's time limit: its timeoutSeconds, or for a step that waits on
/// a person (aws:approve, aws:pause) seven days, so no execution waits for
/// ever.
fn step_timeout(step: &RunbookStep) -> Option<u64> {
    step.timeout_seconds.or(match step.action {
        ActionKind::Approve | ActionKind::Pause => Some(DEFAULT_WAIT_SECONDS),
        _ => None,
    })
}

/// Whether an SSM operation only reads, so repeating it is harmless.
pub fn only_reads(api: &str) -> bool {
    ["Get", "Describe", "List"]
        .iter()
        .any(|p| api.starts_with(p))
}

enum Outcome {
    Success,
    Failed(String),
    TimedOut(String),
}

/// Where the flow goes after a step ended.
enum Next {
    Step(String),
    /// The end of the list the step is in.
    End,
    Abort(S, String),
}

/// Advances `exec` as far as it can go now. Returns the effects to carry
/// out after `exec` is written.
pub fn advance(exec: &mut Execution, runbook: &Runbook, seen: &Observed, env: &Env) -> Vec<Effect> {
    let mut fx = Vec::new();
    for _ in 0..MAX_TRANSITIONS {
        if exec.status.is_final() {
            return fx;
        }
        if !transition(exec, runbook, seen, env, &mut fx) {
            return fx;
        }
    }
    fx.push(Effect::WakeAt(env.now));
    fx
}

/// One transition; false when the execution waits.
fn transition(
    exec: &mut Execution,
    runbook: &Runbook,
    seen: &Observed,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> bool {
    let now = env.now;
    if exec.status == S::Pending {
        exec.status = S::InProgress;
        exec.start_time = Some(now);
        fx.push(Effect::ExecutionChanged(exec.status));
        let first = runbook.steps[0].name.clone();
        begin(exec, runbook, &first, None, env, fx);
        return true;
    }
    if exec.cancel_requested && !exec.cancel_handled {
        return cancel(exec, runbook, env, fx);
    }
    let Some(&top) = exec.active.last() else {
        // Every step list ended.
        let status = if exec.cancel_handled {
            S::Cancelled
        } else if exec.critical_failure.is_some() {
            S::Failed
        } else {
            S::Success
        };
        let message = exec.critical_failure.clone();
        collect_outputs(exec, runbook);
        finish(exec, status, message, now, fx);
        return false;
    };
    let Some(step) = runbook.step(&exec.steps[top].name).cloned() else {
        let name = exec.steps[top].name.clone();
        end_step(
            exec,
            top,
            Outcome::Failed(format!(
                "Step {name} is not in runbook version {}.",
                exec.document_version
            )),
            now,
            fx,
        );
        return true;
    };
    let record = &exec.steps[top];
    if let Some(t) = step_timeout(&step)
        && record.wait != Wait::Done
        && !matches!(record.wait, Wait::Loop { .. })
        && now >= record.start_time + t as f64
    {
        return ended(
            exec,
            runbook,
            top,
            Outcome::TimedOut(format!("Step timed out after {t} seconds.")),
            env,
            fx,
        );
    }
    let timeout_at = step_timeout(&step).map(|t| exec.steps[top].start_time + t as f64);
    let wake = |fx: &mut Vec<Effect>, at: f64| {
        fx.push(Effect::WakeAt(timeout_at.map_or(at, |t| t.min(at))));
    };
    match exec.steps[top].wait.clone() {
        Wait::Until { at } => {
            if now < at {
                wake(fx, at);
                return false;
            }
            if step.action == ActionKind::WaitForAwsResourceProperty {
                call_api(exec, top, env, fx);
                return false;
            }
            ended(exec, runbook, top, Outcome::Success, env, fx)
        }
        Wait::Command { command_id } => match &seen.command {
            Some(c) if c.command_id == command_id => {
                let r = &mut exec.steps[top];
                r.outputs.insert("CommandId".into(), json!(c.command_id));
                r.outputs.insert("Status".into(), json!(c.status));
                r.outputs
                    .insert("ResponseCode".into(), json!(c.response_code));
                r.outputs.insert("Output".into(), json!(c.output));
                let outcome = match c.status.as_str() {
                    "Success" => Outcome::Success,
                    "TimedOut" => Outcome::TimedOut(format!("Command {command_id} timed out.")),
                    other => Outcome::Failed(format!("Command {command_id} ended {other}.")),
                };
                ended(exec, runbook, top, outcome, env, fx)
            }
            _ if seen
                .command_refused
                .as_ref()
                .is_some_and(|(id, _)| *id == command_id) =>
            {
                let why = seen
                    .command_refused
                    .as_ref()
                    .map(|(_, why)| why.clone())
                    .unwrap_or_default();
                ended(exec, runbook, top, Outcome::Failed(why), env, fx)
            }
            _ => {
                if seen.missing_command.as_ref() == Some(&command_id) {
                    let r = &exec.steps[top];
                    fx.push(Effect::CreateCommand {
                        step_execution_id: r.step_execution_id.clone(),
                        command_id,
                        inputs: r.inputs.clone(),
                    });
                }
                wake(fx, now + POLL_SECONDS);
                false
            }
        },
        Wait::Api { lease_until } => {
            let id = exec.steps[top].step_execution_id.clone();
            match &seen.api {
                Some((answered, result)) if *answered == id => {
                    let outcome = api_answered(exec, &step, top, result.clone(), now);
                    match outcome {
                        Some(o) => ended(exec, runbook, top, o, env, fx),
                        None => {
                            wake(fx, now + WAIT_FOR_PROPERTY_SECONDS);
                            false
                        }
                    }
                }
                _ if now < lease_until => {
                    wake(fx, lease_until);
                    false
                }
                _ => {
                    let api = api_name(&exec.steps[top].inputs);
                    if only_reads(&api) {
                        call_api(exec, top, env, fx);
                        false
                    } else {
                        ended(
                            exec,
                            runbook,
                            top,
                            Outcome::Failed(format!(
                                "The engine stopped while calling {api}; the call may have taken effect, so it is not made again."
                            )),
                            env,
                            fx,
                        )
                    }
                }
            }
        }
        Wait::Approval => {
            let r = &exec.steps[top];
            if let Some(d) = r.decisions.iter().find(|d| !d.approved) {
                let msg = format!("Step rejected by {}.", d.approver);
                return ended(exec, runbook, top, Outcome::Failed(msg), env, fx);
            }
            let needed = r
                .inputs
                .get("MinRequiredApprovals")
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(1) as usize;
            if r.decisions.iter().filter(|d| d.approved).count() >= needed {
                let decisions: Vec<Value> = r
                    .decisions
                    .iter()
                    .map(|d| json!({"Approver": d.approver, "Decision": if d.approved {"Approved"} else {"Rejected"}, "Comment": d.comment, "DecisionTime": clock::iso8601_seconds(d.time)}))
                    .collect();
                let r = &mut exec.steps[top];
                r.outputs.insert("ApprovalStatus".into(), json!("Approved"));
                r.outputs
                    .insert("ApproverDecisions".into(), Value::Array(decisions));
                return ended(exec, runbook, top, Outcome::Success, env, fx);
            }
            if let Some(t) = timeout_at {
                fx.push(Effect::WakeAt(t));
            }
            false
        }
        Wait::Resume => {
            if let Some(t) = timeout_at {
                fx.push(Effect::WakeAt(t));
            }
            false
        }
        Wait::Loop { iteration } => next_iteration(exec, runbook, top, &step, iteration, env, fx),
        Wait::Done => {
            // The step ended as it began (aws:branch, or a reference with
            // no value): go on from its end.
            let outcome = match exec.steps[top].status {
                S::Success => Outcome::Success,
                S::TimedOut => {
                    Outcome::TimedOut(exec.steps[top].failure_message.clone().unwrap_or_default())
                }
                _ => Outcome::Failed(exec.steps[top].failure_message.clone().unwrap_or_default()),
            };
            exec.active.pop();
            after(exec, runbook, &step, top, outcome, env, fx)
        }
    }
}

fn api_name(inputs: &Value) -> String {
    inputs
        .get("Api")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The request an API step sends: its inputs without Service, Api and the
/// property checks.
fn api_request(inputs: &Value) -> Value {
    let mut req = inputs.as_object().cloned().unwrap_or_default();
    for k in ["Service", "Api", "PropertySelector", "DesiredValues"] {
        req.remove(k);
    }
    Value::Object(req)
}

fn call_api(exec: &mut Execution, top: usize, env: &Env, fx: &mut Vec<Effect>) {
    let r = &mut exec.steps[top];
    r.wait = Wait::Api {
        lease_until: env.now + API_LEASE_SECONDS,
    };
    fx.push(Effect::CallApi {
        step_execution_id: r.step_execution_id.clone(),
        api: api_name(&r.inputs),
        request: api_request(&r.inputs),
    });
    fx.push(Effect::WakeAt(env.now + API_LEASE_SECONDS));
}

/// The step's outcome from an API answer; `None` when
/// aws:waitForAwsResourceProperty should call again.
fn api_answered(
    exec: &mut Execution,
    step: &RunbookStep,
    top: usize,
    result: Result<Value, String>,
    now: f64,
) -> Option<Outcome> {
    let response = match result {
        Ok(v) => v,
        Err(e) => return Some(Outcome::Failed(e)),
    };
    match step.action {
        ActionKind::ExecuteAwsApi => {
            for o in &step.outputs {
                let selected =
                    Selector::parse(&o.selector).and_then(|s| s.select(&response, o.output_type));
                match selected {
                    Ok(v) => {
                        exec.steps[top].outputs.insert(o.name.clone(), v);
                    }
                    Err(e) => return Some(Outcome::Failed(e)),
                }
            }
            Some(Outcome::Success)
        }
        _ => {
            let inputs = &exec.steps[top].inputs;
            let property = inputs
                .get("PropertySelector")
                .and_then(Value::as_str)
                .unwrap_or("$");
            let desired: Vec<String> = inputs
                .get("DesiredValues")
                .and_then(Value::as_array)
                .map(|d| d.iter().map(text).collect())
                .unwrap_or_default();
            let actual = Selector::parse(property)
                .and_then(|s| s.select(&response, super::runbook::OutputType::String));
            let holds = matches!(&actual, Ok(v) if desired.contains(&text(v)));
            if holds {
                return Some(Outcome::Success);
            }
            if step.action == ActionKind::AssertAwsResourceProperty {
                let shown = actual.map(|v| text(&v)).unwrap_or_else(|e| e);
                return Some(Outcome::Failed(format!(
                    "{property} is {shown}, not one of the desired values {}.",
                    desired.join(", ")
                )));
            }
            exec.steps[top].wait = Wait::Until {
                at: now + WAIT_FOR_PROPERTY_SECONDS,
            };
            None
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The values a step's `{{ … }}` take now.
struct ExecutionValues<'a> {
    exec: &'a Execution,
    env: &'a Env,
}

impl Values for ExecutionValues<'_> {
    fn value(&self, r: Reference<'_>) -> Option<Value> {
        match r {
            Reference::Parameter(n) => self.exec.parameters.get(n).cloned(),
            Reference::StepOutput { step, output } => self.exec.output(step, output).cloned(),
            Reference::Variable(v) => Some(json!(match v {
                "automation:EXECUTION_ID" => self.exec.execution_id.clone(),
                "global:ACCOUNT_ID" => self.env.account_id.clone(),
                "global:REGION" => self.env.region.clone(),
                "global:AWS_PARTITION" => self.env.partition.clone(),
                "global:DATE" => clock::iso8601_seconds(self.env.now)[..10].to_string(),
                "global:DATE_TIME" => clock::iso8601_seconds(self.env.now)
                    .replace(['-', ':'], "")
                    .replace('T', "_")
                    .trim_end_matches('Z')
                    .to_string(),
                _ => return None,
            })),
            Reference::ParameterStore(_) => None,
        }
    }
}

/// The first `{{ step.Output }}` in `inputs` that has no value yet.
fn missing_output(exec: &Execution, inputs: &Value) -> Option<String> {
    let mut missing = None;
    walk_strings(inputs, &mut |s| {
        for r in variables::references(s) {
            if let Reference::StepOutput { step, output } = r
                && missing.is_none()
                && exec.output(step, output).is_none()
            {
                missing = Some(format!("{{{{ {step}.{output} }}}}"));
            }
        }
    });
    missing
}

fn walk_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(m) => m.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

/// Starts step `name` (in the list of the loop at `parent`, or the main
/// steps).
fn begin(
    exec: &mut Execution,
    runbook: &Runbook,
    name: &str,
    parent: Option<usize>,
    env: &Env,
    fx: &mut Vec<Effect>,
) {
    let attempt = 1;
    begin_attempt(exec, runbook, name, parent, attempt, env, fx)
}

fn begin_attempt(
    exec: &mut Execution,
    runbook: &Runbook,
    name: &str,
    parent: Option<usize>,
    attempt: u32,
    env: &Env,
    fx: &mut Vec<Effect>,
) {
    let now = env.now;
    if exec.steps.len() >= MAX_STEP_EXECUTIONS {
        end_active(exec, S::Failed, "Too many step executions.", now, fx);
        finish(
            exec,
            S::Failed,
            Some(format!(
                "The execution ran {MAX_STEP_EXECUTIONS} step executions, the most one execution may; check the runbook's branches and loops."
            )),
            now,
            fx,
        );
        return;
    }
    let Some(step) = runbook.step(name).cloned() else {
        finish(
            exec,
            S::Failed,
            Some(format!("Step {name} is not in the runbook.")),
            now,
            fx,
        );
        return;
    };
    let mut written = step.own_inputs();
    // A loop's condition is read after each iteration, with the values that
    // iteration set ([`next_iteration`]), not when the loop starts.
    if step.action == ActionKind::Loop
        && let Value::Object(map) = &mut written
    {
        map.remove("LoopCondition");
    }
    let inputs = variables::interpolate(&written, &ExecutionValues { exec, env });
    let index = exec.steps.len();
    exec.steps.push(StepRecord {
        step_execution_id: crate::ids::new_command_id(),
        name: step.name.clone(),
        action: step.action.as_str().to_string(),
        status: S::InProgress,
        attempt,
        start_time: now,
        end_time: None,
        inputs: inputs.clone(),
        outputs: Default::default(),
        failure_message: None,
        wait: Wait::Done,
        chosen: None,
        decisions: Vec::new(),
        parent,
    });
    exec.active.push(index);
    fx.push(Effect::StepChanged(index, exec.steps[index].status));
    if let Some(missing) = missing_output(exec, &written) {
        let msg =
            format!("{missing} has no value: the step it names has not run or did not set it.");
        end_step(exec, index, Outcome::Failed(msg), now, fx);
        return;
    }
    let wait = match step.action {
        ActionKind::RunCommand => {
            let command_id = crate::ids::new_command_id();
            fx.push(Effect::CreateCommand {
                step_execution_id: exec.steps[index].step_execution_id.clone(),
                command_id: command_id.clone(),
                inputs,
            });
            fx.push(Effect::WakeAt(now + POLL_SECONDS));
            Wait::Command { command_id }
        }
        ActionKind::Sleep => {
            let at = match (inputs.get("Duration"), inputs.get("Timestamp")) {
                (Some(Value::String(d)), _) => super::duration::parse_iso8601(d).map(|s| now + s),
                (_, Some(Value::String(t))) => super::duration::parse_timestamp(t),
                _ => Err("aws:sleep needs Duration or Timestamp.".to_string()),
            };
            match at {
                Ok(at) => {
                    fx.push(Effect::WakeAt(at));
                    Wait::Until { at }
                }
                Err(e) => {
                    end_step(exec, index, Outcome::Failed(e), now, fx);
                    return;
                }
            }
        }
        ActionKind::Pause | ActionKind::Approve => {
            exec.steps[index].status = S::Waiting;
            if exec.status != S::Waiting {
                exec.status = S::Waiting;
                fx.push(Effect::ExecutionChanged(exec.status));
            }
            if let Some(t) = step_timeout(&step) {
                fx.push(Effect::WakeAt(now + t as f64));
            }
            if step.action == ActionKind::Pause {
                Wait::Resume
            } else {
                Wait::Approval
            }
        }
        ActionKind::Branch => {
            let choices: Result<Vec<Choice>, String> = inputs
                .get("Choices")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().map(|c| Choice::parse(c, false)).collect())
                .unwrap_or_else(|| Ok(Vec::new()));
            let default = inputs.get("Default").and_then(Value::as_str);
            let outcome = match choices.and_then(|cs| choose(&cs, default)) {
                Ok(Some(target)) => {
                    exec.steps[index].chosen = Some(target);
                    Outcome::Success
                }
                Ok(None) => {
                    Outcome::Failed("No choice matched and the step has no Default.".into())
                }
                Err(e) => Outcome::Failed(e),
            };
            end_step(exec, index, outcome, now, fx);
            return;
        }
        ActionKind::ExecuteAwsApi
        | ActionKind::AssertAwsResourceProperty
        | ActionKind::WaitForAwsResourceProperty => {
            call_api(exec, index, env, fx);
            return;
        }
        ActionKind::Loop => {
            exec.steps[index].wait = Wait::Loop { iteration: 0 };
            return;
        }
    };
    exec.steps[index].wait = wait;
}

/// Records a step's end (it stays on the active stack until [`after`]).
fn end_step(exec: &mut Execution, index: usize, outcome: Outcome, now: f64, fx: &mut Vec<Effect>) {
    let r = &mut exec.steps[index];
    let (status, message) = match outcome {
        Outcome::Success => (S::Success, None),
        Outcome::Failed(m) => (S::Failed, Some(m)),
        Outcome::TimedOut(m) => (S::TimedOut, Some(m)),
    };
    r.status = status;
    r.failure_message = message;
    r.end_time = Some(now);
    r.wait = Wait::Done;
    fx.push(Effect::StepChanged(index, exec.steps[index].status));
    if exec.status == S::Waiting && !exec.cancel_requested {
        exec.status = S::InProgress;
        fx.push(Effect::ExecutionChanged(exec.status));
    }
}

/// The running step at `top` ended with `outcome`: record it and go on.
fn ended(
    exec: &mut Execution,
    runbook: &Runbook,
    top: usize,
    outcome: Outcome,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> bool {
    let Some(step) = runbook.step(&exec.steps[top].name).cloned() else {
        return false;
    };
    let again = matches!(outcome, Outcome::Failed(_) | Outcome::TimedOut(_))
        && exec.steps[top].attempt < step.max_attempts;
    let outcome_copy = match &outcome {
        Outcome::Success => Outcome::Success,
        Outcome::Failed(m) => Outcome::Failed(m.clone()),
        Outcome::TimedOut(m) => Outcome::TimedOut(m.clone()),
    };
    end_step(exec, top, outcome, env.now, fx);
    exec.active.pop();
    if again {
        let attempt = exec.steps[top].attempt + 1;
        let parent = exec.steps[top].parent;
        begin_attempt(exec, runbook, &step.name, parent, attempt, env, fx);
        return true;
    }
    after(exec, runbook, &step, top, outcome_copy, env, fx)
}

/// Where the flow goes once `step` (record `index`, already off the active
/// stack) ended for good.
fn after(
    exec: &mut Execution,
    runbook: &Runbook,
    step: &RunbookStep,
    index: usize,
    outcome: Outcome,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> bool {
    let parent = exec.steps[index].parent;
    let list: Vec<RunbookStep> = match parent {
        Some(p) => runbook
            .step(&exec.steps[p].name)
            .map(|l| l.loop_steps.clone())
            .unwrap_or_default(),
        None => runbook.steps.clone(),
    };
    let following = || {
        list.iter()
            .position(|s| s.name == step.name)
            .and_then(|i| list.get(i + 1))
            .map_or(Next::End, |s| Next::Step(s.name.clone()))
    };
    let go_on = || {
        if step.is_end {
            Next::End
        } else if let Some(n) = &step.next_step {
            Next::Step(n.clone())
        } else {
            following()
        }
    };
    let next = match outcome {
        Outcome::Success => match &exec.steps[index].chosen {
            Some(target) => Next::Step(target.clone()),
            None => go_on(),
        },
        Outcome::Failed(m) | Outcome::TimedOut(m) => {
            let status = exec.steps[index].status;
            let message = format!(
                "Step {} {}: {m}",
                step.name,
                if status == S::TimedOut {
                    "timed out"
                } else {
                    "failed"
                }
            );
            if step.is_critical && exec.critical_failure.is_none() {
                exec.critical_failure = Some(message.clone());
            }
            match &step.on_failure {
                OnFailure::Abort => Next::Abort(
                    if status == S::TimedOut {
                        S::TimedOut
                    } else {
                        S::Failed
                    },
                    message,
                ),
                OnFailure::Continue => go_on(),
                OnFailure::Step(target) => Next::Step(target.clone()),
            }
        }
    };
    match next {
        Next::Step(name) => {
            begin(exec, runbook, &name, parent, env, fx);
            true
        }
        Next::End => true,
        Next::Abort(status, message) => {
            // The loops the step ran in end as it did.
            end_active(exec, status, &message, env.now, fx);
            finish(exec, status, Some(message), env.now, fx);
            false
        }
    }
}

/// aws:loop at `top` finished an iteration (or is about to start its
/// first): start the next, or end the loop.
fn next_iteration(
    exec: &mut Execution,
    runbook: &Runbook,
    top: usize,
    step: &RunbookStep,
    iteration: u32,
    env: &Env,
    fx: &mut Vec<Effect>,
) -> bool {
    let inputs = exec.steps[top].inputs.clone();
    let max = inputs
        .get("MaxIterations")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(100) as u32;
    let items: Option<Vec<Value>> = match inputs.get("Iterators") {
        Some(Value::Array(a)) => Some(a.clone()),
        Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s)
            .ok()
            .or_else(|| Some(vec![json!(s)])),
        Some(other) => Some(vec![other.clone()]),
        None => None,
    };
    let more = match &items {
        Some(items) => (iteration as usize) < items.len() && iteration < max,
        None if iteration == 0 => true,
        None => {
            // LoopCondition is looked at after each iteration, with the
            // values the iteration set (SSM's do-while).
            let condition = runbook
                .step(&step.name)
                .and_then(|s| s.inputs.get("LoopCondition").cloned())
                .map(|c| variables::interpolate(&c, &ExecutionValues { exec, env }));
            match condition.map(|c| Choice::parse_condition(&c, false).and_then(|c| c.holds())) {
                Some(Ok(holds)) => holds && iteration < max,
                Some(Err(e)) => return ended(exec, runbook, top, Outcome::Failed(e), env, fx),
                None => false,
            }
        }
    };
    if !more {
        return ended(exec, runbook, top, Outcome::Success, env, fx);
    }
    let r = &mut exec.steps[top];
    r.wait = Wait::Loop {
        iteration: iteration + 1,
    };
    r.outputs
        .insert("CurrentIteration".into(), json!(iteration + 1));
    if let Some(items) = &items {
        r.outputs.insert(
            "CurrentIteratorValue".into(),
            items[iteration as usize].clone(),
        );
    }
    let Some(first) = step.loop_steps.first() else {
        return ended(exec, runbook, top, Outcome::Success, env, fx);
    };
    let first = first.name.clone();
    begin(exec, runbook, &first, Some(top), env, fx);
    true
}

/// Cancels the running step; runs its onCancel step if it has one.
fn cancel(exec: &mut Execution, runbook: &Runbook, env: &Env, fx: &mut Vec<Effect>) -> bool {
    exec.cancel_handled = true;
    let target = exec
        .current()
        .and_then(|r| runbook.step(&r.name))
        .and_then(|s| match &s.on_cancel {
            OnCancel::Step(t) => Some(t.clone()),
            OnCancel::Abort => None,
        });
    let parent = exec.current().and_then(|r| r.parent);
    if let Some(target) = target {
        if let Some(&top) = exec.active.last() {
            mark(exec, top, S::Cancelled, "Cancelled.", env.now, fx);
            exec.active.pop();
        }
        begin(exec, runbook, &target, parent, env, fx);
        return true;
    }
    end_active(exec, S::Cancelled, "Cancelled.", env.now, fx);
    finish(exec, S::Cancelled, None, env.now, fx);
    false
}

fn mark(
    exec: &mut Execution,
    index: usize,
    status: S,
    message: &str,
    now: f64,
    fx: &mut Vec<Effect>,
) {
    let r = &mut exec.steps[index];
    if r.status.is_final() {
        return;
    }
    r.status = status;
    r.end_time = Some(now);
    r.wait = Wait::Done;
    if status != S::Cancelled {
        r.failure_message = Some(message.to_string());
    }
    fx.push(Effect::StepChanged(index, exec.steps[index].status));
}

/// Ends every active step (the running one and its loops) with `status`.
fn end_active(exec: &mut Execution, status: S, message: &str, now: f64, fx: &mut Vec<Effect>) {
    while let Some(i) = exec.active.pop() {
        mark(exec, i, status, message, now, fx);
    }
}

fn finish(
    exec: &mut Execution,
    status: S,
    message: Option<String>,
    now: f64,
    fx: &mut Vec<Effect>,
) {
    exec.active.clear();
    exec.status = status;
    exec.failure_message = message;
    exec.end_time = Some(now);
    fx.push(Effect::ExecutionChanged(exec.status));
}

fn collect_outputs(exec: &mut Execution, runbook: &Runbook) {
    for name in &runbook.outputs {
        if let Some((step, output)) = name.split_once('.')
            && let Some(v) = exec.output(step, output).cloned()
        {
            exec.outputs.insert(name.clone(), v);
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
