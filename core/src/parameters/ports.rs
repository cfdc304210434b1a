//! What Parameter Store needs from the outside world. `steward-aws`
//! implements these over DynamoDB and KMS; `memory` implements them for
//! unit tests.

use async_trait::async_trait;

use super::model::{Parameter, ParameterVersion};
use crate::error::SsmError;

/// Parameters and their versions. Every head write is conditional on the
/// head's `revision` (or on its absence); a `false` means someone else wrote
/// in between: read again and decide again.
#[async_trait]
pub trait ParameterStore: Send + Sync {
    /// A consistent read of the head.
    async fn get(&self, name: &str) -> Result<Option<Parameter>, SsmError>;
    /// Heads of the names that exist, in any order (at most 20 names).
    async fn get_many(&self, names: &[String]) -> Result<Vec<Parameter>, SsmError>;
    /// The parameter `name` names, however its top level is written:
    /// `solo` and `/solo` are one parameter (one ARN), kept under the name
    /// it was created with.
    async fn find(&self, name: &str) -> Result<Option<Parameter>, SsmError> {
        if let Some(head) = self.get(name).await? {
            return Ok(Some(head));
        }
        match super::name::other_spelling(name) {
            Some(other) => self.get(&other).await,
            None => Ok(None),
        }
    }
    /// One kept version. Versions outside `[oldest_version, latest]` of the
    /// current head are garbage the caller must ignore.
    async fn get_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<ParameterVersion>, SsmError>;
    /// Versions `from..=to` in ascending order, at most `limit`.
    async fn versions(
        &self,
        name: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<ParameterVersion>, SsmError>;
    /// Writes a new latest version: the head `next` (whose `current` is the
    /// new version) and the version item, in one transaction, only if the
    /// head is still at `expected_revision` (`None`: only if no head exists).
    /// `drop_version` is deleted in the same transaction (the 101st write
    /// drops the oldest). Version items are overwritten unconditionally: the
    /// head condition already makes the writer exclusive, and a leftover of
    /// a deleted parameter of the same name must not block it.
    async fn put_version(
        &self,
        next: &Parameter,
        expected_revision: Option<u64>,
        drop_version: Option<u64>,
    ) -> Result<bool, SsmError>;
    /// Replaces the head (labels, tags, policy state) and the given version
    /// items (their label sets), in one transaction, only if the head is
    /// still at `expected_revision`.
    async fn update(
        &self,
        next: &Parameter,
        expected_revision: u64,
        versions: &[ParameterVersion],
    ) -> Result<bool, SsmError>;
    /// Deletes the head only if it is still at `expected_revision`, then its
    /// versions. `false` when the condition failed.
    async fn delete(&self, head: &Parameter, expected_revision: u64) -> Result<bool, SsmError>;
    /// Heads whose names start with `prefix`, in name order, after `after`,
    /// at most `limit`; `true` when more may follow.
    async fn list_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError>;
    /// Heads whose parent path is `parent` (one level), in name order.
    async fn list_children(
        &self,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError>;
    /// Heads whose `policy_due` is at or before `now`, earliest first.
    async fn due(&self, now: f64, limit: usize) -> Result<Vec<Parameter>, SsmError>;
}

/// A data key from KMS: the plaintext for one AES-256-GCM seal, and the
/// same key encrypted under the KMS key, stored with the ciphertext.
pub struct DataKey {
    pub plaintext: [u8; 32],
    pub encrypted: Vec<u8>,
    /// The KMS key's ARN (what `KeyId` resolved to).
    pub key_arn: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("key_arn", &self.key_arn)
            .finish_non_exhaustive()
    }
}

/// KMS for SecureString: data keys bound to an encryption context (the
/// parameter's ARN). `InvalidKeyId` when the key does not exist or is not
/// usable; a ciphertext that does not open under its context is
/// `InvalidKeyId` too, with a message that names no secret.
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// `GenerateDataKey` (AES_256) under `key_id` with `context`.
    async fn generate(&self, key_id: &str, context: &[(&str, &str)]) -> Result<DataKey, SsmError>;
    /// `Decrypt` of `encrypted` with `context`: the plaintext data key.
    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &[(&str, &str)],
    ) -> Result<[u8; 32], SsmError>;
}
