//! RegisterTargetWithMaintenanceWindow, UpdateMaintenanceWindowTarget,
//! DeregisterTargetFromMaintenanceWindow, DescribeMaintenanceWindowTargets.

use serde_json::{Map, Value, json};

use crate::error::SsmError;
use crate::maintenance_windows::context::{
    ATTEMPTS, WindowContext, check_len, invalid, missing, opt_bool, opt_str, req_str,
    too_many_updates,
};
use crate::maintenance_windows::model::WindowTarget;
use crate::paging::page_of;
use crate::targets::{MAX_TARGETS, Target, TargetSpec};

use super::windows::fingerprint;
use super::{filters_of, keep, page_limits};

/// SSM's answer for a target id the window does not have.
pub(crate) fn target_does_not_exist(window_id: &str, id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!(
        "Maintenance window target {id} does not exist in maintenance window {window_id}"
    ))
}

/// `Targets` of a request: 1 to 5 entries that read as SendCommand's.
pub(crate) fn targets_of(body: &Value, required: bool) -> Result<Option<Vec<Target>>, SsmError> {
    let targets: Vec<Target> = match body.get("Targets") {
        None | Some(Value::Null) if required => return Err(missing("targets")),
        None | Some(Value::Null) => return Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            SsmError::SerializationException("Targets must be a list of Key and Values.".into())
        })?,
    };
    if targets.is_empty() && required {
        return Err(invalid(
            "1 validation error detected: Value '[]' at 'targets' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if targets.len() > MAX_TARGETS {
        return Err(invalid(format!(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to {MAX_TARGETS}"
        )));
    }
    Ok(Some(targets))
}

fn check_targets(resource_type: &str, targets: &[Target]) -> Result<(), SsmError> {
    let groups = targets
        .iter()
        .any(|t| t.key.starts_with("resource-groups:"));
    match resource_type {
        "INSTANCE" if groups => Err(invalid(
            "Targets of ResourceType INSTANCE name instances (InstanceIds or tags); use ResourceType RESOURCE_GROUP for resource-groups: keys.",
        )),
        "RESOURCE_GROUP" if !targets.iter().any(|t| t.key == "resource-groups:Name") => {
            Err(invalid(
                "Targets of ResourceType RESOURCE_GROUP name a resource group with the key resource-groups:Name.",
            ))
        }
        "INSTANCE" | "RESOURCE_GROUP" => TargetSpec::parse(&[], targets).map(|_| ()),
        other => Err(invalid(format!(
            "1 validation error detected: Value '{other}' at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set: [INSTANCE, RESOURCE_GROUP]"
        ))),
    }
}

pub(crate) fn check_name(name: Option<&str>) -> Result<(), SsmError> {
    let Some(name) = name else { return Ok(()) };
    if (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{{3,128}}$"
        )))
    }
}

fn check_target(t: &WindowTarget) -> Result<(), SsmError> {
    check_targets(&t.resource_type, &t.targets)?;
    check_len(t.owner_information.as_deref(), "OwnerInformation", 1, 128)?;
    check_name(t.name.as_deref())?;
    check_len(t.description.as_deref(), "Description", 1, 128)
}

pub(crate) async fn register(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let token = opt_str(body, "ClientToken")?;
    check_len(token.as_deref(), "ClientToken", 1, 64)?;
    let t = WindowTarget {
        id: match &token {
            Some(tok) => crate::ids::id_from(&format!("{window_id}#target#{tok}")),
            None => uuid::Uuid::new_v4().to_string(),
        },
        window_id: window_id.clone(),
        resource_type: req_str(body, "ResourceType")?,
        targets: targets_of(body, true)?.unwrap_or_default(),
        owner_information: opt_str(body, "OwnerInformation")?,
        name: opt_str(body, "Name")?,
        description: opt_str(body, "Description")?,
        fingerprint: token.as_ref().map(|_| fingerprint(body)),
        revision: 1,
    };
    check_target(&t)?;
    ctx.window("ssm:RegisterTargetWithMaintenanceWindow", &window_id)
        .await?;
    if ctx.store.insert_target(&t).await? {
        return Ok(json!({ "WindowTargetId": t.id }));
    }
    match ctx.store.get_target(&window_id, &t.id).await? {
        Some(first) if first.fingerprint == t.fingerprint => Ok(json!({ "WindowTargetId": t.id })),
        _ => Err(SsmError::IdempotentParameterMismatch(format!(
            "ClientToken {} was given before with other parameters. Repeat that request unchanged, or give a new ClientToken.",
            token.unwrap_or_default()
        ))),
    }
}

fn target_json(t: &WindowTarget) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("WindowId".into(), json!(t.window_id));
    m.insert("WindowTargetId".into(), json!(t.id));
    m.insert("ResourceType".into(), json!(t.resource_type));
    m.insert("Targets".into(), json!(t.targets));
    for (k, v) in [
        ("OwnerInformation", &t.owner_information),
        ("Name", &t.name),
        ("Description", &t.description),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    m
}

pub(crate) async fn update(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let id = req_str(body, "WindowTargetId")?;
    let replace = opt_bool(body, "Replace")?.unwrap_or(false);
    let targets = targets_of(body, replace)?;
    for _ in 0..ATTEMPTS {
        ctx.window("ssm:UpdateMaintenanceWindowTarget", &window_id)
            .await?;
        let cur = ctx
            .store
            .get_target(&window_id, &id)
            .await?
            .ok_or_else(|| target_does_not_exist(&window_id, &id))?;
        let mut t = cur.clone();
        if let Some(targets) = &targets {
            t.targets = targets.clone();
        }
        for (key, slot) in [
            ("OwnerInformation", &mut t.owner_information),
            ("Name", &mut t.name),
            ("Description", &mut t.description),
        ] {
            match opt_str(body, key)? {
                Some(v) => *slot = Some(v),
                None if replace => *slot = None,
                None => {}
            }
        }
        check_target(&t)?;
        t.revision = cur.revision + 1;
        if ctx.store.update_target(&t, cur.revision).await? {
            let mut out = target_json(&t);
            out.remove("ResourceType");
            return Ok(Value::Object(out));
        }
    }
    Err(too_many_updates(&format!("Maintenance window target {id}")))
}

/// The ids of window targets a task's `Targets` names.
pub(crate) fn window_target_ids(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter(|t| t.key == "WindowTargetIds")
        .flat_map(|t| t.values.iter().cloned())
        .collect()
}

/// A task refers to a target the caller wants removed safely.
fn target_in_use(id: &str, task: &str) -> SsmError {
    SsmError::TargetInUseException(format!(
        "Maintenance window target {id} is still referenced by task {task}; deregister the task first, or deregister the target without Safe."
    ))
}

pub(crate) async fn deregister(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let id = req_str(body, "WindowTargetId")?;
    let safe = opt_bool(body, "Safe")?.unwrap_or(false);
    for _ in 0..ATTEMPTS {
        ctx.window("ssm:DeregisterTargetFromMaintenanceWindow", &window_id)
            .await?;
        let cur = ctx
            .store
            .get_target(&window_id, &id)
            .await?
            .ok_or_else(|| target_does_not_exist(&window_id, &id))?;
        if safe {
            for task in ctx.store.list_tasks(&window_id).await? {
                if window_target_ids(&task.targets).contains(&id) {
                    return Err(target_in_use(&id, &task.id));
                }
            }
        }
        if ctx.store.delete_target(&cur).await? {
            return Ok(json!({ "WindowId": window_id, "WindowTargetId": id }));
        }
    }
    Err(too_many_updates(&format!("Maintenance window target {id}")))
}

pub(crate) async fn describe(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let window_id = req_str(body, "WindowId")?;
    let (limit, token) = page_limits(body, 10, 100, 10)?;
    let filters = filters_of(body, &["WindowTargetId", "OwnerInformation"])?;
    ctx.window("ssm:DescribeMaintenanceWindowTargets", &window_id)
        .await?;
    let listed: Vec<WindowTarget> = ctx
        .store
        .list_targets(&window_id)
        .await?
        .into_iter()
        .filter(|t| {
            keep(&filters, |k| match k {
                "WindowTargetId" => Some(t.id.clone()),
                "OwnerInformation" => t.owner_information.clone(),
                _ => None,
            })
        })
        .collect();
    let (page, next) = page_of(listed, limit, token.as_deref())?;
    let mut resp = json!({
        "Targets": page.iter().map(|t| Value::Object(target_json(t))).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}
