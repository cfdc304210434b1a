//! An in-memory [`WindowStore`] for unit tests, with the store's conditions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{Execution, Window, WindowTarget, WindowTask};
use super::ports::{Due, WindowStore};
use crate::error::SsmError;

#[derive(Default)]
pub struct MemoryWindows {
    pub windows: Mutex<BTreeMap<String, Window>>,
    /// By (window id, target id).
    pub targets: Mutex<BTreeMap<(String, String), WindowTarget>>,
    pub tasks: Mutex<BTreeMap<(String, String), WindowTask>>,
    pub executions: Mutex<BTreeMap<String, Execution>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl WindowStore for MemoryWindows {
    async fn insert_window(&self, w: &Window) -> Result<bool, SsmError> {
        let mut all = lock(&self.windows);
        if all.contains_key(&w.id) {
            return Ok(false);
        }
        all.insert(w.id.clone(), w.clone());
        Ok(true)
    }

    async fn get_window(&self, id: &str) -> Result<Option<Window>, SsmError> {
        Ok(lock(&self.windows).get(id).cloned())
    }

    async fn update_window(&self, w: &Window, expected_revision: u64) -> Result<bool, SsmError> {
        let mut all = lock(&self.windows);
        match all.get_mut(&w.id) {
            Some(cur) if cur.revision == expected_revision => {
                *cur = w.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_window(&self, id: &str) -> Result<(), SsmError> {
        lock(&self.windows).remove(id);
        lock(&self.targets).retain(|(w, _), _| w != id);
        lock(&self.tasks).retain(|(w, _), _| w != id);
        lock(&self.executions).retain(|_, e| e.window_id != id);
        Ok(())
    }

    async fn list_windows(&self) -> Result<Vec<Window>, SsmError> {
        Ok(lock(&self.windows).values().cloned().collect())
    }

    async fn insert_target(&self, t: &WindowTarget) -> Result<bool, SsmError> {
        let mut all = lock(&self.targets);
        let k = (t.window_id.clone(), t.id.clone());
        if all.contains_key(&k) {
            return Ok(false);
        }
        all.insert(k, t.clone());
        Ok(true)
    }

    async fn get_target(
        &self,
        window_id: &str,
        id: &str,
    ) -> Result<Option<WindowTarget>, SsmError> {
        Ok(lock(&self.targets)
            .get(&(window_id.to_string(), id.to_string()))
            .cloned())
    }

    async fn update_target(
        &self,
        t: &WindowTarget,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        let mut all = lock(&self.targets);
        match all.get_mut(&(t.window_id.clone(), t.id.clone())) {
            Some(cur) if cur.revision == expected_revision => {
                *cur = t.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_target(&self, t: &WindowTarget) -> Result<bool, SsmError> {
        let mut all = lock(&self.targets);
        let k = (t.window_id.clone(), t.id.clone());
        match all.get(&k) {
            Some(cur) if cur.revision == t.revision => {
                all.remove(&k);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_targets(&self, window_id: &str) -> Result<Vec<WindowTarget>, SsmError> {
        Ok(lock(&self.targets)
            .values()
            .filter(|t| t.window_id == window_id)
            .cloned()
            .collect())
    }

    async fn insert_task(&self, t: &WindowTask) -> Result<bool, SsmError> {
        let mut all = lock(&self.tasks);
        let k = (t.window_id.clone(), t.id.clone());
        if all.contains_key(&k) {
            return Ok(false);
        }
        all.insert(k, t.clone());
        Ok(true)
    }

    async fn get_task(&self, window_id: &str, id: &str) -> Result<Option<WindowTask>, SsmError> {
        Ok(lock(&self.tasks)
            .get(&(window_id.to_string(), id.to_string()))
            .cloned())
    }

    async fn update_task(&self, t: &WindowTask, expected_revision: u64) -> Result<bool, SsmError> {
        let mut all = lock(&self.tasks);
        match all.get_mut(&(t.window_id.clone(), t.id.clone())) {
            Some(cur) if cur.revision == expected_revision => {
                *cur = t.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_task(&self, t: &WindowTask) -> Result<bool, SsmError> {
        let mut all = lock(&self.tasks);
        let k = (t.window_id.clone(), t.id.clone());
        match all.get(&k) {
            Some(cur) if cur.revision == t.revision => {
                all.remove(&k);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_tasks(&self, window_id: &str) -> Result<Vec<WindowTask>, SsmError> {
        Ok(lock(&self.tasks)
            .values()
            .filter(|t| t.window_id == window_id)
            .cloned()
            .collect())
    }

    async fn insert_execution(&self, e: &Execution) -> Result<bool, SsmError> {
        let mut all = lock(&self.executions);
        if all.contains_key(&e.id) {
            return Ok(false);
        }
        all.insert(e.id.clone(), e.clone());
        Ok(true)
    }

    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, SsmError> {
        Ok(lock(&self.executions).get(id).cloned())
    }

    async fn update_execution(
        &self,
        e: &Execution,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        let mut all = lock(&self.executions);
        match all.get_mut(&e.id) {
            Some(cur) if cur.revision == expected_revision => {
                *cur = e.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_executions(&self, window_id: &str) -> Result<Vec<Execution>, SsmError> {
        let mut out: Vec<Execution> = lock(&self.executions)
            .values()
            .filter(|e| e.window_id == window_id)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            b.start_time
                .total_cmp(&a.start_time)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(out)
    }

    async fn due(&self, now: i64) -> Result<Vec<Due>, SsmError> {
        let mut out: Vec<Due> = lock(&self.windows)
            .values()
            .filter(|w| w.next_due.is_some_and(|d| d <= now))
            .cloned()
            .map(Due::Window)
            .collect();
        out.extend(
            lock(&self.executions)
                .values()
                .filter(|e| e.due)
                .cloned()
                .map(Due::Execution),
        );
        Ok(out)
    }
}
