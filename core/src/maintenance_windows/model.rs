//! What a maintenance window is made of, as stored: the window, its
//! registered targets and tasks, and its executions with their tasks and
//! invocations. Records are plain data (serde), written whole under a
//! revision the store conditions every write on.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::targets::Target;

/// A maintenance window (CreateMaintenanceWindow's fields and its schedule
/// state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `mw-` and 17 hex digits.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// As given (ISO 8601), and as epoch seconds.
    pub start_date: Option<String>,
    pub start_epoch: Option<i64>,
    pub end_date: Option<String>,
    pub end_epoch: Option<i64>,
    pub schedule: String,
    pub schedule_timezone: Option<String>,
    pub schedule_offset: Option<i32>,
    /// Hours.
    pub duration: i64,
    /// Hours.
    pub cutoff: i64,
    pub allow_unassociated_targets: bool,
    pub enabled: bool,
    /// Epoch seconds.
    pub created: f64,
    pub modified: f64,
    pub tags: crate::tags::TagSet,
    /// The next occurrence: when it is due (epoch seconds; it carries the
    /// window into the due index) and when it was scheduled (the search for
    /// the one after resumes there).
    pub next_due: Option<i64>,
    pub next_scheduled: Option<i64>,
    /// The request a ClientToken created the window with (canonical JSON).
    pub fingerprint: Option<String>,
    pub revision: u64,
}

/// A registered target (RegisterTargetWithMaintenanceWindow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowTarget {
    pub window_id: String,
    /// A UUID.
    pub id: String,
    /// `INSTANCE` or `RESOURCE_GROUP`.
    pub resource_type: String,
    pub targets: Vec<Target>,
    pub owner_information: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub fingerprint: Option<String>,
    pub revision: u64,
}

/// A registered task (RegisterTaskWithMaintenanceWindow).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowTask {
    pub window_id: String,
    /// A UUID.
    pub id: String,
    /// The document (RUN_COMMAND, AUTOMATION) the task runs.
    pub task_arn: String,
    /// `RUN_COMMAND` or `AUTOMATION`.
    pub task_type: String,
    pub targets: Vec<Target>,
    pub service_role_arn: Option<String>,
    /// The legacy `TaskParameters`, as given.
    pub task_parameters: Option<Value>,
    /// `TaskInvocationParameters`, as given (checked).
    pub invocation: Option<Value>,
    pub priority: i64,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    /// `CONTINUE_TASK` or `CANCEL_TASK`.
    pub cutoff_behavior: String,
    pub logging_info: Option<Value>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The IAM user name the task runs as: who registered it (or last
    /// updated it).
    pub run_as: String,
    pub fingerprint: Option<String>,
    pub revision: u64,
}

/// SSM's MaintenanceWindowExecutionStatus.
pub mod status {
    pub const PENDING: &str = "PENDING";
    pub const IN_PROGRESS: &str = "IN_PROGRESS";
    pub const SUCCESS: &str = "SUCCESS";
    pub const FAILED: &str = "FAILED";
    pub const TIMED_OUT: &str = "TIMED_OUT";
    pub const CANCELLING: &str = "CANCELLING";
    pub const CANCELLED: &str = "CANCELLED";
    pub const SKIPPED_OVERLAPPING: &str = "SKIPPED_OVERLAPPING";

    pub const ALL: [&str; 8] = [
        PENDING,
        IN_PROGRESS,
        SUCCESS,
        FAILED,
        TIMED_OUT,
        CANCELLING,
        CANCELLED,
        SKIPPED_OVERLAPPING,
    ];

    pub fn is_final(s: &str) -> bool {
        matches!(
            s,
            SUCCESS | FAILED | TIMED_OUT | CANCELLED | SKIPPED_OVERLAPPING
        )
    }
}

/// One run of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub window_id: String,
    /// A UUID, following from the window and the scheduled time.
    pub id: String,
    pub status: String,
    pub status_details: Option<String>,
    /// When the occurrence was scheduled (epoch seconds).
    pub scheduled: i64,
    /// When the window opened: the occurrence's due time (epoch seconds);
    /// the cutoff and the end count from it.
    pub window_start: i64,
    /// When it started and ended (epoch seconds).
    pub start_time: f64,
    pub end_time: Option<f64>,
    /// The window's Duration and Cutoff (hours) as it started.
    pub duration: i64,
    pub cutoff: i64,
    /// Tasks in the order they run (priority, then id).
    pub tasks: Vec<ExecutionTask>,
    /// Set by CancelMaintenanceWindowExecution.
    pub cancel_requested: bool,
    /// Some task was not started because the cutoff was reached.
    pub cut_off: bool,
    /// Whether the tick still has work on it (it is in the due index).
    pub due: bool,
    pub revision: u64,
}

/// A task of an execution: the registered task as it was when the
/// execution started, and how it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionTask {
    /// A UUID, following from the execution and the window task.
    pub id: String,
    pub task: WindowTask,
    pub status: String,
    pub status_details: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub invocations: Vec<Invocation>,
}

/// One command (or automation execution) a task sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// A UUID.
    pub id: String,
    /// The command id; for an automation, its execution id once started
    /// (`None` before).
    pub execution_id: Option<String>,
    /// For an automation: the ClientToken it is started with.
    pub client_token: Option<String>,
    pub task_type: String,
    /// The request sent (SendCommand's or StartAutomationExecution's).
    pub parameters: Value,
    pub status: String,
    pub status_details: Option<String>,
    pub start_time: f64,
    pub end_time: Option<f64>,
    pub owner_information: Option<String>,
    pub window_target_id: Option<String>,
}
