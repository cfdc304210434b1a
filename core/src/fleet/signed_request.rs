//! The check every node-signed request of the agent's passes
//! (GetNodeCredentials, GetNodeParameters, GetOutputUploadUrls): the node is
//! registered, the message is signed with the key it registered, and its
//! timestamp is within [`MAX_CLOCK_SKEW_SECONDS`] of the control plane's
//! clock. Each operation words the refusals for what it does.

use crate::channel;
use crate::error::SsmError;
use crate::fleet::node::Node;
use crate::fleet::ports::NodeStore;
use crate::ids;

/// How far a signed request's timestamp may be from the control plane's clock.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// Why a node-signed request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// No such node (never registered, or deregistered).
    NotRegistered,
    /// Not signed with the node's registered key (or not a node id at all).
    BadSignature,
    /// Signed, but at a time too far from ours.
    Stale,
    /// The node could not be read.
    Store(SsmError),
}

impl Refusal {
    /// The signature refusals every operation shares; `bad_signature` is
    /// the operation's own text for a signature that does not verify.
    pub fn into_error(self, bad_signature: &str) -> SsmError {
        match self {
            Refusal::NotRegistered | Refusal::BadSignature => {
                SsmError::InvalidSignatureException(bad_signature.into())
            }
            Refusal::Stale => SsmError::InvalidSignatureException(
                "Signature expired: the Timestamp is more than 5 minutes from the server's time. Synchronize the node's clock (NTP) and retry.".into(),
            ),
            Refusal::Store(e) => e,
        }
    }

    /// As [`Refusal::into_error`], for the credential operations: a node
    /// that is not registered (deregistered, say) is told so, in the words
    /// SSM's credential endpoint uses, so that its agent can say why it
    /// stops working instead of retrying a signature that cannot help.
    pub fn into_credentials_error(self, instance_id: &str, bad_signature: &str) -> SsmError {
        match self {
            Refusal::NotRegistered => SsmError::InvalidInstanceId(format!(
                "Not existing InstanceId {instance_id}: this node is not registered (it was deregistered). Register it again with an activation."
            )),
            other => other.into_error(bad_signature),
        }
    }
}

/// The node that signed `message`, if the request passes.
pub async fn verified_node(
    nodes: &dyn NodeStore,
    instance_id: &str,
    message: &[u8],
    signature: &str,
    timestamp: i64,
    now: f64,
) -> Result<Node, Refusal> {
    if !ids::is_instance_id(instance_id) {
        return Err(Refusal::BadSignature);
    }
    let node = nodes
        .get(instance_id)
        .await
        .map_err(Refusal::Store)?
        .ok_or(Refusal::NotRegistered)?;
    channel::verify_node_signature(&node.public_key, message, signature)
        .map_err(|_| Refusal::BadSignature)?;
    if (now as i64 - timestamp).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(Refusal::Stale);
    }
    Ok(node)
}
