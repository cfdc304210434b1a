//! The invocation updates the agent reports, one constructor each, so every
//! report of a kind carries the same fields.

use steward_core::channel::{InvocationUpdate, PluginResult};
use steward_core::run_command::status::InvocationDetail;

/// What a restart reports for a command it finds started and not finished.
pub const RESTARTED_STDERR: &str =
    "the agent restarted while this command ran; it was not run again";

/// The command's steps have begun.
pub fn in_progress(command_id: &str, start: f64) -> InvocationUpdate {
    InvocationUpdate {
        command_id: command_id.to_string(),
        detail: InvocationDetail::InProgress,
        response_code: -1,
        execution_start: Some(start),
        execution_end: None,
        plugins: Vec::new(),
    }
}

/// Cancelled before any step ran.
pub fn cancelled(command_id: &str, end: f64) -> InvocationUpdate {
    InvocationUpdate {
        command_id: command_id.to_string(),
        detail: InvocationDetail::Cancelled,
        response_code: -1,
        execution_start: None,
        execution_end: Some(end),
        plugins: Vec::new(),
    }
}

/// The final report of a command whose steps ran (or were refused).
pub fn ended(
    command_id: &str,
    detail: InvocationDetail,
    response_code: i32,
    start: f64,
    end: f64,
    plugins: Vec<PluginResult>,
) -> InvocationUpdate {
    InvocationUpdate {
        command_id: command_id.to_string(),
        detail,
        response_code,
        execution_start: Some(start),
        execution_end: Some(end),
        plugins,
    }
}

/// A command a restart found unfinished: every step Failed, never rerun.
pub fn interrupted(command_id: &str, plugins: &[String], now: f64) -> InvocationUpdate {
    let plugins = plugins
        .iter()
        .map(|name| PluginResult {
            name: name.clone(),
            detail: InvocationDetail::Failed,
            response_code: -1,
            start: None,
            end: Some(now),
            stdout: String::new(),
            stderr: RESTARTED_STDERR.into(),
            uploaded: false,
        })
        .collect();
    InvocationUpdate {
        command_id: command_id.to_string(),
        detail: InvocationDetail::Failed,
        response_code: -1,
        execution_start: None,
        execution_end: Some(now),
        plugins,
    }
}
