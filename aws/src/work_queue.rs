//! The queues Run Command writes to: the control plane's work queue, and
//! each node's own queue (found through the node store).

use aws_sdk_sqs::Client;
use steward_core::SsmError;
use steward_core::fleet::NodeStore;
use steward_core::run_command::model::WorkItem;
use steward_core::run_command::ports::{
    Delivery, NodeAddress, NodeDirectory, NodeMailbox, WorkQueue,
};

use crate::Stack;
use crate::internal;
use crate::nodes::NodeTable;

/// The work queue of the dispatch function.
#[derive(Clone, Debug)]
pub struct SqsWorkQueue {
    client: Client,
    url: String,
}

impl SqsWorkQueue {
    pub fn new(stack: &Stack) -> Self {
        Self::with_url(stack.clients.sqs.clone(), &stack.settings.work_queue_url)
    }

    pub fn with_url(client: Client, url: &str) -> Self {
        Self {
            client,
            url: url.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl WorkQueue for SqsWorkQueue {
    async fn enqueue(&self, item: &WorkItem, delay_seconds: u32) -> Result<(), SsmError> {
        let body = serde_json::to_string(item).map_err(|_| SsmError::internal())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(internal)?;
        Ok(())
    }
}

/// Nodes' queues: where they are (the node store) and sending to them.
#[derive(Clone, Debug)]
pub struct NodeQueues {
    client: Client,
    nodes: NodeTable,
}

impl NodeQueues {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.sqs.clone(),
            nodes: NodeTable::new(stack),
        }
    }
}

#[async_trait::async_trait]
impl NodeDirectory for NodeQueues {
    async fn node_address(&self, instance_id: &str) -> Result<Option<NodeAddress>, SsmError> {
        Ok(self.nodes.get(instance_id).await?.and_then(|n| {
            (!n.queue_url.is_empty()).then_some(NodeAddress {
                queue_url: n.queue_url,
                computer_name: n.computer_name,
            })
        }))
    }
}

#[async_trait::async_trait]
impl NodeMailbox for NodeQueues {
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
