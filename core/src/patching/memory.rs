//! The in-memory [`PatchBaselineStore`] of the unit tests, with the
//! adapter's conditions. The DynamoDB adapter is tested against the local
//! stack with the same expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::baseline::OperatingSystem;
use super::ports::*;
use crate::error::SsmError;

#[derive(Default)]
pub struct MemoryPatchBaselines {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    baselines: BTreeMap<String, StoredBaseline>,
    /// token → (baseline id, fingerprint)
    tokens: BTreeMap<String, (String, String)>,
    /// (group, system) → baseline id
    groups: BTreeMap<(String, OperatingSystem), String>,
    defaults: BTreeMap<OperatingSystem, String>,
}

impl MemoryPatchBaselines {
    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, SsmError> {
        self.state.lock().map_err(|_| SsmError::internal())
    }
}

fn page<T: Clone>(all: Vec<(String, T)>, limit: usize, token: Option<&str>) -> Page<T> {
    let rest: Vec<(String, T)> = all
        .into_iter()
        .filter(|(k, _)| token.is_none_or(|t| k.as_str() > t))
        .collect();
    let more = rest.len() > limit;
    let items: Vec<(String, T)> = rest.into_iter().take(limit).collect();
    let next_token = if more {
        items.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    Page {
        items: items.into_iter().map(|(_, v)| v).collect(),
        next_token,
    }
}

fn group_key(group: &str, os: OperatingSystem) -> String {
    format!("{group}\u{0}{os}")
}

#[async_trait]
impl PatchBaselineStore for MemoryPatchBaselines {
    async fn create(
        &self,
        baseline: &StoredBaseline,
        token: Option<&TokenClaim>,
    ) -> Result<CreateOutcome, SsmError> {
        let mut s = self.state()?;
        if let Some(t) = token
            && let Some((id, fingerprint)) = s.tokens.get(&t.token)
        {
            return Ok(CreateOutcome::TokenUsed {
                baseline_id: id.clone(),
                fingerprint: fingerprint.clone(),
            });
        }
        if s.baselines.contains_key(&baseline.id) {
            return Err(SsmError::internal());
        }
        if let Some(t) = token {
            s.tokens.insert(
                t.token.clone(),
                (baseline.id.clone(), t.fingerprint.clone()),
            );
        }
        s.baselines.insert(baseline.id.clone(), baseline.clone());
        Ok(CreateOutcome::Created)
    }

    async fn get(&self, baseline_id: &str) -> Result<Option<StoredBaseline>, SsmError> {
        Ok(self.state()?.baselines.get(baseline_id).cloned())
    }

    async fn update(
        &self,
        next: &StoredBaseline,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        let mut s = self.state()?;
        match s.baselines.get_mut(&next.id) {
            Some(b) if b.revision == expected_revision => {
                *b = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, baseline: &StoredBaseline) -> Result<bool, SsmError> {
        let mut s = self.state()?;
        let os = baseline.baseline.operating_system;
        let current = s.baselines.get(&baseline.id).map(|b| b.revision);
        if current != Some(baseline.revision) || s.defaults.get(&os) == Some(&baseline.id) {
            return Ok(false);
        }
        s.baselines.remove(&baseline.id);
        Ok(true)
    }

    async fn list(
        &self,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<StoredBaseline>, SsmError> {
        let all = self
            .state()?
            .baselines
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(page(all, limit, token))
    }

    async fn groups_of(&self, baseline_id: &str) -> Result<Vec<String>, SsmError> {
        Ok(self
            .state()?
            .groups
            .iter()
            .filter(|(_, id)| id.as_str() == baseline_id)
            .map(|((g, _), _)| g.clone())
            .collect())
    }

    async fn register_group(
        &self,
        r: &GroupRegistration,
        baseline_revision: Option<u64>,
    ) -> Result<bool, SsmError> {
        let mut s = self.state()?;
        let key = (r.patch_group.clone(), r.operating_system);
        if s.groups.contains_key(&key) {
            return Ok(false);
        }
        if let Some(rev) = baseline_revision {
            match s.baselines.get_mut(&r.baseline_id) {
                Some(b) if b.revision == rev => b.revision += 1,
                _ => return Ok(false),
            }
        }
        s.groups.insert(key, r.baseline_id.clone());
        Ok(true)
    }

    async fn deregister_group(&self, r: &GroupRegistration) -> Result<bool, SsmError> {
        let mut s = self.state()?;
        let key = (r.patch_group.clone(), r.operating_system);
        if s.groups.get(&key) != Some(&r.baseline_id) {
            return Ok(false);
        }
        s.groups.remove(&key);
        Ok(true)
    }

    async fn group_baseline(
        &self,
        patch_group: &str,
        os: OperatingSystem,
    ) -> Result<Option<String>, SsmError> {
        Ok(self
            .state()?
            .groups
            .get(&(patch_group.to_string(), os))
            .cloned())
    }

    async fn list_groups(
        &self,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<GroupRegistration>, SsmError> {
        let all = self
            .state()?
            .groups
            .iter()
            .map(|((g, os), id)| {
                (
                    group_key(g, *os),
                    GroupRegistration {
                        patch_group: g.clone(),
                        operating_system: *os,
                        baseline_id: id.clone(),
                    },
                )
            })
            .collect();
        Ok(page(all, limit, token))
    }

    async fn set_default(
        &self,
        os: OperatingSystem,
        baseline_id: &str,
        baseline_revision: Option<u64>,
    ) -> Result<bool, SsmError> {
        let mut s = self.state()?;
        if let Some(rev) = baseline_revision
            && s.baselines.get(baseline_id).map(|b| b.revision) != Some(rev)
        {
            return Ok(false);
        }
        s.defaults.insert(os, baseline_id.to_string());
        Ok(true)
    }

    async fn default_for(&self, os: OperatingSystem) -> Result<Option<String>, SsmError> {
        Ok(self.state()?.defaults.get(&os).cloned())
    }
}
