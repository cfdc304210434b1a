//! What the fleet operations need from the outside world. The adapters in
//! `steward-aws` implement these over DynamoDB, SQS, KMS and STS.

use async_trait::async_trait;

use crate::channel::Heartbeat;
use crate::error::SsmError;

use super::activation::Activation;
use super::node::Node;
use crate::access::AccessKey;
use crate::secret::Secret;
use crate::tags::TagSet;

/// Nodes and, with them, their rows in the tag index.
#[async_trait]
pub trait NodeStore: Send + Sync {
    async fn get(&self, instance_id: &str) -> Result<Option<Node>, SsmError>;
    /// The nodes among `ids` that exist, in any order.
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Node>, SsmError>;
    /// Up to `limit` nodes in `InstanceId` order after `after`; `true` when
    /// more may follow.
    async fn list(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Node>, bool), SsmError>;
    /// In one transaction: takes one registration from the activation (only
    /// while its count is below its limit, it is unexpired and its code hash
    /// matches), puts the node (only if new) and indexes its tags.
    /// `InvalidActivation` when the activation's condition fails.
    async fn register(&self, node: &Node, code_hash: &str, now: f64) -> Result<(), SsmError>;
    /// Puts an EC2 instance's node, only if no node has its id, indexing its
    /// tags in the same transaction. `Ok(false)` when the id is taken.
    async fn register_instance(&self, node: &Node, now: f64) -> Result<bool, SsmError>;
    /// Refreshes what a re-registering EC2 instance reports (agent version,
    /// platform, IP address, host name, last ping), only while the node
    /// holds `node.public_key`. `Ok(false)` when it is gone or holds another.
    async fn refresh_instance(&self, node: &Node) -> Result<bool, SsmError>;
    /// Records a heartbeat; `false` when no such node exists (nothing written).
    async fn record_heartbeat(
        &self,
        instance_id: &str,
        hb: &Heartbeat,
        at: f64,
    ) -> Result<bool, SsmError>;
    /// Replaces the node's tags (and their index rows) in one transaction,
    /// only if its tags are still at `node.tags_version`. `Ok(false)` when
    /// the node is gone or someone else changed its tags meanwhile (read
    /// again and retry).
    async fn replace_tags(&self, node: &Node, next: &TagSet) -> Result<bool, SsmError>;
    /// Deletes the node (and so its public key) and its tag index rows in
    /// one transaction, only if its tags are still at `node.tags_version`.
    /// `Ok(false)` when the node is gone or its tags changed meanwhile.
    async fn deregister(&self, node: &Node) -> Result<bool, SsmError>;
    /// Removes what is kept per node besides the node itself and its command
    /// history: its inventory, compliance and patch state. Harmless to
    /// repeat, and for a node that has none.
    async fn forget_records(&self, instance_id: &str) -> Result<(), SsmError>;
}

#[async_trait]
pub trait ActivationStore: Send + Sync {
    /// Puts a new activation (only if its id is new).
    async fn create(&self, activation: &Activation) -> Result<(), SsmError>;
    async fn get(&self, activation_id: &str) -> Result<Option<Activation>, SsmError>;
    /// Up to `limit` activations, oldest first, after the cursor
    /// `(CreatedDate, ActivationId)`; `true` when more may follow.
    async fn list(
        &self,
        after: Option<(f64, String)>,
        limit: usize,
    ) -> Result<(Vec<Activation>, bool), SsmError>;
    /// `false` when there was no such activation.
    async fn delete(&self, activation_id: &str) -> Result<bool, SsmError>;
}

#[async_trait]
pub trait AccessKeyStore: Send + Sync {
    async fn get(&self, access_key_id: &str) -> Result<Option<AccessKey>, SsmError>;
}

/// An EC2 instance's tags, as EC2 reports them to the control plane's account.
#[async_trait]
pub trait InstanceTags: Send + Sync {
    /// None for an instance this account cannot see (another account's).
    async fn tags_of(&self, instance_id: &str) -> Result<TagSet, SsmError>;
}

/// Decrypts an access key's secret (KMS, bound to the key id).
#[async_trait]
pub trait SecretDecrypter: Send + Sync {
    async fn decrypt(&self, access_key_id: &str, ciphertext_b64: &str) -> Result<Secret, SsmError>;
}

/// A node's own queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    pub url: String,
    pub arn: String,
}

/// Makes and removes each node's own queue, and tells a registering node
/// where its reports go.
#[async_trait]
pub trait QueueProvisioner: Send + Sync {
    /// Creates (or finds) the node's queue; calling it twice is harmless.
    async fn ensure_queue(&self, instance_id: &str) -> Result<QueueRef, SsmError>;
    /// Removes a node's queue (a deregistered node's, or one made for a
    /// registration that did not complete); a queue already gone is not an
    /// error.
    async fn delete_queue(&self, url: &str) -> Result<(), SsmError>;
    fn ingest_queue_url(&self) -> &str;
    async fn ingest_queue_arn(&self) -> Result<String, SsmError>;
    fn region(&self) -> &str;
}

/// Short-lived credentials for a node.
#[derive(Debug, Clone)]
pub struct NodeCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub expiration: f64,
}

#[async_trait]
pub trait CredentialIssuer: Send + Sync {
    /// Credentials for `session_name`, narrowed by `session_policy` (IAM JSON).
    async fn issue(
        &self,
        session_name: &str,
        session_policy: &str,
        duration_seconds: i32,
    ) -> Result<NodeCredentials, SsmError>;
}

/// Events about the agents themselves, under their own source on the bus
/// (not SSM-shaped).
#[async_trait]
pub trait AgentEvents: Send + Sync {
    /// An agent refused a message from its queue.
    async fn message_rejected(
        &self,
        instance_id: &str,
        reason: &str,
        queue_message_id: &str,
    ) -> Result<(), SsmError>;
}

/// The command-signing key agents pin at registration.
#[async_trait]
pub trait SigningKey: Send + Sync {
    /// Base64 DER SubjectPublicKeyInfo.
    async fn public_key_b64(&self) -> Result<String, SsmError>;
}
