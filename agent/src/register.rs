//! Registration with an activation (a fresh Ed25519 key) or by EC2 instance
//! identity (a new key, or the one the instance registered with), the
//! API's answer, and the identity written to the state directory.

use std::path::Path;

use steward_core::channel::{ChannelError, DownlinkVerifier, NodeKey};
use thiserror::Error;

use crate::api::{Api, ApiError, Ec2Registration, Registered, Registration};
use crate::identity::{Identity, IdentityError};
use crate::imds::InstanceIdentity;
use crate::platform::Platform;

#[derive(Debug, Error)]
pub enum RegisterError {
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error("{0}")]
    Identity(#[from] IdentityError),
    #[error("cannot make a node key: {0}")]
    Key(ChannelError),
    #[error("the API answered a command-signing key the agent cannot use: {0}")]
    SigningKey(ChannelError),
}

impl RegisterError {
    /// The API refused the activation itself: trying again will not help.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Api(e) if !e.is_transient() && matches!(e, ApiError::Refused { .. }))
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Api(e) if e.is_transient())
    }
}

pub struct Activation {
    pub code: String,
    pub id: String,
    pub name: Option<String>,
}

/// Registers and saves the identity; returns it.
pub async fn register(
    api: &Api,
    state_dir: &Path,
    activation: &Activation,
    platform: &Platform,
) -> Result<Identity, RegisterError> {
    let (key, pkcs8) = NodeKey::generate().map_err(RegisterError::Key)?;
    let request = Registration {
        activation_id: activation.id.clone(),
        activation_code: activation.code.clone(),
        public_key: key.public_key_base64(),
        hostname: platform.hostname.clone(),
        platform_name: platform.name.clone(),
        platform_version: platform.version.clone(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        ip_address: platform.ip_address.clone(),
        name: activation.name.clone(),
    };
    let answer = api.register(&request).await?;
    // An activation always makes a new node: whatever state a previous
    // registration left (`register --force`) is another node's, whose
    // spooled reports and journal this one must not send as its own.
    Identity::forget(state_dir)?;
    save(api, state_dir, answer, &pkcs8)
}

/// Registers an EC2 instance by its identity document with `key` (whose
/// PKCS#8 bytes are `pkcs8`), and saves the identity; returns it.
pub async fn register_ec2(
    api: &Api,
    state_dir: &Path,
    instance: &InstanceIdentity,
    key: &NodeKey,
    pkcs8: &[u8],
    platform: &Platform,
) -> Result<Identity, RegisterError> {
    let request = Ec2Registration {
        document: instance.document.clone(),
        document_signature: instance.signature.clone(),
        hostname: platform.hostname.clone(),
        platform_name: platform.name.clone(),
        platform_version: platform.version.clone(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
        ip_address: platform.ip_address.clone(),
    };
    let now = steward_core::clock::now_epoch() as i64;
    let answer = api.register_ec2(&request, key, now).await?;
    save(api, state_dir, answer, pkcs8)
}

fn save(
    api: &Api,
    state_dir: &Path,
    answer: Registered,
    pkcs8: &[u8],
) -> Result<Identity, RegisterError> {
    // Refuse to save a key that could never verify a command.
    DownlinkVerifier::from_base64(&answer.command_signing_public_key)
        .map_err(RegisterError::SigningKey)?;
    let identity = Identity {
        instance_id: answer.instance_id,
        queue_url: answer.queue_url,
        ingest_queue_url: answer.ingest_queue_url,
        region: answer.region,
        command_signing_public_key: answer.command_signing_public_key,
        api_url: api.url().to_string(),
    };
    identity.save(state_dir, pkcs8)?;
    Ok(identity)
}
