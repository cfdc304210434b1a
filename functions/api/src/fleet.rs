//! Activations, registration, node information, tags and node credentials:
//! decode, call the fleet operations over the adapters, encode.

use serde_json::Value;
use steward_aws::Stack;
use steward_aws::activations::ActivationTable;
use steward_aws::credentials::StsCredentialIssuer;
use steward_aws::nodes::NodeTable;
use steward_aws::tag_index::FleetDirectory;
use steward_core::SsmError;
use steward_core::clock::now_epoch;
use steward_core::fleet::ops;

use crate::auth::Principal;

/// The operator operations of the fleet; `None` for any other operation.
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    let now = now_epoch();
    let nodes = NodeTable::new(stack);
    let activations = ActivationTable::new(stack);
    let result = match op {
        "CreateActivation" => ops::create_activation(&activations, body, now).await,
        "DescribeActivations" => ops::describe_activations(&activations, body, now).await,
        "DeleteActivation" => ops::delete_activation(&activations, body).await,
        "DescribeInstanceInformation" => {
            let dir = FleetDirectory::new(stack);
            ops::describe_instance_information(
                &nodes,
                &dir,
                body,
                now,
                stack.settings.connection_lost_seconds,
            )
            .await
        }
        "AddTagsToResource" => ops::add_tags_to_resource(&nodes, body).await,
        "RemoveTagsFromResource" => ops::remove_tags_from_resource(&nodes, body).await,
        "ListTagsForResource" => ops::list_tags_for_resource(&nodes, body).await,
        _ => return None,
    };
    if result.is_ok() && !op.starts_with("Describe") && !op.starts_with("List") {
        tracing::info!(operation = op, access_key_id = %p.access_key_id, user = %p.user_name, "fleet change");
    }
    Some(result)
}

/// The agent's operations (`Steward.<Op>`), authenticated by activation
/// (registration) or by the node's key (credentials, SecureString values),
/// not by SigV4.
pub async fn handle_agent(stack: &Stack, op: &str, body: &Value) -> Result<Value, SsmError> {
    let now = now_epoch();
    let nodes = NodeTable::new(stack);
    match op {
        "RegisterManagedInstance" => {
            let activations = ActivationTable::new(stack);
            let resp = ops::register(
                &nodes,
                &activations,
                stack.queue_provisioner(),
                stack.signing_key(),
                body,
                now,
            )
            .await?;
            tracing::info!(instance_id = %resp.instance_id, "node registered");
            serde_json::to_value(resp).map_err(|_| SsmError::internal())
        }
        "GetNodeCredentials" => {
            let issuer = StsCredentialIssuer::new(stack);
            ops::node_credentials(&nodes, stack.queue_provisioner(), &issuer, body, now).await
        }
        "GetNodeParameters" => crate::node_parameters::handle(stack, body, now).await,
        _ => Err(SsmError::InvalidAction(format!(
            "Steward.{op} is not an agent operation; use RegisterManagedInstance, GetNodeCredentials or GetNodeParameters."
        ))),
    }
}
