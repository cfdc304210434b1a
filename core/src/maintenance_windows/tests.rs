//! Maintenance windows over the in-memory store and [`FakeRuns`]: SSM's
//! answers and refusals, and the tick's running of executions.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::context::WindowContext;
use super::memory::MemoryWindows;
use super::model::status;
use super::ops::handle;
use super::ports::WindowStore;
use super::tick::{DueReport, run_due};
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::schedule::runs::RunOutcome;
use crate::schedule::runs::memory::FakeRuns;

const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// 2023-11-14T22:13:20Z.
const T0: f64 = 1_700_000_000.0;
/// The next midnight UTC after T0.
const D: f64 = 1_700_006_400.0;
/// An hour of the executor, in tests.
const HOUR: i64 = 60;
const N1: &str = "mi-0123456789abcdef0";
const N2: &str = "mi-0123456789abcdef1";
const N3: &str = "mi-0123456789abcdef2";

struct Env {
    store: MemoryWindows,
    runs: FakeRuns,
    caller: Caller,
    scope: ArnScope,
    output_buckets: Vec<String>,
    now: Mutex<f64>,
}

/// The stack's own output bucket, in tests.
const STACK_BUCKET: &str = "steward-output";

impl Env {
    fn new() -> Self {
        let runs = FakeRuns::default();
        for n in [N1, N2, N3] {
            runs.nodes
                .lock()
                .unwrap()
                .insert(n.into(), vec![("env".into(), "prod".into())]);
        }
        Env {
            store: MemoryWindows::default(),
            runs,
            caller: Caller {
                access_key_id: "AKST1".into(),
                user_arn: "arn:aws:iam::123456789012:user/ops/alice".into(),
                policy: Policy::parse(ADMIN).unwrap(),
            },
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            output_buckets: vec![STACK_BUCKET.into()],
            now: Mutex::new(T0),
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        let now = *self.now.lock().unwrap();
        let ctx = WindowContext {
            store: &self.store,
            caller: &self.caller,
            scope: &self.scope,
            output_buckets: &self.output_buckets,
            now,
        };
        handle(&ctx, op, &body).await.expect("served")
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{op} {body} refused: {e:?}"),
        }
    }

    async fn refused(&self, op: &str, body: Value) -> SsmError {
        match self.call(op, body.clone()).await {
            Ok(v) => panic!("{op} {body} accepted: {v}"),
            Err(e) => e,
        }
    }

    async fn tick(&self, at: f64) -> DueReport {
        *self.now.lock().unwrap() = at;
        run_due(&self.store, &self.runs, at, HOUR).await.unwrap()
    }

    /// A daily window (midnight UTC), Duration 2, Cutoff 1, with a target
    /// of N1 and N2.
    async fn window(&self) -> (String, String) {
        let w = self
            .ok(
                "CreateMaintenanceWindow",
                json!({"Name": "nightly", "Schedule": "cron(0 0 * * ? *)", "Duration": 2,
                       "Cutoff": 1, "AllowUnassociatedTargets": false}),
            )
            .await["WindowId"]
            .as_str()
            .unwrap()
            .to_string();
        let t = self
            .ok(
                "RegisterTargetWithMaintenanceWindow",
                json!({"WindowId": w, "ResourceType": "INSTANCE", "OwnerInformation": "team-a",
                       "Targets": [{"Key": "InstanceIds", "Values": [N1, N2]}]}),
            )
            .await["WindowTargetId"]
            .as_str()
            .unwrap()
            .to_string();
        (w, t)
    }

    async fn task(&self, w: &str, t: &str, doc: &str, priority: i64, cutoff: &str) -> String {
        self.ok(
            "RegisterTaskWithMaintenanceWindow",
            json!({"WindowId": w, "TaskArn": doc, "TaskType": "RUN_COMMAND", "Priority": priority,
                   "CutoffBehavior": cutoff, "MaxConcurrency": "1", "MaxErrors": "0",
                   "Targets": [{"Key": "WindowTargetIds", "Values": [t]}],
                   "TaskInvocationParameters": {"RunCommand": {
                       "Comment": "for {{WINDOW_EXECUTION_ID}}", "TimeoutSeconds": 600,
                       "Parameters": {"commands": ["echo {{WINDOW_ID}}"]}}}}),
        )
        .await["WindowTaskId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The command ids sent, by document name.
    fn sent(&self, doc: &str) -> Vec<String> {
        self.runs
            .commands
            .lock()
            .unwrap()
            .values()
            .filter(|(s, _)| s.body["DocumentName"] == doc)
            .map(|(s, _)| s.id.clone())
            .collect()
    }

    fn finish_doc(&self, doc: &str, status: &str) {
        for id in self.sent(doc) {
            self.runs.finish(
                &id,
                RunOutcome {
                    status: status.into(),
                    is_final: true,
                    nodes: Vec::new(),
                },
            );
        }
    }

    async fn executions(&self, w: &str) -> Vec<Value> {
        self.ok(
            "DescribeMaintenanceWindowExecutions",
            json!({"WindowId": w}),
        )
        .await["WindowExecutions"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn tasks_of(&self, exec: &str) -> Vec<Value> {
        self.ok(
            "DescribeMaintenanceWindowExecutionTasks",
            json!({"WindowExecutionId": exec}),
        )
        .await["WindowExecutionTaskIdentities"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn task_status(tasks: &[Value], doc: &str) -> String {
    tasks
        .iter()
        .find(|t| t["TaskArn"] == doc)
        .map(|t| t["Status"].as_str().unwrap().to_string())
        .unwrap()
}

#[tokio::test]
async fn windows_are_created_read_updated_listed_and_deleted() {
    let env = Env::new();
    let (w, _) = env.window().await;
    assert!(super::context::is_window_id(&w));
    let got = env.ok("GetMaintenanceWindow", json!({"WindowId": w})).await;
    assert_eq!(got["Name"], "nightly");
    assert_eq!(got["Duration"], 2);
    assert_eq!(got["Enabled"], true);
    assert_eq!(got["NextExecutionTime"], "2023-11-15T00:00:00.000Z");

    let up = env
        .ok(
            "UpdateMaintenanceWindow",
            json!({"WindowId": w, "Enabled": false, "Description": "off"}),
        )
        .await;
    assert_eq!(up["Enabled"], false);
    assert_eq!(up["Schedule"], "cron(0 0 * * ? *)");
    let got = env.ok("GetMaintenanceWindow", json!({"WindowId": w})).await;
    assert!(got.get("NextExecutionTime").is_none(), "disabled: {got}");
    assert_eq!(got["Description"], "off");

    // Replace clears what is not given and needs what create needs.
    let e = env
        .refused(
            "UpdateMaintenanceWindow",
            json!({"WindowId": w, "Replace": true, "Name": "x-y-z"}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let up = env
        .ok(
            "UpdateMaintenanceWindow",
            json!({"WindowId": w, "Replace": true, "Name": "again", "Schedule": "rate(2 days)",
                   "Duration": 3, "Cutoff": 0, "AllowUnassociatedTargets": true}),
        )
        .await;
    assert!(up.get("Description").is_none());
    assert_eq!(up["Enabled"], true);

    for i in 0..12 {
        env.ok(
            "CreateMaintenanceWindow",
            json!({"Name": format!("w-{i:02}"), "Schedule": "rate(1 day)", "Duration": 1,
                   "Cutoff": 0, "AllowUnassociatedTargets": true}),
        )
        .await;
    }
    let page = env.ok("DescribeMaintenanceWindows", json!({})).await;
    assert_eq!(page["WindowIdentities"].as_array().unwrap().len(), 10);
    let rest = env
        .ok(
            "DescribeMaintenanceWindows",
            json!({"NextToken": page["NextToken"]}),
        )
        .await;
    assert_eq!(rest["WindowIdentities"].as_array().unwrap().len(), 3);
    assert!(rest.get("NextToken").is_none());
    let named = env
        .ok(
            "DescribeMaintenanceWindows",
            json!({"Filters": [{"Key": "Name", "Values": ["again"]}]}),
        )
        .await;
    assert_eq!(named["WindowIdentities"][0]["WindowId"], json!(w));
    assert_eq!(named["WindowIdentities"].as_array().unwrap().len(), 1);

    env.ok("DeleteMaintenanceWindow", json!({"WindowId": w}))
        .await;
    let e = env
        .refused("GetMaintenanceWindow", json!({"WindowId": w}))
        .await;
    assert_eq!(
        e,
        SsmError::DoesNotExistException(format!("Maintenance window {w} does not exist"))
    );
    assert!(env.store.list_targets(&w).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_windows_are_refused_and_nothing_is_written() {
    let env = Env::new();
    let base = json!({"Name": "nightly", "Schedule": "cron(0 0 * * ? *)", "Duration": 2,
                      "Cutoff": 1, "AllowUnassociatedTargets": false});
    let cases: Vec<(&str, Value)> = vec![
        ("Name", json!("no spaces")),
        ("Name", json!("ab")),
        ("Duration", json!(25)),
        ("Duration", json!(0)),
        ("Cutoff", json!(2)),
        ("Cutoff", json!(24)),
        ("Schedule", json!("cron(0/1 * * * ? *)")),
        ("Schedule", json!("whenever")),
        ("ScheduleTimezone", json!("Mars/Olympus")),
        ("ScheduleOffset", json!(7)),
        ("StartDate", json!("yesterday")),
        ("EndDate", json!("2020-01-01T00:00:00Z")),
    ];
    for (k, v) in cases {
        let mut body = base.clone();
        body[k] = v.clone();
        let e = env.refused("CreateMaintenanceWindow", body).await;
        assert_eq!(e.code(), "ValidationException", "{k}={v}: {e}");
    }
    let mut body = base.clone();
    body.as_object_mut().unwrap().remove("Duration");
    assert_eq!(
        env.refused("CreateMaintenanceWindow", body).await.code(),
        "ValidationException"
    );
    // An offset needs a cron expression.
    let mut body = base.clone();
    body["Schedule"] = json!("rate(1 day)");
    body["ScheduleOffset"] = json!(2);
    assert_eq!(
        env.refused("CreateMaintenanceWindow", body).await.code(),
        "ValidationException"
    );
    assert!(env.store.list_windows().await.unwrap().is_empty());
    assert_eq!(
        env.refused(
            "GetMaintenanceWindow",
            json!({"WindowId": "mw-0123456789abcdef0"})
        )
        .await
        .code(),
        "DoesNotExistException"
    );
}

#[tokio::test]
async fn a_client_token_creates_once() {
    let env = Env::new();
    let body = json!({"Name": "nightly", "Schedule": "rate(1 day)", "Duration": 2, "Cutoff": 1,
                      "AllowUnassociatedTargets": false, "ClientToken": "tok-1"});
    let a = env.ok("CreateMaintenanceWindow", body.clone()).await;
    let b = env.ok("CreateMaintenanceWindow", body.clone()).await;
    assert_eq!(a, b);
    assert_eq!(env.store.list_windows().await.unwrap().len(), 1);
    let mut other = body.clone();
    other["Duration"] = json!(3);
    assert_eq!(
        env.refused("CreateMaintenanceWindow", other).await.code(),
        "IdempotentParameterMismatch"
    );
}

#[tokio::test]
async fn targets_and_tasks_are_registered_as_ssm_checks_them() {
    let env = Env::new();
    let (w, t) = env.window().await;
    let six: Vec<Value> = (0..6)
        .map(|i| json!({"Key": format!("tag:k{i}"), "Values": ["v"]}))
        .collect();
    let e = env
        .refused(
            "RegisterTargetWithMaintenanceWindow",
            json!({"WindowId": w, "ResourceType": "INSTANCE", "Targets": six}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let e = env
        .refused(
            "RegisterTargetWithMaintenanceWindow",
            json!({"WindowId": w, "ResourceType": "INSTANCE",
                   "Targets": [{"Key": "resource-groups:Name", "Values": ["g"]}]}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let listed = env
        .ok(
            "DescribeMaintenanceWindowTargets",
            json!({"WindowId": w, "Filters": [{"Key": "OwnerInformation", "Values": ["team-a"]}]}),
        )
        .await;
    assert_eq!(listed["Targets"][0]["WindowTargetId"], json!(t));
    assert_eq!(listed["Targets"].as_array().unwrap().len(), 1);

    // RUN_COMMAND needs targets; InstanceIds need AllowUnassociatedTargets;
    // a WindowTargetId must be the window's; LAMBDA is not run.
    let refusals = [
        json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND"}),
        json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
               "Targets": [{"Key": "InstanceIds", "Values": [N1]}]}),
        json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
               "Targets": [{"Key": "tag:env", "Values": ["prod"]}]}),
        json!({"WindowId": w, "TaskArn": "fn", "TaskType": "LAMBDA",
               "Targets": [{"Key": "WindowTargetIds", "Values": [t]}]}),
        json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
               "Targets": [{"Key": "WindowTargetIds", "Values": [t]}], "Priority": -1}),
        json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
               "Targets": [{"Key": "WindowTargetIds", "Values": [t]}], "MaxConcurrency": "lots"}),
        json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
               "Targets": [{"Key": "WindowTargetIds", "Values": [t]}],
               "TaskInvocationParameters": {"Automation": {}}}),
    ];
    for body in refusals {
        let e = env
            .refused("RegisterTaskWithMaintenanceWindow", body.clone())
            .await;
        assert!(
            [
                "ValidationException",
                "InvalidParameters",
                "DoesNotExistException"
            ]
            .contains(&e.code()),
            "{body}: {e:?}"
        );
    }
    let e = env
        .refused(
            "RegisterTaskWithMaintenanceWindow",
            json!({"WindowId": w, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND",
                   "Targets": [{"Key": "WindowTargetIds", "Values": ["e0e53ab5-0a46-4ed3-a1a7-4bd7d3b3e3a0"]}]}),
        )
        .await;
    assert_eq!(e.code(), "DoesNotExistException");
    assert!(env.store.list_tasks(&w).await.unwrap().is_empty());

    let b = env.task(&w, &t, "DocB", 5, "CONTINUE_TASK").await;
    let a = env.task(&w, &t, "DocA", 1, "CANCEL_TASK").await;
    let listed = env
        .ok("DescribeMaintenanceWindowTasks", json!({"WindowId": w}))
        .await;
    let order: Vec<&str> = listed["Tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["WindowTaskId"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec![a.as_str(), b.as_str()]);
    let got = env
        .ok(
            "GetMaintenanceWindowTask",
            json!({"WindowId": w, "WindowTaskId": a}),
        )
        .await;
    assert_eq!(got["CutoffBehavior"], "CANCEL_TASK");
    assert_eq!(
        got["TaskInvocationParameters"]["RunCommand"]["TimeoutSeconds"],
        600
    );
    let filtered = env
        .ok(
            "DescribeMaintenanceWindowTasks",
            json!({"WindowId": w, "Filters": [{"Key": "Priority", "Values": ["5"]}]}),
        )
        .await;
    assert_eq!(filtered["Tasks"].as_array().unwrap().len(), 1);
    let up = env
        .ok(
            "UpdateMaintenanceWindowTask",
            json!({"WindowId": w, "WindowTaskId": b, "Priority": 0}),
        )
        .await;
    assert_eq!(up["Priority"], 0);

    // Safe deregistration refuses a target a task uses.
    let e = env
        .refused(
            "DeregisterTargetFromMaintenanceWindow",
            json!({"WindowId": w, "WindowTargetId": t, "Safe": true}),
        )
        .await;
    assert_eq!(e.code(), "TargetInUseException");
    env.ok(
        "DeregisterTaskFromMaintenanceWindow",
        json!({"WindowId": w, "WindowTaskId": a}),
    )
    .await;
    env.ok(
        "DeregisterTaskFromMaintenanceWindow",
        json!({"WindowId": w, "WindowTaskId": b}),
    )
    .await;
    env.ok(
        "DeregisterTargetFromMaintenanceWindow",
        json!({"WindowId": w, "WindowTargetId": t, "Safe": true}),
    )
    .await;
    assert!(env.store.list_targets(&w).await.unwrap().is_empty());
}

#[tokio::test]
async fn tasks_run_in_priority_order_and_equal_priorities_together() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    env.task(&w, &t, "DocB", 1, "CONTINUE_TASK").await;
    env.task(&w, &t, "DocC", 2, "CONTINUE_TASK").await;

    assert_eq!(env.tick(D - 1.0).await, DueReport::default());
    let r = env.tick(D).await;
    assert_eq!(r.opened, 1);
    assert_eq!(env.sent("DocA").len(), 1);
    assert_eq!(env.sent("DocB").len(), 1);
    assert!(env.sent("DocC").is_empty());
    let a_id = env.sent("DocA")[0].clone();
    let cmd = env.runs.commands.lock().unwrap()[&a_id].0.clone();
    assert_eq!(cmd.run_as, "alice");
    assert_eq!(cmd.body["InstanceIds"], json!([N1, N2]));
    assert_eq!(cmd.body["MaxConcurrency"], "1");
    assert_eq!(cmd.body["TimeoutSeconds"], 600);
    assert_eq!(
        cmd.body["Parameters"]["commands"],
        json!([format!("echo {w}")])
    );

    // A repeated tick sends nothing twice.
    env.tick(D + 1.0).await;
    env.tick(D + 1.0).await;
    assert_eq!(env.runs.commands.lock().unwrap().len(), 2);
    env.finish_doc("DocA", "Success");
    env.tick(D + 2.0).await;
    assert!(env.sent("DocC").is_empty(), "B still runs");
    env.finish_doc("DocB", "Success");
    env.tick(D + 3.0).await;
    assert_eq!(env.sent("DocC").len(), 1);
    let execs = env.executions(&w).await;
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0]["Status"], "IN_PROGRESS");
    env.finish_doc("DocC", "Success");
    let r = env.tick(D + 4.0).await;
    assert_eq!(r.finished, 1);
    let exec = env.executions(&w).await[0].clone();
    assert_eq!(exec["Status"], "SUCCESS");
    let id = exec["WindowExecutionId"].as_str().unwrap().to_string();
    let got = env
        .ok(
            "GetMaintenanceWindowExecution",
            json!({"WindowExecutionId": id}),
        )
        .await;
    assert_eq!(got["TaskIds"].as_array().unwrap().len(), 3);

    // Invocations: one per command, with the command id and the target.
    let tasks = env.tasks_of(&id).await;
    let a = tasks.iter().find(|t| t["TaskArn"] == "DocA").unwrap();
    let invs = env
        .ok(
            "DescribeMaintenanceWindowExecutionTaskInvocations",
            json!({"WindowExecutionId": id, "TaskId": a["TaskExecutionId"]}),
        )
        .await["WindowExecutionTaskInvocationIdentities"]
        .clone();
    assert_eq!(invs.as_array().unwrap().len(), 1);
    assert_eq!(invs[0]["ExecutionId"], json!(env.sent("DocA")[0]));
    assert_eq!(invs[0]["OwnerInformation"], "team-a");
    assert_eq!(invs[0]["WindowTargetId"], json!(t));
    assert_eq!(invs[0]["Status"], "SUCCESS");
    let one = env
        .ok(
            "GetMaintenanceWindowExecutionTaskInvocation",
            json!({"WindowExecutionId": id, "TaskId": a["TaskExecutionId"],
                   "InvocationId": invs[0]["InvocationId"]}),
        )
        .await;
    assert_eq!(one["TaskType"], "RUN_COMMAND");

    // Nothing more is due until the next night.
    assert_eq!(env.tick(D + 5.0).await, DueReport::default());
    let w_now = env.store.get_window(&w).await.unwrap().unwrap();
    assert_eq!(w_now.next_due, Some(D as i64 + 86_400));
}

#[tokio::test]
async fn no_task_starts_after_the_cutoff() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    env.task(&w, &t, "DocC", 2, "CONTINUE_TASK").await;
    env.tick(D).await;
    // The cutoff is an hour (60 s here) before the end (120 s).
    env.tick(D + 61.0).await;
    env.finish_doc("DocA", "Success");
    env.tick(D + 62.0).await;
    assert!(env.sent("DocC").is_empty());
    let exec = env.executions(&w).await[0].clone();
    assert_eq!(exec["Status"], "TIMED_OUT");
    let tasks = env
        .tasks_of(exec["WindowExecutionId"].as_str().unwrap())
        .await;
    assert_eq!(task_status(&tasks, "DocA"), "SUCCESS");
    assert_eq!(task_status(&tasks, "DocC"), "CANCELLED");
}

#[tokio::test]
async fn cancel_task_is_cancelled_at_the_end_and_continue_task_runs_on() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CANCEL_TASK").await;
    env.task(&w, &t, "DocB", 1, "CONTINUE_TASK").await;
    env.tick(D).await;
    env.tick(D + 119.0).await;
    assert!(env.runs.cancelled.lock().unwrap().is_empty());
    env.tick(D + 120.0).await;
    assert_eq!(*env.runs.cancelled.lock().unwrap(), env.sent("DocA"));
    let exec = env.executions(&w).await[0].clone();
    assert_eq!(exec["Status"], "IN_PROGRESS");
    let id = exec["WindowExecutionId"].as_str().unwrap().to_string();
    let tasks = env.tasks_of(&id).await;
    assert_eq!(task_status(&tasks, "DocA"), "CANCELLED");
    assert_eq!(task_status(&tasks, "DocB"), "IN_PROGRESS");
    env.finish_doc("DocB", "Success");
    env.tick(D + 130.0).await;
    assert_eq!(env.executions(&w).await[0]["Status"], "TIMED_OUT");
}

#[tokio::test]
async fn an_occurrence_while_the_last_runs_is_skipped_overlapping() {
    let env = Env::new();
    let w = env
        .ok(
            "CreateMaintenanceWindow",
            json!({"Name": "often", "Schedule": "cron(0/5 * * * ? *)", "Duration": 1,
                   "Cutoff": 0, "AllowUnassociatedTargets": true}),
        )
        .await["WindowId"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(
        "RegisterTaskWithMaintenanceWindow",
        json!({"WindowId": w, "TaskArn": "DocA", "TaskType": "RUN_COMMAND",
               "Targets": [{"Key": "InstanceIds", "Values": [N3]}]}),
    )
    .await;
    let first = env
        .store
        .get_window(&w)
        .await
        .unwrap()
        .unwrap()
        .next_due
        .unwrap() as f64;
    env.tick(first).await;
    let r = env.tick(first + 300.0).await;
    assert_eq!(r.skipped_overlapping, 1);
    let execs = env.executions(&w).await;
    assert_eq!(execs.len(), 2);
    assert_eq!(execs[0]["Status"], "SKIPPED_OVERLAPPING");
    assert_eq!(execs[1]["Status"], "IN_PROGRESS");
    assert_eq!(env.sent("DocA").len(), 1);
    env.finish_doc("DocA", "Failed");
    env.tick(first + 301.0).await;
    assert_eq!(env.executions(&w).await[1]["Status"], "FAILED");
}

#[tokio::test]
async fn a_missed_occurrence_runs_once_within_its_duration_else_not_at_all() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    // Late, but before the cutoff: it runs, once.
    env.tick(D + 50.0).await;
    env.tick(D + 51.0).await;
    assert_eq!(env.executions(&w).await.len(), 1);
    assert_eq!(env.sent("DocA").len(), 1);

    // The next night's tick comes after that window ended: nothing runs,
    // and the window moves on.
    env.finish_doc("DocA", "Success");
    let r = env.tick(D + 86_400.0 + 121.0).await;
    assert_eq!(r.missed, 1);
    assert_eq!(r.opened, 0);
    assert_eq!(env.executions(&w).await.len(), 1);
    let now = env.store.get_window(&w).await.unwrap().unwrap();
    assert_eq!(now.next_due, Some(D as i64 + 2 * 86_400));
}

#[tokio::test]
async fn a_tick_that_stopped_before_claiming_opens_nothing_twice() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    let before = env.store.get_window(&w).await.unwrap().unwrap();
    env.tick(D).await;
    // The window as if the claim had not been written.
    let mut stale = env.store.get_window(&w).await.unwrap().unwrap();
    let rev = stale.revision;
    stale.next_due = before.next_due;
    stale.next_scheduled = before.next_scheduled;
    stale.revision = rev + 1;
    assert!(env.store.update_window(&stale, rev).await.unwrap());
    let r = env.tick(D + 1.0).await;
    assert_eq!(r.opened, 0);
    assert_eq!(env.executions(&w).await.len(), 1);
    assert_eq!(env.sent("DocA").len(), 1);
    assert_eq!(
        env.store.get_window(&w).await.unwrap().unwrap().next_due,
        Some(D as i64 + 86_400)
    );
}

#[tokio::test]
async fn cancelling_an_execution_cancels_its_runs_and_starts_nothing() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    env.task(&w, &t, "DocC", 2, "CONTINUE_TASK").await;
    env.tick(D).await;
    let id = env.executions(&w).await[0]["WindowExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(
        "CancelMaintenanceWindowExecution",
        json!({"WindowExecutionId": id}),
    )
    .await;
    assert_eq!(env.executions(&w).await[0]["Status"], "CANCELLING");
    env.tick(D + 1.0).await;
    assert_eq!(*env.runs.cancelled.lock().unwrap(), env.sent("DocA"));
    assert!(env.sent("DocC").is_empty());
    assert_eq!(env.executions(&w).await[0]["Status"], "CANCELLED");
    assert_eq!(
        env.refused(
            "GetMaintenanceWindowExecution",
            json!({"WindowExecutionId": "e0e53ab5-0a46-4ed3-a1a7-4bd7d3b3e3a0"})
        )
        .await
        .code(),
        "DoesNotExistException"
    );
}

#[tokio::test]
async fn many_nodes_go_in_commands_of_fifty_and_automations_start_once() {
    let env = Env::new();
    for i in 0..60 {
        env.runs
            .nodes
            .lock()
            .unwrap()
            .insert(format!("mi-{i:017x}"), vec![("role".into(), "web".into())]);
    }
    let (w, _) = env.window().await;
    let t = env
        .ok(
            "RegisterTargetWithMaintenanceWindow",
            json!({"WindowId": w, "ResourceType": "INSTANCE",
                   "Targets": [{"Key": "tag:role", "Values": ["web"]}]}),
        )
        .await["WindowTargetId"]
        .as_str()
        .unwrap()
        .to_string();
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    env.ok(
        "RegisterTaskWithMaintenanceWindow",
        json!({"WindowId": w, "TaskArn": "AWS-RestartEC2Instance", "TaskType": "AUTOMATION",
               "Priority": 1, "TaskInvocationParameters": {"Automation": {
                   "DocumentVersion": "1", "Parameters": {"InstanceId": ["{{WINDOW_ID}}"]}}}}),
    )
    .await;
    env.tick(D).await;
    let sizes: Vec<usize> = env
        .sent("DocA")
        .iter()
        .map(|id| {
            env.runs.commands.lock().unwrap()[id].0.body["InstanceIds"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    let mut sorted = sizes.clone();
    sorted.sort();
    assert_eq!(sorted, vec![10, 50]);
    env.tick(D + 1.0).await;
    let autos = env.runs.automations.lock().unwrap().clone();
    assert_eq!(autos.len(), 1);
    let (started, _) = autos.values().next().unwrap();
    assert_eq!(started.body["Parameters"]["InstanceId"], json!([w]));
    assert_eq!(started.run_as, "alice");
    for id in env.sent("DocA") {
        env.runs.finish(
            &id,
            RunOutcome {
                status: "Success".into(),
                is_final: true,
                nodes: Vec::new(),
            },
        );
    }
    env.runs.finish(
        &started.id,
        RunOutcome {
            status: "Failed".into(),
            is_final: true,
            nodes: Vec::new(),
        },
    );
    env.tick(D + 2.0).await;
    assert_eq!(env.executions(&w).await[0]["Status"], "FAILED");
}

#[tokio::test]
async fn a_refused_run_fails_its_task() {
    let env = Env::new();
    let (w, t) = env.window().await;
    env.task(&w, &t, "DocA", 1, "CONTINUE_TASK").await;
    *env.runs.refuse.lock().unwrap() = Some(SsmError::AccessDeniedException("no".into()));
    env.tick(D).await;
    let exec = env.executions(&w).await[0].clone();
    assert_eq!(exec["Status"], "FAILED");
    assert!(env.runs.commands.lock().unwrap().is_empty());
    let id = exec["WindowExecutionId"].as_str().unwrap().to_string();
    let tasks = env.tasks_of(&id).await;
    assert_eq!(task_status(&tasks, "DocA"), "FAILED");
}

#[tokio::test]
async fn the_schedule_and_the_windows_of_a_target_are_listed() {
    let env = Env::new();
    let (w, _) = env.window().await;
    let page = env
        .ok(
            "DescribeMaintenanceWindowSchedule",
            json!({"WindowId": w, "MaxResults": 2}),
        )
        .await;
    let times: Vec<&str> = page["ScheduledWindowExecutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ExecutionTime"].as_str().unwrap())
        .collect();
    assert_eq!(times, vec!["2023-11-15T00:00:00Z", "2023-11-16T00:00:00Z"]);
    let next = env
        .ok(
            "DescribeMaintenanceWindowSchedule",
            json!({"WindowId": w, "MaxResults": 1, "NextToken": page["NextToken"]}),
        )
        .await;
    assert_eq!(
        next["ScheduledWindowExecutions"][0]["ExecutionTime"],
        "2023-11-17T00:00:00Z"
    );
    let by_target = env
        .ok(
            "DescribeMaintenanceWindowSchedule",
            json!({"ResourceType": "INSTANCE", "MaxResults": 1,
                   "Targets": [{"Key": "InstanceIds", "Values": [N1]}]}),
        )
        .await;
    assert_eq!(
        by_target["ScheduledWindowExecutions"][0]["WindowId"],
        json!(w)
    );

    let found = env
        .ok(
            "DescribeMaintenanceWindowsForTarget",
            json!({"ResourceType": "INSTANCE", "Targets": [{"Key": "InstanceIds", "Values": [N2]}]}),
        )
        .await;
    assert_eq!(
        found["WindowIdentities"],
        json!([{"WindowId": w, "Name": "nightly"}])
    );
    let none = env
        .ok(
            "DescribeMaintenanceWindowsForTarget",
            json!({"ResourceType": "INSTANCE", "Targets": [{"Key": "InstanceIds", "Values": [N3]}]}),
        )
        .await;
    assert_eq!(none["WindowIdentities"], json!([]));

    // A disabled window has no coming executions.
    env.ok(
        "UpdateMaintenanceWindow",
        json!({"WindowId": w, "Enabled": false}),
    )
    .await;
    let off = env
        .ok("DescribeMaintenanceWindowSchedule", json!({"WindowId": w}))
        .await;
    assert_eq!(off["ScheduledWindowExecutions"], json!([]));
}

#[test]
fn statuses_are_ssms() {
    assert!(status::is_final(status::SKIPPED_OVERLAPPING));
    assert!(!status::is_final(status::CANCELLING));
}

#[test]
fn the_requests_of_these_tests_pass_ssms_model() {
    let bodies = [
        (
            "CreateMaintenanceWindow",
            json!({"Name": "nightly", "Schedule": "cron(0 0 * * ? *)", "Duration": 2,
                   "Cutoff": 1, "AllowUnassociatedTargets": false, "ClientToken": "tok-1"}),
        ),
        (
            "RegisterTargetWithMaintenanceWindow",
            json!({"WindowId": "mw-0123456789abcdef0", "ResourceType": "INSTANCE",
                   "OwnerInformation": "team-a",
                   "Targets": [{"Key": "InstanceIds", "Values": [N1, N2]}]}),
        ),
        (
            "RegisterTaskWithMaintenanceWindow",
            json!({"WindowId": "mw-0123456789abcdef0", "TaskArn": "DocA",
                   "TaskType": "RUN_COMMAND", "Priority": 1, "CutoffBehavior": "CANCEL_TASK",
                   "MaxConcurrency": "1", "MaxErrors": "0",
                   "Targets": [{"Key": "WindowTargetIds",
                                "Values": ["e0e53ab5-0a46-4ed3-a1a7-4bd7d3b3e3a0"]}],
                   "TaskInvocationParameters": {"RunCommand": {"TimeoutSeconds": 600,
                       "Parameters": {"commands": ["echo {{WINDOW_ID}}"]}}}}),
        ),
        (
            "DescribeMaintenanceWindowSchedule",
            json!({"ResourceType": "INSTANCE", "MaxResults": 1,
                   "Targets": [{"Key": "InstanceIds", "Values": [N1]}]}),
        ),
    ];
    for (op, body) in bodies {
        crate::api_model::validate(op, &body).unwrap_or_else(|e| panic!("{op}: {e:?}"));
    }
}

#[tokio::test]
async fn a_task_naming_an_output_bucket_the_stack_cannot_write_is_refused() {
    let env = Env::new();
    let (w, t) = env.window().await;
    let with = |run_command: Value, logging: Option<Value>| {
        let mut body = json!({"WindowId": w, "TaskArn": "AWS-RunShellScript",
            "TaskType": "RUN_COMMAND",
            "Targets": [{"Key": "WindowTargetIds", "Values": [t]}],
            "TaskInvocationParameters": {"RunCommand": run_command}});
        if let Some(l) = logging {
            body["LoggingInfo"] = l;
        }
        body
    };
    let refusals = [
        with(json!({"OutputS3BucketName": "someone-elses-bucket"}), None),
        with(
            json!({}),
            Some(json!({"S3BucketName": "someone-elses-bucket", "S3Region": "us-east-1"})),
        ),
    ];
    for body in refusals {
        let e = env
            .refused("RegisterTaskWithMaintenanceWindow", body.clone())
            .await;
        assert_eq!(e.code(), "ValidationException", "{body}");
        let msg = e.to_string();
        assert!(
            msg.contains("someone-elses-bucket") && msg.contains(STACK_BUCKET),
            "{msg}"
        );
    }
    assert!(env.store.list_tasks(&w).await.unwrap().is_empty());

    // The stack's bucket is accepted, then an update to another refused,
    // the task unchanged.
    let id = env
        .ok(
            "RegisterTaskWithMaintenanceWindow",
            with(json!({"OutputS3BucketName": STACK_BUCKET}), None),
        )
        .await["WindowTaskId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = env.store.get_task(&w, &id).await.unwrap().unwrap();
    let e = env
        .refused(
            "UpdateMaintenanceWindowTask",
            json!({"WindowId": w, "WindowTaskId": id,
                   "TaskInvocationParameters": {"RunCommand": {"OutputS3BucketName": "someone-elses-bucket"}}}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    let e = env
        .refused(
            "UpdateMaintenanceWindowTask",
            json!({"WindowId": w, "WindowTaskId": id,
                   "LoggingInfo": {"S3BucketName": "someone-elses-bucket", "S3Region": "us-east-1"}}),
        )
        .await;
    assert_eq!(e.code(), "ValidationException");
    assert_eq!(env.store.get_task(&w, &id).await.unwrap().unwrap(), before);
    env.ok(
        "UpdateMaintenanceWindowTask",
        json!({"WindowId": w, "WindowTaskId": id,
               "LoggingInfo": {"S3BucketName": STACK_BUCKET, "S3Region": "us-east-1"}}),
    )
    .await;
    let after = env.store.get_task(&w, &id).await.unwrap().unwrap();
    assert_eq!(after.logging_info.unwrap()["S3BucketName"], STACK_BUCKET);
}
