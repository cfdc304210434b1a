//! Activations, registration, node information, tags and node credentials:
//! decode, call the fleet operations over the stack's adapters, encode.

use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::fleet::node::ResourceType;
use steward_core::fleet::ops;

use crate::auth::Principal;

/// The operator operations of the fleet (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let now = now_epoch();
    let ctx = stack.fleet().ports();
    let result = match op {
        "CreateActivation" => ops::create_activation(&ctx, body, now).await,
        "DescribeActivations" => ops::describe_activations(&ctx, body, now).await,
        "DeleteActivation" => ops::delete_activation(&ctx, body).await,
        "DeregisterManagedInstance" => ops::deregister_managed_instance(&ctx, body).await,
        "DescribeInstanceInformation" => ops::describe_instance_information(&ctx, body, now).await,
        "AddTagsToResource" => ops::add_tags_to_resource(&ctx, body).await,
        "RemoveTagsFromResource" => ops::remove_tags_from_resource(&ctx, body).await,
        "ListTagsForResource" => ops::list_tags_for_resource(&ctx, body).await,
        _ => return Err(crate::unsupported(op)),
    };
    if result.is_ok() && !op.starts_with("Describe") && !op.starts_with("List") {
        tracing::info!(operation = op, access_key_id = %p.access_key_id, user = %p.user_name, "fleet change");
    }
    result
}

/// The agent's operations (`Steward.<Op>`), authenticated by activation or
/// by the instance's signed EC2 identity (registration) or by the node's key
/// (credentials, SecureString values), not by SigV4.
pub async fn handle_agent(stack: &Stack, op: &str, body: &Value) -> Result<Value, SsmError> {
    let now = now_epoch();
    let ctx = stack.fleet().ports();
    match op {
        "RegisterManagedInstance" => {
            let resp = ops::register(&ctx, body, now).await?;
            tracing::info!(instance_id = %resp.instance_id, resource_type = %ResourceType::ManagedInstance.as_str(), "node registered");
            serde_json::to_value(resp).map_err(|_| SsmError::internal())
        }
        "RegisterEc2Instance" => {
            let resp = ops::register_ec2_instance(&ctx, body, now).await?;
            tracing::info!(instance_id = %resp.instance_id, resource_type = %ResourceType::EC2Instance.as_str(), "node registered");
            serde_json::to_value(resp).map_err(|_| SsmError::internal())
        }
        "GetNodeCredentials" => ops::node_credentials(&ctx, body, now).await,
        "GetSessionCredentials" => {
            steward_core::sessions::ops::agent_credentials::session_credentials(
                &stack.fleet().nodes,
                &stack.sessions().store,
                &stack.fleet().credentials,
                body,
                now,
            )
            .await
        }
        "GetNodeParameters" => crate::node_parameters::handle(stack, body, now).await,
        "GetOutputUploadUrls" => {
            use steward_core::run_command::operations::upload_urls as u;
            let rc = stack.run_command();
            let ports = u::UploadUrlAccess {
                nodes: &stack.fleet().nodes,
                commands: &rc.store,
                outputs: &rc.outputs,
            };
            u::get_output_upload_urls(&ports, body, now).await
        }
        _ => Err(SsmError::InvalidAction(format!(
            "Steward.{op} is not an agent operation; use RegisterManagedInstance, RegisterEc2Instance, GetNodeCredentials, GetSessionCredentials, GetNodeParameters or GetOutputUploadUrls."
        ))),
    }
}
