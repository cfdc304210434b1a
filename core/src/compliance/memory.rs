//! An in-memory [`ComplianceStore`] for unit tests, with the adapter's
//! conditions. The DynamoDB adapter is tested against the local stack with
//! the same expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::events::of_compliance_change;
use super::model::{ComplianceRecord, ResourceSummary};
use super::ports::{ComplianceStore, SummaryKey};
use crate::error::SsmError;
use crate::events::Event;

/// Records by (resource id, compliance type).
#[derive(Default)]
pub struct MemoryCompliance {
    pub records: Mutex<BTreeMap<(String, String), ComplianceRecord>>,
    /// The events the table's stream would carry (see `of_compliance_change`).
    pub feed: Mutex<Vec<Event>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl ComplianceStore for MemoryCompliance {
    async fn get(
        &self,
        resource_id: &str,
        compliance_type: &str,
    ) -> Result<Option<ComplianceRecord>, SsmError> {
        Ok(lock(&self.records)
            .get(&(resource_id.to_string(), compliance_type.to_string()))
            .cloned())
    }

    async fn resource(&self, resource_id: &str) -> Result<Vec<ComplianceRecord>, SsmError> {
        Ok(lock(&self.records)
            .values()
            .filter(|r| r.resource_id == resource_id)
            .cloned()
            .collect())
    }

    async fn put(
        &self,
        next: &ComplianceRecord,
        expected_revision: Option<u64>,
    ) -> Result<bool, SsmError> {
        let mut all = lock(&self.records);
        let key = (next.resource_id.clone(), next.compliance_type.clone());
        if all.get(&key).map(|r| r.revision) != expected_revision {
            return Ok(false);
        }
        let old = all.insert(key, next.clone());
        lock(&self.feed).extend(of_compliance_change(old.as_ref(), Some(next)));
        Ok(true)
    }

    async fn summaries(
        &self,
        after: Option<&SummaryKey>,
        limit: usize,
    ) -> Result<(Vec<ResourceSummary>, bool), SsmError> {
        let all = lock(&self.records);
        let mut ordered: Vec<&ComplianceRecord> = all.values().collect();
        ordered.sort_by(|a, b| {
            (&a.compliance_type, &a.resource_id).cmp(&(&b.compliance_type, &b.resource_id))
        });
        let mut rest = ordered.into_iter().filter(|r| match after {
            None => true,
            Some(k) => match &k.resource_id {
                None => r.compliance_type > k.compliance_type,
                Some(id) => (&r.compliance_type, &r.resource_id) > (&k.compliance_type, id),
            },
        });
        let page: Vec<ResourceSummary> = rest.by_ref().take(limit).map(|r| r.summary()).collect();
        Ok((page, rest.next().is_some()))
    }
}
