//! Compliance: per managed node and compliance type (`Patch`,
//! `Association`, `Custom:<name>`), the items last put and SSM's summaries
//! of them.
//!
//! [`put::put_items`] is the one write: PutComplianceItems and Steward's
//! own writers (patch reports) both go through it, and it publishes
//! `Configuration Compliance State Change` when a status changes
//! ([`events`]). [`model`] holds the records and how they are summarized;
//! the listings are `list_items` and `summaries`; [`operations`]
//! dispatches them over a [`context::ComplianceContext`]; [`memory`] is the
//! store's fake.

pub mod context;
pub mod events;
mod filters;
mod list_items;
pub mod memory;
pub mod model;
pub mod operations;
pub mod ports;
pub mod put;
mod summaries;
mod token;

pub use events::StatusChange;
pub use model::{ExecutionSummary, ItemEntry, Severity, Status};
pub use put::{ComplianceWrite, UploadType, put_items};

#[cfg(test)]
mod tests;
