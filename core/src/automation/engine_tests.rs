//! The engine against a small simulated world: commands that finish when
//! their time comes, an SSM API that answers, a clock, a message queue that
//! may deliver twice, and a function that may die between any two writes.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::automation::control::{self, Caller, Signal};
use crate::automation::execution::{AutomationStatus as S, Execution, Wait};
use crate::automation::runbook::Runbook;
use crate::documents::DocumentFormat;

fn runbook(v: Value) -> Runbook {
    Runbook::parse(&v.to_string(), DocumentFormat::Json).unwrap()
}

fn env(now: f64) -> Env {
    Env {
        now,
        account_id: "000000000000".into(),
        region: "us-east-1".into(),
        partition: "aws".into(),
    }
}

/// How each step's command ends, by step name (Success when not named).
type Results = HashMap<&'static str, &'static str>;

#[derive(Default)]
struct World {
    now: f64,
    /// command id → (step name, status it ends with, when).
    commands: HashMap<String, (String, String, f64)>,
    /// Commands created, counted per id.
    created: HashMap<String, u32>,
    /// API calls that write, counted per step execution.
    writes: HashMap<String, u32>,
    wakes: Vec<f64>,
    results: Results,
    /// Crash points, consumed one per write: true = die right after it.
    crashes: Vec<bool>,
}

impl World {
    fn crash(&mut self) -> bool {
        if self.crashes.is_empty() {
            false
        } else {
            self.crashes.remove(0)
        }
    }

    fn observe(&self, exec: &Execution) -> Observed {
        let mut seen = Observed::default();
        if let Some(r) = exec.current()
            && let Wait::Command { command_id } = &r.wait
            && !self.commands.contains_key(command_id)
        {
            seen.missing_command = Some(command_id.clone());
        }
        if let Some(r) = exec.current()
            && let Wait::Command { command_id } = &r.wait
            && let Some((_, status, at)) = self.commands.get(command_id)
            && self.now >= *at
        {
            seen.command = Some(CommandOutcome {
                command_id: command_id.clone(),
                status: status.clone(),
                response_code: if status == "Success" { 0 } else { 1 },
                output: format!("ran {}", r.name),
            });
        }
        seen
    }

    /// The node comes Online at t = 20.
    fn answer(api: &str, request: &Value, now: f64) -> Result<Value, String> {
        match api {
            "GetParameter" => Ok(json!({"Parameter": {"Name": request["Name"], "Value": "v1"}})),
            "DescribeInstanceInformation" => Ok(json!({"InstanceInformationList": [
                {"InstanceId": "mi-1", "PingStatus": if now >= 20.0 { "Online" } else { "ConnectionLost" }}]})),
            "PutParameter" => Ok(json!({"Version": 1})),
            other => Err(format!("{other} fails")),
        }
    }
}

/// One delivery of "look at this execution": load, advance, write, effects.
fn handle(store: &mut Execution, rb: &Runbook, world: &mut World) {
    let mut e = store.clone();
    let seen = world.observe(&e);
    let fx = advance(&mut e, rb, &seen, &env(world.now));
    if !write(store, e) || world.crash() {
        return;
    }
    effects(store, rb, world, fx);
}

/// The conditional write: only over the revision it read.
fn write(store: &mut Execution, mut e: Execution) -> bool {
    if e == *store {
        return true;
    }
    if e.revision != store.revision {
        return false;
    }
    e.revision += 1;
    *store = e;
    true
}

fn effects(store: &mut Execution, rb: &Runbook, world: &mut World, fx: Vec<Effect>) {
    for f in fx {
        match f {
            Effect::CreateCommand {
                step_execution_id,
                command_id,
                ..
            } => {
                let name = store
                    .steps
                    .iter()
                    .find(|r| r.step_execution_id == step_execution_id)
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                let status = world
                    .results
                    .get(name.as_str())
                    .copied()
                    .unwrap_or("Success");
                let at = world.now + 1.0;
                *world.created.entry(command_id.clone()).or_default() += 1;
                world
                    .commands
                    .entry(command_id)
                    .or_insert((name, status.to_string(), at));
            }
            Effect::CallApi {
                step_execution_id,
                api,
                request,
            } => {
                if !only_reads(&api) {
                    *world.writes.entry(step_execution_id.clone()).or_default() += 1;
                }
                let answer = World::answer(&api, &request, world.now);
                let mut e = store.clone();
                let seen = Observed {
                    api: Some((step_execution_id, answer)),
                    ..Default::default()
                };
                let more = advance(&mut e, rb, &seen, &env(world.now));
                if !write(store, e) || world.crash() {
                    return;
                }
                effects(store, rb, world, more);
            }
            Effect::WakeAt(t) => world.wakes.push(t),
            Effect::StepChanged(..) | Effect::ExecutionChanged(_) => {}
        }
    }
}

fn start(params: Value) -> Execution {
    let params: BTreeMap<String, Value> = serde_json::from_value(params).unwrap();
    Execution::new(
        "exec-1".into(),
        "Doc".into(),
        "1".into(),
        params,
        "alice".into(),
    )
}

/// Runs to a final status (or until nothing more can happen), delivering
/// each message `copies` times.
fn run_with(rb: &Runbook, exec: &mut Execution, world: &mut World, copies: usize) {
    for _ in 0..2000 {
        if exec.status.is_final() {
            return;
        }
        for _ in 0..copies {
            handle(exec, rb, world);
        }
        // Waiting on a person: the test acts (or moves the clock) itself.
        if exec.status == S::Waiting {
            return;
        }
        // Nothing to do now: the clock moves to the next wake-up.
        world.wakes.retain(|t| *t > world.now);
        match world
            .wakes
            .iter()
            .cloned()
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.min(t))))
        {
            Some(t) => world.now = t,
            None if matches!(exec.status, S::Waiting) => return,
            None => world.now += 1.0,
        }
    }
}

fn run(rb: &Runbook, results: Results) -> (Execution, World) {
    let mut exec = start(json!({}));
    let mut world = World {
        results,
        ..Default::default()
    };
    run_with(rb, &mut exec, &mut world, 1);
    (exec, world)
}

fn step(name: &str, extra: Value) -> Value {
    let mut s = json!({"name": name, "action": "aws:runCommand", "inputs": {
        "DocumentName": "AWS-RunShellScript", "InstanceIds": ["mi-00000000000000001"],
        "Parameters": {"commands": [format!("echo {name}")]}}});
    if let (Value::Object(s), Value::Object(extra)) = (&mut s, extra) {
        s.extend(extra);
    }
    s
}

fn three(b_extra: Value) -> Runbook {
    runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        step("a", json!({})), step("b", b_extra), step("c", json!({})), step("d", json!({}))
    ]}))
}

fn ran(e: &Execution) -> Vec<(String, S)> {
    e.steps.iter().map(|r| (r.name.clone(), r.status)).collect()
}

fn names(e: &Execution) -> Vec<&str> {
    e.steps.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn steps_run_in_order_and_the_execution_succeeds() {
    let (e, w) = run(&three(json!({})), Results::new());
    assert_eq!(e.status, S::Success);
    assert_eq!(names(&e), ["a", "b", "c", "d"]);
    assert!(
        e.steps
            .iter()
            .all(|r| r.status == S::Success && r.outputs["Status"] == "Success")
    );
    assert_eq!(w.created.len(), 4);
}

/// Every outcome of step b crossed with onFailure, isCritical, nextStep
/// and isEnd.
#[test]
fn each_outcome_crossed_with_the_step_fields() {
    for outcome in ["Success", "Failed", "TimedOut"] {
        for on_failure in ["Abort", "Continue", "step:d"] {
            for critical in [true, false] {
                for next in [None, Some("d")] {
                    for is_end in [false, true] {
                        let mut extra = json!({"onFailure": on_failure, "isCritical": critical, "isEnd": is_end});
                        if let Some(n) = next {
                            extra["nextStep"] = json!(n);
                        }
                        let rb = three(extra);
                        let (e, _) = run(&rb, Results::from([("b", outcome)]));
                        let case = format!(
                            "{outcome} {on_failure} critical={critical} next={next:?} end={is_end}"
                        );
                        let failed = outcome != "Success";
                        let want_steps: Vec<&str> = if failed {
                            match on_failure {
                                "Abort" => vec!["a", "b"],
                                "step:d" => vec!["a", "b", "d"],
                                _ if is_end => vec!["a", "b"],
                                _ if next.is_some() => vec!["a", "b", "d"],
                                _ => vec!["a", "b", "c", "d"],
                            }
                        } else if is_end {
                            vec!["a", "b"]
                        } else if next.is_some() {
                            vec!["a", "b", "d"]
                        } else {
                            vec!["a", "b", "c", "d"]
                        };
                        assert_eq!(names(&e), want_steps, "{case}");
                        let b_status = match outcome {
                            "Success" => S::Success,
                            "TimedOut" => S::TimedOut,
                            _ => S::Failed,
                        };
                        assert_eq!(e.steps[1].status, b_status, "{case}");
                        let want = if !failed {
                            S::Success
                        } else if on_failure == "Abort" {
                            b_status
                        } else if critical {
                            S::Failed
                        } else {
                            S::Success
                        };
                        assert_eq!(e.status, want, "{case}");
                        if failed && (on_failure == "Abort" || critical) {
                            let m = e.failure_message.clone().unwrap_or_default();
                            assert!(m.starts_with("Step b "), "{case}: {m}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_failed_step_is_retried_up_to_max_attempts() {
    let rb = three(json!({"maxAttempts": 3}));
    let (e, w) = run(&rb, Results::from([("b", "Failed")]));
    assert_eq!(names(&e), ["a", "b", "b", "b"]);
    assert_eq!(
        e.steps.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 1, 2, 3]
    );
    assert_eq!(e.status, S::Failed);
    assert_eq!(w.created.len(), 4, "each attempt is its own command");
}

#[test]
fn a_step_that_outlives_its_timeout_times_out() {
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1H"}, "timeoutSeconds": 10}
    ]}));
    let (e, _) = run(&rb, Results::new());
    assert_eq!(ran(&e), [("nap".to_string(), S::TimedOut)]);
    assert_eq!(e.status, S::TimedOut);
    assert_eq!(e.steps[0].end_time, Some(10.0));
}

#[test]
fn branch_chooses_and_outputs_flow_into_later_steps() {
    let rb = runbook(json!({"schemaVersion": "0.3",
        "parameters": {"Env": {"type": "String"}},
        "mainSteps": [
            {"name": "get", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "/app/{{ Env }}"},
             "outputs": [{"Name": "Value", "Selector": "$.Parameter.Value", "Type": "String"}]},
            {"name": "pick", "action": "aws:branch", "inputs": {"Choices": [
                {"NextStep": "prod", "Variable": "{{ Env }}", "StringEquals": "prod"}], "Default": "other"}},
            step("prod", json!({"isEnd": true})),
            {"name": "other", "action": "aws:runCommand", "inputs": {"DocumentName": "AWS-RunShellScript",
                "InstanceIds": ["mi-00000000000000001"], "Parameters": {"commands": ["echo {{ get.Value }} {{ automation:EXECUTION_ID }}"]}}}
        ],
        "outputs": ["get.Value"]}));
    for (env_name, want) in [
        ("prod", vec!["get", "pick", "prod"]),
        ("dev", vec!["get", "pick", "other"]),
    ] {
        let mut exec = start(json!({"Env": env_name}));
        let mut world = World::default();
        run_with(&rb, &mut exec, &mut world, 1);
        assert_eq!(names(&exec), want);
        assert_eq!(exec.status, S::Success);
        assert_eq!(exec.steps[0].inputs["Name"], format!("/app/{env_name}"));
        assert_eq!(exec.outputs["get.Value"], "v1");
        if env_name == "dev" {
            assert_eq!(
                exec.steps[2].inputs["Parameters"]["commands"][0],
                "echo v1 exec-1"
            );
        }
    }
}

#[test]
fn approval_waits_for_enough_approvers_and_reject_fails_it() {
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "ok", "action": "aws:approve", "inputs": {"Approvers": ["bob", "carol"], "MinRequiredApprovals": 2}},
        step("after", json!({}))
    ]}));
    let decide = |e: &mut Execution, who: &str, approved: bool| {
        let kind = if approved {
            Signal::Approve
        } else {
            Signal::Reject
        };
        control::signal(e, kind, &Caller { names: &[who] }, None, 0.0)
    };
    let mut exec = start(json!({}));
    let mut world = World::default();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Waiting);
    assert_eq!(exec.steps[0].status, S::Waiting);
    let refused = decide(&mut exec, "mallory", true).unwrap_err();
    assert_eq!(refused.code(), "InvalidAutomationSignalException");
    assert_eq!(
        refused.to_string(),
        "mallory is not an approver of step ok: its approvers are bob, carol."
    );
    let resume = control::signal(
        &mut exec,
        Signal::Resume,
        &Caller { names: &["bob"] },
        None,
        0.0,
    );
    assert_eq!(
        resume.unwrap_err().code(),
        "InvalidAutomationSignalException"
    );
    decide(&mut exec, "bob", true).unwrap();
    assert_eq!(
        decide(&mut exec, "bob", true).unwrap_err().code(),
        "InvalidAutomationSignalException"
    );
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Waiting, "one approval of two");
    decide(&mut exec, "carol", true).unwrap();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Success);
    assert_eq!(exec.steps[0].outputs["ApprovalStatus"], "Approved");

    let mut exec = start(json!({}));
    run_with(&rb, &mut exec, &mut world, 1);
    decide(&mut exec, "carol", false).unwrap();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Failed);
    assert_eq!(
        exec.steps[0].failure_message.as_deref(),
        Some("Step rejected by carol.")
    );
    assert_eq!(names(&exec), ["ok"]);
    assert_eq!(
        control::stop(&mut exec).unwrap_err().code(),
        "InvalidAutomationStatusUpdateException"
    );
}

#[test]
fn wait_for_polls_until_the_property_holds_and_assert_fails_when_it_does_not() {
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "online", "action": "aws:waitForAwsResourceProperty", "inputs": {
            "Service": "ssm", "Api": "DescribeInstanceInformation",
            "PropertySelector": "$.InstanceInformationList[0].PingStatus", "DesiredValues": ["Online"]}},
        {"name": "still", "action": "aws:assertAwsResourceProperty", "inputs": {
            "Service": "ssm", "Api": "GetParameter", "Name": "/x",
            "PropertySelector": "$.Parameter.Value", "DesiredValues": ["v2", "v3"]}}
    ]}));
    let (e, _) = run(&rb, Results::new());
    assert_eq!(
        ran(&e),
        [("online".into(), S::Success), ("still".into(), S::Failed)]
    );
    // It waited for the node: its end is when the node came Online.
    let online = &e.steps[0];
    assert!(online.end_time.unwrap() >= 20.0, "{online:?}");
    assert_eq!(
        e.steps[1].failure_message.as_deref(),
        Some("$.Parameter.Value is v1, not one of the desired values v2, v3.")
    );
}

#[test]
fn a_loop_condition_is_looked_at_after_each_iteration() {
    // Runs until the iteration counter reaches 3 (at most MaxIterations 5).
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "again", "action": "aws:loop", "inputs": {
            "MaxIterations": 5,
            "LoopCondition": {"Variable": "{{ again.CurrentIteration }}", "NumericLesser": 3},
            "Steps": [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}]}}
    ]}));
    let (e, _) = run(&rb, Results::new());
    assert_eq!(e.status, S::Success);
    assert_eq!(names(&e), ["again", "nap", "nap", "nap"]);
    let capped = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "again", "action": "aws:loop", "inputs": {
            "MaxIterations": 2,
            "LoopCondition": {"Variable": "{{ again.CurrentIteration }}", "NumericLesser": 3},
            "Steps": [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}]}}
    ]}));
    assert_eq!(
        names(&run(&capped, Results::new()).0),
        ["again", "nap", "nap"]
    );
}

#[test]
fn nobody_approving_for_seven_days_times_the_step_out() {
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "ok", "action": "aws:approve", "inputs": {"Approvers": ["bob"]}}
    ]}));
    let mut exec = start(json!({}));
    let mut world = World::default();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Waiting);
    // The engine asked to be woken at the limit; nothing else happens before.
    assert!(
        world.wakes.contains(&(DEFAULT_WAIT_SECONDS as f64)),
        "{:?}",
        world.wakes
    );
    world.now = DEFAULT_WAIT_SECONDS as f64;
    handle(&mut exec, &rb, &mut world);
    assert_eq!(ran(&exec), [("ok".into(), S::TimedOut)]);
    assert_eq!(exec.status, S::TimedOut);
}

#[test]
fn pause_goes_on_at_resume() {
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "hold", "action": "aws:pause", "inputs": {}}, step("after", json!({}))
    ]}));
    let mut exec = start(json!({}));
    let mut world = World::default();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Waiting);
    control::signal(
        &mut exec,
        Signal::Resume,
        &Caller { names: &["bob"] },
        None,
        world.now,
    )
    .unwrap();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(
        ran(&exec),
        [("hold".into(), S::Success), ("after".into(), S::Success)]
    );
    assert_eq!(exec.status, S::Success);
}

#[test]
fn cancel_runs_the_on_cancel_step_and_ends_cancelled() {
    let rb = runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        {"name": "hold", "action": "aws:pause", "inputs": {}, "onCancel": "step:cleanup"},
        step("never", json!({})),
        step("cleanup", json!({}))
    ]}));
    let mut exec = start(json!({}));
    let mut world = World::default();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Waiting);
    control::stop(&mut exec).unwrap();
    assert_eq!(exec.status, S::Cancelling);
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(
        ran(&exec),
        [
            ("hold".into(), S::Cancelled),
            ("cleanup".into(), S::Success)
        ]
    );
    assert_eq!(exec.status, S::Cancelled);
}

#[test]
fn loops_run_their_steps_once_per_item() {
    let rb = runbook(json!({"schemaVersion": "0.3",
    "parameters": {"Ids": {"type": "StringList"}},
    "mainSteps": [
        {"name": "each", "action": "aws:loop", "inputs": {"Iterators": "{{ Ids }}", "Steps": [
            {"name": "touch", "action": "aws:runCommand", "inputs": {"DocumentName": "AWS-RunShellScript",
                "InstanceIds": ["{{ each.CurrentIteratorValue }}"], "Parameters": {"commands": ["true"]}}}
        ]}},
        step("after", json!({}))
    ]}));
    let mut exec = start(json!({"Ids": ["mi-00000000000000001", "mi-00000000000000002"]}));
    let mut world = World::default();
    run_with(&rb, &mut exec, &mut world, 1);
    assert_eq!(exec.status, S::Success, "{:?}", exec.failure_message);
    assert_eq!(names(&exec), ["each", "touch", "touch", "after"]);
    assert_eq!(
        exec.steps[1].inputs["InstanceIds"],
        json!(["mi-00000000000000001"])
    );
    assert_eq!(
        exec.steps[2].inputs["InstanceIds"],
        json!(["mi-00000000000000002"])
    );
}

/// Runbook of the model: a command, a write API call, a read with an
/// output, a branch, a sleep and a final command.
fn model_runbook() -> Runbook {
    runbook(json!({"schemaVersion": "0.3", "mainSteps": [
        step("first", json!({})),
        {"name": "put", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "PutParameter", "Name": "/x", "Value": "1"}},
        {"name": "get", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "/x"},
            "outputs": [{"Name": "Value", "Selector": "$.Parameter.Value", "Type": "String"}]},
        {"name": "pick", "action": "aws:branch", "inputs": {"Choices": [
            {"NextStep": "nap", "Variable": "{{ get.Value }}", "StringEquals": "v1"}]}},
        step("skipped", json!({})),
        {"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT5S"}},
        step("last", json!({}))
    ]}))
}

proptest! {
    /// Every message delivered twice, and the function dying after any
    /// write: no command is created twice, no write call made twice, no
    /// step started twice, and the execution still ends.
    #[test]
    fn duplicates_and_crashes_never_run_a_step_twice(
        crashes in proptest::collection::vec(any::<bool>(), 0..60),
        copies in 1usize..3,
    ) {
        let rb = model_runbook();
        let mut exec = start(json!({}));
        let mut world = World { crashes, ..Default::default() };
        run_with(&rb, &mut exec, &mut world, copies);
        prop_assert!(exec.status.is_final(), "stuck at {:?}: {:?}", exec.status, ran(&exec));
        prop_assert!(world.created.values().all(|n| *n == 1), "a command was created twice: {:?}", world.created);
        prop_assert!(world.writes.values().all(|n| *n == 1), "a write call was made twice: {:?}", world.writes);
        let mut seen = std::collections::HashSet::new();
        for r in &exec.steps {
            prop_assert!(seen.insert(r.name.clone()), "step {} started twice: {:?}", r.name, ran(&exec));
        }
        // Only a write call cut off by a crash may fail, and says why.
        match exec.status {
            S::Success => prop_assert_eq!(names(&exec), vec!["first", "put", "get", "pick", "nap", "last"]),
            S::Failed => {
                let put = exec.steps.iter().find(|r| r.name == "put");
                let msg = put.and_then(|r| r.failure_message.clone()).unwrap_or_default();
                prop_assert!(msg.contains("may have taken effect"), "failed otherwise: {:?}", exec.failure_message);
            }
            other => prop_assert!(false, "ended {:?}", other),
        }
    }
}
