//! DescribeMaintenanceWindowSchedule and DescribeMaintenanceWindowsForTarget.

use serde_json::{Value, json};

use crate::clock::iso8601_seconds;
use crate::error::SsmError;
use crate::maintenance_windows::context::{
    WindowContext, invalid, next_occurrence, opt_str, req_str,
};
use crate::maintenance_windows::model::Window;
use crate::paging::{Cursor, decode, encode, invalid_token};
use crate::targets::Target;

use super::page_limits;

/// The most a page of these listings holds.
const MAX_PAGE: usize = 1000;
use super::targets::targets_of;

/// Whether the window has a registered target of `resource_type` that one
/// of `wanted` names: the same key with a value in common (an instance id
/// among its InstanceIds, a tag value among its values).
async fn window_targets(
    ctx: &WindowContext<'_>,
    w: &Window,
    resource_type: &str,
    wanted: &[Target],
) -> Result<bool, SsmError> {
    for registered in ctx.store.list_targets(&w.id).await? {
        if registered.resource_type != resource_type {
            continue;
        }
        let hit = registered.targets.iter().any(|r| {
            wanted
                .iter()
                .any(|t| t.key == r.key && t.values.iter().any(|v| r.values.contains(v)))
        });
        if hit {
            return Ok(true);
        }
    }
    Ok(false)
}

fn resource_type_of(body: &Value) -> Result<String, SsmError> {
    let rt = req_str(body, "ResourceType")?;
    match rt.as_str() {
        "INSTANCE" | "RESOURCE_GROUP" => Ok(rt),
        other => Err(invalid(format!(
            "1 validation error detected: Value '{other}' at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set: [INSTANCE, RESOURCE_GROUP]"
        ))),
    }
}

/// The windows whose registered targets name `targets`, authorized for
/// `action` (others are left out).
async fn windows_for(
    ctx: &WindowContext<'_>,
    action: &str,
    resource_type: &str,
    targets: &[Target],
) -> Result<Vec<Window>, SsmError> {
    let mut out = Vec::new();
    for w in ctx.store.list_windows().await? {
        if ctx.caller.authorize(action, &ctx.window_arn(&w.id)).is_ok()
            && window_targets(ctx, &w, resource_type, targets).await?
        {
            out.push(w);
        }
    }
    Ok(out)
}

pub(crate) async fn for_target(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let targets = targets_of(body, true)?.unwrap_or_default();
    let resource_type = resource_type_of(body)?;
    // SSM bounds MaxResults from below only; a page holds at most 1000.
    let (limit, token) = page_limits(body, 1, i64::MAX, 100)?;
    let limit = limit.min(MAX_PAGE);
    let found = windows_for(
        ctx,
        "ssm:DescribeMaintenanceWindowsForTarget",
        &resource_type,
        &targets,
    )
    .await?;
    let (page, next) = crate::paging::page_of(found, limit, token.as_deref())?;
    let mut resp = json!({
        "WindowIdentities": page.iter().map(|w| json!({"WindowId": w.id, "Name": w.name})).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}

pub(crate) async fn describe_schedule(
    ctx: &WindowContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    // SSM bounds MaxResults from below only; a page holds at most 1000.
    let (limit, token) = page_limits(body, 1, i64::MAX, 100)?;
    let limit = limit.min(MAX_PAGE);
    let windows = match opt_str(body, "WindowId")? {
        Some(id) => {
            if body.get("Targets").is_some() {
                return Err(invalid(
                    "Specify either WindowId or Targets and ResourceType, not both.",
                ));
            }
            vec![
                ctx.window("ssm:DescribeMaintenanceWindowSchedule", &id)
                    .await?,
            ]
        }
        None => {
            let targets = targets_of(body, false)?
                .ok_or_else(|| invalid("Specify WindowId, or Targets and ResourceType."))?;
            let rt = resource_type_of(body)?;
            windows_for(ctx, "ssm:DescribeMaintenanceWindowSchedule", &rt, &targets).await?
        }
    };
    // The cursor: the last (time, window) answered.
    let after: Option<(i64, String)> = match token.as_deref() {
        None => None,
        Some(t) => match decode(t)? {
            Cursor::Id { after } => {
                let (time, id) = after.split_once('|').ok_or_else(invalid_token)?;
                Some((time.parse().map_err(|_| invalid_token())?, id.to_string()))
            }
            _ => return Err(invalid_token()),
        },
    };
    let now = ctx.now.floor() as i64;
    let mut found: Vec<(i64, String, String)> = Vec::new();
    for w in windows.iter().filter(|w| w.enabled) {
        let mut from = match &after {
            // Resume just before the cursor's time; ties are dropped below.
            Some((t, _)) => (*t - 1).max(now),
            None => now,
        };
        let mut taken = 0;
        while taken <= limit {
            let Some(o) = next_occurrence(w, from) else {
                break;
            };
            from = o.scheduled;
            let key = (o.due, w.id.clone());
            if after.as_ref().is_some_and(|a| key <= *a) {
                continue;
            }
            found.push((o.due, w.id.clone(), w.name.clone()));
            taken += 1;
        }
    }
    found.sort();
    let more = found.len() > limit;
    found.truncate(limit);
    let next = if more {
        found.last().map(|(t, id, _)| {
            encode(&Cursor::Id {
                after: format!("{t}|{id}"),
            })
        })
    } else {
        None
    };
    let mut resp = json!({
        "ScheduledWindowExecutions": found.iter().map(|(t, id, name)| json!({
            "WindowId": id,
            "Name": name,
            "ExecutionTime": iso8601_seconds(*t as f64),
        })).collect::<Vec<_>>()
    });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}
