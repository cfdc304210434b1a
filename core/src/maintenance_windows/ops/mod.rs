//! Maintenance window operations by name, one file per group. Each takes
//! SSM's request body and answers SSM's response body.

use serde_json::Value;

use super::context::{WindowContext, check_range, opt_int, opt_str};
use crate::error::SsmError;

mod executions;
mod schedule;
mod targets;
mod tasks;
pub(crate) mod windows;

pub(crate) use targets::window_target_ids;

pub const OPERATIONS: &[&str] = &[
    "CreateMaintenanceWindow",
    "UpdateMaintenanceWindow",
    "GetMaintenanceWindow",
    "DeleteMaintenanceWindow",
    "DescribeMaintenanceWindows",
    "RegisterTargetWithMaintenanceWindow",
    "UpdateMaintenanceWindowTarget",
    "DeregisterTargetFromMaintenanceWindow",
    "DescribeMaintenanceWindowTargets",
    "RegisterTaskWithMaintenanceWindow",
    "UpdateMaintenanceWindowTask",
    "DeregisterTaskFromMaintenanceWindow",
    "DescribeMaintenanceWindowTasks",
    "GetMaintenanceWindowTask",
    "DescribeMaintenanceWindowExecutions",
    "GetMaintenanceWindowExecution",
    "DescribeMaintenanceWindowExecutionTasks",
    "GetMaintenanceWindowExecutionTask",
    "DescribeMaintenanceWindowExecutionTaskInvocations",
    "GetMaintenanceWindowExecutionTaskInvocation",
    "CancelMaintenanceWindowExecution",
    "DescribeMaintenanceWindowSchedule",
    "DescribeMaintenanceWindowsForTarget",
];

/// `None`: not a maintenance window operation.
pub async fn handle(
    ctx: &WindowContext<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "CreateMaintenanceWindow" => windows::create(ctx, body).await,
        "UpdateMaintenanceWindow" => windows::update(ctx, body).await,
        "GetMaintenanceWindow" => windows::get(ctx, body).await,
        "DeleteMaintenanceWindow" => windows::delete(ctx, body).await,
        "DescribeMaintenanceWindows" => windows::describe(ctx, body).await,
        "RegisterTargetWithMaintenanceWindow" => targets::register(ctx, body).await,
        "UpdateMaintenanceWindowTarget" => targets::update(ctx, body).await,
        "DeregisterTargetFromMaintenanceWindow" => targets::deregister(ctx, body).await,
        "DescribeMaintenanceWindowTargets" => targets::describe(ctx, body).await,
        "RegisterTaskWithMaintenanceWindow" => tasks::register(ctx, body).await,
        "UpdateMaintenanceWindowTask" => tasks::update(ctx, body).await,
        "DeregisterTaskFromMaintenanceWindow" => tasks::deregister(ctx, body).await,
        "DescribeMaintenanceWindowTasks" => tasks::describe(ctx, body).await,
        "GetMaintenanceWindowTask" => tasks::get(ctx, body).await,
        "DescribeMaintenanceWindowExecutions" => executions::describe(ctx, body).await,
        "GetMaintenanceWindowExecution" => executions::get(ctx, body).await,
        "DescribeMaintenanceWindowExecutionTasks" => executions::describe_tasks(ctx, body).await,
        "GetMaintenanceWindowExecutionTask" => executions::get_task(ctx, body).await,
        "DescribeMaintenanceWindowExecutionTaskInvocations" => {
            executions::describe_invocations(ctx, body).await
        }
        "GetMaintenanceWindowExecutionTaskInvocation" => {
            executions::get_invocation(ctx, body).await
        }
        "CancelMaintenanceWindowExecution" => executions::cancel(ctx, body).await,
        "DescribeMaintenanceWindowSchedule" => schedule::describe_schedule(ctx, body).await,
        "DescribeMaintenanceWindowsForTarget" => schedule::for_target(ctx, body).await,
        _ => return None,
    })
}

/// MaxResults within `[min, max]` (default `default`) and NextToken.
pub(super) fn page_limits(
    body: &Value,
    min: i64,
    max: i64,
    default: i64,
) -> Result<(usize, Option<String>), SsmError> {
    let limit = match opt_int(body, "MaxResults")? {
        Some(n) => {
            check_range(n, "MaxResults", min, max)?;
            n as usize
        }
        None => default as usize,
    };
    Ok((limit, opt_str(body, "NextToken")?))
}

/// `Filters` of `{Key, Values}`, their keys among `allowed`.
pub(super) fn filters_of(
    body: &Value,
    allowed: &[&str],
) -> Result<Vec<(String, Vec<String>)>, SsmError> {
    let Some(list) = body.get("Filters").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for f in list {
        let key = f.get("Key").and_then(Value::as_str).unwrap_or_default();
        if !allowed.contains(&key) {
            return Err(SsmError::ValidationException(format!(
                "The filter key {key} is not valid here; use one of: {}.",
                allowed.join(", ")
            )));
        }
        let values: Vec<String> = f
            .get("Values")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.push((key.to_string(), values));
    }
    Ok(out)
}

/// The listed items that `filters` keep: each filter matches when the
/// item's value for its key is among the filter's values.
pub(super) fn keep(
    filters: &[(String, Vec<String>)],
    value_of: impl Fn(&str) -> Option<String>,
) -> bool {
    filters
        .iter()
        .all(|(k, vals)| value_of(k).is_some_and(|v| vals.is_empty() || vals.contains(&v)))
}
