use serde_json::{Value, json};

use super::*;
use crate::error::SsmError;

fn parse(v: Value) -> Result<Runbook, SsmError> {
    Runbook::parse(&v.to_string(), DocumentFormat::Json)
}

fn refusal(v: Value) -> String {
    match parse(v) {
        Err(SsmError::InvalidDocumentContent(m)) => m,
        other => panic!("expected InvalidDocumentContent, got {other:?}"),
    }
}

fn restart_runbook() -> Value {
    json!({
        "schemaVersion": "0.3",
        "description": "Restart a service and check it",
        "assumeRole": "{{ AutomationAssumeRole }}",
        "parameters": {
            "InstanceId": {"type": "String"},
            "Service": {"type": "String", "default": "web"},
            "AutomationAssumeRole": {"type": "String", "default": ""}
        },
        "mainSteps": [
            {"name": "restart", "action": "aws:runCommand", "inputs": {
                "DocumentName": "AWS-RunShellScript",
                "InstanceIds": ["{{ InstanceId }}"],
                "Parameters": {"commands": ["systemctl restart {{ Service }} # {{ automation:EXECUTION_ID }}"]}
            }, "onFailure": "step:report", "timeoutSeconds": 600},
            {"name": "check", "action": "aws:branch", "inputs": {
                "Choices": [{"NextStep": "done", "Variable": "{{ restart.Status }}", "StringEquals": "Success"}],
                "Default": "report"
            }},
            {"name": "report", "action": "aws:executeAwsApi", "inputs": {
                "Service": "ssm", "Api": "GetCommandInvocation",
                "CommandId": "{{ restart.CommandId }}", "InstanceId": "{{ InstanceId }}"
            }, "outputs": [{"Name": "Said", "Selector": "$.StandardOutputContent", "Type": "String"}],
            "isEnd": true},
            {"name": "done", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "isCritical": "false", "maxAttempts": 3}
        ],
        "outputs": ["restart.CommandId", "report.Said"]
    })
}

#[test]
fn a_runbook_with_every_kind_of_reference_is_read() {
    let r = parse(restart_runbook()).unwrap();
    assert_eq!(r.assume_role.as_deref(), Some("{{ AutomationAssumeRole }}"));
    assert_eq!(r.parameters.len(), 3);
    let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["restart", "check", "report", "done"]);
    let restart = &r.steps[0];
    assert_eq!(restart.action, ActionKind::RunCommand);
    assert_eq!(restart.on_failure, OnFailure::Step("report".into()));
    assert_eq!(restart.timeout_seconds, Some(600));
    assert!(restart.is_critical && !restart.is_end);
    assert!(r.steps[2].is_end);
    assert!(!r.steps[3].is_critical);
    assert_eq!(r.steps[3].max_attempts, 3);
    assert_eq!(r.outputs, ["restart.CommandId", "report.Said"]);
}

#[test]
fn yaml_runbooks_read_the_same() {
    let yaml =
        "schemaVersion: '0.3'\nmainSteps:\n  - name: wait\n    action: aws:pause\n    inputs: {}\n";
    let r = Runbook::parse(yaml, DocumentFormat::Yaml).unwrap();
    assert_eq!(r.steps[0].action, ActionKind::Pause);
}

#[test]
fn each_create_time_check_names_the_step() {
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut dup = restart_runbook();
    dup["mainSteps"][3]["name"] = json!("restart");
    cases.push((dup, "Step name \"restart\" is used twice"));
    let mut unknown = restart_runbook();
    unknown["mainSteps"][3]["action"] = json!("aws:teleport");
    cases.push((unknown, "Step \"done\": action aws:teleport is unknown"));
    let mut script = restart_runbook();
    script["mainSteps"][3]["action"] = json!("aws:executeScript");
    cases.push((
        script,
        "Step \"done\": action aws:executeScript is not supported",
    ));
    let mut next = restart_runbook();
    next["mainSteps"][0]["nextStep"] = json!("nowhere");
    cases.push((next, "Step \"restart\": nextStep names step \"nowhere\""));
    let mut branch = restart_runbook();
    branch["mainSteps"][1]["inputs"]["Default"] = json!("nowhere");
    cases.push((
        branch,
        "Step \"check\": a choice's NextStep names step \"nowhere\"",
    ));
    let mut on_failure = restart_runbook();
    on_failure["mainSteps"][0]["onFailure"] = json!("step:nowhere");
    cases.push((
        on_failure,
        "Step \"restart\": onFailure names step \"nowhere\"",
    ));
    let mut output = restart_runbook();
    output["mainSteps"][2]["inputs"]["CommandId"] = json!("{{ restart.Nope }}");
    cases.push((output, "Step \"report\" refers to {{ restart.Nope }}, but step \"restart\" declares no output Nope"));
    let mut step = restart_runbook();
    step["mainSteps"][2]["inputs"]["CommandId"] = json!("{{ ghost.CommandId }}");
    cases.push((
        step,
        "Step \"report\" refers to {{ ghost.CommandId }}, but the runbook has no step \"ghost\"",
    ));
    let mut param = restart_runbook();
    param["mainSteps"][2]["inputs"]["InstanceId"] = json!("{{ Node }}");
    cases.push((
        param,
        "Step \"report\" refers to {{ Node }}, which is neither a parameter",
    ));
    let mut variable = restart_runbook();
    variable["mainSteps"][2]["inputs"]["InstanceId"] = json!("{{ global:NOPE }}");
    cases.push((
        variable,
        "Step \"report\" refers to {{ global:NOPE }}, which is not an automation variable",
    ));
    let mut service = restart_runbook();
    service["mainSteps"][2]["inputs"]["Service"] = json!("ec2");
    cases.push((service, "Step \"report\": Service ec2 is not supported"));
    let mut api = restart_runbook();
    api["mainSteps"][2]["inputs"]["Api"] = json!("StartSession");
    cases.push((
        api,
        "Step \"report\": Api StartSession is not an ssm operation Steward serves",
    ));
    let mut outputs = restart_runbook();
    outputs["outputs"] = json!(["report.Nope"]);
    cases.push((outputs, "The runbook's outputs name \"report.Nope\""));
    let mut on_cancel = restart_runbook();
    on_cancel["mainSteps"][3]["onCancel"] = json!("Continue");
    cases.push((
        on_cancel,
        "Step \"done\": onCancel \"Continue\" is not valid",
    ));
    let mut sleep = restart_runbook();
    sleep["mainSteps"][3]["inputs"] = json!({"Duration": "ten minutes"});
    cases.push((
        sleep,
        "Step \"done\": Duration ten minutes is not an ISO 8601 duration",
    ));
    let mut selector = restart_runbook();
    selector["mainSteps"][2]["outputs"][0]["Selector"] = json!("StandardOutputContent");
    cases.push((
        selector,
        "Step \"report\": output \"Said\": Selector StandardOutputContent must be a JSONPath",
    ));
    let mut run = restart_runbook();
    run["mainSteps"][0]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("InstanceIds");
    cases.push((run, "Step \"restart\": give InstanceIds or Targets"));
    for (doc, want) in cases {
        let got = refusal(doc);
        assert!(got.starts_with(want), "wanted {want:?}, got {got:?}");
    }
}

#[test]
fn the_schema_version_must_be_0_3() {
    let mut v = restart_runbook();
    v["schemaVersion"] = json!("2.2");
    match parse(v) {
        Err(SsmError::InvalidDocumentSchemaVersion(m)) => assert!(m.contains("Use 0.3"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn loop_steps_jump_among_themselves_and_their_outputs_are_readable() {
    let v = json!({
        "schemaVersion": "0.3",
        "parameters": {"Ids": {"type": "StringList"}},
        "mainSteps": [
            {"name": "each", "action": "aws:loop", "inputs": {
                "Iterators": "{{ Ids }}",
                "Steps": [
                    {"name": "touch", "action": "aws:runCommand", "inputs": {
                        "DocumentName": "AWS-RunShellScript",
                        "InstanceIds": ["{{ each.CurrentIteratorValue }}"],
                        "Parameters": {"commands": ["true"]}}, "nextStep": "nap"},
                    {"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}}
                ]}},
            {"name": "after", "action": "aws:pause", "inputs": {}}
        ]
    });
    let r = parse(v.clone()).unwrap();
    assert_eq!(r.steps[0].loop_steps.len(), 2);
    assert_eq!(r.all_steps().len(), 4);
    // A loop's steps cannot jump out of the loop.
    let mut out = v;
    out["mainSteps"][0]["inputs"]["Steps"][0]["nextStep"] = json!("after");
    assert!(refusal(out).starts_with("Step \"touch\": nextStep names step \"after\""));
}

#[test]
fn unknown_fields_and_missing_steps_are_refused() {
    let mut extra = restart_runbook();
    extra["mainSteps"][0]["retries"] = json!(3);
    assert!(refusal(extra).contains("retries"));
    assert!(
        refusal(json!({"schemaVersion": "0.3", "mainSteps": []}))
            .starts_with("The runbook has no steps")
    );
    let mut dotted = restart_runbook();
    dotted["mainSteps"][3]["name"] = json!("a.b");
    assert!(refusal(dotted).starts_with("Step name \"a.b\" is not valid"));
}
