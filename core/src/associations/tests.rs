//! Associations over the in-memory stores and FakeRuns: what is kept and
//! shown, what is refused (changing nothing), and what the tick runs.

use serde_json::{Value, json};

use super::context::{AssociationContext, does_not_exist};
use super::memory::MemoryAssociations;
use super::ops::handle;
use super::ports::AssociationStore;
use super::tick::{node_changed, run_due};
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::compliance::context::ComplianceContext;
use crate::compliance::memory::MemoryCompliance;
use crate::compliance::ports::ComplianceStore;
use crate::documents::store::MemoryDocumentStore;
use crate::error::SsmError;
use crate::fleet::memory::{MemoryNodes, node};
use crate::schedule::runs::memory::FakeRuns;
use crate::schedule::runs::{NodeOutcome, RunOutcome, ScheduledRuns};

const A: &str = "mi-0123456789abcdef0";
const B: &str = "mi-0123456789abcdef1";
const C: &str = "mi-0123456789abcdef2";
const T0: f64 = 1_767_225_600.0; // 2026-01-01T00:00:00Z

struct Fixture {
    store: MemoryAssociations,
    documents: MemoryDocumentStore,
    compliance: MemoryCompliance,
    nodes: MemoryNodes,
    scope: ArnScope,
    caller: Caller,
    runs: FakeRuns,
    output_buckets: Vec<String>,
}

/// The stack's own output bucket, in tests.
const STACK_BUCKET: &str = "steward-output";

fn caller(policy: &str) -> Caller {
    Caller {
        access_key_id: "AKALICE".into(),
        user_arn: "arn:aws:iam::123456789012:user/alice".into(),
        policy: Policy::parse(policy).unwrap(),
    }
}

const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            store: MemoryAssociations::default(),
            documents: MemoryDocumentStore::new(),
            compliance: MemoryCompliance::default(),
            nodes: MemoryNodes::default(),
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            caller: caller(ADMIN),
            runs: FakeRuns::default(),
            // The stack's bucket and one the operator added.
            output_buckets: vec![STACK_BUCKET.into(), "logs".into()],
        };
        for (id, env) in [(A, "dev"), (B, "dev"), (C, "prod")] {
            f.register(id, env);
        }
        f
    }

    fn register(&self, id: &str, env: &str) {
        let mut n = node(id, "pk", T0);
        n.tags.insert("env".into(), env.into());
        self.nodes.insert(n);
        self.runs
            .nodes
            .lock()
            .unwrap()
            .insert(id.into(), vec![("env".into(), env.into())]);
    }

    fn ctx_at(&self, now: f64) -> AssociationContext<'_> {
        AssociationContext {
            store: &self.store,
            documents: &self.documents,
            compliance: ComplianceContext {
                store: &self.compliance,
                nodes: &self.nodes,
                scope: &self.scope,
            },
            caller: &self.caller,
            scope: &self.scope,
            output_buckets: &self.output_buckets,
            now,
        }
    }

    async fn call_at(&self, now: f64, op: &str, body: Value) -> Result<Value, SsmError> {
        handle(&self.ctx_at(now), op, &body)
            .await
            .expect("an association operation")
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        self.call_at(T0, op, body).await
    }

    async fn create(&self, body: Value) -> String {
        let out = self.call("CreateAssociation", body).await.unwrap();
        out["AssociationDescription"]["AssociationId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn tick(&self, now: f64) -> super::tick::DueReport {
        run_due(&self.ctx_at(now), &self.runs, now).await.unwrap()
    }

    fn sent(&self) -> Vec<(String, Value, String)> {
        self.runs
            .commands
            .lock()
            .unwrap()
            .values()
            .map(|(s, _)| (s.id.clone(), s.body.clone(), s.run_as.clone()))
            .collect()
    }

    fn finish(&self, id: &str, nodes: &[(&str, &str)]) {
        self.runs.finish(
            id,
            RunOutcome {
                status: if nodes.iter().all(|(_, s)| *s == "Success") {
                    "Success".into()
                } else {
                    "Failed".into()
                },
                is_final: true,
                nodes: nodes
                    .iter()
                    .map(|(n, s)| NodeOutcome {
                        instance_id: n.to_string(),
                        status: s.to_string(),
                        details: s.to_string(),
                        is_final: true,
                    })
                    .collect(),
            },
        );
    }

    async fn count(&self) -> usize {
        self.store.list().await.unwrap().len()
    }
}

fn shell(targets: Value) -> Value {
    json!({
        "Name": "AWS-RunShellScript",
        "Parameters": {"commands": ["echo hi"]},
        "Targets": targets,
        "AssociationName": "say-hi",
    })
}

fn dev() -> Value {
    json!([{"Key": "tag:env", "Values": ["dev"]}])
}

#[tokio::test]
async fn create_stores_what_describe_and_list_show() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["ScheduleExpression"] = json!("rate(30 minutes)");
    body["ComplianceSeverity"] = json!("HIGH");
    let out = f.call("CreateAssociation", body).await.unwrap();
    let d = &out["AssociationDescription"];
    let id = d["AssociationId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(d["AssociationVersion"], "1");
    assert_eq!(d["Name"], "AWS-RunShellScript");
    assert_eq!(d["Overview"]["Status"], "Pending");
    assert_eq!(d["ComplianceSeverity"], "HIGH");
    assert_eq!(d["Targets"], dev());
    assert_eq!(d["Date"], json!(T0));

    let got = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    assert_eq!(got["AssociationDescription"], *d);
    let listed = f.call("ListAssociations", json!({})).await.unwrap();
    assert_eq!(listed["Associations"][0]["AssociationId"], id);
    assert_eq!(listed["Associations"][0]["AssociationName"], "say-hi");
    assert_eq!(
        listed["Associations"][0]["ScheduleExpression"],
        "rate(30 minutes)"
    );
}

#[tokio::test]
async fn bad_requests_get_ssm_codes_and_store_nothing() {
    let f = Fixture::new();
    let cases = [
        (
            json!({"Name": "No-Such-Doc", "Targets": dev()}),
            "InvalidDocument",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Targets": dev(), "Parameters": {"nope": ["x"]}}),
            "InvalidParameters",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Targets": dev(), "Parameters": {"commands": ["x"]}, "ScheduleExpression": "rate(5 minutes)"}),
            "InvalidSchedule",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Targets": dev(), "Parameters": {"commands": ["x"]}, "AssociationName": "a b"}),
            "ValidationException",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": [
                {"Key": "tag:a", "Values": ["1"]}, {"Key": "tag:b", "Values": ["1"]},
                {"Key": "tag:c", "Values": ["1"]}, {"Key": "tag:d", "Values": ["1"]},
                {"Key": "tag:e", "Values": ["1"]}, {"Key": "tag:f", "Values": ["1"]}]}),
            "ValidationException",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "InstanceId": A, "Targets": dev()}),
            "InvalidTarget",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": [{"Key": "bogus", "Values": ["1"]}]}),
            "InvalidTarget",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": dev(), "CalendarNames": ["cal"]}),
            "ValidationException",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": dev(), "ComplianceSeverity": "SEVERE"}),
            "ValidationException",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": dev(), "MaxConcurrency": "0"}),
            "ValidationException",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": dev(), "ScheduleExpression": "rate(1 hour)", "ApplyOnlyAtCronInterval": true}),
            "InvalidSchedule",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": dev(), "ScheduleExpression": "cron(0 2 ? * SUN *)", "ScheduleOffset": 2}),
            "ValidationException",
        ),
        (json!({"Targets": dev()}), "ValidationException"),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": [{"Key": "InstanceIds", "Values": ["*", A]}]}),
            "InvalidTarget",
        ),
        (
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "InstanceId": "web-1"}),
            "InvalidInstanceId",
        ),
    ];
    for (body, code) in cases {
        let err = f.call("CreateAssociation", body.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{body}: {err}");
    }
    let err = f
        .call(
            "CreateAssociation",
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]}, "Targets": dev(), "AssociationName": "a b"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 validation error detected: Value 'a b' at 'associationName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$"
    );
    assert_eq!(f.count().await, 0);
}

#[tokio::test]
async fn the_legacy_form_is_unique_per_document_and_node() {
    let f = Fixture::new();
    let body =
        json!({"Name": "AWS-RunShellScript", "InstanceId": A, "Parameters": {"commands": ["x"]}});
    let id = f.create(body.clone()).await;
    let again = f.call("CreateAssociation", body).await.unwrap_err();
    assert_eq!(again.code(), super::context::already_exists().code());
    let got = f
        .call(
            "DescribeAssociation",
            json!({"Name": "AWS-RunShellScript", "InstanceId": A}),
        )
        .await
        .unwrap();
    assert_eq!(got["AssociationDescription"]["AssociationId"], id.as_str());
    assert_eq!(got["AssociationDescription"]["InstanceId"], A);
    f.call(
        "DeleteAssociation",
        json!({"Name": "AWS-RunShellScript", "InstanceId": A}),
    )
    .await
    .unwrap();
    assert_eq!(f.count().await, 0);
    // The key is free again.
    f.create(
        json!({"Name": "AWS-RunShellScript", "InstanceId": A, "Parameters": {"commands": ["y"]}}),
    )
    .await;
}

#[tokio::test]
async fn update_makes_versions_and_checks_the_version_given() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["MaxErrors"] = json!("1");
    let id = f.create(body).await;
    let err = f
        .call(
            "UpdateAssociation",
            json!({"AssociationId": id, "AssociationVersion": "7", "Parameters": {"commands": ["b"]}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), super::context::invalid_version("7").code());
    let out = f
        .call(
            "UpdateAssociation",
            json!({"AssociationId": id, "AssociationVersion": "1", "Parameters": {"commands": ["b"]}}),
        )
        .await
        .unwrap();
    let d = &out["AssociationDescription"];
    assert_eq!(d["AssociationVersion"], "2");
    assert_eq!(d["Parameters"], json!({"commands": ["b"]}));
    // Left out: cleared, as SSM does; Targets and the name are kept.
    assert!(d.get("MaxErrors").is_none());
    assert_eq!(d["Targets"], dev());
    assert_eq!(d["AssociationName"], "say-hi");
    let versions = f
        .call("ListAssociationVersions", json!({"AssociationId": id}))
        .await
        .unwrap();
    let v = versions["AssociationVersions"].as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["Parameters"], json!({"commands": ["echo hi"]}));
    assert_eq!(v[0]["MaxErrors"], "1");
    let old = f
        .call(
            "DescribeAssociation",
            json!({"AssociationId": id, "AssociationVersion": "1"}),
        )
        .await
        .unwrap();
    assert_eq!(
        old["AssociationDescription"]["Parameters"],
        json!({"commands": ["echo hi"]})
    );
    let bad = f
        .call(
            "UpdateAssociation",
            json!({"AssociationId": id, "Parameters": {"nope": ["b"]}}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "InvalidParameters");
    let missing = f
        .call(
            "UpdateAssociation",
            json!({"AssociationId": "11111111-2222-3333-4444-555555555555"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing, does_not_exist());
}

#[tokio::test]
async fn list_filters_and_pages() {
    let f = Fixture::new();
    let one = f.create(shell(dev())).await;
    let mut body = shell(json!([{"Key": "InstanceIds", "Values": [C]}]));
    body["AssociationName"] = json!("other");
    let two = f.create(body).await;
    let by = |k: &str, v: &str| json!({"AssociationFilterList": [{"key": k, "value": v}]});
    let ids = |out: Value| -> Vec<String> {
        out["Associations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["AssociationId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(f
            .call("ListAssociations", by("AssociationName", "other"))
            .await
            .unwrap()),
        vec![two.clone()]
    );
    assert_eq!(
        ids(f
            .call("ListAssociations", by("InstanceId", C))
            .await
            .unwrap()),
        vec![two.clone()]
    );
    assert_eq!(
        ids(f
            .call("ListAssociations", by("AssociationId", &one))
            .await
            .unwrap()),
        vec![one.clone()]
    );
    assert!(
        ids(f
            .call("ListAssociations", by("AssociationStatusName", "Success"))
            .await
            .unwrap())
        .is_empty()
    );
    let bad = f
        .call("ListAssociations", by("Colour", "x"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "ValidationException");
    let first = f
        .call("ListAssociations", json!({"MaxResults": 1}))
        .await
        .unwrap();
    assert_eq!(first["Associations"].as_array().unwrap().len(), 1);
    let token = first["NextToken"].as_str().unwrap();
    let second = f
        .call(
            "ListAssociations",
            json!({"MaxResults": 1, "NextToken": token}),
        )
        .await
        .unwrap();
    assert!(second.get("NextToken").is_none());
    let mut all = ids(first);
    all.extend(ids(second));
    all.sort();
    let mut want = vec![one, two];
    want.sort();
    assert_eq!(all, want);
}

#[tokio::test]
async fn delete_stops_the_association() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["ScheduleExpression"] = json!("rate(30 minutes)");
    let id = f.create(body).await;
    f.call("DeleteAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    let err = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap_err();
    assert_eq!(err, does_not_exist());
    let r = f.tick(T0 + 7200.0).await;
    assert_eq!(r.started, 0);
    assert!(f.sent().is_empty());
    let again = f
        .call("DeleteAssociation", json!({"AssociationId": id}))
        .await
        .unwrap_err();
    assert_eq!(again, does_not_exist());
}

#[tokio::test]
async fn a_denied_caller_changes_nothing() {
    let mut f = Fixture::new();
    f.caller = caller(
        r#"{"Statement":[{"Effect":"Allow","Action":"ssm:CreateAssociation","Resource":"arn:aws:ssm:*:*:association/*"}]}"#,
    );
    let err = f.call("CreateAssociation", shell(dev())).await.unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException");
    assert!(err.to_string().contains("document/AWS-RunShellScript"));
    assert_eq!(f.count().await, 0);
}

#[tokio::test]
async fn the_tick_sends_once_and_records_each_node() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["ComplianceSeverity"] = json!("CRITICAL");
    body["MaxConcurrency"] = json!("50%");
    body["OutputLocation"] =
        json!({"S3Location": {"OutputS3BucketName": "logs", "OutputS3KeyPrefix": "assoc"}});
    let id = f.create(body).await;
    let r = f.tick(T0 + 1.0).await;
    assert_eq!((r.started, r.sent), (1, 1));
    let sent = f.sent();
    assert_eq!(sent.len(), 1);
    let (command_id, request, run_as) = &sent[0];
    assert_eq!(run_as, "alice");
    assert_eq!(request["DocumentName"], "AWS-RunShellScript");
    assert_eq!(request["Targets"], dev());
    assert_eq!(request["Parameters"], json!({"commands": ["echo hi"]}));
    assert_eq!(request["MaxConcurrency"], "50%");
    // No MaxErrors given: one node's failure stops no other.
    assert_eq!(request["MaxErrors"], "100%");
    assert_eq!(request["OutputS3BucketName"], "logs");
    assert!(request["Comment"].as_str().unwrap().contains(&id));
    let execs = f.store.all_executions();
    assert_eq!(&execs[0].execution_id, command_id);
    assert_eq!(execs[0].status, "InProgress");

    // Ticks while it runs, and a tick that runs twice, send nothing more.
    f.tick(T0 + 2.0).await;
    f.tick(T0 + 2.0).await;
    assert_eq!(f.sent().len(), 1);

    f.finish(command_id, &[(A, "Success"), (B, "Failed")]);
    let r = f.tick(T0 + 60.0).await;
    assert_eq!(r.finished, 1);
    let e = &f.store.all_executions()[0];
    assert_eq!(e.status, "Failed");
    assert_eq!(e.to_json()["ResourceCountByStatus"], "{Failed=1,Success=1}");
    let d = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    let d = &d["AssociationDescription"];
    assert_eq!(d["Overview"]["Status"], "Failed");
    assert_eq!(
        d["Overview"]["AssociationStatusAggregatedCount"],
        json!({"Success": 1, "Failed": 1})
    );
    assert_eq!(d["LastExecutionDate"], json!(T0 + 60.0));
    assert!(d.get("LastSuccessfulExecutionDate").is_none());

    let statuses = f
        .call(
            "DescribeInstanceAssociationsStatus",
            json!({"InstanceId": A}),
        )
        .await
        .unwrap();
    let s = &statuses["InstanceAssociationStatusInfos"][0];
    assert_eq!(s["AssociationId"], id.as_str());
    assert_eq!(s["Status"], "Success");
    assert_eq!(s["DocumentVersion"], "1");
    assert_eq!(s["AssociationName"], "say-hi");
    assert_eq!(
        s["OutputUrl"]["S3OutputUrl"]["OutputUrl"],
        format!("https://s3.amazonaws.com/logs/assoc/{command_id}/{A}")
    );

    let ok = f.compliance.get(A, "Association").await.unwrap().unwrap();
    assert_eq!(ok.items[0].entry.id, id);
    assert_eq!(ok.items[0].entry.title, "say-hi");
    assert_eq!(
        ok.items[0].entry.status,
        crate::compliance::Status::Compliant
    );
    assert_eq!(
        ok.items[0].entry.severity,
        crate::compliance::Severity::Critical
    );
    assert_eq!(
        ok.items[0].entry.details["DocumentName"],
        "AWS-RunShellScript"
    );
    assert_eq!(
        ok.execution.execution_id.as_deref(),
        Some(command_id.as_str())
    );
    let bad = f.compliance.get(B, "Association").await.unwrap().unwrap();
    assert_eq!(
        bad.items[0].entry.status,
        crate::compliance::Status::NonCompliant
    );
    assert!(f.compliance.get(C, "Association").await.unwrap().is_none());

    let targets = f
        .call(
            "DescribeAssociationExecutionTargets",
            json!({"AssociationId": id, "ExecutionId": command_id, "Filters": [{"Key": "Status", "Value": "Failed"}]}),
        )
        .await
        .unwrap();
    let t = targets["AssociationExecutionTargets"].as_array().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["ResourceId"], B);
    assert_eq!(t[0]["OutputSource"]["OutputSourceId"], command_id.as_str());
    let missing = f
        .call(
            "DescribeAssociationExecutionTargets",
            json!({"AssociationId": id, "ExecutionId": "11111111-2222-3333-4444-555555555555"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing, super::context::execution_does_not_exist());

    // Done: nothing is due any more.
    let r = f.tick(T0 + 120.0).await;
    assert_eq!(r, super::tick::DueReport::default());
}

#[tokio::test]
async fn manual_sync_writes_no_compliance() {
    let f = Fixture::new();
    let mut body = shell(json!([{"Key": "InstanceIds", "Values": [A]}]));
    body["SyncCompliance"] = json!("MANUAL");
    f.create(body).await;
    f.tick(T0).await;
    let (id, _, _) = f.sent().remove(0);
    f.finish(&id, &[(A, "Success")]);
    f.tick(T0 + 5.0).await;
    assert!(f.compliance.get(A, "Association").await.unwrap().is_none());
    assert_eq!(f.store.all_executions()[0].status, "Success");
}

#[tokio::test]
async fn a_refused_run_fails_the_execution_with_its_code() {
    let f = Fixture::new();
    let id = f.create(shell(dev())).await;
    *f.runs.refuse.lock().unwrap() = Some(SsmError::AccessDeniedException("no".into()));
    f.tick(T0).await;
    let e = &f.store.all_executions()[0];
    assert_eq!(e.status, "Failed");
    assert_eq!(e.detailed_status, "AccessDeniedException");
    let d = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    assert_eq!(d["AssociationDescription"]["Overview"]["Status"], "Failed");
    // A busy service is retried instead.
    let f = Fixture::new();
    f.create(shell(dev())).await;
    *f.runs.refuse.lock().unwrap() = Some(SsmError::ThrottlingException("busy".into()));
    let r = f.tick(T0).await;
    assert_eq!(r.errors, 1);
    assert_eq!(f.store.all_executions()[0].status, "Pending");
    *f.runs.refuse.lock().unwrap() = None;
    let r = f.tick(T0 + 1.0).await;
    assert_eq!(r.sent, 1);
}

#[tokio::test]
async fn the_schedule_runs_each_occurrence_once_and_missed_ones_once() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["ScheduleExpression"] = json!("rate(30 minutes)");
    f.create(body).await;
    let runs = |f: &Fixture| f.store.all_executions().len();
    f.tick(T0 + 1.0).await;
    assert_eq!(runs(&f), 1);
    f.tick(T0 + 1000.0).await;
    assert_eq!(runs(&f), 1);
    f.tick(T0 + 1800.0).await;
    assert_eq!(runs(&f), 2);
    f.tick(T0 + 1800.0).await;
    assert_eq!(runs(&f), 2);
    // Down for three occurrences: one run, then on schedule again.
    f.tick(T0 + 1800.0 * 4.0 + 10.0).await;
    assert_eq!(runs(&f), 3);
    f.tick(T0 + 1800.0 * 4.0 + 20.0).await;
    assert_eq!(runs(&f), 3);
    f.tick(T0 + 1800.0 * 5.0).await;
    assert_eq!(runs(&f), 4);
}

#[tokio::test]
async fn apply_only_at_cron_interval_waits_for_the_cron_time() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["ScheduleExpression"] = json!("cron(0 2 ? * * *)");
    body["ApplyOnlyAtCronInterval"] = json!(true);
    f.create(body).await;
    f.tick(T0 + 60.0).await;
    assert!(f.store.all_executions().is_empty());
    f.tick(T0 + 2.0 * 3600.0).await;
    assert_eq!(f.store.all_executions().len(), 1);
    // Without a schedule, an association runs at creation only.
    let g = Fixture::new();
    g.create(shell(dev())).await;
    g.tick(T0).await;
    g.tick(T0 + 86_400.0 * 3.0).await;
    assert_eq!(g.store.all_executions().len(), 1);
}

#[tokio::test]
async fn start_once_and_a_changing_update_run_again() {
    let f = Fixture::new();
    let id = f.create(shell(dev())).await;
    f.tick(T0).await;
    assert_eq!(f.store.all_executions().len(), 1);
    f.call_at(
        T0 + 10.0,
        "StartAssociationsOnce",
        json!({"AssociationIds": [id]}),
    )
    .await
    .unwrap();
    f.tick(T0 + 11.0).await;
    assert_eq!(f.store.all_executions().len(), 2);
    // A change of settings that do not say what runs does not run it.
    let mut same = shell(dev());
    same["AssociationId"] = json!(id);
    same.as_object_mut().unwrap().remove("Name");
    same["ComplianceSeverity"] = json!("LOW");
    f.call_at(T0 + 20.0, "UpdateAssociation", same.clone())
        .await
        .unwrap();
    f.tick(T0 + 21.0).await;
    assert_eq!(f.store.all_executions().len(), 2);
    same["Parameters"] = json!({"commands": ["echo changed"]});
    f.call_at(T0 + 30.0, "UpdateAssociation", same)
        .await
        .unwrap();
    f.tick(T0 + 31.0).await;
    let execs = f.store.all_executions();
    assert_eq!(execs.len(), 3);
    assert!(execs.iter().any(|e| e.association_version == 3));
    let err = f
        .call(
            "StartAssociationsOnce",
            json!({"AssociationIds": [id, "11111111-2222-3333-4444-555555555555"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(err, does_not_exist());
}

#[tokio::test]
async fn a_new_node_gets_the_associations_that_match_it() {
    let f = Fixture::new();
    let id = f.create(shell(dev())).await;
    let all = f
        .create(shell(json!([{"Key": "InstanceIds", "Values": ["*"]}])))
        .await;
    let prod = f
        .create(shell(json!([{"Key": "tag:env", "Values": ["prod"]}])))
        .await;
    // Only at its cron times: a new node waits for the next one too.
    let mut at_cron = shell(json!([{"Key": "InstanceIds", "Values": ["*"]}]));
    at_cron["ScheduleExpression"] = json!("cron(0 3 ? * * *)");
    at_cron["ApplyOnlyAtCronInterval"] = json!(true);
    let at_cron = f.create(at_cron).await;
    f.tick(T0).await;
    for (cid, request, _) in f.sent() {
        let targets: Vec<crate::targets::Target> =
            serde_json::from_value(request["Targets"].clone()).unwrap();
        let nodes = f.runs.resolve_targets(&targets).await.unwrap();
        let outcome: Vec<(&str, &str)> = nodes.iter().map(|n| (n.as_str(), "Success")).collect();
        f.finish(&cid, &outcome);
    }
    f.tick(T0 + 10.0).await;
    let before = f.sent().len();

    // Not registered yet: looked at again in 30 s.
    const D: &str = "mi-0123456789abcdef3";
    node_changed(&f.store, D, T0 + 100.0).await.unwrap();
    f.tick(T0 + 100.0).await;
    assert_eq!(f.sent().len(), before);
    assert_eq!(f.store.markers()[0].next_due, T0 + 130.0);
    f.tick(T0 + 110.0).await;
    assert_eq!(f.store.markers().len(), 1);

    f.register(D, "dev");
    let r = f.tick(T0 + 130.0).await;
    assert_eq!(r.markers, 1);
    assert!(f.store.markers().is_empty());
    let new: Vec<_> = f
        .store
        .all_executions()
        .into_iter()
        .filter(|e| e.node.is_some())
        .collect();
    let mut for_node: Vec<String> = new.iter().map(|e| e.association_id.clone()).collect();
    for_node.sort();
    let mut want = vec![id.clone(), all.clone()];
    want.sort();
    assert_eq!(for_node, want);
    assert!(!for_node.contains(&prod));
    assert!(!for_node.contains(&at_cron));
    for e in &new {
        assert_eq!(
            e.request["Targets"],
            json!([{"Key": "InstanceIds", "Values": [D]}])
        );
        f.finish(&e.execution_id, &[(D, "Success")]);
    }
    f.tick(T0 + 140.0).await;
    let d = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    assert_eq!(
        d["AssociationDescription"]["Overview"]["AssociationStatusAggregatedCount"],
        json!({"Success": 3})
    );

    // The node has a status for them now: a tag change runs nothing again.
    let count = f.store.all_executions().len();
    node_changed(&f.store, D, T0 + 200.0).await.unwrap();
    f.tick(T0 + 200.0).await;
    assert_eq!(f.store.all_executions().len(), count);

    // A node that never registers: dropped after 15 minutes.
    const E: &str = "mi-0123456789abcdef4";
    node_changed(&f.store, E, T0 + 300.0).await.unwrap();
    f.tick(T0 + 300.0).await;
    assert_eq!(f.store.markers().len(), 1);
    f.tick(T0 + 300.0 + 900.0).await;
    assert!(f.store.markers().is_empty());
}

#[tokio::test]
async fn update_status_and_the_node_views() {
    let f = Fixture::new();
    let id = f
        .create(json!({"Name": "AWS-RunShellScript", "InstanceId": A, "Parameters": {"commands": ["x"]}}))
        .await;
    let out = f
        .call(
            "UpdateAssociationStatus",
            json!({"Name": "AWS-RunShellScript", "InstanceId": A,
                   "AssociationStatus": {"Date": T0, "Name": "Failed", "Message": "broke"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        out["AssociationDescription"]["Overview"]["Status"],
        "Failed"
    );
    let s = f
        .call(
            "DescribeInstanceAssociationsStatus",
            json!({"InstanceId": A}),
        )
        .await
        .unwrap();
    assert_eq!(s["InstanceAssociationStatusInfos"][0]["Status"], "Failed");
    assert_eq!(
        s["InstanceAssociationStatusInfos"][0]["ExecutionSummary"],
        "broke"
    );
    let bad = f
        .call(
            "UpdateAssociationStatus",
            json!({"Name": "AWS-RunShellScript", "InstanceId": A,
                   "AssociationStatus": {"Date": T0, "Name": "Great", "Message": "x"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "ValidationException");

    let eff = f
        .call(
            "DescribeEffectiveInstanceAssociations",
            json!({"InstanceId": A}),
        )
        .await
        .unwrap();
    let a = &eff["Associations"][0];
    assert_eq!(a["AssociationId"], id.as_str());
    assert_eq!(a["InstanceId"], A);
    let content: Value = serde_json::from_str(a["Content"].as_str().unwrap()).unwrap();
    assert!(content.get("mainSteps").is_some() || content.get("runtimeConfig").is_some());
    let none = f
        .call(
            "DescribeEffectiveInstanceAssociations",
            json!({"InstanceId": B}),
        )
        .await
        .unwrap();
    assert!(none["Associations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn executions_are_listed_and_filtered() {
    let f = Fixture::new();
    let id = f.create(shell(dev())).await;
    f.tick(T0).await;
    f.call_at(
        T0 + 100.0,
        "StartAssociationsOnce",
        json!({"AssociationIds": [id]}),
    )
    .await
    .unwrap();
    f.tick(T0 + 100.0).await;
    let all = f
        .call(
            "DescribeAssociationExecutions",
            json!({"AssociationId": id}),
        )
        .await
        .unwrap();
    let list = all["AssociationExecutions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["CreatedTime"], json!(T0 + 100.0));
    let first_id = list[1]["ExecutionId"].as_str().unwrap();
    let early = f
        .call(
            "DescribeAssociationExecutions",
            json!({"AssociationId": id, "Filters": [{"Key": "CreatedTime", "Value": "2026-01-01T00:01:00Z", "Type": "LESS_THAN"}]}),
        )
        .await
        .unwrap();
    assert_eq!(early["AssociationExecutions"].as_array().unwrap().len(), 1);
    assert_eq!(early["AssociationExecutions"][0]["ExecutionId"], first_id);
    let by_id = f
        .call(
            "DescribeAssociationExecutions",
            json!({"AssociationId": id, "Filters": [{"Key": "ExecutionId", "Value": first_id, "Type": "EQUAL"}]}),
        )
        .await
        .unwrap();
    assert_eq!(by_id["AssociationExecutions"].as_array().unwrap().len(), 1);
    let bad = f
        .call(
            "DescribeAssociationExecutions",
            json!({"AssociationId": id, "Filters": [{"Key": "Status", "Value": "Failed", "Type": "LESS_THAN"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code(), "InvalidFilter");
}

#[tokio::test]
async fn a_batch_answers_each_entry() {
    let f = Fixture::new();
    let out = f
        .call(
            "CreateAssociationBatch",
            json!({"Entries": [shell(dev()), {"Name": "No-Such-Doc", "Targets": dev()}]}),
        )
        .await
        .unwrap();
    assert_eq!(out["Successful"].as_array().unwrap().len(), 1);
    let failed = &out["Failed"][0];
    assert_eq!(failed["Entry"]["Name"], "No-Such-Doc");
    assert_eq!(failed["Fault"], "Client");
    assert!(failed["Message"].as_str().unwrap().contains("No-Such-Doc"));
    assert_eq!(f.count().await, 1);
}

#[tokio::test]
async fn an_automation_association_starts_the_runbook_per_target() {
    let f = Fixture::new();
    let id = f
        .create(json!({
            "Name": "Steward-RestartServiceAndVerify",
            "Parameters": {"RestartCommands": ["systemctl restart nginx"], "CheckCommands": ["true"]},
            "AutomationTargetParameterName": "InstanceId",
            "Targets": dev(),
        }))
        .await;
    f.tick(T0).await;
    assert!(f.sent().is_empty());
    let started: Vec<_> = f
        .runs
        .automations
        .lock()
        .unwrap()
        .values()
        .cloned()
        .collect();
    assert_eq!(started.len(), 1);
    let (s, _) = &started[0];
    assert_eq!(s.body["TargetParameterName"], "InstanceId");
    assert_eq!(s.body["Targets"], dev());
    f.runs.finish(
        &s.id,
        RunOutcome {
            status: "Success".into(),
            is_final: true,
            nodes: Vec::new(),
        },
    );
    f.tick(T0 + 5.0).await;
    let d = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    assert_eq!(d["AssociationDescription"]["Overview"]["Status"], "Success");
    let wrong = f
        .call(
            "CreateAssociation",
            json!({"Name": "AWS-RunShellScript", "Parameters": {"commands": ["x"]},
                   "AutomationTargetParameterName": "InstanceId", "Targets": dev()}),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), "InvalidParameters");
}

#[tokio::test]
async fn versions_and_offsets_are_read_as_ssm_reads_them() {
    let f = Fixture::new();
    let mut body = shell(dev());
    // Sundays at 02:00, run two days later.
    body["ScheduleExpression"] = json!("cron(0 2 ? * SUN *)");
    body["ScheduleOffset"] = json!(2);
    body["ApplyOnlyAtCronInterval"] = json!(true);
    let id = f.create(body).await;
    let d = f
        .call("DescribeAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    assert_eq!(d["AssociationDescription"]["ScheduleOffset"], 2);
    assert_eq!(d["AssociationDescription"]["DocumentVersion"], "$DEFAULT");
    let head = f.store.get(&id).await.unwrap().unwrap();
    let slot = head.slot.unwrap();
    // 2026-01-04 is the first Sunday after T0 (a Thursday).
    assert_eq!(slot.scheduled, T0 as i64 + 3 * 86_400 + 2 * 3600);
    assert_eq!(slot.due, slot.scheduled + 2 * 86_400);
    f.tick(slot.scheduled as f64 + 60.0).await;
    assert!(f.store.all_executions().is_empty());
    f.tick(slot.due as f64).await;
    assert_eq!(f.store.all_executions().len(), 1);

    let bad = f
        .call(
            "DescribeAssociation",
            json!({"AssociationId": id, "AssociationVersion": "9"}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad, super::context::invalid_version("9"));
    let unknown = f
        .call(
            "ListAssociationVersions",
            json!({"AssociationId": "11111111-2222-3333-4444-555555555555"}),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown, does_not_exist());
    let limit = f
        .call(
            "ListAssociationVersions",
            json!({"AssociationId": id, "MaxResults": 51}),
        )
        .await
        .unwrap_err();
    assert_eq!(limit.code(), "ValidationException");
}

#[tokio::test]
async fn ids_of_no_association_or_node_form_are_refused() {
    let f = Fixture::new();
    for (op, body, code) in [
        (
            "DescribeAssociation",
            json!({"AssociationId": "assoc#1"}),
            "ValidationException",
        ),
        (
            "DeleteAssociation",
            json!({"AssociationId": "x"}),
            "ValidationException",
        ),
        (
            "DescribeAssociationExecutionTargets",
            json!({"AssociationId": "11111111-2222-3333-4444-555555555555", "ExecutionId": "e"}),
            "ValidationException",
        ),
        (
            "DescribeInstanceAssociationsStatus",
            json!({"InstanceId": "node#1"}),
            "InvalidInstanceId",
        ),
        (
            "DescribeAssociation",
            json!({"Name": "AWS-RunShellScript", "InstanceId": "web"}),
            "InvalidInstanceId",
        ),
        ("DescribeAssociation", json!({}), "ValidationException"),
    ] {
        let err = f.call(op, body.clone()).await.unwrap_err();
        assert_eq!(err.code(), code, "{op} {body}: {err}");
    }
}

#[tokio::test]
async fn a_deleted_association_leaves_its_running_command_alone() {
    let f = Fixture::new();
    let id = f.create(shell(dev())).await;
    f.tick(T0).await;
    let (command_id, _, _) = f.sent().remove(0);
    f.call("DeleteAssociation", json!({"AssociationId": id}))
        .await
        .unwrap();
    assert!(f.runs.cancelled.lock().unwrap().is_empty());
    f.finish(&command_id, &[(A, "Success"), (B, "Success")]);
    let r = f.tick(T0 + 5.0).await;
    assert_eq!(r.finished, 1);
    let e = &f.store.all_executions()[0];
    assert_eq!(e.status, "Success");
    // Its executions stay readable by the association's id.
    let listed = f
        .call(
            "DescribeAssociationExecutions",
            json!({"AssociationId": id}),
        )
        .await
        .unwrap();
    assert_eq!(listed["AssociationExecutions"][0]["Status"], "Success");
    assert!(f.store.get(&id).await.unwrap().is_none());
}

fn output_to(bucket: &str) -> Value {
    json!({"S3Location": {"OutputS3BucketName": bucket, "OutputS3KeyPrefix": "assoc"}})
}

#[tokio::test]
async fn an_output_bucket_the_stack_cannot_write_is_refused_and_nothing_stored() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["OutputLocation"] = output_to("someone-elses-bucket");
    let e = f.call("CreateAssociation", body.clone()).await.unwrap_err();
    assert_eq!(e.code(), "InvalidOutputLocation");
    let msg = e.to_string();
    assert!(msg.contains("someone-elses-bucket"), "{msg}");
    assert!(msg.contains(STACK_BUCKET) && msg.contains("logs"), "{msg}");
    assert_eq!(f.count().await, 0);

    // In a batch: that entry fails as the client's fault, the other is made.
    let out = f
        .call(
            "CreateAssociationBatch",
            json!({"Entries": [body.clone(), shell(dev())]}),
        )
        .await
        .unwrap();
    assert_eq!(out["Successful"].as_array().unwrap().len(), 1);
    let failed = out["Failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["Fault"], "Client");
    assert_eq!(
        failed[0]["Entry"]["OutputLocation"],
        output_to("someone-elses-bucket")
    );
    assert!(
        failed[0]["Message"]
            .as_str()
            .unwrap()
            .contains("someone-elses-bucket")
    );
    assert_eq!(f.count().await, 1);

    // UpdateAssociation: refused; the association keeps its version and location.
    let id = out["Successful"][0]["AssociationId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut update = shell(dev());
    update["AssociationId"] = json!(id);
    update["OutputLocation"] = output_to("someone-elses-bucket");
    let e = f.call("UpdateAssociation", update).await.unwrap_err();
    assert_eq!(e.code(), "InvalidOutputLocation");
    let kept = f.store.get(&id).await.unwrap().unwrap();
    assert_eq!(kept.association_version, 1);
    assert_eq!(kept.output_location, None);
}

#[tokio::test]
async fn the_stacks_output_buckets_are_accepted() {
    let f = Fixture::new();
    let mut body = shell(dev());
    body["OutputLocation"] = output_to(STACK_BUCKET);
    let id = f.create(body).await;
    let mut update = shell(dev());
    update["AssociationId"] = json!(id);
    update["OutputLocation"] = output_to("logs");
    let out = f.call("UpdateAssociation", update).await.unwrap();
    assert_eq!(
        out["AssociationDescription"]["OutputLocation"],
        output_to("logs")
    );
    let kept = f.store.get(&id).await.unwrap().unwrap();
    assert_eq!(kept.association_version, 2);
    assert_eq!(kept.output_location, Some(output_to("logs")));
}
