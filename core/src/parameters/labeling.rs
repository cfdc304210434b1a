//! LabelParameterVersion and UnlabelParameterVersion. The head's label map
//! and the version items' label sets change together, in one conditional
//! update.

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::get::{not_found, version_not_found};
use super::labels;
use super::model::{Parameter, ParameterVersion};
use super::put::{MAX_ATTEMPTS, too_many_updates};
use super::requests::LabelRequest;
use crate::error::SsmError;

/// Reads version `v` (the head's own copy for the latest).
async fn read_version(
    ctx: &ParameterContext<'_>,
    head: &Parameter,
    v: u64,
) -> Result<Option<ParameterVersion>, SsmError> {
    if v == head.version() {
        return Ok(Some(head.current.clone()));
    }
    ctx.store.get_version(head.name(), v).await
}

fn check_kept(head: &Parameter, v: u64) -> Result<(), SsmError> {
    if v < head.oldest_version || v > head.version() {
        return Err(version_not_found(head.name(), v));
    }
    Ok(())
}

/// Writes `next` (labels changed) and the changed versions; the head's
/// `current` follows when the latest version is among them.
async fn write(
    ctx: &ParameterContext<'_>,
    head: &Parameter,
    mut next: Parameter,
    changed: Vec<ParameterVersion>,
) -> Result<bool, SsmError> {
    if let Some(latest) = changed.iter().find(|v| v.version == head.version()) {
        next.current = latest.clone();
    }
    next.revision = head.revision + 1;
    ctx.store.update(&next, head.revision, &changed).await
}

pub async fn label_parameter_version(
    ctx: &ParameterContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req = LabelRequest::from_json(body, false)?;
    let name = ctx.scope.resolve_name(&req.name);
    let arn = ctx.scope.parameter_arn(&name);
    ctx.caller.authorize("ssm:LabelParameterVersion", &arn)?;
    for _ in 0..MAX_ATTEMPTS {
        let head = ctx
            .store
            .find(&name)
            .await?
            .ok_or_else(|| not_found(&name))?;
        let version = req.version.unwrap_or(head.version());
        check_kept(&head, version)?;
        let plan = labels::plan(&head.labels, version, &req.labels)?;
        let answer = json!({ "InvalidLabels": plan.invalid, "ParameterVersion": version });
        if plan.moves.is_empty() {
            return Ok(answer);
        }
        let mut changed = Vec::new();
        for v in plan.touched(version) {
            let item = read_version(ctx, &head, v).await?;
            let Some(mut item) = item else {
                if v == version {
                    return Err(version_not_found(&name, v));
                }
                // A version a label leaves but whose item is gone: only the
                // head's map needs fixing.
                continue;
            };
            for (label, from) in &plan.moves {
                if v == version {
                    item.labels.insert(label.clone());
                } else if *from == Some(v) {
                    item.labels.remove(label);
                }
            }
            changed.push(item);
        }
        let mut next = head.clone();
        for label in plan.moves.keys() {
            next.labels.insert(label.clone(), version);
        }
        if write(ctx, &head, next.clone(), changed).await? {
            // Its event follows from the table's stream.
            return Ok(answer);
        }
    }
    Err(too_many_updates(&name))
}

pub async fn unlabel_parameter_version(
    ctx: &ParameterContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req = LabelRequest::from_json(body, true)?;
    let name = ctx.scope.resolve_name(&req.name);
    let arn = ctx.scope.parameter_arn(&name);
    ctx.caller.authorize("ssm:UnlabelParameterVersion", &arn)?;
    for _ in 0..MAX_ATTEMPTS {
        let head = ctx
            .store
            .find(&name)
            .await?
            .ok_or_else(|| not_found(&name))?;
        let version = req.version.unwrap_or(head.version());
        check_kept(&head, version)?;
        let mut removed: Vec<String> = Vec::new();
        let mut invalid: Vec<String> = Vec::new();
        for l in &req.labels {
            let list = if head.labels.get(l) == Some(&version) {
                &mut removed
            } else {
                &mut invalid
            };
            if !list.contains(l) {
                list.push(l.clone());
            }
        }
        let answer = json!({ "RemovedLabels": removed, "InvalidLabels": invalid });
        if removed.is_empty() {
            return Ok(answer);
        }
        let mut changed = Vec::new();
        if let Some(mut item) = read_version(ctx, &head, version).await? {
            for l in &removed {
                item.labels.remove(l);
            }
            changed.push(item);
        }
        let mut next = head.clone();
        for l in &removed {
            next.labels.remove(l);
        }
        if write(ctx, &head, next, changed).await? {
            return Ok(answer);
        }
    }
    Err(too_many_updates(&name))
}
