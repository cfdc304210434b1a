//! Parameter Store: String, StringList and SecureString parameters with
//! hierarchies, versions, labels, tiers, policies and tags, as SSM's.

pub mod model;
pub mod ports;

pub use model::{Parameter, ParameterType, ParameterVersion, PolicyRecord, StoredValue, Tier};
pub use ports::{DataKey, DataKeys, ParameterStore};
