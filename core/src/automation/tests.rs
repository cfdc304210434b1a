//! The operations and the runner over the in-memory ports.

use serde_json::{Value, json};

use super::context::AutomationContext;
use super::engine::{CommandOutcome, Env};
use super::memory::{MemoryExecutions, MemoryQueue, MemoryServices};
use super::runner::Runner;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::documents::context::DocumentContext;
use crate::documents::store::MemoryDocumentStore;
use crate::error::SsmError;

const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

const RESTART: &str = r#"{
  "schemaVersion": "0.3",
  "description": "Restart and check",
  "parameters": {
    "Node": {"type": "String", "allowedPattern": "^mi-[0-9a-f]{17}$"},
    "Name": {"type": "String", "default": "/app/color"}
  },
  "mainSteps": [
    {"name": "restart", "action": "aws:runCommand", "inputs": {
      "DocumentName": "AWS-RunShellScript", "InstanceIds": ["{{ Node }}"],
      "Parameters": {"commands": ["echo {{ automation:EXECUTION_ID }}"]}}},
    {"name": "read", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "{{ Name }}"},
      "outputs": [{"Name": "Color", "Selector": "$.Parameter.Value", "Type": "String"}]},
    {"name": "approve", "action": "aws:approve", "inputs": {"Approvers": ["bob"], "Message": "go on?"}}
  ],
  "outputs": ["read.Color", "restart.CommandId"]
}"#;

const NODE: &str = "mi-0123456789abcdef0";

fn caller(name: &str, policy: &str) -> Caller {
    Caller {
        access_key_id: format!("AK{}", name.to_uppercase()),
        user_arn: format!("arn:aws:iam::123456789012:user/{name}"),
        policy: Policy::parse(policy).unwrap(),
    }
}

/// `n` nodes `mi-…0001` on, the first ten tagged app=web.
fn fleet_of(n: usize) -> crate::run_command::memory::Fleet {
    let mut fleet = crate::run_command::memory::Fleet::default();
    for i in 1..=n {
        let tags = if i <= 10 {
            std::collections::BTreeMap::from([("app".to_string(), "web".to_string())])
        } else {
            Default::default()
        };
        fleet.nodes.insert(format!("mi-{i:017x}"), tags);
    }
    fleet
}

struct Fixture {
    documents: MemoryDocumentStore,
    executions: MemoryExecutions,
    queue: MemoryQueue,
    services: MemoryServices,
    fleet: crate::run_command::memory::Fleet,
    groups: std::collections::BTreeMap<String, crate::targets::GroupQuery>,
    scope: ArnScope,
    now: f64,
}

impl Fixture {
    async fn new() -> Self {
        let f = Fixture {
            documents: MemoryDocumentStore::new(),
            executions: MemoryExecutions::default(),
            queue: MemoryQueue::default(),
            services: MemoryServices::default(),
            fleet: fleet_of(12),
            groups: Default::default(),
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            now: 1000.0,
        };
        f.create_document("Restart", RESTART, "Automation").await;
        f.create_document(
            "Hello",
            r#"{"schemaVersion":"2.2","mainSteps":[{"action":"aws:runShellScript","name":"a","inputs":{"runCommand":["true"]}}]}"#,
            "Command",
        )
        .await;
        f.services.answers.lock().unwrap().insert(
            "GetParameter".into(),
            Ok(json!({"Parameter": {"Name": "/app/color", "Value": "blue"}})),
        );
        f
    }

    async fn create_document(&self, name: &str, content: &str, t: &str) {
        let admin = caller("admin", ADMIN);
        let ctx = DocumentContext {
            store: &self.documents,
            caller: &admin,
            scope: &self.scope,
            now: self.now,
        };
        crate::documents::operations::handle(
            &ctx,
            "CreateDocument",
            &json!({"Name": name, "Content": content, "DocumentType": t}),
        )
        .await
        .unwrap()
        .unwrap();
    }

    fn ctx(&self) -> AutomationContext<'_> {
        AutomationContext {
            store: &self.executions,
            documents: &self.documents,
            queue: &self.queue,
            targets: &self.fleet,
            groups: &self.groups,
            scope: &self.scope,
            now: self.now,
        }
    }

    async fn call_as(&self, who: &Caller, op: &str, body: Value) -> Result<Value, SsmError> {
        super::operations::handle(&self.ctx(), who, op, &body)
            .await
            .expect("an automation operation")
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        self.call_as(&caller("alice", ADMIN), op, body).await
    }

    async fn code(&self, op: &str, body: Value) -> String {
        match self.call(op, body.clone()).await {
            Err(e) => e.code().to_string(),
            Ok(v) => panic!("{op} {body} was accepted: {v}"),
        }
    }

    async fn start(&self) -> String {
        let r = self
            .call(
                "StartAutomationExecution",
                json!({"DocumentName": "Restart", "Parameters": {"Node": [NODE]}}),
            )
            .await
            .unwrap();
        r["AutomationExecutionId"].as_str().unwrap().to_string()
    }

    async fn run(&self, id: &str) {
        let runner = Runner {
            ctx: self.ctx(),
            services: &self.services,
            env: Env {
                now: self.now,
                account_id: self.scope.account.clone(),
                region: self.scope.region.clone(),
                partition: "aws".into(),
            },
            clock: None,
        };
        runner.run(id).await.unwrap();
    }

    async fn get(&self, id: &str) -> Value {
        self.call(
            "GetAutomationExecution",
            json!({"AutomationExecutionId": id}),
        )
        .await
        .unwrap()["AutomationExecution"]
            .clone()
    }

    /// The children of `parent`, optionally in one status.
    async fn children(&self, parent: &str, status: Option<&str>) -> Vec<String> {
        let mut filters = vec![json!({"Key": "ParentExecutionId", "Values": [parent]})];
        if let Some(s) = status {
            filters.push(json!({"Key": "ExecutionStatus", "Values": [s]}));
        }
        let l = self
            .call("DescribeAutomationExecutions", json!({"Filters": filters}))
            .await
            .unwrap();
        l["AutomationExecutionMetadataList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["AutomationExecutionId"].as_str().unwrap().to_string())
            .collect()
    }

    fn finish_commands(&self, status: &str) {
        let created = self.services.created.lock().unwrap();
        let mut ended = self.services.ended.lock().unwrap();
        for id in created.keys() {
            ended.entry(id.clone()).or_insert(CommandOutcome {
                command_id: id.clone(),
                status: status.into(),
                response_code: if status == "Success" { 0 } else { 1 },
                output: "done".into(),
            });
        }
    }
}

#[tokio::test]
async fn an_execution_runs_its_steps_through_the_runner_to_success() {
    let mut f = Fixture::new().await;
    let id = f.start().await;
    assert_eq!(f.queue.wakes.lock().unwrap().as_slice(), [(id.clone(), 0)]);
    assert_eq!(f.get(&id).await["AutomationExecutionStatus"], "Pending");

    f.run(&id).await;
    // The command is created as the starter, with the runbook's values in place.
    {
        let created = f.services.created.lock().unwrap();
        assert_eq!(created.len(), 1);
        let (inputs, key) = created.values().next().unwrap();
        assert_eq!(key, "alice");
        assert_eq!(inputs["InstanceIds"], json!([NODE]));
        assert_eq!(inputs["Parameters"]["commands"][0], format!("echo {id}"));
    }
    // A second delivery creates nothing more.
    f.run(&id).await;
    assert_eq!(f.services.created.lock().unwrap().len(), 1);
    let e = f.get(&id).await;
    assert_eq!(e["AutomationExecutionStatus"], "InProgress");
    assert_eq!(e["CurrentStepName"], "restart");
    assert_eq!(e["CurrentAction"], "aws:runCommand");

    f.now += 30.0;
    f.finish_commands("Success");
    f.run(&id).await;
    let e = f.get(&id).await;
    assert_eq!(e["AutomationExecutionStatus"], "Waiting");
    let steps = e["StepExecutions"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["StepStatus"], "Success");
    assert_eq!(steps[0]["Outputs"]["Status"], json!(["Success"]));
    assert_eq!(steps[1]["Outputs"]["Color"], json!(["blue"]));
    assert_eq!(steps[1]["Inputs"]["Name"], "/app/color");
    assert_eq!(steps[2]["StepStatus"], "Waiting");
    assert_eq!(
        f.services.calls.lock().unwrap().as_slice(),
        [(
            "alice".to_string(),
            "GetParameter".to_string(),
            json!({"Name": "/app/color"})
        )]
    );

    // Only an approver may approve; then it goes on.
    let mallory = caller("mallory", ADMIN);
    let refused = f
        .call_as(
            &mallory,
            "SendAutomationSignal",
            json!({"AutomationExecutionId": id, "SignalType": "Approve"}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "InvalidAutomationSignalException");
    let bob = caller("bob", ADMIN);
    f.call_as(
        &bob,
        "SendAutomationSignal",
        json!({"AutomationExecutionId": id, "SignalType": "Approve", "Payload": {"Comment": ["ok"]}}),
    )
    .await
    .unwrap();
    f.run(&id).await;
    let e = f.get(&id).await;
    assert_eq!(e["AutomationExecutionStatus"], "Success");
    assert_eq!(e["Outputs"]["read.Color"], json!(["blue"]));
    assert_eq!(e["ExecutedBy"], "arn:aws:iam::123456789012:user/alice");
    // The events the table's stream carries, in the order they happened.
    let published: Vec<(String, String)> = f
        .executions
        .feed
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.detail_type == super::events::EXECUTION_STATUS_CHANGE)
        .map(|e| {
            (
                e.detail["ExecutionId"].as_str().unwrap().to_string(),
                e.detail["Status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let statuses: Vec<&str> = published.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["InProgress", "Waiting", "InProgress", "Success"]);
}

#[tokio::test]
async fn a_refused_command_fails_its_step_with_the_refusal() {
    let f = Fixture::new().await;
    f.services.refuse_documents.lock().unwrap().insert(
        "AWS-RunShellScript".into(),
        "InvalidInstanceId: no such node".into(),
    );
    let id = f.start().await;
    f.run(&id).await;
    let e = f.get(&id).await;
    assert_eq!(e["AutomationExecutionStatus"], "Failed");
    assert_eq!(
        e["StepExecutions"][0]["FailureMessage"],
        "InvalidInstanceId: no such node"
    );
    assert!(
        e["FailureMessage"]
            .as_str()
            .unwrap()
            .starts_with("Step restart failed")
    );
}

#[tokio::test]
async fn bad_starts_start_nothing_with_ssms_codes() {
    let f = Fixture::new().await;
    let cases = [
        (
            json!({"DocumentName": "Nope"}),
            "AutomationDefinitionNotFoundException",
        ),
        (
            json!({"DocumentName": "Hello"}),
            "AutomationDefinitionNotFoundException",
        ),
        (
            json!({"DocumentName": "Restart", "DocumentVersion": "7", "Parameters": {"Node": [NODE]}}),
            "AutomationDefinitionVersionNotFoundException",
        ),
        (
            json!({"DocumentName": "Restart"}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "Parameters": {"Node": ["web-1"]}}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "Parameters": {"Node": [NODE], "Other": ["x"]}}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "Parameters": {"Node": [NODE]}, "Mode": "Interactive"}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "Parameters": {"Node": [NODE]}, "Mode": "Sometimes"}),
            "ValidationException",
        ),
        (
            json!({"DocumentName": "Restart", "TargetParameterName": "Nope", "Targets": [{"Key": "tag:app", "Values": ["web"]}]}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "Targets": [{"Key": "tag:app", "Values": ["web"]}]}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "TargetParameterName": "Node", "Targets": [{"Key": "tag:app", "Values": ["web"]}], "MaxConcurrency": "0"}),
            "ValidationException",
        ),
        (
            json!({"DocumentName": "Restart", "TargetParameterName": "Node", "Targets": [{"Key": "ParameterValues", "Values": ["web-1"]}]}),
            "InvalidAutomationExecutionParametersException",
        ),
        (
            json!({"DocumentName": "Restart", "TargetParameterName": "Node", "Targets": [{"Key": "InstanceIds", "Values": ["mi-0000000000000ffff"]}]}),
            "InvalidInstanceId",
        ),
        (
            json!({"DocumentName": "Restart", "TargetMaps": [{"Node": [NODE]}], "Targets": [{"Key": "tag:app", "Values": ["web"]}], "TargetParameterName": "Node"}),
            "InvalidAutomationExecutionParametersException",
        ),
        (json!({}), "ValidationException"),
    ];
    for (body, code) in cases {
        assert_eq!(
            f.code("StartAutomationExecution", body.clone()).await,
            code,
            "{body}"
        );
    }
    let denied = f
        .call_as(
            &caller("eve", r#"{"Statement":[{"Effect":"Allow","Action":"ssm:GetAutomationExecution","Resource":"*"}]}"#),
            "StartAutomationExecution",
            json!({"DocumentName": "Restart", "Parameters": {"Node": [NODE]}}),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.code(), "AccessDeniedException");
    assert!(f.executions.executions.lock().unwrap().is_empty());
    assert!(f.queue.wakes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_client_token_starts_once_and_is_not_reused_for_other_parameters() {
    let f = Fixture::new().await;
    let body = json!({"DocumentName": "Restart", "Parameters": {"Node": [NODE]}, "ClientToken": "6f1b8b5e-3a6e-4f3f-9d0b-0c7c5b0d1e2f"});
    let a = f
        .call("StartAutomationExecution", body.clone())
        .await
        .unwrap();
    let b = f
        .call("StartAutomationExecution", body.clone())
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(f.executions.executions.lock().unwrap().len(), 1);
    let mut other = body;
    other["Parameters"]["Node"] = json!(["mi-00000000000000001"]);
    assert_eq!(
        f.code("StartAutomationExecution", other).await,
        "IdempotentParameterMismatch"
    );
}

#[tokio::test]
async fn stop_cancels_and_reads_answer_with_ssms_errors() {
    let f = Fixture::new().await;
    let id = f.start().await;
    f.run(&id).await;
    f.call(
        "StopAutomationExecution",
        json!({"AutomationExecutionId": id, "Type": "Cancel"}),
    )
    .await
    .unwrap();
    assert_eq!(f.get(&id).await["AutomationExecutionStatus"], "Cancelling");
    f.run(&id).await;
    let e = f.get(&id).await;
    assert_eq!(e["AutomationExecutionStatus"], "Cancelled");
    assert_eq!(e["StepExecutions"][0]["StepStatus"], "Cancelled");
    assert_eq!(
        f.code(
            "StopAutomationExecution",
            json!({"AutomationExecutionId": id})
        )
        .await,
        "InvalidAutomationStatusUpdateException"
    );
    let missing = json!({"AutomationExecutionId": "00000000-0000-0000-0000-000000000000"});
    assert_eq!(
        f.code("GetAutomationExecution", missing.clone()).await,
        "AutomationExecutionNotFoundException"
    );
    assert_eq!(
        f.code("StopAutomationExecution", missing.clone()).await,
        "AutomationExecutionNotFoundException"
    );
    assert_eq!(
        f.code(
            "SendAutomationSignal",
            json!({"AutomationExecutionId": id, "SignalType": "Resume"})
        )
        .await,
        "InvalidAutomationSignalException"
    );
    assert_eq!(
        f.code(
            "SendAutomationSignal",
            json!({"AutomationExecutionId": id, "SignalType": "StartStep"})
        )
        .await,
        "InvalidAutomationSignalException"
    );
}

#[tokio::test]
async fn describe_filters_and_pages_executions_and_steps() {
    let mut f = Fixture::new().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(f.start().await);
        f.now += 1.0;
    }
    f.run(&ids[0]).await;
    let list = |v: &Value| -> Vec<String> {
        v["AutomationExecutionMetadataList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["AutomationExecutionId"].as_str().unwrap().to_string())
            .collect()
    };
    let all = f
        .call("DescribeAutomationExecutions", json!({}))
        .await
        .unwrap();
    assert_eq!(list(&all), [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    let page = f
        .call("DescribeAutomationExecutions", json!({"MaxResults": 2}))
        .await
        .unwrap();
    assert_eq!(list(&page).len(), 2);
    let rest = f
        .call(
            "DescribeAutomationExecutions",
            json!({"MaxResults": 2, "NextToken": page["NextToken"]}),
        )
        .await
        .unwrap();
    assert_eq!(list(&rest), [ids[0].clone()]);
    assert!(rest.get("NextToken").is_none());
    let running = f
        .call(
            "DescribeAutomationExecutions",
            json!({"Filters": [{"Key": "ExecutionStatus", "Values": ["InProgress"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(list(&running), [ids[0].clone()]);
    let by_prefix = f
        .call(
            "DescribeAutomationExecutions",
            json!({"Filters": [{"Key": "DocumentNamePrefix", "Values": ["Nope"]}]}),
        )
        .await
        .unwrap();
    assert!(list(&by_prefix).is_empty());
    assert_eq!(
        f.code(
            "DescribeAutomationExecutions",
            json!({"Filters": [{"Key": "ExecutionStatus", "Values": ["Done"]}]})
        )
        .await,
        "InvalidFilterValue"
    );
    assert_eq!(
        f.code(
            "DescribeAutomationExecutions",
            json!({"Filters": [{"Key": "Colour", "Values": ["x"]}]})
        )
        .await,
        "ValidationException"
    );
    assert_eq!(
        f.code("DescribeAutomationExecutions", json!({"MaxResults": 51}))
            .await,
        "ValidationException"
    );

    let steps = f
        .call(
            "DescribeAutomationStepExecutions",
            json!({"AutomationExecutionId": ids[0], "Filters": [{"Key": "StepName", "Values": ["restart"]}]}),
        )
        .await
        .unwrap();
    let steps = steps["StepExecutions"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["StepStatus"], "InProgress");
    assert_eq!(steps[0]["IsCritical"], true);
    assert_eq!(steps[0]["OnFailure"], "Abort");
}

#[tokio::test]
async fn a_rate_controlled_execution_runs_one_child_per_target_within_its_limits() {
    let f = Fixture::new().await;
    let r = f
        .call(
            "StartAutomationExecution",
            json!({"DocumentName": "Restart", "TargetParameterName": "Node",
                   "Targets": [{"Key": "tag:app", "Values": ["web"]}], "MaxConcurrency": "2", "MaxErrors": "1"}),
        )
        .await
        .unwrap();
    let parent = r["AutomationExecutionId"].as_str().unwrap().to_string();
    f.run(&parent).await;
    assert_eq!(f.children(&parent, None).await.len(), 2, "MaxConcurrency 2");
    let p = f.get(&parent).await;
    assert_eq!(p["AutomationExecutionStatus"], "InProgress");
    assert_eq!(
        p["ResolvedTargets"]["ParameterValues"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(p["MaxConcurrency"], "2");

    // Each round: run the children (their commands), end their commands
    // (first two fail), then let the parent look.
    let mut failures: u32 = 2;
    for _ in 0..20 {
        for id in f.children(&parent, Some("Pending")).await {
            f.run(&id).await;
        }
        let created: Vec<String> = f.services.created.lock().unwrap().keys().cloned().collect();
        for id in created {
            let mut ended = f.services.ended.lock().unwrap();
            if !ended.contains_key(&id) {
                let ok = failures == 0;
                failures = failures.saturating_sub(1);
                ended.insert(
                    id.clone(),
                    CommandOutcome {
                        command_id: id.clone(),
                        status: if ok { "Success" } else { "Failed" }.into(),
                        response_code: if ok { 0 } else { 1 },
                        output: String::new(),
                    },
                );
            }
        }
        for id in f.children(&parent, Some("InProgress")).await {
            f.run(&id).await;
        }
        f.run(&parent).await;
        if f.get(&parent).await["AutomationExecutionStatus"] != "InProgress" {
            break;
        }
    }
    let p = f.get(&parent).await;
    assert_eq!(
        p["AutomationExecutionStatus"], "Failed",
        "two errors pass MaxErrors 1"
    );
    assert_eq!(
        f.children(&parent, None).await.len(),
        2,
        "no child starts after the error threshold"
    );
    assert!(
        p["FailureMessage"]
            .as_str()
            .unwrap()
            .starts_with("2 of 10 targets failed")
    );
    // A child knows its parent and target.
    let child = f.get(&f.children(&parent, None).await[0]).await;
    assert_eq!(child["ParentAutomationExecutionId"], parent.as_str());
    assert!(child["Target"].as_str().unwrap().starts_with("mi-"));
    assert_eq!(child["Parameters"]["Node"], json!([child["Target"]]));
}

#[tokio::test]
async fn target_maps_give_each_child_its_parameters_and_a_stop_stops_them() {
    let f = Fixture::new().await;
    let r = f
        .call(
            "StartAutomationExecution",
            json!({"DocumentName": "Restart", "TargetMaps": [
                {"Node": ["mi-00000000000000001"], "Name": ["/a"]},
                {"Node": ["mi-00000000000000002"], "Name": ["/b"]}]}),
        )
        .await
        .unwrap();
    let parent = r["AutomationExecutionId"].as_str().unwrap().to_string();
    f.run(&parent).await;
    let listed = f
        .call(
            "DescribeAutomationExecutions",
            json!({"Filters": [{"Key": "ParentExecutionId", "Values": [parent]}]}),
        )
        .await
        .unwrap();
    let ids: Vec<String> = listed["AutomationExecutionMetadataList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["AutomationExecutionId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let mut names: Vec<String> = Vec::new();
    for id in &ids {
        names.push(
            f.get(id).await["Parameters"]["Name"][0]
                .as_str()
                .unwrap()
                .to_string(),
        );
        f.run(id).await;
    }
    names.sort();
    assert_eq!(names, ["/a", "/b"]);
    f.call(
        "StopAutomationExecution",
        json!({"AutomationExecutionId": parent}),
    )
    .await
    .unwrap();
    f.run(&parent).await;
    for id in &ids {
        f.run(id).await;
        assert_eq!(f.get(id).await["AutomationExecutionStatus"], "Cancelled");
    }
    f.run(&parent).await;
    assert_eq!(
        f.get(&parent).await["AutomationExecutionStatus"],
        "Cancelled"
    );
}

/// Each read a second later than the last.
fn ticking() -> f64 {
    static TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    2000.0 + TICKS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as f64
}

#[tokio::test]
async fn steps_run_in_one_delivery_each_carry_their_own_times() {
    let f = Fixture::new().await;
    f.create_document(
        "TwoReads",
        r#"{"schemaVersion": "0.3", "mainSteps": [
            {"name": "one", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "/a"}},
            {"name": "two", "action": "aws:executeAwsApi", "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "/b"}}]}"#,
        "Automation",
    )
    .await;
    let id = f
        .call(
            "StartAutomationExecution",
            json!({"DocumentName": "TwoReads"}),
        )
        .await
        .unwrap()["AutomationExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let runner = Runner {
        ctx: f.ctx(),
        services: &f.services,
        env: Env {
            now: f.now,
            account_id: f.scope.account.clone(),
            region: f.scope.region.clone(),
            partition: "aws".into(),
        },
        clock: Some(ticking),
    };
    runner.run(&id).await.unwrap();
    let e = f.get(&id).await;
    assert_eq!(e["AutomationExecutionStatus"], "Success");
    let steps = e["StepExecutions"].as_array().unwrap();
    let (one_end, two_start) = (
        steps[0]["ExecutionEndTime"].as_f64().unwrap(),
        steps[1]["ExecutionStartTime"].as_f64().unwrap(),
    );
    assert!(
        two_start > steps[0]["ExecutionStartTime"].as_f64().unwrap() && two_start >= one_end,
        "{steps:?}"
    );
}
