//! RegisterManagedInstance (the agent's, unsigned): a node's queue, then one
//! transaction that takes a registration from the activation and puts the node.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids;

use crate::fleet::FleetContext;
use crate::fleet::activation::{self};
use crate::fleet::node::{Node, ResourceType};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterRequest {
    pub activation_id: String,
    pub activation_code: String,
    pub public_key: String,
    #[serde(flatten)]
    pub reported: NodeReport,
}

/// What a registering node says about itself, however it registers.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeReport {
    pub hostname: String,
    pub platform_name: String,
    pub platform_version: String,
    pub agent_version: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
}

impl NodeReport {
    /// The lengths, checked before any store sees them.
    pub(super) fn check(&self) -> Result<(), SsmError> {
        for (field, value, max) in [
            ("Hostname", &self.hostname, 255),
            ("PlatformName", &self.platform_name, 128),
            ("PlatformVersion", &self.platform_version, 128),
            ("AgentVersion", &self.agent_version, 64),
            ("IPAddress", &self.ip_address, 64),
        ] {
            if value.chars().count() > max {
                return Err(SsmError::ValidationException(format!(
                    "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterResponse {
    pub instance_id: String,
    pub queue_url: String,
    pub ingest_queue_url: String,
    pub region: String,
    pub command_signing_public_key: String,
}

/// Registers a node with an activation: its queue first (idempotent, removed
/// again if registration fails), then one transaction that takes a
/// registration from the activation, puts the node and indexes its tags.
pub async fn register(
    ctx: &FleetContext<'_>,
    body: &Value,
    now: f64,
) -> Result<RegisterResponse, SsmError> {
    let req: RegisterRequest = parse(body)?;
    // Unsigned: everything is checked before any store sees it.
    if !ids::is_activation_id(&req.activation_id) || req.activation_code.len() > 250 {
        return Err(activation::invalid_activation());
    }
    req.reported.check()?;
    check_public_key(&req.public_key)?;
    let activation = ctx
        .activations
        .get(&req.activation_id)
        .await?
        .ok_or_else(activation::invalid_activation)?;
    activation.admits(&req.activation_code, now)?;
    let command_signing_public_key = ctx.signing_key.public_key_b64().await?;

    let instance_id = ids::new_managed_instance_id();
    let queue = ctx.queues.ensure_queue(&instance_id).await?;
    let node = Node {
        instance_id: instance_id.clone(),
        resource_type: ResourceType::ManagedInstance,
        activation_id: activation.activation_id.clone(),
        name: activation.default_instance_name.clone(),
        iam_role: activation.iam_role.clone(),
        registration_date: now,
        last_ping_date_time: now,
        agent_version: req.reported.agent_version,
        platform_type: "Linux".into(),
        platform_name: req.reported.platform_name,
        platform_version: req.reported.platform_version,
        computer_name: req.reported.hostname,
        ip_address: req.reported.ip_address,
        public_key: req.public_key,
        queue_url: queue.url.clone(),
        queue_arn: queue.arn.clone(),
        tags: activation.tags.clone(),
        tags_version: 0,
    };
    if let Err(e) = ctx.nodes.register(&node, &activation.code_hash, now).await {
        // The queue is empty and no node owns it; the adapter logs a failed
        // cleanup, and the registration's own error is what the caller needs.
        let _ = ctx.queues.delete_queue(&queue.url).await;
        return Err(e);
    }
    Ok(RegisterResponse {
        instance_id,
        queue_url: queue.url,
        ingest_queue_url: ctx.queues.ingest_queue_url().to_string(),
        region: ctx.queues.region().to_string(),
        command_signing_public_key,
    })
}

/// A node's identity on the uplink: a raw Ed25519 public key.
pub(super) fn check_public_key(public_key: &str) -> Result<(), SsmError> {
    match B64.decode(public_key) {
        Ok(k) if k.len() == 32 => Ok(()),
        _ => Err(SsmError::ValidationException(
            "PublicKey must be the base64 of a raw 32-byte Ed25519 public key.".into(),
        )),
    }
}
