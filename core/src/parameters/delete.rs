//! DeleteParameter and DeleteParameters: the head goes (conditionally on
//! the revision read), then its versions.

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::get::not_found;
use super::put::{MAX_ATTEMPTS, too_many_updates};
use super::requests::{NamesRequest, name_only};
use crate::error::SsmError;

/// Deletes `name`; `ParameterNotFound` when it does not exist. Authorization
/// is the caller's business (the two operations authorize differently).
async fn delete_one(ctx: &ParameterContext<'_>, name: &str) -> Result<(), SsmError> {
    for _ in 0..MAX_ATTEMPTS {
        let head = ctx.store.find(name).await?.ok_or_else(|| not_found(name))?;
        if ctx.store.delete(&head, head.revision).await? {
            // Its event follows from the table's stream.
            return Ok(());
        }
    }
    Err(too_many_updates(name))
}

pub async fn delete_parameter(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let name = ctx.scope.resolve_name(&name_only(body)?);
    let arn = ctx.scope.parameter_arn(&name);
    ctx.caller.authorize("ssm:DeleteParameter", &arn)?;
    delete_one(ctx, &name).await?;
    Ok(json!({}))
}

pub async fn delete_parameters(
    ctx: &ParameterContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req = NamesRequest::from_json(body)?;
    let mut seen = std::collections::BTreeSet::new();
    let names: Vec<&String> = req.names.iter().filter(|n| seen.insert(*n)).collect();
    // Every name is authorized first: a denied one refuses the whole call
    // before anything is deleted.
    for given in &names {
        let arn = ctx.scope.parameter_arn(&ctx.scope.resolve_name(given));
        ctx.caller.authorize("ssm:DeleteParameters", &arn)?;
    }
    let mut deleted = Vec::new();
    let mut invalid = Vec::new();
    for given in names {
        let name = ctx.scope.resolve_name(given);
        match delete_one(ctx, &name).await {
            Ok(()) => deleted.push(given.clone()),
            Err(SsmError::ParameterNotFound(_)) => invalid.push(given.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(json!({ "DeletedParameters": deleted, "InvalidParameters": invalid }))
}
