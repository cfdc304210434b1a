//! Stored documents: a head per document (its latest and default versions,
//! tags, and a summary of the default version for listings) and one item
//! per version. `steward-aws` implements [`DocumentStore`] over DynamoDB;
//! [`MemoryDocumentStore`] implements it for unit tests with the same
//! conditions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::format::DocumentFormat;
use crate::error::SsmError;
use crate::tags::TagSet;

/// SSM's limit on a document's versions.
pub const MAX_VERSIONS: u64 = 1000;

/// What a listing shows of a document without reading its versions: the
/// default version's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionSummary {
    pub version_name: Option<String>,
    pub schema_version: String,
    pub format: DocumentFormat,
    pub platform_types: Vec<String>,
}

/// A stored document's head.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentHead {
    pub name: String,
    /// `Command`: the only type Steward stores.
    pub document_type: String,
    /// The account that created it (SSM's `Owner` of a private document).
    pub owner: String,
    pub created_date: f64,
    pub latest_version: u64,
    pub default_version: u64,
    /// The highest version number ever given: numbers are never reused,
    /// even after their version was deleted.
    pub last_number: u64,
    /// How many versions exist.
    pub version_count: u64,
    /// VersionName → version, so names stay unique under the head's condition.
    pub version_names: BTreeMap<String, u64>,
    pub default_summary: VersionSummary,
    pub tags: TagSet,
    pub target_type: Option<String>,
    /// DescribeDocument's and ListDocuments' `DisplayName`, set by Create
    /// or UpdateDocument.
    pub display_name: Option<String>,
    /// Bumped by every write; every write is conditional on it.
    pub revision: u64,
}

/// One version, as created.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    pub name: String,
    pub version: u64,
    pub version_name: Option<String>,
    pub content: String,
    pub format: DocumentFormat,
    /// Hex SHA-256 of `content`.
    pub hash: String,
    pub created_date: f64,
}

/// Documents and their versions. Every head write is conditional on the
/// head's `revision` (or on its absence); `false` means someone else wrote
/// in between: read again and decide again.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// A consistent read of the head.
    async fn head(&self, name: &str) -> Result<Option<DocumentHead>, SsmError>;
    async fn version(&self, name: &str, version: u64) -> Result<Option<StoredVersion>, SsmError>;
    /// Versions after `after`, ascending, at most `limit`; `true` when more follow.
    async fn versions(
        &self,
        name: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredVersion>, bool), SsmError>;
    /// The highest existing version below `before`.
    async fn version_before(&self, name: &str, before: u64) -> Result<Option<u64>, SsmError>;
    /// Writes `next` and the new `version` in one transaction, only if the
    /// head is still at `expected_revision` (`None`: only if no head exists).
    async fn put_version(
        &self,
        next: &DocumentHead,
        expected_revision: Option<u64>,
        version: &StoredVersion,
    ) -> Result<bool, SsmError>;
    /// Replaces the head only if it is still at `expected_revision`.
    async fn update_head(
        &self,
        next: &DocumentHead,
        expected_revision: u64,
    ) -> Result<bool, SsmError>;
    /// Writes `next` and deletes version `version`, in one transaction,
    /// only if the head is still at `expected_revision`.
    async fn delete_version(
        &self,
        next: &DocumentHead,
        expected_revision: u64,
        version: u64,
    ) -> Result<bool, SsmError>;
    /// Deletes the head only if it is still at `expected_revision`, then
    /// its versions.
    async fn delete(&self, head: &DocumentHead, expected_revision: u64) -> Result<bool, SsmError>;
    /// Heads in name order after `after`, at most `limit`; `true` when more may follow.
    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DocumentHead>, bool), SsmError>;
}

#[derive(Default)]
struct Entry {
    head: Option<DocumentHead>,
    versions: BTreeMap<u64, StoredVersion>,
}

/// Heads and versions by name, with the same conditions as the DynamoDB store.
#[derive(Default)]
pub struct MemoryDocumentStore {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl MemoryDocumentStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many version items are stored for `name`.
    pub fn stored_versions(&self, name: &str) -> usize {
        self.lock().get(name).map_or(0, |e| e.versions.len())
    }
}

fn at(entry: Option<&Entry>, expected: Option<u64>) -> bool {
    match (entry.and_then(|e| e.head.as_ref()), expected) {
        (None, None) => true,
        (Some(h), Some(r)) => h.revision == r,
        _ => false,
    }
}

#[async_trait]
impl DocumentStore for MemoryDocumentStore {
    async fn head(&self, name: &str) -> Result<Option<DocumentHead>, SsmError> {
        Ok(self.lock().get(name).and_then(|e| e.head.clone()))
    }

    async fn version(&self, name: &str, version: u64) -> Result<Option<StoredVersion>, SsmError> {
        Ok(self
            .lock()
            .get(name)
            .and_then(|e| e.versions.get(&version).cloned()))
    }

    async fn versions(
        &self,
        name: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredVersion>, bool), SsmError> {
        let map = self.lock();
        let mut out: Vec<StoredVersion> = map
            .get(name)
            .map(|e| {
                e.versions
                    .range(after + 1..)
                    .map(|(_, v)| v.clone())
                    .take(limit + 1)
                    .collect()
            })
            .unwrap_or_default();
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }

    async fn version_before(&self, name: &str, before: u64) -> Result<Option<u64>, SsmError> {
        Ok(self
            .lock()
            .get(name)
            .and_then(|e| e.versions.range(1..before).next_back().map(|(k, _)| *k)))
    }

    async fn put_version(
        &self,
        next: &DocumentHead,
        expected_revision: Option<u64>,
        version: &StoredVersion,
    ) -> Result<bool, SsmError> {
        let mut map = self.lock();
        if !at(map.get(&next.name), expected_revision) {
            return Ok(false);
        }
        let e = map.entry(next.name.clone()).or_default();
        if expected_revision.is_none() {
            // A leftover of a deleted document of the same name goes.
            e.versions.clear();
        }
        e.head = Some(next.clone());
        e.versions.insert(version.version, version.clone());
        Ok(true)
    }

    async fn update_head(
        &self,
        next: &DocumentHead,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        let mut map = self.lock();
        if !at(map.get(&next.name), Some(expected_revision)) {
            return Ok(false);
        }
        if let Some(e) = map.get_mut(&next.name) {
            e.head = Some(next.clone());
        }
        Ok(true)
    }

    async fn delete_version(
        &self,
        next: &DocumentHead,
        expected_revision: u64,
        version: u64,
    ) -> Result<bool, SsmError> {
        let mut map = self.lock();
        if !at(map.get(&next.name), Some(expected_revision)) {
            return Ok(false);
        }
        if let Some(e) = map.get_mut(&next.name) {
            e.head = Some(next.clone());
            e.versions.remove(&version);
        }
        Ok(true)
    }

    async fn delete(&self, head: &DocumentHead, expected_revision: u64) -> Result<bool, SsmError> {
        let mut map = self.lock();
        if !at(map.get(&head.name), Some(expected_revision)) {
            return Ok(false);
        }
        map.remove(&head.name);
        Ok(true)
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DocumentHead>, bool), SsmError> {
        let map = self.lock();
        let mut out: Vec<DocumentHead> = map
            .values()
            .filter_map(|e| e.head.clone())
            .filter(|h| after.is_none_or(|a| h.name.as_str() > a))
            .take(limit + 1)
            .collect();
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }
}
