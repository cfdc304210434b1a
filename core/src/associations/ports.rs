//! What associations need of the world: one store for the associations,
//! their versions, executions, per-node results, nodes' statuses and the
//! "node changed" markers. `steward-aws` implements it over one DynamoDB
//! table; [`super::memory`] is the fake of the unit tests, with the same
//! conditions.

use async_trait::async_trait;

use super::model::{Association, Execution, ExecutionTarget, InstanceStatus, Marker};
use crate::error::SsmError;

/// Something due, as the due index lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    Association(String),
    Execution {
        association_id: String,
        execution_id: String,
    },
    Marker(String),
}

#[async_trait]
pub trait AssociationStore: Send + Sync {
    /// Writes a new association (head and version 1), taking the legacy
    /// Name+InstanceId key with it when given. `false`: the key is taken.
    async fn create(&self, a: &Association, legacy_key: Option<&str>) -> Result<bool, SsmError>;
    /// A consistent read of the head.
    async fn get(&self, association_id: &str) -> Result<Option<Association>, SsmError>;
    /// The association holding a legacy Name+InstanceId key.
    async fn legacy(&self, legacy_key: &str) -> Result<Option<String>, SsmError>;
    /// Every association's head (the listings filter them).
    async fn list(&self) -> Result<Vec<Association>, SsmError>;
    /// Every version, oldest first.
    async fn versions(&self, association_id: &str) -> Result<Vec<Association>, SsmError>;
    /// Replaces the head if it is still at `expected_revision`; with
    /// `new_version`, writes `next` as a new version record too.
    async fn update(
        &self,
        next: &Association,
        expected_revision: u64,
        new_version: bool,
    ) -> Result<bool, SsmError>;
    /// Deletes the head (if still at its revision), its versions and its
    /// legacy key. `false`: it changed in between.
    async fn delete(&self, a: &Association) -> Result<bool, SsmError>;

    /// Writes a new execution. `false`: one with the id exists.
    async fn put_execution(&self, e: &Execution) -> Result<bool, SsmError>;
    /// Replaces an execution if it is still at `expected_revision`.
    async fn update_execution(
        &self,
        e: &Execution,
        expected_revision: u64,
    ) -> Result<bool, SsmError>;
    async fn execution(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Option<Execution>, SsmError>;
    /// An association's executions, in any order.
    async fn executions(&self, association_id: &str) -> Result<Vec<Execution>, SsmError>;

    /// Writes (or rewrites) one node's result in an execution.
    async fn put_target(&self, t: &ExecutionTarget) -> Result<(), SsmError>;
    async fn targets(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Vec<ExecutionTarget>, SsmError>;

    /// Writes (or rewrites) a node's status for an association.
    async fn put_instance_status(&self, s: &InstanceStatus) -> Result<(), SsmError>;
    /// A node's statuses, one per association.
    async fn instance_statuses(&self, instance_id: &str) -> Result<Vec<InstanceStatus>, SsmError>;

    /// Writes a marker, replacing any.
    async fn put_marker(&self, m: &Marker) -> Result<(), SsmError>;
    async fn marker(&self, instance_id: &str) -> Result<Option<Marker>, SsmError>;
    /// Moves a marker's due time if it is still the one written at
    /// `written`. `false`: it was rewritten in between.
    async fn postpone_marker(&self, m: &Marker) -> Result<bool, SsmError>;
    /// Deletes a marker if it is still the one written at `written`.
    async fn delete_marker(&self, instance_id: &str, written: f64) -> Result<bool, SsmError>;

    /// What is due at `now`: heads, executions and markers whose due time
    /// is at or before it.
    async fn due(&self, now: f64) -> Result<Vec<Due>, SsmError>;
}
