//! The managed fleet: activations, node registration, node information,
//! tags, node credentials and operator access keys. Records and rules live
//! here; the stores and services they need are the [`ports`], bundled for
//! the operations as [`FleetContext`]; each SSM operation is a function over
//! that context in [`ops`].

pub mod access;
pub mod activation;
mod context;
pub mod node;
pub mod ops;
pub mod paging;
pub mod ports;
pub mod tags;
pub mod uplink;

#[cfg(test)]
pub(crate) mod memory;

pub use activation::Activation;
pub use context::FleetContext;
pub use node::{Node, PingStatus};
pub use ports::{
    AccessKeyStore, ActivationStore, AgentEvents, CredentialIssuer, NodeStore, QueueProvisioner,
    SecretDecrypter, SigningKey,
};
pub use tags::{Tag, TagSet};

/// The only resource type whose tags this vertical keeps.
pub const MANAGED_INSTANCE: &str = "ManagedInstance";

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}
