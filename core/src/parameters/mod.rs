//! Parameter Store: String, StringList and SecureString parameters with
//! hierarchies, versions, labels, tiers, policies and tags, as SSM's.

pub mod context;
pub mod delete;
pub mod events;
pub mod filters;
pub mod get;
pub mod history;
pub mod labeling;
pub mod labels;
pub mod listing;
pub mod memory;
pub mod model;
pub mod name;
pub mod node_access;
pub mod operations;
pub mod policies;
pub mod ports;
pub mod put;
pub mod references;
pub mod requests;
pub mod scheduler;
pub mod secrets;
pub mod selector;
pub mod tagging;
pub mod views;

pub use name::parent_of;

pub use model::{Parameter, ParameterType, ParameterVersion, PolicyRecord, StoredValue, Tier};
pub use ports::{DataKey, DataKeys, ParameterStore};

#[cfg(test)]
mod messages_tests;
#[cfg(test)]
mod tests;
