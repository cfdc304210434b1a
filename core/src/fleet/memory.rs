//! In-memory fleet ports for unit tests, one per port of [`FleetContext`],
//! and [`MemoryFleet`], which lends them as one. The DynamoDB, SQS, KMS, STS
//! and EventBridge adapters are tested against the local stack with the same
//! expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::FleetContext;
use super::activation::Activation;
use super::ec2_trust::Ec2Trust;
use super::instance_identity::{IdentityCertificates, IdentityError};
use super::node::Node;
use super::ports::{
    ActivationStore, AgentEvents, CredentialIssuer, InstanceTags, NodeCredentials, NodeStore,
    QueueProvisioner, QueueRef, SigningKey,
};
use crate::channel::Heartbeat;
use crate::error::SsmError;
use crate::secret::Secret;
use crate::tags::TagSet;
use crate::targets::TargetDirectory;

/// Nodes are `ConnectionLost` after this long without a heartbeat.
pub const CONNECTION_LOST_SECONDS: u64 = 300;
pub const INGEST_QUEUE_URL: &str = "q-ingest";
pub const INGEST_QUEUE_ARN: &str = "arn:q-ingest";
pub const REGION: &str = "us-east-1";
/// What [`FixedSigningKey`] answers.
pub const SIGNING_PUBLIC_KEY: &str = "c2lnbmluZy1rZXk=";

/// Every fleet port in memory.
pub struct MemoryFleet {
    pub nodes: MemoryNodes,
    pub ec2_trust: Ec2Trust,
    pub instance_tags: MemoryInstanceTags,
    pub activations: MemoryActivations,
    pub queues: MemoryQueues,
    pub signing_key: FixedSigningKey,
    pub credentials: IssuedCredentials,
    pub events: AgentEventLog,
}

impl Default for MemoryFleet {
    /// Trusts nothing for EC2 until a test says whom: see [`Self::trusting`].
    fn default() -> Self {
        Self {
            nodes: MemoryNodes::default(),
            ec2_trust: Ec2Trust::with_certificates(
                Err(IdentityError::NoCertificate {
                    region: REGION.into(),
                }),
                REGION,
                &[],
            ),
            instance_tags: MemoryInstanceTags::default(),
            activations: MemoryActivations::default(),
            queues: MemoryQueues::default(),
            signing_key: FixedSigningKey,
            credentials: IssuedCredentials::default(),
            events: AgentEventLog::default(),
        }
    }
}

impl MemoryFleet {
    /// A fleet whose EC2 registrations are verified with `certificates`, for
    /// instances of `accounts`.
    pub fn trusting(certificates: IdentityCertificates, accounts: &[&str]) -> Self {
        let accounts: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
        Self {
            ec2_trust: Ec2Trust::with_certificates(Ok(certificates), REGION, &accounts),
            ..Self::default()
        }
    }

    /// The context the operations work in, over these ports.
    pub fn context(&self) -> FleetContext<'_> {
        FleetContext {
            nodes: &self.nodes,
            activations: &self.activations,
            queues: &self.queues,
            signing_key: &self.signing_key,
            credentials: &self.credentials,
            directory: &self.nodes,
            events: &self.events,
            ec2_trust: &self.ec2_trust,
            instance_tags: &self.instance_tags,
            connection_lost_seconds: CONNECTION_LOST_SECONDS,
        }
    }
}

/// A registered node with `public_key` (base64 Ed25519), last seen at `last_ping`.
pub fn node(instance_id: &str, public_key: &str, last_ping: f64) -> Node {
    Node {
        instance_id: instance_id.into(),
        resource_type: crate::fleet::node::ResourceType::ManagedInstance,
        activation_id: "act-1".into(),
        name: String::new(),
        iam_role: "Role".into(),
        registration_date: last_ping,
        last_ping_date_time: last_ping,
        agent_version: "1.0.0".into(),
        platform_type: "Linux".into(),
        platform_name: String::new(),
        platform_version: String::new(),
        computer_name: String::new(),
        ip_address: String::new(),
        public_key: public_key.into(),
        queue_url: format!("q-{instance_id}"),
        queue_arn: format!("arn:q-{instance_id}"),
        tags: TagSet::new(),
        tags_version: 0,
    }
}

#[derive(Default)]
pub struct MemoryNodes {
    nodes: Mutex<BTreeMap<String, Node>>,
    /// Removes the node just before the next heartbeat is written, as a
    /// concurrent deregistration would.
    forget_on_heartbeat: AtomicBool,
    /// Changes the node's tags just before the next deregistration is
    /// written, as a concurrent AddTagsToResource would.
    retag_on_deregister: AtomicBool,
    /// The ids whose records (inventory, compliance, patch state) were
    /// forgotten, in order.
    forgotten: Mutex<Vec<String>>,
}

impl MemoryNodes {
    pub fn insert(&self, node: Node) {
        self.nodes
            .lock()
            .unwrap()
            .insert(node.instance_id.clone(), node);
    }

    pub fn node(&self, instance_id: &str) -> Option<Node> {
        self.nodes.lock().unwrap().get(instance_id).cloned()
    }

    pub fn forget_on_heartbeat(&self) {
        self.forget_on_heartbeat.store(true, Ordering::SeqCst);
    }

    pub fn retag_on_deregister(&self) {
        self.retag_on_deregister.store(true, Ordering::SeqCst);
    }

    pub fn forgotten(&self) -> Vec<String> {
        self.forgotten.lock().unwrap().clone()
    }
}

#[async_trait]
impl NodeStore for MemoryNodes {
    async fn get(&self, instance_id: &str) -> Result<Option<Node>, SsmError> {
        Ok(self.node(instance_id))
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Node>, SsmError> {
        let nodes = self.nodes.lock().unwrap();
        Ok(ids.iter().filter_map(|id| nodes.get(id).cloned()).collect())
    }

    async fn list(&self, after: Option<&str>, limit: usize) -> Result<(Vec<Node>, bool), SsmError> {
        let nodes = self.nodes.lock().unwrap();
        let mut rest = nodes
            .values()
            .filter(|n| after.is_none_or(|a| n.instance_id.as_str() > a));
        let page: Vec<Node> = rest.by_ref().take(limit).cloned().collect();
        Ok((page, rest.next().is_some()))
    }

    /// The activation is not kept here: every registration is accepted.
    async fn register(&self, node: &Node, _code_hash: &str, _now: f64) -> Result<(), SsmError> {
        self.nodes
            .lock()
            .unwrap()
            .entry(node.instance_id.clone())
            .or_insert_with(|| node.clone());
        Ok(())
    }

    async fn register_instance(&self, node: &Node, _now: f64) -> Result<bool, SsmError> {
        let mut nodes = self.nodes.lock().unwrap();
        if nodes.contains_key(&node.instance_id) {
            return Ok(false);
        }
        nodes.insert(node.instance_id.clone(), node.clone());
        Ok(true)
    }

    async fn refresh_instance(&self, node: &Node) -> Result<bool, SsmError> {
        let mut nodes = self.nodes.lock().unwrap();
        match nodes.get_mut(&node.instance_id) {
            Some(n) if n.public_key == node.public_key => {
                n.agent_version = node.agent_version.clone();
                n.platform_name = node.platform_name.clone();
                n.platform_version = node.platform_version.clone();
                n.computer_name = node.computer_name.clone();
                n.ip_address = node.ip_address.clone();
                n.last_ping_date_time = n.last_ping_date_time.max(node.last_ping_date_time);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// As the adapter: a stale heartbeat changes nothing but still answers
    /// `true` for a known node.
    async fn record_heartbeat(
        &self,
        instance_id: &str,
        hb: &Heartbeat,
        at: f64,
    ) -> Result<bool, SsmError> {
        let mut nodes = self.nodes.lock().unwrap();
        if self.forget_on_heartbeat.swap(false, Ordering::SeqCst) {
            nodes.remove(instance_id);
        }
        let Some(n) = nodes.get_mut(instance_id) else {
            return Ok(false);
        };
        if n.last_ping_date_time < at {
            n.last_ping_date_time = at;
            n.agent_version = hb.agent_version.clone();
            n.platform_type = hb.platform_type.clone();
            n.platform_name = hb.platform_name.clone();
            n.platform_version = hb.platform_version.clone();
            n.ip_address = hb.ip_address.clone();
            n.computer_name = hb.computer_name.clone();
        }
        Ok(true)
    }

    async fn replace_tags(&self, node: &Node, next: &TagSet) -> Result<bool, SsmError> {
        let mut nodes = self.nodes.lock().unwrap();
        match nodes.get_mut(&node.instance_id) {
            Some(n) if n.tags_version == node.tags_version => {
                n.tags = next.clone();
                n.tags_version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn deregister(&self, node: &Node) -> Result<bool, SsmError> {
        let mut nodes = self.nodes.lock().unwrap();
        if self.retag_on_deregister.swap(false, Ordering::SeqCst)
            && let Some(n) = nodes.get_mut(&node.instance_id)
        {
            n.tags.insert("late".into(), "tag".into());
            n.tags_version += 1;
        }
        match nodes.get(&node.instance_id) {
            Some(n) if n.tags_version == node.tags_version => {
                nodes.remove(&node.instance_id);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn forget_records(&self, instance_id: &str) -> Result<(), SsmError> {
        self.forgotten.lock().unwrap().push(instance_id.into());
        Ok(())
    }
}

/// EC2's tags per instance id; none for an instance not set.
#[derive(Default)]
pub struct MemoryInstanceTags {
    tags: Mutex<BTreeMap<String, TagSet>>,
}

impl MemoryInstanceTags {
    pub fn set(&self, instance_id: &str, tags: &[(&str, &str)]) {
        self.tags.lock().unwrap().insert(
            instance_id.into(),
            tags.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
}

#[async_trait]
impl InstanceTags for MemoryInstanceTags {
    async fn tags_of(&self, instance_id: &str) -> Result<TagSet, SsmError> {
        Ok(self
            .tags
            .lock()
            .unwrap()
            .get(instance_id)
            .cloned()
            .unwrap_or_default())
    }
}

/// The tag index, read straight from the nodes' tags.
#[async_trait]
impl TargetDirectory for MemoryNodes {
    async fn nodes_with_tag(&self, key: &str, value: &str) -> Result<Vec<String>, SsmError> {
        let nodes = self.nodes.lock().unwrap();
        Ok(nodes
            .values()
            .filter(|n| n.tags.get(key).map(String::as_str) == Some(value))
            .map(|n| n.instance_id.clone())
            .collect())
    }

    async fn nodes_with_tag_key(&self, key: &str) -> Result<Vec<String>, SsmError> {
        let nodes = self.nodes.lock().unwrap();
        Ok(nodes
            .values()
            .filter(|n| n.tags.contains_key(key))
            .map(|n| n.instance_id.clone())
            .collect())
    }

    async fn existing_nodes(&self, ids: &[String]) -> Result<BTreeSet<String>, SsmError> {
        let nodes = self.nodes.lock().unwrap();
        Ok(ids
            .iter()
            .filter(|id| nodes.contains_key(*id))
            .cloned()
            .collect())
    }

    async fn all_nodes(&self) -> Result<Vec<String>, SsmError> {
        Ok(self.nodes.lock().unwrap().keys().cloned().collect())
    }
}

#[derive(Default)]
pub struct MemoryActivations {
    activations: Mutex<BTreeMap<String, Activation>>,
}

impl MemoryActivations {
    pub fn activation(&self, activation_id: &str) -> Option<Activation> {
        self.activations.lock().unwrap().get(activation_id).cloned()
    }
}

#[async_trait]
impl ActivationStore for MemoryActivations {
    async fn create(&self, activation: &Activation) -> Result<(), SsmError> {
        self.activations
            .lock()
            .unwrap()
            .entry(activation.activation_id.clone())
            .or_insert_with(|| activation.clone());
        Ok(())
    }

    async fn get(&self, activation_id: &str) -> Result<Option<Activation>, SsmError> {
        Ok(self.activation(activation_id))
    }

    /// Oldest first, as the adapter's index orders them.
    async fn list(
        &self,
        after: Option<(f64, String)>,
        limit: usize,
    ) -> Result<(Vec<Activation>, bool), SsmError> {
        let mut all: Vec<Activation> = self.activations.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| {
            a.created_date
                .total_cmp(&b.created_date)
                .then_with(|| a.activation_id.cmp(&b.activation_id))
        });
        let mut rest = all.into_iter().filter(|a| {
            after.as_ref().is_none_or(|(created, id)| {
                a.created_date
                    .total_cmp(created)
                    .then_with(|| a.activation_id.cmp(id))
                    .is_gt()
            })
        });
        let page: Vec<Activation> = rest.by_ref().take(limit).collect();
        Ok((page, rest.next().is_some()))
    }

    async fn delete(&self, activation_id: &str) -> Result<bool, SsmError> {
        Ok(self
            .activations
            .lock()
            .unwrap()
            .remove(activation_id)
            .is_some())
    }
}

/// The nodes' queues, by URL (`q-<instance id>`).
#[derive(Default)]
pub struct MemoryQueues {
    queues: Mutex<BTreeSet<String>>,
}

impl MemoryQueues {
    pub fn urls(&self) -> Vec<String> {
        self.queues.lock().unwrap().iter().cloned().collect()
    }
}

#[async_trait]
impl QueueProvisioner for MemoryQueues {
    async fn ensure_queue(&self, instance_id: &str) -> Result<QueueRef, SsmError> {
        let url = format!("q-{instance_id}");
        self.queues.lock().unwrap().insert(url.clone());
        Ok(QueueRef {
            arn: format!("arn:{url}"),
            url,
        })
    }

    async fn delete_queue(&self, url: &str) -> Result<(), SsmError> {
        self.queues.lock().unwrap().remove(url);
        Ok(())
    }

    fn ingest_queue_url(&self) -> &str {
        INGEST_QUEUE_URL
    }

    async fn ingest_queue_arn(&self) -> Result<String, SsmError> {
        Ok(INGEST_QUEUE_ARN.into())
    }

    fn region(&self) -> &str {
        REGION
    }
}

/// Always [`SIGNING_PUBLIC_KEY`].
#[derive(Default)]
pub struct FixedSigningKey;

#[async_trait]
impl SigningKey for FixedSigningKey {
    async fn public_key_b64(&self) -> Result<String, SsmError> {
        Ok(SIGNING_PUBLIC_KEY.into())
    }
}

/// Issues made-up credentials and keeps what each was asked for, as
/// (session name, session policy, duration).
#[derive(Default)]
pub struct IssuedCredentials {
    issued: Mutex<Vec<(String, String, i32)>>,
}

impl IssuedCredentials {
    pub fn issued(&self) -> Vec<(String, String, i32)> {
        self.issued.lock().unwrap().clone()
    }
}

#[async_trait]
impl CredentialIssuer for IssuedCredentials {
    async fn issue(
        &self,
        session_name: &str,
        session_policy: &str,
        duration_seconds: i32,
    ) -> Result<NodeCredentials, SsmError> {
        self.issued.lock().unwrap().push((
            session_name.into(),
            session_policy.into(),
            duration_seconds,
        ));
        Ok(NodeCredentials {
            access_key_id: format!("ASIA{session_name}"),
            secret_access_key: Secret::new("secret"),
            session_token: Secret::new("token"),
            expiration: 0.0,
        })
    }
}

/// The refusals published, as (instance id, reason, queue message id).
#[derive(Default)]
pub struct AgentEventLog {
    rejected: Mutex<Vec<(String, String, String)>>,
}

impl AgentEventLog {
    pub fn rejected(&self) -> Vec<(String, String, String)> {
        self.rejected.lock().unwrap().clone()
    }
}

#[async_trait]
impl AgentEvents for AgentEventLog {
    async fn message_rejected(
        &self,
        instance_id: &str,
        reason: &str,
        queue_message_id: &str,
    ) -> Result<(), SsmError> {
        self.rejected.lock().unwrap().push((
            instance_id.into(),
            reason.into(),
            queue_message_id.into(),
        ));
        Ok(())
    }
}
