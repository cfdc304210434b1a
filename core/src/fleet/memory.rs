//! In-memory fleet ports for unit tests. The DynamoDB and EventBridge
//! adapters are tested against the local stack with the same expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::node::Node;
use super::ports::{AgentEvents, NodeStore};
use super::tags::TagSet;
use crate::channel::Heartbeat;
use crate::error::SsmError;

/// A registered node with `public_key` (base64 Ed25519), last seen at `last_ping`.
pub fn node(instance_id: &str, public_key: &str, last_ping: f64) -> Node {
    Node {
        instance_id: instance_id.into(),
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
