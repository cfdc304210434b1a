//! Parameter Store: String, StringList and SecureString parameters with
//! hierarchies, versions, labels, tiers, policies and tags, as SSM's.

pub mod context;
pub mod memory;
pub mod model;
pub mod name;
pub mod policies;
pub mod ports;
pub mod secrets;

pub use name::parent_of;

pub use model::{Parameter, ParameterType, ParameterVersion, PolicyRecord, StoredValue, Tier};
pub use ports::{DataKey, DataKeys, ParameterStore};
