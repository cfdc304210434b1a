//! The actions a runbook step can take, and the inputs each accepts. Steward
//! runs the actions a fleet needs without a cloud account behind it; the
//! rest are refused at CreateDocument with what to use instead, never
//! skipped at run time.

use serde_json::Value;

use super::branch::Choice;
use super::variables;

/// An action Steward runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    RunCommand,
    Sleep,
    Pause,
    Approve,
    Branch,
    ExecuteAwsApi,
    WaitForAwsResourceProperty,
    AssertAwsResourceProperty,
    Loop,
}

/// SSM's actions Steward does not run, and why.
const REFUSED: [(&str, &str); 14] = [
    (
        "aws:executeScript",
        "Steward runs no scripts in the control plane",
    ),
    (
        "aws:invokeLambdaFunction",
        "Steward calls no Lambda functions of yours",
    ),
    (
        "aws:executeAutomation",
        "nested runbooks are not supported yet",
    ),
    ("aws:executeStateMachine", "Steward calls no Step Functions"),
    ("aws:invokeWebhook", "Steward calls no webhooks"),
    (
        "aws:createStack",
        "Steward manages no CloudFormation stacks",
    ),
    (
        "aws:deleteStack",
        "Steward manages no CloudFormation stacks",
    ),
    ("aws:runInstances", "Steward manages no EC2 instances"),
    (
        "aws:changeInstanceState",
        "Steward manages no EC2 instances",
    ),
    ("aws:createImage", "Steward manages no EC2 images"),
    ("aws:copyImage", "Steward manages no EC2 images"),
    ("aws:deleteImage", "Steward manages no EC2 images"),
    ("aws:createTags", "Steward manages no EC2 tags"),
    (
        "aws:sendCommand",
        "it is aws:runCommand's other name in SSM's documents only",
    ),
];

/// SSM operations an `aws:executeAwsApi` step (and the wait and assert
/// actions) may call: every AmazonSSM operation Steward serves. The API
/// function's routing table has a test that keeps the two the same.
pub const SSM_OPERATIONS: &[&str] = &[
    "AddTagsToResource",
    "CancelCommand",
    "CancelMaintenanceWindowExecution",
    "CreateActivation",
    "CreateAssociation",
    "CreateAssociationBatch",
    "CreateDocument",
    "CreateMaintenanceWindow",
    "CreatePatchBaseline",
    "DeleteActivation",
    "DeleteAssociation",
    "DeleteDocument",
    "DeleteInventory",
    "DeleteMaintenanceWindow",
    "DeleteParameter",
    "DeleteParameters",
    "DeletePatchBaseline",
    "DeregisterManagedInstance",
    "DeregisterPatchBaselineForPatchGroup",
    "DeregisterTargetFromMaintenanceWindow",
    "DeregisterTaskFromMaintenanceWindow",
    "DescribeActivations",
    "DescribeAssociation",
    "DescribeAssociationExecutionTargets",
    "DescribeAssociationExecutions",
    "DescribeAutomationExecutions",
    "DescribeAutomationStepExecutions",
    "DescribeDocument",
    "DescribeEffectiveInstanceAssociations",
    "DescribeInstanceAssociationsStatus",
    "DescribeInstanceInformation",
    "DescribeInstancePatchStates",
    "DescribeInstancePatchStatesForPatchGroup",
    "DescribeInstancePatches",
    "DescribeMaintenanceWindowExecutionTaskInvocations",
    "DescribeMaintenanceWindowExecutionTasks",
    "DescribeMaintenanceWindowExecutions",
    "DescribeMaintenanceWindowSchedule",
    "DescribeMaintenanceWindowTargets",
    "DescribeMaintenanceWindowTasks",
    "DescribeMaintenanceWindows",
    "DescribeMaintenanceWindowsForTarget",
    "DescribeParameters",
    "DescribePatchBaselines",
    "DescribePatchGroupState",
    "DescribePatchGroups",
    "DescribePatchProperties",
    "GetAutomationExecution",
    "GetCommandInvocation",
    "GetDefaultPatchBaseline",
    "GetDocument",
    "GetInventory",
    "GetInventorySchema",
    "GetMaintenanceWindow",
    "GetMaintenanceWindowExecution",
    "GetMaintenanceWindowExecutionTask",
    "GetMaintenanceWindowExecutionTaskInvocation",
    "GetMaintenanceWindowTask",
    "GetParameter",
    "GetParameterHistory",
    "GetParameters",
    "GetParametersByPath",
    "GetPatchBaseline",
    "GetPatchBaselineForPatchGroup",
    "LabelParameterVersion",
    "ListAssociationVersions",
    "ListAssociations",
    "ListCommandInvocations",
    "ListCommands",
    "ListComplianceItems",
    "ListComplianceSummaries",
    "ListDocumentVersions",
    "ListDocuments",
    "ListInventoryEntries",
    "ListResourceComplianceSummaries",
    "ListTagsForResource",
    "PutComplianceItems",
    "PutInventory",
    "PutParameter",
    "RegisterDefaultPatchBaseline",
    "RegisterPatchBaselineForPatchGroup",
    "RegisterTargetWithMaintenanceWindow",
    "RegisterTaskWithMaintenanceWindow",
    "RemoveTagsFromResource",
    "SendAutomationSignal",
    "SendCommand",
    "StartAssociationsOnce",
    "StartAutomationExecution",
    "StopAutomationExecution",
    "UnlabelParameterVersion",
    "UpdateAssociation",
    "UpdateAssociationStatus",
    "UpdateDocument",
    "UpdateDocumentDefaultVersion",
    "UpdateMaintenanceWindow",
    "UpdateMaintenanceWindowTarget",
    "UpdateMaintenanceWindowTask",
    "UpdatePatchBaseline",
];

impl ActionKind {
    pub const ALL: [ActionKind; 9] = [
        ActionKind::RunCommand,
        ActionKind::Sleep,
        ActionKind::Pause,
        ActionKind::Approve,
        ActionKind::Branch,
        ActionKind::ExecuteAwsApi,
        ActionKind::WaitForAwsResourceProperty,
        ActionKind::AssertAwsResourceProperty,
        ActionKind::Loop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::RunCommand => "aws:runCommand",
            ActionKind::Sleep => "aws:sleep",
            ActionKind::Pause => "aws:pause",
            ActionKind::Approve => "aws:approve",
            ActionKind::Branch => "aws:branch",
            ActionKind::ExecuteAwsApi => "aws:executeAwsApi",
            ActionKind::WaitForAwsResourceProperty => "aws:waitForAwsResourceProperty",
            ActionKind::AssertAwsResourceProperty => "aws:assertAwsResourceProperty",
            ActionKind::Loop => "aws:loop",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(a) = Self::ALL.into_iter().find(|a| a.as_str() == s) {
            return Ok(a);
        }
        if let Some((_, why)) = REFUSED.iter().find(|(a, _)| *a == s) {
            return Err(format!(
                "action {s} is not supported: {why}. Run the work on a node with an aws:runCommand step instead."
            ));
        }
        Err(format!(
            "action {s} is unknown; use one of {}.",
            Self::ALL.map(Self::as_str).join(", ")
        ))
    }

    /// Outputs the action always has, readable as `{{ step.Name }}`.
    pub fn builtin_outputs(self) -> &'static [&'static str] {
        match self {
            ActionKind::RunCommand => &["CommandId", "Status", "ResponseCode", "Output"],
            ActionKind::Approve => &["ApprovalStatus", "ApproverDecisions"],
            ActionKind::Loop => &["CurrentIteration", "CurrentIteratorValue"],
            _ => &[],
        }
    }

    /// Whether the step may declare `outputs` selected from its response.
    pub fn declares_outputs(self) -> bool {
        matches!(self, ActionKind::ExecuteAwsApi | ActionKind::RunCommand)
    }

    /// The steps an aws:branch step may go to (its choices and Default).
    pub fn branch_targets(self, inputs: &Value) -> Vec<String> {
        if self != ActionKind::Branch {
            return Vec::new();
        }
        let mut out: Vec<String> = inputs
            .get("Choices")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("NextStep").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(d) = inputs.get("Default").and_then(Value::as_str) {
            out.push(d.to_string());
        }
        out
    }

    /// The inputs as written (placeholders allowed wherever a value goes).
    pub fn check_inputs(self, inputs: &Value) -> Result<(), String> {
        let Value::Object(map) = inputs else {
            return Err("inputs must be an object.".into());
        };
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        match self {
            ActionKind::RunCommand => {
                only(
                    &keys,
                    &[
                        "DocumentName",
                        "DocumentVersion",
                        "InstanceIds",
                        "Targets",
                        "Parameters",
                        "MaxConcurrency",
                        "MaxErrors",
                        "TimeoutSeconds",
                        "Comment",
                    ],
                )?;
                need(map, "DocumentName")?;
                if map.contains_key("InstanceIds") == map.contains_key("Targets") {
                    return Err("give InstanceIds or Targets (one of them).".into());
                }
                Ok(())
            }
            ActionKind::Sleep => {
                only(&keys, &["Duration", "Timestamp"])?;
                match (map.get("Duration"), map.get("Timestamp")) {
                    (Some(d), None) => {
                        literal(d, |s| super::duration::parse_iso8601(s).map(|_| ()))
                    }
                    (None, Some(t)) => {
                        literal(t, |s| super::duration::parse_timestamp(s).map(|_| ()))
                    }
                    _ => Err(
                        "give Duration (ISO 8601, e.g. PT10M) or Timestamp (one of them).".into(),
                    ),
                }
            }
            ActionKind::Pause => only(&keys, &[]),
            ActionKind::Approve => {
                if keys.contains(&"NotificationArn") {
                    return Err("NotificationArn is not supported: approvers see waiting executions with `steward automation list` or DescribeAutomationExecutions.".into());
                }
                only(&keys, &["Approvers", "MinRequiredApprovals", "Message"])?;
                need(map, "Approvers")?;
                if let Some(Value::Array(a)) = map.get("Approvers")
                    && (a.is_empty() || a.len() > 10)
                {
                    return Err("Approvers takes 1 to 10 approvers.".into());
                }
                if let Some(n) = map.get("MinRequiredApprovals") {
                    literal_number(n, 1, 10, "MinRequiredApprovals")?;
                }
                Ok(())
            }
            ActionKind::Branch => {
                only(&keys, &["Choices", "Default"])?;
                let choices = match map.get("Choices") {
                    Some(Value::Array(c)) if !c.is_empty() => c,
                    _ => return Err("Choices must be a list of at least one choice.".into()),
                };
                for c in choices {
                    Choice::parse(c, true)?;
                }
                Ok(())
            }
            ActionKind::ExecuteAwsApi
            | ActionKind::WaitForAwsResourceProperty
            | ActionKind::AssertAwsResourceProperty => {
                need(map, "Service")?;
                need(map, "Api")?;
                check_service_api(map.get("Service"), map.get("Api"))?;
                if self != ActionKind::ExecuteAwsApi {
                    need(map, "PropertySelector")?;
                    need(map, "DesiredValues")?;
                    if let Some(Value::String(s)) = map.get("PropertySelector") {
                        check_selector(s)?;
                    }
                }
                Ok(())
            }
            ActionKind::Loop => {
                only(
                    &keys,
                    &["Iterators", "LoopCondition", "MaxIterations", "Steps"],
                )?;
                match (map.get("Iterators"), map.get("LoopCondition")) {
                    (Some(_), None) => {}
                    (None, Some(c)) => {
                        Choice::parse_condition(c, true)?;
                    }
                    _ => return Err("give Iterators or LoopCondition (one of them).".into()),
                }
                if let Some(n) = map.get("MaxIterations") {
                    literal_number(n, 1, 100, "MaxIterations")?;
                }
                match map.get("Steps") {
                    Some(Value::Array(s)) if !s.is_empty() => Ok(()),
                    _ => Err("Steps must be a list of at least one step.".into()),
                }
            }
        }
    }
}

fn only(keys: &[&str], allowed: &[&str]) -> Result<(), String> {
    match keys.iter().find(|k| !allowed.contains(k)) {
        None => Ok(()),
        Some(k) if allowed.is_empty() => Err(format!(
            "input {k} is not accepted: this action takes no inputs."
        )),
        Some(k) => Err(format!(
            "input {k} is not accepted; use {}.",
            allowed.join(", ")
        )),
    }
}

fn need(map: &serde_json::Map<String, Value>, key: &str) -> Result<(), String> {
    if map.contains_key(key) {
        Ok(())
    } else {
        Err(format!("input {key} is required."))
    }
}

/// A value written as a string placeholder is checked when the step starts.
fn is_placeholder(v: &Value) -> bool {
    matches!(v, Value::String(s) if !variables::find(s).is_empty())
}

fn literal(v: &Value, check: impl Fn(&str) -> Result<(), String>) -> Result<(), String> {
    match v {
        _ if is_placeholder(v) => Ok(()),
        Value::String(s) => check(s),
        other => Err(format!("{other} must be a string.")),
    }
}

fn literal_number(v: &Value, min: u64, max: u64, field: &str) -> Result<(), String> {
    if is_placeholder(v) {
        return Ok(());
    }
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(format!(
            "{field} must be a whole number from {min} to {max}."
        )),
    }
}

/// Service `ssm` only, and an operation Steward serves.
pub fn check_service_api(service: Option<&Value>, api: Option<&Value>) -> Result<(), String> {
    match service {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("ssm") => {}
        Some(Value::String(s)) => {
            return Err(format!(
                "Service {s} is not supported: Steward answers Service ssm only (its own operations)."
            ));
        }
        _ => return Err("Service must be the string ssm.".into()),
    }
    match api {
        Some(Value::String(a)) if SSM_OPERATIONS.contains(&a.as_str()) => Ok(()),
        Some(Value::String(a)) => Err(format!(
            "Api {a} is not an ssm operation Steward serves; use one of {}.",
            SSM_OPERATIONS.join(", ")
        )),
        _ => Err("Api must be the name of an ssm operation, e.g. GetParameter.".into()),
    }
}

/// A JSONPath (RFC 9535, which SSM's `$.A.B[0]` selectors are).
pub fn check_selector(selector: &str) -> Result<(), String> {
    super::selector::Selector::parse(selector).map(|_| ())
}
