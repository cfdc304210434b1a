//! Inventory: each node's data per type (`AWS:Application`,
//! `AWS:InstanceInformation`, `AWS:Network`, `AWS:Service`,
//! `AWS:AWSComponent`, `Custom:*`), gathered by the agent's
//! `aws:softwareInventory` plugin and reported through ingest, or put by
//! operators with PutInventory.
//!
//! [`put::put_items`] is the one write (PutInventory and ingest share it):
//! a type whose content hash is the stored one's changes nothing. The
//! readings are GetInventory ([`get`]: filters and aggregators),
//! ListInventoryEntries ([`entries`]), GetInventorySchema ([`schemas`]);
//! DeleteInventory ([`delete`]) removes a custom type. [`operations`]
//! dispatches them over a [`context::InventoryContext`]; [`memory`] is the
//! store's fake.

pub mod context;
pub mod delete;
pub mod entries;
pub mod filters;
pub mod get;
pub mod memory;
pub mod model;
pub mod operations;
pub mod ports;
pub mod put;
pub mod schema;
pub mod schemas;
pub mod step;

pub use model::{CustomSchema, Entry, InventoryItem, StoredType, content_hash, pack, unpack};
pub use put::{PutOutcome, put_items};

#[cfg(test)]
mod tests;
