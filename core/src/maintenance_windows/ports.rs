//! What maintenance windows need of the world: one store for windows, their
//! targets and tasks, and their executions, with a due index the tick
//! reads. `steward-aws` implements it over `MaintenanceWindowsTable`;
//! [`super::memory`] is the fake of the unit tests, with the same
//! conditions.

use async_trait::async_trait;

use super::model::{Execution, Window, WindowTarget, WindowTask};
use crate::error::SsmError;

/// Something the tick has to look at.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// A window whose next occurrence is due (`next_due <= now`).
    Window(Window),
    /// An execution still under way.
    Execution(Execution),
}

#[async_trait]
pub trait WindowStore: Send + Sync {
    /// Writes a new window; `false`: its id is taken.
    async fn insert_window(&self, w: &Window) -> Result<bool, SsmError>;
    async fn get_window(&self, id: &str) -> Result<Option<Window>, SsmError>;
    /// Replaces the window if it is still at `expected_revision` (the
    /// stored revision becomes `w.revision`).
    async fn update_window(&self, w: &Window, expected_revision: u64) -> Result<bool, SsmError>;
    /// Deletes the window with its targets, tasks and executions.
    async fn delete_window(&self, id: &str) -> Result<(), SsmError>;
    /// Every window, in id order.
    async fn list_windows(&self) -> Result<Vec<Window>, SsmError>;

    /// `false`: the id is taken.
    async fn insert_target(&self, t: &WindowTarget) -> Result<bool, SsmError>;
    async fn get_target(&self, window_id: &str, id: &str)
    -> Result<Option<WindowTarget>, SsmError>;
    async fn update_target(
        &self,
        t: &WindowTarget,
        expected_revision: u64,
    ) -> Result<bool, SsmError>;
    /// `false`: it is no longer at `expected_revision`.
    async fn delete_target(&self, t: &WindowTarget) -> Result<bool, SsmError>;
    /// A window's targets, in id order.
    async fn list_targets(&self, window_id: &str) -> Result<Vec<WindowTarget>, SsmError>;

    async fn insert_task(&self, t: &WindowTask) -> Result<bool, SsmError>;
    async fn get_task(&self, window_id: &str, id: &str) -> Result<Option<WindowTask>, SsmError>;
    async fn update_task(&self, t: &WindowTask, expected_revision: u64) -> Result<bool, SsmError>;
    async fn delete_task(&self, t: &WindowTask) -> Result<bool, SsmError>;
    async fn list_tasks(&self, window_id: &str) -> Result<Vec<WindowTask>, SsmError>;

    /// `false`: the id is taken (the occurrence was started before).
    async fn insert_execution(&self, e: &Execution) -> Result<bool, SsmError>;
    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, SsmError>;
    async fn update_execution(
        &self,
        e: &Execution,
        expected_revision: u64,
    ) -> Result<bool, SsmError>;
    /// A window's executions, newest first.
    async fn list_executions(&self, window_id: &str) -> Result<Vec<Execution>, SsmError>;

    /// What is due at `now`: windows whose `next_due <= now` and executions
    /// with `due` set. One index query.
    async fn due(&self, now: i64) -> Result<Vec<Due>, SsmError>;
}
