//! DescribeMaintenanceWindowExecutions, GetMaintenanceWindowExecution,
//! DescribeMaintenanceWindowExecutionTasks,
//! GetMaintenanceWindowExecutionTask,
//! DescribeMaintenanceWindowExecutionTaskInvocations,
//! GetMaintenanceWindowExecutionTaskInvocation and
//! CancelMaintenanceWindowExecution.

use serde_json::{Map, Value, json};

use crate::clock::parse_filter_time;
use crate::error::SsmError;
use crate::maintenance_windows::context::{
    ATTEMPTS, WindowContext, invalid, req_str, too_many_updates,
};
use crate::maintenance_windows::model::{Execution, ExecutionTask, Invocation, status};
use crate::paging::page_of;

use super::{filters_of, keep, page_limits};

fn execution_does_not_exist(id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!("Maintenance window execution {id} does not exist"))
}

fn task_does_not_exist(id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!(
        "Maintenance window execution task {id} does not exist"
    ))
}

fn invocation_does_not_exist(id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!(
        "Maintenance window execution task invocation {id} does not exist"
    ))
}

/// The execution a request names, authorized on its window.
async fn execution(ctx: &WindowContext<'_>, action: &str, id: &str) -> Result<Execution, SsmError> {
    let e = ctx
        .store
        .get_execution(id)
        .await?
        .ok_or_else(|| execution_does_not_exist(id))?;
    ctx.caller
        .authorize(action, &ctx.window_arn(&e.window_id))?;
    Ok(e)
}

fn put<T: serde::Serialize>(m: &mut Map<String, Value>, k: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(k.into(), json!(v));
    }
}

fn execution_json(e: &Execution) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("WindowExecutionId".into(), json!(e.id));
    m.insert("Status".into(), json!(e.status));
    put(&mut m, "StatusDetails", &e.status_details);
    m.insert("StartTime".into(), json!(e.start_time));
    put(&mut m, "EndTime", &e.end_time);
    m
}

pub(crate) async fn describe(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let (limit, token) = page_limits(body, 10, 100, 10)?;
    let filters = filters_of(body, &["ExecutionStatus", "StartedBefore", "StartedAfter"])?;
    let mut before = None;
    let mut after = None;
    let mut statuses = Vec::new();
    for (k, vals) in &filters {
        match k.as_str() {
            "ExecutionStatus" => {
                for v in vals {
                    if !status::ALL.contains(&v.as_str()) {
                        return Err(invalid(format!(
                            "ExecutionStatus {v} is not a maintenance window execution status; use one of: {}.",
                            status::ALL.join(", ")
                        )));
                    }
                }
                statuses.extend(vals.iter().cloned());
            }
            "StartedBefore" => before = vals.first().map(|v| parse_filter_time(v)).transpose()?,
            _ => after = vals.first().map(|v| parse_filter_time(v)).transpose()?,
        }
    }
    ctx.window("ssm:DescribeMaintenanceWindowExecutions", &window_id)
        .await?;
    let listed: Vec<Execution> = ctx
        .store
        .list_executions(&window_id)
        .await?
        .into_iter()
        .filter(|e| {
            (statuses.is_empty() || statuses.contains(&e.status))
                && before.is_none_or(|b| e.start_time < b)
                && after.is_none_or(|a| e.start_time > a)
        })
        .collect();
    let (page, next) = page_of(listed, limit, token.as_deref())?;
    let mut resp = json!({
        "WindowExecutions": page.iter().map(|e| {
            let mut m = execution_json(e);
            m.insert("WindowId".into(), json!(e.window_id));
            Value::Object(m)
        }).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}

pub(crate) async fn get(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowExecutionId")?;
    let e = execution(ctx, "ssm:GetMaintenanceWindowExecution", &id).await?;
    let mut m = execution_json(&e);
    m.insert(
        "TaskIds".into(),
        json!(e.tasks.iter().map(|t| &t.id).collect::<Vec<_>>()),
    );
    Ok(Value::Object(m))
}

fn task_json(e: &Execution, t: &ExecutionTask) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("WindowExecutionId".into(), json!(e.id));
    m.insert("TaskExecutionId".into(), json!(t.id));
    m.insert("Status".into(), json!(t.status));
    put(&mut m, "StatusDetails", &t.status_details);
    put(&mut m, "StartTime", &t.start_time);
    put(&mut m, "EndTime", &t.end_time);
    m.insert("TaskArn".into(), json!(t.task.task_arn));
    m.insert("TaskType".into(), json!(t.task.task_type));
    m
}

pub(crate) async fn describe_tasks(
    ctx: &WindowContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowExecutionId")?;
    let (limit, token) = page_limits(body, 10, 100, 10)?;
    let filters = filters_of(body, &["Status"])?;
    let e = execution(ctx, "ssm:DescribeMaintenanceWindowExecutionTasks", &id).await?;
    let listed: Vec<&ExecutionTask> = e
        .tasks
        .iter()
        .filter(|t| keep(&filters, |_| Some(t.status.clone())))
        .collect();
    let (page, next) = page_of(listed, limit, token.as_deref())?;
    let mut resp = json!({
        "WindowExecutionTaskIdentities": page.iter().map(|t| {
            let mut m = task_json(&e, t);
            m.insert("WindowTaskId".into(), json!(t.task.id));
            if !t.task.targets.is_empty() {
                m.insert("TaskTargets".into(), json!(t.task.targets));
            }
            Value::Object(m)
        }).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}

fn find_task<'e>(e: &'e Execution, id: &str) -> Result<&'e ExecutionTask, SsmError> {
    e.tasks
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| task_does_not_exist(id))
}

pub(crate) async fn get_task(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowExecutionId")?;
    let task_id = req_str(body, "TaskId")?;
    let e = execution(ctx, "ssm:GetMaintenanceWindowExecutionTask", &id).await?;
    let t = find_task(&e, &task_id)?;
    let mut m = task_json(&e, t);
    m.insert("TaskExecutionId".into(), json!(t.id));
    m.insert("Type".into(), json!(t.task.task_type));
    m.remove("TaskType");
    m.insert("Priority".into(), json!(t.task.priority));
    put(&mut m, "ServiceRole", &t.task.service_role_arn);
    put(&mut m, "MaxConcurrency", &t.task.max_concurrency);
    put(&mut m, "MaxErrors", &t.task.max_errors);
    if let Some(p) = &t.task.task_parameters {
        m.insert("TaskParameters".into(), json!([p]));
    }
    Ok(Value::Object(m))
}

fn invocation_json(e: &Execution, t: &ExecutionTask, i: &Invocation) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("WindowExecutionId".into(), json!(e.id));
    m.insert("TaskExecutionId".into(), json!(t.id));
    m.insert("InvocationId".into(), json!(i.id));
    put(&mut m, "ExecutionId", &i.execution_id);
    m.insert("TaskType".into(), json!(i.task_type));
    m.insert("Parameters".into(), json!(i.parameters.to_string()));
    m.insert("Status".into(), json!(i.status));
    put(&mut m, "StatusDetails", &i.status_details);
    m.insert("StartTime".into(), json!(i.start_time));
    put(&mut m, "EndTime", &i.end_time);
    put(&mut m, "OwnerInformation", &i.owner_information);
    put(&mut m, "WindowTargetId", &i.window_target_id);
    m
}

pub(crate) async fn describe_invocations(
    ctx: &WindowContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowExecutionId")?;
    let task_id = req_str(body, "TaskId")?;
    let (limit, token) = page_limits(body, 10, 100, 10)?;
    let filters = filters_of(body, &["Status"])?;
    let e = execution(
        ctx,
        "ssm:DescribeMaintenanceWindowExecutionTaskInvocations",
        &id,
    )
    .await?;
    let t = find_task(&e, &task_id)?;
    let listed: Vec<&Invocation> = t
        .invocations
        .iter()
        .filter(|i| keep(&filters, |_| Some(i.status.clone())))
        .collect();
    let (page, next) = page_of(listed, limit, token.as_deref())?;
    let mut resp = json!({
        "WindowExecutionTaskInvocationIdentities":
            page.iter().map(|i| Value::Object(invocation_json(&e, t, i))).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}

pub(crate) async fn get_invocation(
    ctx: &WindowContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowExecutionId")?;
    let task_id = req_str(body, "TaskId")?;
    let inv_id = req_str(body, "InvocationId")?;
    let e = execution(ctx, "ssm:GetMaintenanceWindowExecutionTaskInvocation", &id).await?;
    let t = find_task(&e, &task_id)?;
    let i = t
        .invocations
        .iter()
        .find(|i| i.id == inv_id)
        .ok_or_else(|| invocation_does_not_exist(&inv_id))?;
    let mut m = invocation_json(&e, t, i);
    m.insert("TaskExecutionId".into(), json!(t.id));
    Ok(Value::Object(m))
}

pub(crate) async fn cancel(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowExecutionId")?;
    for _ in 0..ATTEMPTS {
        let cur = execution(ctx, "ssm:CancelMaintenanceWindowExecution", &id).await?;
        // A final execution has nothing left to cancel; SSM answers its id.
        if status::is_final(&cur.status) || cur.cancel_requested {
            return Ok(json!({ "WindowExecutionId": id }));
        }
        let mut e = cur.clone();
        e.cancel_requested = true;
        e.status = status::CANCELLING.into();
        // The tick cancels the running tasks and starts no new one.
        e.due = true;
        e.revision = cur.revision + 1;
        if ctx.store.update_execution(&e, cur.revision).await? {
            return Ok(json!({ "WindowExecutionId": id }));
        }
    }
    Err(too_many_updates(&format!(
        "Maintenance window execution {id}"
    )))
}
