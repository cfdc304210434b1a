//! An in-memory [`PatchStateStore`] for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Adopted, InstancePatchState, PatchStateStore};
use crate::error::SsmError;
use crate::patching::report::PatchEntry;

#[derive(Default)]
pub struct MemoryPatchStates {
    states: Mutex<BTreeMap<String, InstancePatchState>>,
    parts: Mutex<BTreeMap<(String, String, u32), Vec<PatchEntry>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl PatchStateStore for MemoryPatchStates {
    async fn put_part(
        &self,
        instance_id: &str,
        snapshot_id: &str,
        part: u32,
        patches: &[PatchEntry],
    ) -> Result<(), SsmError> {
        lock(&self.parts).insert(
            (instance_id.to_string(), snapshot_id.to_string(), part),
            patches.to_vec(),
        );
        Ok(())
    }

    async fn adopt(&self, state: &InstancePatchState) -> Result<Adopted, SsmError> {
        let mut states = lock(&self.states);
        match states.get(&state.instance_id) {
            Some(current) if !state.supersedes(current) => Ok(Adopted::Kept),
            current => {
                let previous = current.cloned();
                states.insert(state.instance_id.clone(), state.clone());
                Ok(Adopted::Replaced(previous))
            }
        }
    }

    async fn get(&self, instance_id: &str) -> Result<Option<InstancePatchState>, SsmError> {
        Ok(lock(&self.states).get(instance_id).cloned())
    }

    async fn in_group(&self, patch_group: &str) -> Result<Vec<InstancePatchState>, SsmError> {
        Ok(lock(&self.states)
            .values()
            .filter(|s| s.patch_group.as_deref() == Some(patch_group))
            .cloned()
            .collect())
    }

    async fn patches(
        &self,
        instance_id: &str,
        snapshot_id: &str,
    ) -> Result<Vec<PatchEntry>, SsmError> {
        Ok(lock(&self.parts)
            .iter()
            .filter(|((i, s, _), _)| i == instance_id && s == snapshot_id)
            .flat_map(|(_, p)| p.iter().cloned())
            .collect())
    }
}
