//! In-memory Parameter Store ports for unit tests. The adapters in
//! `steward-aws` are tested against the local stack with the same rules.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::model::{Parameter, ParameterVersion};
use super::name::parent_of;
use super::ports::{DataKey, DataKeys, ParameterStore};
use crate::error::SsmError;

#[derive(Default)]
struct Entry {
    head: Option<Parameter>,
    versions: BTreeMap<u64, ParameterVersion>,
}

/// Heads and versions by name, with the same conditions as the DynamoDB store.
#[derive(Default)]
pub struct MemoryParameterStore {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Each change of a head, before and after, as the table's stream
    /// carries it (see `events::of_parameter_change`).
    changes: Mutex<Vec<(Option<Parameter>, Option<Parameter>)>>,
}

impl MemoryParameterStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The heads' changes since the last call, as the stream's reader gets them.
    pub fn take_changes(&self) -> Vec<(Option<Parameter>, Option<Parameter>)> {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn changed(&self, old: Option<Parameter>, new: Option<Parameter>) {
        self.changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((old, new));
    }

    /// How many version items are stored for `name` (garbage included).
    pub fn stored_versions(&self, name: &str) -> usize {
        self.lock().get(name).map_or(0, |e| e.versions.len())
    }
}

fn page(
    heads: impl Iterator<Item = Parameter>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<Parameter>, bool) {
    let mut out: Vec<Parameter> = heads
        .filter(|p| after.is_none_or(|a| p.name() > a))
        .take(limit + 1)
        .collect();
    let more = out.len() > limit;
    out.truncate(limit);
    (out, more)
}

#[async_trait]
impl ParameterStore for MemoryParameterStore {
    async fn get(&self, name: &str) -> Result<Option<Parameter>, SsmError> {
        Ok(self.lock().get(name).and_then(|e| e.head.clone()))
    }

    async fn get_many(&self, names: &[String]) -> Result<Vec<Parameter>, SsmError> {
        let map = self.lock();
        Ok(names
            .iter()
            .filter_map(|n| map.get(n).and_then(|e| e.head.clone()))
            .collect())
    }

    async fn get_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<ParameterVersion>, SsmError> {
        Ok(self
            .lock()
            .get(name)
            .and_then(|e| e.versions.get(&version).cloned()))
    }

    async fn versions(
        &self,
        name: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<ParameterVersion>, SsmError> {
        if from > to {
            return Ok(Vec::new());
        }
        Ok(self.lock().get(name).map_or_else(Vec::new, |e| {
            e.versions
                .range(from..=to)
                .take(limit)
                .map(|(_, v)| v.clone())
                .collect()
        }))
    }

    async fn put_version(
        &self,
        next: &Parameter,
        expected_revision: Option<u64>,
        drop_version: Option<u64>,
    ) -> Result<bool, SsmError> {
        let mut map = self.lock();
        let entry = map.entry(next.name().to_string()).or_default();
        if entry.head.as_ref().map(|h| h.revision) != expected_revision {
            return Ok(false);
        }
        entry.versions.insert(next.version(), next.current.clone());
        if let Some(v) = drop_version {
            entry.versions.remove(&v);
        }
        let old = entry.head.replace(next.clone());
        drop(map);
        self.changed(old, Some(next.clone()));
        Ok(true)
    }

    async fn update(
        &self,
        next: &Parameter,
        expected_revision: u64,
        versions: &[ParameterVersion],
    ) -> Result<bool, SsmError> {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(next.name()) else {
            return Ok(false);
        };
        if entry.head.as_ref().map(|h| h.revision) != Some(expected_revision) {
            return Ok(false);
        }
        for v in versions {
            entry.versions.insert(v.version, v.clone());
        }
        let old = entry.head.replace(next.clone());
        drop(map);
        self.changed(old, Some(next.clone()));
        Ok(true)
    }

    async fn delete(&self, head: &Parameter, expected_revision: u64) -> Result<bool, SsmError> {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(head.name()) else {
            return Ok(false);
        };
        if entry.head.as_ref().map(|h| h.revision) != Some(expected_revision) {
            return Ok(false);
        }
        let old = map.remove(head.name()).and_then(|e| e.head);
        drop(map);
        self.changed(old, None);
        Ok(true)
    }

    async fn list_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        let map = self.lock();
        let heads = map
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .filter_map(|(_, e)| e.head.clone());
        Ok(page(heads, after, limit))
    }

    async fn list_children(
        &self,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        let map = self.lock();
        let heads = map
            .iter()
            .filter(|(n, _)| parent_of(n) == parent)
            .filter_map(|(_, e)| e.head.clone());
        Ok(page(heads, after, limit))
    }

    async fn due(&self, now: f64, limit: usize) -> Result<Vec<Parameter>, SsmError> {
        let map = self.lock();
        let mut due: Vec<Parameter> = map
            .values()
            .filter_map(|e| e.head.clone())
            .filter(|p| p.policy_due.is_some_and(|d| d <= now))
            .collect();
        due.sort_by(|a, b| {
            a.policy_due
                .partial_cmp(&b.policy_due)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        due.truncate(limit);
        Ok(due)
    }
}

/// A stand-in for KMS: a data key is "encrypted" by XOR with a pad derived
/// from the context, so a wrong context yields a wrong key and the AES-GCM
/// open that follows fails, as with KMS. Counts calls like the benchmark does.
#[derive(Default)]
pub struct MemoryDataKeys {
    pub generated: AtomicU64,
    pub decrypted: AtomicU64,
}

/// Key ids this fake knows; any other is `InvalidKeyId`.
pub const MEMORY_KEY_IDS: [&str; 2] = ["stack-key", "other-key"];

fn pad(context: &[(&str, &str)]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (k, v) in context {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

#[async_trait]
impl DataKeys for MemoryDataKeys {
    async fn generate(&self, key_id: &str, context: &[(&str, &str)]) -> Result<DataKey, SsmError> {
        if !MEMORY_KEY_IDS.contains(&key_id) {
            return Err(SsmError::InvalidKeyId(format!(
                "Key {key_id} does not exist or is not enabled; give the id, ARN or alias of an enabled symmetric KMS key."
            )));
        }
        self.generated.fetch_add(1, Ordering::Relaxed);
        let plaintext: [u8; 32] = rand::random();
        let p = pad(context);
        let mut encrypted: Vec<u8> = key_id.as_bytes().to_vec();
        encrypted.push(0);
        encrypted.extend(plaintext.iter().zip(p.iter()).map(|(a, b)| a ^ b));
        Ok(DataKey {
            plaintext,
            encrypted,
            key_arn: format!("arn:aws:kms:us-east-1:123456789012:key/{key_id}"),
        })
    }

    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &[(&str, &str)],
    ) -> Result<[u8; 32], SsmError> {
        self.decrypted.fetch_add(1, Ordering::Relaxed);
        let sep = encrypted
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(SsmError::internal)?;
        let body = &encrypted[sep + 1..];
        if body.len() != 32 {
            return Err(SsmError::internal());
        }
        let p = pad(context);
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = body[i] ^ p[i];
        }
        Ok(key)
    }
}
