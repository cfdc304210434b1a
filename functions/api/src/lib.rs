//! The api function: SSM's JSON 1.1 protocol (`X-Amz-Target: AmazonSSM.<Op>`)
//! for operators, SigV4-verified against Steward's own access keys, and the
//! agent's operations (`Steward.<Op>`), authenticated by activation, by an EC2
//! instance's signed identity document, or by the node's key.

pub mod associations;
pub mod auth;
pub mod automation;
pub mod commands;
pub mod compliance;
pub mod console;
pub mod documents;
pub mod fleet;
pub mod iam;
pub mod inventory;
pub mod lambda;
pub mod maintenance_windows;
pub mod node_parameters;
pub mod parameters;
pub mod patch_states;
pub mod patching;
pub mod scheduled_runs;
pub mod sessions;

use bytes::Bytes;
use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;

const JSON_11: &str = "application/x-amz-json-1.1";

/// Handles one HTTP request. The Lambda binary and the local server both call this.
pub async fn handle(stack: &Stack, req: http::Request<Bytes>) -> http::Response<Bytes> {
    let request_id = uuid_like();
    // The web console's files (GET only; every API call is a POST).
    if let Some(response) = console::serve(&req) {
        return response;
    }
    // IAM's Query protocol shares the endpoint and answers in its own XML.
    if iam::is_query_request(&req) {
        return iam::handle(stack, &req, &request_id).await;
    }
    match route(stack, &req).await {
        Ok(body) => respond(200, &request_id, None, body),
        Err(e) => {
            if matches!(e, SsmError::InternalServerError(_)) {
                tracing::error!(request_id, "request failed with an internal error");
            } else {
                tracing::info!(request_id, error = e.code(), "request refused");
            }
            let body = serde_json::json!({ "__type": e.code(), "message": e.to_string() });
            respond(e.http_status(), &request_id, Some(e.code()), body)
        }
    }
}

async fn route(stack: &Stack, req: &http::Request<Bytes>) -> Result<Value, SsmError> {
    if req.method() != http::Method::POST {
        return Err(SsmError::ValidationException(
            "Use POST with an X-Amz-Target header, as the AWS SDKs do.".into(),
        ));
    }
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (service, op) = target.split_once('.').unwrap_or(("", ""));
    let body: Value = if req.body().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(req.body()).map_err(|e| {
            SsmError::SerializationException(format!("Request body is not JSON: {e}"))
        })?
    };
    match service {
        "AmazonSSM" => {
            // Authenticate before anything else: an unsigned request learns nothing.
            let principal = auth::authenticate(stack, req, "ssm").await?;
            call_as(stack, &principal, op, &body).await
        }
        "Steward" => fleet::handle_agent(stack, op, &body).await,
        _ => Err(SsmError::InvalidAction(
            "Missing or unknown X-Amz-Target; expected AmazonSSM.<Operation>.".into(),
        )),
    }
}

/// An SSM operation as `principal`: authorized, checked against SSM's
/// input constraints, then served by its area. Requests and automation
/// steps both come through here.
pub async fn call_as(
    stack: &Stack,
    principal: &auth::Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    principal.authorize(op)?;
    // SSM's own input constraints, before any operation reads the body.
    steward_core::api_model::validate(op, body)?;
    match area(op, body).ok_or_else(|| unsupported(op))? {
        Area::Parameters => parameters::handle(stack, principal, op, body).await,
        Area::Documents => documents::handle(stack, principal, op, body).await,
        Area::Fleet => fleet::handle(stack, principal, op, body).await,
        Area::RunCommand => commands::handle(stack, principal, op, body).await,
        Area::Automation => automation::handle(stack, principal, op, body).await,
        Area::Compliance => compliance::handle(stack, principal, op, body).await,
        Area::Patching => patching::handle(stack, principal, op, body).await,
        Area::PatchStates => patch_states::handle(stack, principal, op, body).await,
        Area::Inventory => inventory::handle(stack, principal, op, body).await,
        Area::Associations => associations::handle(stack, principal, op, body).await,
        Area::MaintenanceWindows => maintenance_windows::handle(stack, principal, op, body).await,
        Area::Sessions => sessions::handle(stack, principal, op, body).await,
    }
}

/// Who serves an SSM operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Parameters,
    Documents,
    Fleet,
    RunCommand,
    Automation,
    Compliance,
    Patching,
    PatchStates,
    Inventory,
    Associations,
    MaintenanceWindows,
    Sessions,
}

/// Every SSM operation Steward serves, and its area; `None` for any other.
fn area(op: &str, body: &Value) -> Option<Area> {
    if steward_core::associations::ops::OPERATIONS.contains(&op) {
        return Some(Area::Associations);
    }
    if steward_core::maintenance_windows::ops::OPERATIONS.contains(&op) {
        return Some(Area::MaintenanceWindows);
    }
    if steward_core::sessions::ops::OPERATIONS.contains(&op) {
        return Some(Area::Sessions);
    }
    Some(match op {
        "PutParameter"
        | "GetParameter"
        | "GetParameters"
        | "GetParametersByPath"
        | "DescribeParameters"
        | "GetParameterHistory"
        | "LabelParameterVersion"
        | "UnlabelParameterVersion"
        | "DeleteParameter"
        | "DeleteParameters" => Area::Parameters,
        "CreateDocument"
        | "UpdateDocument"
        | "DescribeDocument"
        | "GetDocument"
        | "ListDocuments"
        | "ListDocumentVersions"
        | "UpdateDocumentDefaultVersion"
        | "DeleteDocument" => Area::Documents,
        "CreateActivation"
        | "DescribeActivations"
        | "DeleteActivation"
        | "DeregisterManagedInstance"
        | "DescribeInstanceInformation" => Area::Fleet,
        "SendCommand"
        | "ListCommands"
        | "ListCommandInvocations"
        | "GetCommandInvocation"
        | "CancelCommand" => Area::RunCommand,
        "StartAutomationExecution"
        | "GetAutomationExecution"
        | "DescribeAutomationExecutions"
        | "DescribeAutomationStepExecutions"
        | "StopAutomationExecution"
        | "SendAutomationSignal" => Area::Automation,
        "PutComplianceItems"
        | "ListComplianceItems"
        | "ListComplianceSummaries"
        | "ListResourceComplianceSummaries" => Area::Compliance,
        "CreatePatchBaseline"
        | "GetPatchBaseline"
        | "UpdatePatchBaseline"
        | "DeletePatchBaseline"
        | "DescribePatchBaselines"
        | "DescribePatchProperties"
        | "RegisterDefaultPatchBaseline"
        | "GetDefaultPatchBaseline"
        | "RegisterPatchBaselineForPatchGroup"
        | "DeregisterPatchBaselineForPatchGroup"
        | "GetPatchBaselineForPatchGroup"
        | "DescribePatchGroups" => Area::Patching,
        "DescribeInstancePatchStates"
        | "DescribeInstancePatchStatesForPatchGroup"
        | "DescribeInstancePatches"
        | "DescribePatchGroupState" => Area::PatchStates,
        "PutInventory"
        | "GetInventory"
        | "ListInventoryEntries"
        | "GetInventorySchema"
        | "DeleteInventory" => Area::Inventory,
        // Tagging is shared: the resource's type decides. The fleet answers
        // any type no other area keeps, refusing all but `ManagedInstance`.
        "AddTagsToResource" | "RemoveTagsFromResource" | "ListTagsForResource" => {
            match body.get("ResourceType").and_then(Value::as_str) {
                Some("Parameter") => Area::Parameters,
                Some("Document") => Area::Documents,
                Some("PatchBaseline") => Area::Patching,
                _ => Area::Fleet,
            }
        }
        _ => return None,
    })
}

/// The answer to an operation Steward does not serve.
pub(crate) fn unsupported(op: &str) -> SsmError {
    SsmError::InvalidAction(format!("Operation {op} is not supported by Steward."))
}

fn respond(
    status: u16,
    request_id: &str,
    error: Option<&str>,
    body: Value,
) -> http::Response<Bytes> {
    let mut b = http::Response::builder()
        .status(status)
        .header("content-type", JSON_11)
        .header("x-amzn-requestid", request_id);
    if let Some(code) = error {
        b = b.header("x-amzn-errortype", code);
    }
    b.body(Bytes::from(body.to_string()))
        .unwrap_or_else(|_| http::Response::new(Bytes::new()))
}

fn uuid_like() -> String {
    steward_core::ids::new_command_id()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use steward_core::{documents, parameters};

    use super::*;

    #[test]
    fn the_table_agrees_with_the_areas_own_lists() {
        for op in parameters::operations::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::Parameters), "{op}");
        }
        for op in documents::operations::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::Documents), "{op}");
        }
        for op in steward_core::compliance::operations::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::Compliance), "{op}");
        }
        for op in steward_core::patching::instance_state::describe::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::PatchStates), "{op}");
        }
        for op in steward_core::patching::ops::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::Patching), "{op}");
        }
        for op in steward_core::inventory::operations::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::Inventory), "{op}");
        }
        for op in steward_core::associations::ops::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::Associations), "{op}");
        }
        for op in steward_core::maintenance_windows::ops::OPERATIONS {
            assert_eq!(area(op, &json!({})), Some(Area::MaintenanceWindows), "{op}");
        }
        for op in [
            "AddTagsToResource",
            "RemoveTagsFromResource",
            "ListTagsForResource",
        ] {
            for (resource_type, expected) in [
                ("Parameter", Area::Parameters),
                ("Document", Area::Documents),
                ("PatchBaseline", Area::Patching),
                ("ManagedInstance", Area::Fleet),
                ("Association", Area::Fleet),
            ] {
                let body = json!({ "ResourceType": resource_type });
                assert_eq!(area(op, &body), Some(expected), "{op} {resource_type}");
                assert_eq!(
                    parameters::operations::claims(op, &body),
                    expected == Area::Parameters
                );
                assert_eq!(
                    documents::operations::serves(op, &body),
                    expected == Area::Documents
                );
                assert_eq!(
                    steward_core::patching::ops::serves(op, &body),
                    expected == Area::Patching
                );
            }
        }
    }

    /// What a runbook's API steps may call is what this table serves but
    /// sessions (a session's token is a secret no step output may hold),
    /// and SSM's input constraints are kept for exactly what is served.
    #[test]
    fn runbooks_may_call_exactly_the_operations_served() {
        use steward_core::automation::actions::SSM_OPERATIONS;
        let sessions = steward_core::sessions::ops::OPERATIONS;
        let mut checked = steward_core::api_model::operation_names().unwrap();
        checked.sort();
        let mut served: Vec<String> = SSM_OPERATIONS
            .iter()
            .chain(sessions.iter())
            .map(|s| s.to_string())
            .collect();
        served.sort();
        assert_eq!(checked, served);
        for op in SSM_OPERATIONS.iter().chain(sessions.iter()) {
            assert!(area(op, &json!({})).is_some(), "{op} is served");
        }
        for op in sessions {
            assert!(!SSM_OPERATIONS.contains(&op), "{op} is not for runbooks");
        }
        for op in [
            "StartChangeRequestExecution",
            "DescribeInventoryDeletions",
            "DescribeAvailablePatches",
        ] {
            assert_eq!(area(op, &json!({})), None, "{op}");
        }
    }
}
