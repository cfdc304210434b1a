//! What Run Command needs from the outside world. `steward-aws` implements
//! these over DynamoDB, SQS, S3 and EventBridge.

use async_trait::async_trait;

use super::model::{Command, Invocation, Page, Transition, WorkItem};
use crate::error::SsmError;
use crate::run_command::status::CommandState;

/// A window on `RequestedDateTime` (epoch seconds, both bounds inclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeRange {
    pub after: Option<f64>,
    pub before: Option<f64>,
}

/// Commands and their invocations. Every write is conditional.
#[async_trait]
pub trait CommandStore: Send + Sync {
    /// Writes a new command; an existing id is an error (never overwritten).
    async fn put_command(&self, command: &Command) -> Result<(), SsmError>;
    /// A consistent read.
    async fn get_command(&self, command_id: &str) -> Result<Option<Command>, SsmError>;
    /// Commands newest first, at most `limit`, from `token`.
    async fn query_commands(
        &self,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Command>, SsmError>;
    /// Sets Status/StatusDetails if they still are `from`. `false`: they were not.
    async fn set_command_state(
        &self,
        command_id: &str,
        from: (&str, &str),
        to: CommandState,
    ) -> Result<bool, SsmError>;
    /// Marks the whole command as asked to cancel, unless it is final.
    /// `false`: it was final already.
    async fn request_cancel(&self, command_id: &str) -> Result<bool, SsmError>;

    /// Creates an invocation unless one exists, and adds its status to the
    /// command's counters in the same write (nothing for Pending; a target
    /// closed by rate control is put with its final status). `false`: it
    /// existed, and nothing changed.
    async fn put_invocation(&self, invocation: &Invocation) -> Result<bool, SsmError>;
    /// Raises the command's `released` counter to `end` if it is lower.
    /// `false`: it was not lower.
    async fn raise_released(&self, command_id: &str, end: u32) -> Result<bool, SsmError>;
    /// A consistent read.
    async fn get_invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Option<Invocation>, SsmError>;
    /// A command's invocations by instance id, at most `limit`, from `token`.
    async fn query_invocations(
        &self,
        command_id: &str,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError>;
    /// A node's invocations, newest first, at most `limit`, from `token`.
    async fn query_node_invocations(
        &self,
        instance_id: &str,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError>;
    /// Applies a transition and adds its counters to the command in one
    /// transaction, if the invocation is still in `transition.from`.
    /// `false`: it was not, and nothing changed.
    async fn transition(&self, transition: &Transition) -> Result<bool, SsmError>;

    // Batched forms: what a fan-out round or a batch of reports does in a
    // few requests instead of one or more per node. Each answers exactly as
    // its one-at-a-time form would, item by item, in the order given; the
    // defaults are those one-at-a-time calls (the in-memory fake uses them).

    /// Consistent reads of a command's invocations on `instance_ids`; the
    /// ones that exist, in any order.
    async fn get_invocations(
        &self,
        command_id: &str,
        instance_ids: &[String],
    ) -> Result<Vec<Invocation>, SsmError> {
        let mut out = Vec::with_capacity(instance_ids.len());
        for id in instance_ids {
            if let Some(inv) = self.get_invocation(command_id, id).await? {
                out.push(inv);
            }
        }
        Ok(out)
    }
    /// [`Self::put_invocation`] for each (one command's): `true` for each one
    /// created, `false` for each that existed.
    async fn put_invocations(&self, invocations: &[Invocation]) -> Result<Vec<bool>, SsmError> {
        let mut out = Vec::with_capacity(invocations.len());
        for inv in invocations {
            out.push(self.put_invocation(inv).await?);
        }
        Ok(out)
    }
    /// [`Self::transition`] for each (distinct invocations, of one command
    /// or several): `true` for each applied. The applied ones and their
    /// counters are written together; one whose invocation is no longer in
    /// its `from` changes nothing.
    async fn transition_many(&self, transitions: &[Transition]) -> Result<Vec<bool>, SsmError> {
        let mut out = Vec::with_capacity(transitions.len());
        for t in transitions {
            out.push(self.transition(t).await?);
        }
        Ok(out)
    }
}

/// Where a node's queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    pub queue_url: String,
    pub computer_name: String,
    /// What the agent reports (os-release's NAME): which patch baselines apply.
    pub platform_name: String,
    /// From the node's `Patch Group` or `PatchGroup` tag.
    pub patch_group: Option<String>,
    /// Its PingStatus is Online now (a heartbeat within the stack's
    /// ConnectionLost threshold).
    pub online: bool,
}

#[async_trait]
pub trait NodeDirectory: Send + Sync {
    /// `None`: the node is not registered (or was deregistered).
    async fn node_address(&self, instance_id: &str) -> Result<Option<NodeAddress>, SsmError>;
    /// [`Self::node_address`] of each, in the order given.
    async fn node_addresses(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<Option<NodeAddress>>, SsmError> {
        let mut out = Vec::with_capacity(instance_ids.len());
        for id in instance_ids {
            out.push(self.node_address(id).await?);
        }
        Ok(out)
    }
}

/// What became of a message sent to a node's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// The queue does not exist any more.
    QueueGone,
}

#[async_trait]
pub trait NodeMailbox: Send + Sync {
    async fn send(&self, queue_url: &str, body: &str) -> Result<Delivery, SsmError>;
}

#[async_trait]
pub trait WorkQueue: Send + Sync {
    /// Enqueues `item`, visible after `delay_seconds` (at most 900).
    async fn enqueue(&self, item: &WorkItem, delay_seconds: u32) -> Result<(), SsmError>;
    /// [`Self::enqueue`] of each (item, delay): every one is enqueued, or
    /// the call fails (and may have enqueued some: items are idempotent).
    async fn enqueue_many(&self, items: &[(WorkItem, u32)]) -> Result<(), SsmError> {
        for (item, delay) in items {
            self.enqueue(item, *delay).await?;
        }
        Ok(())
    }
}

/// A presigned PUT and the plain URL of the object it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    pub put_url: String,
    pub object_url: String,
}

#[async_trait]
pub trait OutputLocations: Send + Sync {
    /// The buckets command output may be written to (the stack's own first).
    /// The URLs are signed with the control plane's rights, which cover
    /// these only: SendCommand refuses any other bucket.
    fn allowed_buckets(&self) -> Vec<String>;
    /// A PUT URL for `key`, valid for `expires_in_seconds` or less (never
    /// longer than the credentials that sign it).
    async fn presign_put(
        &self,
        bucket: &str,
        region: &str,
        key: &str,
        expires_in_seconds: u64,
    ) -> Result<PresignedPut, SsmError>;
}
