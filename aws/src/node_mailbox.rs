//! Each node's own queue as Run Command sees it: where it is (the node
//! store) and sending a signed message to it.

use std::collections::HashMap;

use aws_sdk_sqs::Client;
use steward_core::SsmError;
use steward_core::fleet::node::PingStatus;
use steward_core::fleet::{Node, NodeStore};
use steward_core::run_command::ports::{Delivery, NodeAddress, NodeDirectory, NodeMailbox};

use crate::Stack;
use crate::internal;
use crate::nodes::NodeTable;

/// Nodes' queues: where they are (the node store) and sending to them.
#[derive(Clone, Debug)]
pub struct SqsNodeMailbox {
    client: Client,
    nodes: NodeTable,
    connection_lost_seconds: u64,
}

impl SqsNodeMailbox {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.sqs.clone(),
            nodes: NodeTable::new(stack),
            connection_lost_seconds: stack.settings.connection_lost_seconds,
        }
    }
}

#[async_trait::async_trait]
impl NodeDirectory for SqsNodeMailbox {
    async fn node_address(&self, instance_id: &str) -> Result<Option<NodeAddress>, SsmError> {
        let now = steward_core::clock::now_epoch();
        Ok(self
            .nodes
            .get(instance_id)
            .await?
            .and_then(|n| self.address(n, now)))
    }

    async fn node_addresses(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<Option<NodeAddress>>, SsmError> {
        if instance_ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = steward_core::clock::now_epoch();
        // One BatchGetItem per 100 ids; the answers come in any order.
        let mut found: HashMap<String, NodeAddress> = HashMap::new();
        for n in self.nodes.get_many(instance_ids).await? {
            let id = n.instance_id.clone();
            if let Some(a) = self.address(n, now) {
                found.insert(id, a);
            }
        }
        Ok(instance_ids
            .iter()
            .map(|id| found.get(id).cloned())
            .collect())
    }
}

impl SqsNodeMailbox {
    /// Where `node` is sent to as of `now`; `None` when it has no queue.
    fn address(&self, n: Node, now: f64) -> Option<NodeAddress> {
        (!n.queue_url.is_empty()).then(|| NodeAddress {
            online: n.ping_status(now, self.connection_lost_seconds) == PingStatus::Online,
            patch_group: steward_core::run_command::patch_dispatch::patch_group_of(&n.tags),
            queue_url: n.queue_url,
            computer_name: n.computer_name,
            platform_name: n.platform_name,
        })
    }
}

#[async_trait::async_trait]
impl NodeMailbox for SqsNodeMailbox {
    async fn send(&self, queue_url: &str, body: &str) -> Result<Delivery, SsmError> {
        match self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
        {
            Ok(_) => Ok(Delivery::Queued),
            Err(e) => {
                let gone = e.as_service_error().is_some_and(|se| {
                    se.is_queue_does_not_exist()
                        || aws_sdk_sqs::error::ProvideErrorMetadata::code(se).is_some_and(|c| {
                            c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist")
                        })
                });
                if gone {
                    Ok(Delivery::QueueGone)
                } else {
                    Err(internal(e))
                }
            }
        }
    }
}
