//! Everything the fleet needs from AWS, built once per process and shared by
//! the api (operators' and agents' operations) and ingest (heartbeats,
//! refusals).

use steward_core::fleet::{Ec2Trust, FleetContext};

use crate::Stack;
use crate::activations::ActivationTable;
use crate::credentials::StsCredentialIssuer;
use crate::instance_tags::Ec2InstanceTags;
use crate::key_service::CommandSigningKey;
use crate::node_events::FleetEvents;
use crate::nodes::NodeTable;
use crate::queue_provisioner::SqsQueueProvisioner;
use crate::tag_index::FleetDirectory;

/// The fleet's adapters; [`FleetAdapters::ports`] lends them to the core
/// operations.
#[derive(Debug)]
pub struct FleetAdapters {
    pub nodes: NodeTable,
    pub activations: ActivationTable,
    /// Caches the ingest queue's ARN.
    pub queues: SqsQueueProvisioner,
    /// Caches the signing key's public half.
    pub signing_key: CommandSigningKey,
    pub credentials: StsCredentialIssuer,
    pub directory: FleetDirectory,
    pub events: FleetEvents,
    /// The certificates, region and accounts EC2 instances register under.
    pub ec2_trust: Ec2Trust,
    pub instance_tags: Ec2InstanceTags,
    pub connection_lost_seconds: u64,
}

impl FleetAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            nodes: NodeTable::new(stack),
            activations: ActivationTable::new(stack),
            queues: SqsQueueProvisioner::new(stack),
            signing_key: CommandSigningKey::new(stack),
            credentials: StsCredentialIssuer::new(stack),
            directory: FleetDirectory::new(stack),
            events: FleetEvents::new(stack),
            ec2_trust: Ec2Trust::new(
                &stack.settings.ec2_identity_certificates,
                &stack.settings.region,
                &stack.settings.allowed_account_ids,
            ),
            instance_tags: Ec2InstanceTags::new(stack),
            connection_lost_seconds: stack.settings.connection_lost_seconds,
        }
    }

    pub fn ports(&self) -> FleetContext<'_> {
        FleetContext {
            nodes: &self.nodes,
            activations: &self.activations,
            queues: &self.queues,
            signing_key: &self.signing_key,
            credentials: &self.credentials,
            directory: &self.directory,
            events: &self.events,
            ec2_trust: &self.ec2_trust,
            instance_tags: &self.instance_tags,
            connection_lost_seconds: self.connection_lost_seconds,
        }
    }
}
