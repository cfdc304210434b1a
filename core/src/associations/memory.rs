//! An in-memory [`AssociationStore`] with the same conditions as the
//! DynamoDB one, for unit tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{Association, Execution, ExecutionTarget, InstanceStatus, Marker};
use super::ports::{AssociationStore, Due};
use crate::error::SsmError;

#[derive(Default)]
struct State {
    heads: BTreeMap<String, Association>,
    versions: BTreeMap<(String, u32), Association>,
    legacy: BTreeMap<String, String>,
    executions: BTreeMap<(String, String), Execution>,
    targets: BTreeMap<(String, String, String), ExecutionTarget>,
    statuses: BTreeMap<(String, String), InstanceStatus>,
    markers: BTreeMap<String, Marker>,
}

#[derive(Default)]
pub struct MemoryAssociations {
    state: Mutex<State>,
}

impl MemoryAssociations {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock means a test already failed; its state is still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    /// Every execution of every association (tests).
    pub fn all_executions(&self) -> Vec<Execution> {
        self.with(|s| s.executions.values().cloned().collect())
    }

    /// Every marker (tests).
    pub fn markers(&self) -> Vec<Marker> {
        self.with(|s| s.markers.values().cloned().collect())
    }
}

#[async_trait]
impl AssociationStore for MemoryAssociations {
    async fn create(&self, a: &Association, legacy_key: Option<&str>) -> Result<bool, SsmError> {
        Ok(self.with(|s| {
            if s.heads.contains_key(&a.association_id)
                || legacy_key.is_some_and(|k| s.legacy.contains_key(k))
            {
                return false;
            }
            if let Some(k) = legacy_key {
                s.legacy.insert(k.to_string(), a.association_id.clone());
            }
            s.heads.insert(a.association_id.clone(), a.clone());
            s.versions
                .insert((a.association_id.clone(), a.association_version), a.clone());
            true
        }))
    }

    async fn get(&self, association_id: &str) -> Result<Option<Association>, SsmError> {
        Ok(self.with(|s| s.heads.get(association_id).cloned()))
    }

    async fn legacy(&self, legacy_key: &str) -> Result<Option<String>, SsmError> {
        Ok(self.with(|s| s.legacy.get(legacy_key).cloned()))
    }

    async fn list(&self) -> Result<Vec<Association>, SsmError> {
        Ok(self.with(|s| s.heads.values().cloned().collect()))
    }

    async fn versions(&self, association_id: &str) -> Result<Vec<Association>, SsmError> {
        Ok(self.with(|s| {
            s.versions
                .iter()
                .filter(|((id, _), _)| id == association_id)
                .map(|(_, v)| v.clone())
                .collect()
        }))
    }

    async fn update(
        &self,
        next: &Association,
        expected_revision: u64,
        new_version: bool,
    ) -> Result<bool, SsmError> {
        Ok(self.with(|s| {
            match s.heads.get(&next.association_id) {
                Some(h) if h.revision == expected_revision => {}
                _ => return false,
            }
            s.heads.insert(next.association_id.clone(), next.clone());
            if new_version {
                s.versions.insert(
                    (next.association_id.clone(), next.association_version),
                    next.clone(),
                );
            }
            true
        }))
    }

    async fn delete(&self, a: &Association) -> Result<bool, SsmError> {
        Ok(self.with(|s| {
            match s.heads.get(&a.association_id) {
                Some(h) if h.revision == a.revision => {}
                _ => return false,
            }
            s.heads.remove(&a.association_id);
            s.versions.retain(|(id, _), _| id != &a.association_id);
            if let Some(k) = a.legacy_key() {
                s.legacy.remove(&k);
            }
            true
        }))
    }

    async fn put_execution(&self, e: &Execution) -> Result<bool, SsmError> {
        Ok(self.with(|s| {
            let key = (e.association_id.clone(), e.execution_id.clone());
            if s.executions.contains_key(&key) {
                return false;
            }
            s.executions.insert(key, e.clone());
            true
        }))
    }

    async fn update_execution(
        &self,
        e: &Execution,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        Ok(self.with(|s| {
            let key = (e.association_id.clone(), e.execution_id.clone());
            match s.executions.get(&key) {
                Some(old) if old.revision == expected_revision => {
                    s.executions.insert(key, e.clone());
                    true
                }
                _ => false,
            }
        }))
    }

    async fn execution(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Option<Execution>, SsmError> {
        Ok(self.with(|s| {
            s.executions
                .get(&(association_id.to_string(), execution_id.to_string()))
                .cloned()
        }))
    }

    async fn executions(&self, association_id: &str) -> Result<Vec<Execution>, SsmError> {
        Ok(self.with(|s| {
            s.executions
                .values()
                .filter(|e| e.association_id == association_id)
                .cloned()
                .collect()
        }))
    }

    async fn put_target(&self, t: &ExecutionTarget) -> Result<(), SsmError> {
        self.with(|s| {
            s.targets.insert(
                (
                    t.association_id.clone(),
                    t.execution_id.clone(),
                    t.resource_id.clone(),
                ),
                t.clone(),
            )
        });
        Ok(())
    }

    async fn targets(
        &self,
        association_id: &str,
        execution_id: &str,
    ) -> Result<Vec<ExecutionTarget>, SsmError> {
        Ok(self.with(|s| {
            s.targets
                .values()
                .filter(|t| t.association_id == association_id && t.execution_id == execution_id)
                .cloned()
                .collect()
        }))
    }

    async fn put_instance_status(&self, st: &InstanceStatus) -> Result<(), SsmError> {
        self.with(|s| {
            s.statuses.insert(
                (st.instance_id.clone(), st.association_id.clone()),
                st.clone(),
            )
        });
        Ok(())
    }

    async fn instance_statuses(&self, instance_id: &str) -> Result<Vec<InstanceStatus>, SsmError> {
        Ok(self.with(|s| {
            s.statuses
                .values()
                .filter(|st| st.instance_id == instance_id)
                .cloned()
                .collect()
        }))
    }

    async fn put_marker(&self, m: &Marker) -> Result<(), SsmError> {
        self.with(|s| s.markers.insert(m.instance_id.clone(), m.clone()));
        Ok(())
    }

    async fn marker(&self, instance_id: &str) -> Result<Option<Marker>, SsmError> {
        Ok(self.with(|s| s.markers.get(instance_id).cloned()))
    }

    async fn postpone_marker(&self, m: &Marker) -> Result<bool, SsmError> {
        Ok(self.with(|s| match s.markers.get_mut(&m.instance_id) {
            Some(old) if old.written == m.written => {
                old.next_due = m.next_due;
                true
            }
            _ => false,
        }))
    }

    async fn delete_marker(&self, instance_id: &str, written: f64) -> Result<bool, SsmError> {
        Ok(self.with(|s| match s.markers.get(instance_id) {
            Some(old) if old.written == written => {
                s.markers.remove(instance_id);
                true
            }
            _ => false,
        }))
    }

    async fn due(&self, now: f64) -> Result<Vec<Due>, SsmError> {
        Ok(self.with(|s| {
            let mut out: Vec<Due> = s
                .heads
                .values()
                .filter(|a| a.next_due.is_some_and(|d| d <= now))
                .map(|a| Due::Association(a.association_id.clone()))
                .collect();
            out.extend(
                s.executions
                    .values()
                    .filter(|e| e.next_due.is_some_and(|d| d <= now))
                    .map(|e| Due::Execution {
                        association_id: e.association_id.clone(),
                        execution_id: e.execution_id.clone(),
                    }),
            );
            out.extend(
                s.markers
                    .values()
                    .filter(|m| m.next_due <= now)
                    .map(|m| Due::Marker(m.instance_id.clone())),
            );
            out
        }))
    }
}
