//! What Compliance needs of the world: a store of records, one per resource
//! and compliance type. `steward-aws` keeps them in DynamoDB; the fake of
//! [`super::memory`] serves the unit tests. Registered nodes are read
//! through the fleet's [`crate::fleet::NodeStore`], events go out through
//! [`crate::events::EventSink`].

use async_trait::async_trait;

use super::model::{ComplianceRecord, ResourceSummary};
use crate::error::SsmError;

/// Where a listing of summaries continues: after every summary of
/// `compliance_type` (`resource_id` None) or after that one resource's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryKey {
    pub compliance_type: String,
    pub resource_id: Option<String>,
}

#[async_trait]
pub trait ComplianceStore: Send + Sync {
    /// A consistent read of one record.
    async fn get(
        &self,
        resource_id: &str,
        compliance_type: &str,
    ) -> Result<Option<ComplianceRecord>, SsmError>;
    /// Every record of one resource (its items too), by compliance type.
    async fn resource(&self, resource_id: &str) -> Result<Vec<ComplianceRecord>, SsmError>;
    /// Writes `next` only if the stored record is still at
    /// `expected_revision` (`None`: only if there is none). `false`:
    /// someone else wrote in between; nothing changed.
    async fn put(
        &self,
        next: &ComplianceRecord,
        expected_revision: Option<u64>,
    ) -> Result<bool, SsmError>;
    /// Summaries in (ComplianceType, ResourceId) order, after `after`, at
    /// most `limit`; `true` when more may follow.
    async fn summaries(
        &self,
        after: Option<&SummaryKey>,
        limit: usize,
    ) -> Result<(Vec<ResourceSummary>, bool), SsmError>;
}
