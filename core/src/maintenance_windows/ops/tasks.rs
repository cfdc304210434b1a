//! RegisterTaskWithMaintenanceWindow, UpdateMaintenanceWindowTask,
//! DeregisterTaskFromMaintenanceWindow, DescribeMaintenanceWindowTasks,
//! GetMaintenanceWindowTask.

use serde_json::{Map, Value, json};

use crate::error::SsmError;
use crate::maintenance_windows::context::{
    ATTEMPTS, WindowContext, check_len, check_range, invalid, missing, opt_bool, opt_int, opt_str,
    req_str, too_many_updates,
};
use crate::maintenance_windows::model::{Window, WindowTask};
use crate::paging::page_of;
use crate::run_command::rate_control::Limits;
use crate::run_command::request::output_bucket_refusal;
use crate::targets::Target;

use super::targets::{check_name, target_does_not_exist, targets_of};
use super::windows::fingerprint;
use super::{filters_of, keep, page_limits};

pub(crate) fn task_does_not_exist(window_id: &str, id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!(
        "Maintenance window task {id} does not exist in maintenance window {window_id}"
    ))
}

fn obj(body: &Value, key: &str) -> Result<Option<Value>, SsmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(SsmError::SerializationException(format!(
            "{key} must be an object."
        ))),
    }
}

/// TaskInvocationParameters: the part of the task's type, checked.
fn check_invocation(task_type: &str, inv: &Value) -> Result<(), SsmError> {
    let Some(m) = inv.as_object() else {
        return Ok(());
    };
    let own = match task_type {
        "RUN_COMMAND" => "RunCommand",
        _ => "Automation",
    };
    for key in m.keys() {
        if key != own {
            return Err(invalid(format!(
                "TaskInvocationParameters of a {task_type} task take {own} only, not {key}."
            )));
        }
    }
    let Some(p) = m.get(own) else { return Ok(()) };
    if own == "RunCommand" {
        check_len(p.get("Comment").and_then(Value::as_str), "Comment", 0, 100)?;
        check_len(
            p.get("OutputS3BucketName").and_then(Value::as_str),
            "OutputS3BucketName",
            3,
            63,
        )?;
        check_len(
            p.get("OutputS3KeyPrefix").and_then(Value::as_str),
            "OutputS3KeyPrefix",
            0,
            500,
        )?;
        if let Some(t) = p.get("TimeoutSeconds") {
            let t = t.as_i64().ok_or_else(|| {
                SsmError::SerializationException("TimeoutSeconds must be an integer.".into())
            })?;
            check_range(t, "TimeoutSeconds", 30, 2_592_000)?;
        }
        if let Some(params) = p.get("Parameters") {
            check_parameter_map(params)?;
        }
    } else if let Some(params) = p.get("Parameters") {
        check_parameter_map(params)?;
    }
    Ok(())
}

/// The output buckets a task names (its RunCommand parameters' and the
/// legacy LoggingInfo's) must be ones this stack can write: otherwise every
/// run's SendCommand would be refused, long after the task was accepted.
fn check_output_buckets(ctx: &WindowContext<'_>, t: &WindowTask) -> Result<(), SsmError> {
    let run_command = t
        .invocation
        .as_ref()
        .and_then(|i| i.get("RunCommand"))
        .and_then(|rc| rc.get("OutputS3BucketName"));
    let logging = t.logging_info.as_ref().and_then(|l| l.get("S3BucketName"));
    for bucket in [run_command, logging]
        .into_iter()
        .flatten()
        .filter(|b| !b.is_null())
    {
        let Some(bucket) = bucket.as_str() else {
            return Err(SsmError::SerializationException(
                "An output bucket name must be a string.".into(),
            ));
        };
        if let Some(why) = output_bucket_refusal(bucket, ctx.output_buckets) {
            return Err(invalid(why));
        }
    }
    Ok(())
}

/// `{name: [values]}`, as SendCommand and StartAutomationExecution take.
fn check_parameter_map(params: &Value) -> Result<(), SsmError> {
    let ok = params.as_object().is_some_and(|m| {
        m.values()
            .all(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
    });
    if ok {
        Ok(())
    } else {
        Err(SsmError::SerializationException(
            "Parameters must map each name to a list of strings.".into(),
        ))
    }
}

/// The checks of a task as it stands, against its window.
async fn check_task(ctx: &WindowContext<'_>, w: &Window, t: &WindowTask) -> Result<(), SsmError> {
    match t.task_type.as_str() {
        "RUN_COMMAND" | "AUTOMATION" => {}
        "LAMBDA" | "STEP_FUNCTIONS" => {
            return Err(invalid(format!(
                "Steward runs RUN_COMMAND and AUTOMATION maintenance window tasks; {} tasks are not available.",
                t.task_type
            )));
        }
        other => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'taskType' failed to satisfy constraint: Member must satisfy enum value set: [RUN_COMMAND, AUTOMATION, STEP_FUNCTIONS, LAMBDA]"
            )));
        }
    }
    check_len(Some(&t.task_arn), "TaskArn", 1, 1600)?;
    check_name(t.name.as_deref())?;
    check_len(t.description.as_deref(), "Description", 1, 128)?;
    check_len(t.service_role_arn.as_deref(), "ServiceRoleArn", 0, 2048)?;
    if t.priority < 0 {
        check_range(t.priority, "Priority", 0, i64::MAX)?;
    }
    match t.cutoff_behavior.as_str() {
        "CONTINUE_TASK" | "CANCEL_TASK" => {}
        other => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'cutoffBehavior' failed to satisfy constraint: Member must satisfy enum value set: [CONTINUE_TASK, CANCEL_TASK]"
            )));
        }
    }
    if let (Some(c), Some(e)) = (&t.max_concurrency, &t.max_errors) {
        Limits::parse(1, c, e)?;
    } else if let Some(c) = &t.max_concurrency {
        Limits::parse(1, c, "0")?;
    } else if let Some(e) = &t.max_errors {
        Limits::parse(1, "1", e)?;
    }
    if let Some(inv) = &t.invocation {
        check_invocation(&t.task_type, inv)?;
    }
    check_output_buckets(ctx, t)?;
    if let Some(p) = &t.task_parameters {
        let ok = p.as_object().is_some_and(|m| {
            m.values()
                .all(|v| v.get("Values").is_none_or(|vals| vals.is_array()))
        });
        if !ok {
            return Err(SsmError::SerializationException(
                "TaskParameters must map each name to {\"Values\": [...]}.".into(),
            ));
        }
    }
    if t.task_type == "RUN_COMMAND" && t.targets.is_empty() {
        return Err(invalid(
            "One or more targets must be specified for maintenance window Run Command-type tasks.",
        ));
    }
    check_task_targets(ctx, w, &t.targets).await
}

async fn check_task_targets(
    ctx: &WindowContext<'_>,
    w: &Window,
    targets: &[Target],
) -> Result<(), SsmError> {
    for t in targets {
        match t.key.as_str() {
            "WindowTargetIds" => {
                for id in &t.values {
                    if ctx.store.get_target(&w.id, id).await?.is_none() {
                        return Err(target_does_not_exist(&w.id, id));
                    }
                }
            }
            "InstanceIds" => {
                if !w.allow_unassociated_targets {
                    return Err(invalid(format!(
                        "Maintenance window {} does not allow unassociated targets: name its registered targets (Key=WindowTargetIds), or enable AllowUnassociatedTargets.",
                        w.id
                    )));
                }
                crate::targets::TargetSpec::parse(&t.values, &[])?;
            }
            other => {
                return Err(invalid(format!(
                    "A maintenance window task's targets use the key WindowTargetIds or InstanceIds, not {other}."
                )));
            }
        }
        if t.values.is_empty() {
            return Err(invalid(format!(
                "Target {} has no values; give at least one.",
                t.key
            )));
        }
    }
    Ok(())
}

pub(crate) async fn register(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let token = opt_str(body, "ClientToken")?;
    check_len(token.as_deref(), "ClientToken", 1, 64)?;
    let t = WindowTask {
        id: match &token {
            Some(tok) => crate::ids::id_from(&format!("{window_id}#task#{tok}")),
            None => uuid::Uuid::new_v4().to_string(),
        },
        window_id: window_id.clone(),
        task_arn: req_str(body, "TaskArn")?,
        task_type: req_str(body, "TaskType")?,
        targets: targets_of(body, false)?.unwrap_or_default(),
        service_role_arn: opt_str(body, "ServiceRoleArn")?,
        task_parameters: obj(body, "TaskParameters")?,
        invocation: obj(body, "TaskInvocationParameters")?,
        priority: opt_int(body, "Priority")?.unwrap_or(1),
        max_concurrency: opt_str(body, "MaxConcurrency")?,
        max_errors: opt_str(body, "MaxErrors")?,
        cutoff_behavior: opt_str(body, "CutoffBehavior")?.unwrap_or_else(|| "CONTINUE_TASK".into()),
        logging_info: obj(body, "LoggingInfo")?,
        name: opt_str(body, "Name")?,
        description: opt_str(body, "Description")?,
        run_as: ctx.run_as(),
        fingerprint: token.as_ref().map(|_| fingerprint(body)),
        revision: 1,
    };
    let w = ctx
        .window("ssm:RegisterTaskWithMaintenanceWindow", &window_id)
        .await?;
    check_task(ctx, &w, &t).await?;
    if ctx.store.insert_task(&t).await? {
        return Ok(json!({ "WindowTaskId": t.id }));
    }
    match ctx.store.get_task(&window_id, &t.id).await? {
        Some(first) if first.fingerprint == t.fingerprint => Ok(json!({ "WindowTaskId": t.id })),
        _ => Err(SsmError::IdempotentParameterMismatch(format!(
            "ClientToken {} was given before with other parameters. Repeat that request unchanged, or give a new ClientToken.",
            token.unwrap_or_default()
        ))),
    }
}

fn task_json(t: &WindowTask, type_key: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("WindowId".into(), json!(t.window_id));
    m.insert("WindowTaskId".into(), json!(t.id));
    m.insert("TaskArn".into(), json!(t.task_arn));
    m.insert(type_key.into(), json!(t.task_type));
    m.insert("Targets".into(), json!(t.targets));
    m.insert("Priority".into(), json!(t.priority));
    m.insert("CutoffBehavior".into(), json!(t.cutoff_behavior));
    for (k, v) in [
        ("ServiceRoleArn", &t.service_role_arn),
        ("MaxConcurrency", &t.max_concurrency),
        ("MaxErrors", &t.max_errors),
        ("Name", &t.name),
        ("Description", &t.description),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [
        ("TaskParameters", &t.task_parameters),
        ("LoggingInfo", &t.logging_info),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.clone());
        }
    }
    m
}

async fn read_task(
    ctx: &WindowContext<'_>,
    action: &str,
    body: &Value,
) -> Result<(Window, WindowTask), SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let id = req_str(body, "WindowTaskId")?;
    let w = ctx.window(action, &window_id).await?;
    let t = ctx
        .store
        .get_task(&window_id, &id)
        .await?
        .ok_or_else(|| task_does_not_exist(&window_id, &id))?;
    Ok((w, t))
}

pub(crate) async fn get(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let (_, t) = read_task(ctx, "ssm:GetMaintenanceWindowTask", body).await?;
    let mut out = task_json(&t, "TaskType");
    if let Some(inv) = &t.invocation {
        out.insert("TaskInvocationParameters".into(), inv.clone());
    }
    Ok(Value::Object(out))
}

pub(crate) async fn update(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let replace = opt_bool(body, "Replace")?.unwrap_or(false);
    let targets = targets_of(body, false)?;
    for _ in 0..ATTEMPTS {
        let (w, cur) = read_task(ctx, "ssm:UpdateMaintenanceWindowTask", body).await?;
        let mut t = cur.clone();
        match &targets {
            Some(v) => t.targets = v.clone(),
            None if replace => t.targets = Vec::new(),
            None => {}
        }
        match opt_str(body, "TaskArn")? {
            Some(v) => t.task_arn = v,
            None if replace => return Err(missing("taskArn")),
            None => {}
        }
        for (key, slot) in [
            ("ServiceRoleArn", &mut t.service_role_arn),
            ("MaxConcurrency", &mut t.max_concurrency),
            ("MaxErrors", &mut t.max_errors),
            ("Name", &mut t.name),
            ("Description", &mut t.description),
        ] {
            match opt_str(body, key)? {
                Some(v) => *slot = Some(v),
                None if replace => *slot = None,
                None => {}
            }
        }
        for (key, slot) in [
            ("TaskParameters", &mut t.task_parameters),
            ("TaskInvocationParameters", &mut t.invocation),
            ("LoggingInfo", &mut t.logging_info),
        ] {
            match obj(body, key)? {
                Some(v) => *slot = Some(v),
                None if replace => *slot = None,
                None => {}
            }
        }
        match opt_int(body, "Priority")? {
            Some(p) => t.priority = p,
            None if replace => t.priority = 1,
            None => {}
        }
        match opt_str(body, "CutoffBehavior")? {
            Some(c) => t.cutoff_behavior = c,
            None if replace => t.cutoff_behavior = "CONTINUE_TASK".into(),
            None => {}
        }
        // The task now runs as who last changed it.
        t.run_as = ctx.run_as();
        check_task(ctx, &w, &t).await?;
        t.revision = cur.revision + 1;
        if ctx.store.update_task(&t, cur.revision).await? {
            let mut out = task_json(&t, "TaskType");
            out.remove("TaskType");
            if let Some(inv) = &t.invocation {
                out.insert("TaskInvocationParameters".into(), inv.clone());
            }
            return Ok(Value::Object(out));
        }
    }
    Err(too_many_updates("Maintenance window task"))
}

pub(crate) async fn deregister(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    for _ in 0..ATTEMPTS {
        let (_, t) = read_task(ctx, "ssm:DeregisterTaskFromMaintenanceWindow", body).await?;
        if ctx.store.delete_task(&t).await? {
            return Ok(json!({ "WindowId": t.window_id, "WindowTaskId": t.id }));
        }
    }
    Err(too_many_updates("Maintenance window task"))
}

pub(crate) async fn describe(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let (limit, token) = page_limits(body, 10, 100, 10)?;
    let filters = filters_of(body, &["WindowTaskId", "TaskArn", "Priority", "TaskType"])?;
    ctx.window("ssm:DescribeMaintenanceWindowTasks", &window_id)
        .await?;
    let mut listed: Vec<WindowTask> = ctx
        .store
        .list_tasks(&window_id)
        .await?
        .into_iter()
        .filter(|t| {
            keep(&filters, |k| match k {
                "WindowTaskId" => Some(t.id.clone()),
                "TaskArn" => Some(t.task_arn.clone()),
                "Priority" => Some(t.priority.to_string()),
                "TaskType" => Some(t.task_type.clone()),
                _ => None,
            })
        })
        .collect();
    listed.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    let (page, next) = page_of(listed, limit, token.as_deref())?;
    let mut resp = json!({
        "Tasks": page.iter().map(|t| Value::Object(task_json(t, "Type"))).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}
