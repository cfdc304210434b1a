//! What Patch Manager's baselines need of the world: one store holding the
//! account's baselines, which baseline each patch group uses per operating
//! system, and which baseline is each system's default. `steward-aws`
//! implements it over one DynamoDB table; [`super::memory`] is the fake of
//! the unit tests, with the same conditions.

use async_trait::async_trait;

use super::baseline::{OperatingSystem, PatchBaseline};
use crate::error::SsmError;
use crate::tags::TagSet;

/// A baseline the account created.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBaseline {
    /// `pb-` and 17 hex digits.
    pub id: String,
    pub baseline: PatchBaseline,
    /// Epoch seconds.
    pub created: f64,
    pub modified: f64,
    pub tags: TagSet,
    /// Every write is conditional on it; registering a patch group to the
    /// baseline raises it too, so a delete that saw no group fails.
    pub revision: u64,
}

/// A ClientToken taken by a CreatePatchBaseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaim {
    pub token: String,
    /// The request the token was first given with (canonical JSON): a
    /// retry must repeat it.
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The ClientToken was used before, by this baseline and request.
    TokenUsed {
        baseline_id: String,
        fingerprint: String,
    },
}

/// One patch group's baseline for one operating system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRegistration {
    pub patch_group: String,
    pub operating_system: OperatingSystem,
    pub baseline_id: String,
}

/// A page of a listing; `next_token` is the store's own, opaque.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

#[async_trait]
pub trait PatchBaselineStore: Send + Sync {
    /// Writes a new baseline, taking `token` with it in the same write.
    async fn create(
        &self,
        baseline: &StoredBaseline,
        token: Option<&TokenClaim>,
    ) -> Result<CreateOutcome, SsmError>;
    /// A consistent read of an account baseline (not the predefined ones).
    async fn get(&self, baseline_id: &str) -> Result<Option<StoredBaseline>, SsmError>;
    /// Replaces the baseline if it is still at `expected_revision`.
    async fn update(&self, next: &StoredBaseline, expected_revision: u64)
    -> Result<bool, SsmError>;
    /// Deletes the baseline if it is still at `expected_revision` and is
    /// not its system's registered default. `false`: one of those failed.
    async fn delete(&self, baseline: &StoredBaseline) -> Result<bool, SsmError>;
    /// Account baselines in id order, at most `limit`, after `token`.
    async fn list(
        &self,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<StoredBaseline>, SsmError>;

    /// The patch groups registered to a baseline.
    async fn groups_of(&self, baseline_id: &str) -> Result<Vec<String>, SsmError>;
    /// Registers the group for the system, if it has no baseline for it
    /// yet; when `baseline_revision` is given, only if that account
    /// baseline is still at it (and raises it). `false`: nothing written.
    async fn register_group(
        &self,
        registration: &GroupRegistration,
        baseline_revision: Option<u64>,
    ) -> Result<bool, SsmError>;
    /// Removes the registration if it names this baseline. `false`: it did not.
    async fn deregister_group(&self, registration: &GroupRegistration) -> Result<bool, SsmError>;
    /// The baseline registered for the group and system, if any.
    async fn group_baseline(
        &self,
        patch_group: &str,
        os: OperatingSystem,
    ) -> Result<Option<String>, SsmError>;
    /// Registrations in (group, system) order, at most `limit`, after `token`.
    async fn list_groups(
        &self,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<GroupRegistration>, SsmError>;

    /// Makes `baseline_id` the system's default; when `baseline_revision`
    /// is given, only if that account baseline is still at it. `false`:
    /// nothing written.
    async fn set_default(
        &self,
        os: OperatingSystem,
        baseline_id: &str,
        baseline_revision: Option<u64>,
    ) -> Result<bool, SsmError>;
    /// The registered default, if an operator registered one.
    async fn default_for(&self, os: OperatingSystem) -> Result<Option<String>, SsmError>;
}
