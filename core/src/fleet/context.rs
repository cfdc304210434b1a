//! What every fleet operation works with.

use super::ec2_trust::Ec2Trust;
use super::ports::{
    ActivationStore, AgentEvents, CredentialIssuer, InstanceTags, NodeStore, QueueProvisioner,
    SigningKey,
};
use crate::targets::TargetDirectory;

/// The fleet's ports and settings, lent to each operation.
#[derive(Clone, Copy)]
pub struct FleetContext<'a> {
    pub nodes: &'a dyn NodeStore,
    pub activations: &'a dyn ActivationStore,
    /// Each node's own queue, and where its reports go.
    pub queues: &'a dyn QueueProvisioner,
    /// The key whose public half a registering node pins.
    pub signing_key: &'a dyn SigningKey,
    /// A node's short-lived queue credentials.
    pub credentials: &'a dyn CredentialIssuer,
    /// The tag index: DescribeInstanceInformation narrows by tags with it.
    pub directory: &'a dyn TargetDirectory,
    /// Events about the agents themselves (a refused message).
    pub events: &'a dyn AgentEvents,
    /// Whose instance identity documents an EC2 instance may register with.
    pub ec2_trust: &'a Ec2Trust,
    /// An EC2 instance's tags, read at each registration.
    pub instance_tags: &'a dyn InstanceTags,
    /// Seconds without a heartbeat after which a node is `ConnectionLost`.
    pub connection_lost_seconds: u64,
}
