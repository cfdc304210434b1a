//! The managed fleet: activations, node registration (by activation or by
//! EC2 instance identity) and deregistration,
//! node information, tags, node credentials and operator access keys.
//! Records and rules live here; the stores and services they need are the
//! [`ports`], bundled for the operations as [`FleetContext`]; each SSM
//! operation is a function over that context in [`ops`].

pub mod activation;
mod context;
pub mod ec2_trust;
pub mod instance_identity;
pub mod node;
pub mod ops;
pub mod ports;
pub mod signed_request;
pub mod uplink;

#[cfg(test)]
pub(crate) mod memory;

pub use activation::Activation;
pub use context::FleetContext;
pub use ec2_trust::Ec2Trust;
pub use node::{Node, PingStatus};
pub use ports::{
    AccessKeyStore, ActivationStore, AgentEvents, CredentialIssuer, InstanceTags, NodeStore,
    QueueProvisioner, SecretDecrypter, SigningKey,
};

/// The only resource type whose tags this vertical keeps.
pub const MANAGED_INSTANCE: &str = "ManagedInstance";
