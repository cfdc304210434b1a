//! RegisterEc2Instance (the agent's): an EC2 instance joins with no
//! activation. It proves which instance it is with the identity document and
//! signature IMDS serves it, and that it holds the key it registers by
//! signing the request with that key.
//!
//! The document carries no signing time and can be read by anything on the
//! instance, so a stolen document must not buy a second identity: the first
//! key registered for an instance id is the only one accepted for it until
//! the node is deregistered. The same key again is a re-registration (a
//! reboot, a reinstalled agent that kept its state) and only refreshes what
//! the node reports.

use serde::Deserialize;
use serde_json::Value;

use crate::channel;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::fleet::FleetContext;
use crate::fleet::instance_identity::IdentityDocument;
use crate::fleet::node::{Node, ResourceType};
use crate::fleet::signed_request::{MAX_CLOCK_SKEW_SECONDS, Refusal};
use crate::ids;

use super::registration::{NodeReport, RegisterResponse, check_public_key};

/// IMDS serves a document of a few hundred bytes; this bounds what is hashed
/// and parsed for an unauthenticated caller.
const MAX_DOCUMENT_CHARS: usize = 4096;
/// The base64 of an RSA signature of up to 8192 bits, with line breaks.
const MAX_SIGNATURE_CHARS: usize = 1500;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterEc2Request {
    pub instance_identity_document: String,
    pub instance_identity_signature: String,
    pub public_key: String,
    pub timestamp: i64,
    /// The node key's signature over [`ec2_registration_message`].
    pub signature: String,
    #[serde(flatten)]
    pub reported: NodeReport,
}

/// What the registering node signs with its key: binds the key to this
/// document at this time.
pub fn ec2_registration_message(timestamp: i64, public_key_b64: &str, document: &str) -> Vec<u8> {
    format!(
        "steward-ec2-registration\n{timestamp}\n{public_key_b64}\n{}",
        ids::sha256_hex(document.as_bytes())
    )
    .into_bytes()
}

/// Attempts at the read-then-conditional-write below before giving up on a
/// node that keeps changing under it.
const ATTEMPTS: usize = 4;

pub async fn register_ec2_instance(
    ctx: &FleetContext<'_>,
    body: &Value,
    now: f64,
) -> Result<RegisterResponse, SsmError> {
    let req: RegisterEc2Request = parse(body)?;
    check_request(&req)?;
    // Possession of the key first: it costs no store read.
    let message = ec2_registration_message(
        req.timestamp,
        &req.public_key,
        &req.instance_identity_document,
    );
    channel::verify_node_signature(&req.public_key, &message, &req.signature).map_err(|_| {
        SsmError::InvalidSignatureException(
            "The request's Signature does not verify with its PublicKey: sign the registration with the key being registered.".into(),
        )
    })?;
    if (now as i64 - req.timestamp).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(Refusal::Stale.into_error(""));
    }
    let doc = ctx.ec2_trust.admit(
        &req.instance_identity_document,
        &req.instance_identity_signature,
    )?;
    let tags = ctx.instance_tags.tags_of(&doc.instance_id).await?;
    let command_signing_public_key = ctx.signing_key.public_key_b64().await?;
    // Also recreates a queue lost since the node registered; the same id
    // always names the same queue.
    let queue = ctx.queues.ensure_queue(&doc.instance_id).await?;

    for _ in 0..ATTEMPTS {
        match ctx.nodes.get(&doc.instance_id).await? {
            Some(existing) if existing.public_key != req.public_key => {
                return Err(SsmError::AccessDeniedException(format!(
                    "Instance {id} is already registered with another key. If this is the same instance with a new disk, deregister it first (steward nodes deregister {id}) and register again.",
                    id = doc.instance_id
                )));
            }
            Some(existing) => {
                let refreshed = Node {
                    last_ping_date_time: now.max(existing.last_ping_date_time),
                    agent_version: req.reported.agent_version.clone(),
                    platform_name: req.reported.platform_name.clone(),
                    platform_version: req.reported.platform_version.clone(),
                    computer_name: req.reported.hostname.clone(),
                    ip_address: reported_ip(&req, &doc),
                    ..existing
                };
                if !ctx.nodes.refresh_instance(&refreshed).await? {
                    continue;
                }
                if refreshed.tags != tags && !ctx.nodes.replace_tags(&refreshed, &tags).await? {
                    continue;
                }
                return Ok(response(ctx, refreshed, command_signing_public_key));
            }
            None => {
                let node = Node {
                    instance_id: doc.instance_id.clone(),
                    resource_type: ResourceType::EC2Instance,
                    activation_id: String::new(),
                    name: String::new(),
                    iam_role: String::new(),
                    registration_date: now,
                    last_ping_date_time: now,
                    agent_version: req.reported.agent_version.clone(),
                    platform_type: "Linux".into(),
                    platform_name: req.reported.platform_name.clone(),
                    platform_version: req.reported.platform_version.clone(),
                    computer_name: req.reported.hostname.clone(),
                    ip_address: reported_ip(&req, &doc),
                    public_key: req.public_key.clone(),
                    queue_url: queue.url.clone(),
                    queue_arn: queue.arn.clone(),
                    tags: tags.clone(),
                    tags_version: 0,
                };
                // Lost a race with another registration of this instance:
                // read again, and its key decides.
                if ctx.nodes.register_instance(&node, now).await? {
                    return Ok(response(ctx, node, command_signing_public_key));
                }
            }
        }
    }
    Err(SsmError::ThrottlingException(format!(
        "Instance {} changed while it registered; retry shortly.",
        doc.instance_id
    )))
}

fn check_request(req: &RegisterEc2Request) -> Result<(), SsmError> {
    for (field, value, max) in [
        (
            "InstanceIdentityDocument",
            &req.instance_identity_document,
            MAX_DOCUMENT_CHARS,
        ),
        (
            "InstanceIdentitySignature",
            &req.instance_identity_signature,
            MAX_SIGNATURE_CHARS,
        ),
    ] {
        if value.trim().is_empty() {
            return Err(SsmError::ValidationException(format!(
                "{field} is missing: send what IMDS serves at /latest/dynamic/instance-identity/{}.",
                if field == "InstanceIdentityDocument" {
                    "document"
                } else {
                    "signature"
                }
            )));
        }
        if value.chars().count() > max {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            )));
        }
    }
    if req.signature.len() > 200 {
        return Err(SsmError::ValidationException(
            "1 validation error detected: Value at 'Signature' failed to satisfy constraint: Member must have length less than or equal to 200".into(),
        ));
    }
    req.reported.check()?;
    check_public_key(&req.public_key)
}

/// The address the agent saw on its interfaces, else the instance's private
/// address from the document.
fn reported_ip(req: &RegisterEc2Request, doc: &IdentityDocument) -> String {
    if req.reported.ip_address.is_empty() {
        doc.private_ip.clone().unwrap_or_default()
    } else {
        req.reported.ip_address.clone()
    }
}

fn response(
    ctx: &FleetContext<'_>,
    node: Node,
    command_signing_public_key: String,
) -> RegisterResponse {
    RegisterResponse {
        instance_id: node.instance_id,
        queue_url: node.queue_url,
        ingest_queue_url: ctx.queues.ingest_queue_url().to_string(),
        region: ctx.queues.region().to_string(),
        command_signing_public_key,
    }
}
