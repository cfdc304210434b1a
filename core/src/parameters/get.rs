//! GetParameter and GetParameters, with `:version` and `:label` selectors.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::model::{Parameter, ParameterVersion};
use super::requests::{GetParameterRequest, NamesRequest};
use super::selector::{self, Selector};
use super::views::{parameter_view, readable_value};
use crate::error::SsmError;

/// SSM's sentence, naming the parameter as the request gave it.
pub fn not_found(name: &str) -> SsmError {
    SsmError::ParameterNotFound(format!("Parameter {name} not found."))
}

/// SSM's sentence for a version number that is not kept.
pub fn version_not_found(name: &str, version: u64) -> SsmError {
    SsmError::ParameterVersionNotFound(format!(
        "Systems Manager could not find version {version} of {name}. Verify the version and try again."
    ))
}

fn label_not_found(name: &str, label: &str) -> SsmError {
    SsmError::ParameterVersionNotFound(format!(
        "Systems Manager could not find label {label} of {name}. Verify the version and try again; get-parameter-history lists the versions kept and their labels."
    ))
}

/// The version of `head` a selector names (none: the latest).
/// `ParameterVersionNotFound` for a version not kept or a label no version
/// carries.
pub async fn resolve(
    ctx: &ParameterContext<'_>,
    head: &Parameter,
    selector: Option<&Selector>,
) -> Result<ParameterVersion, SsmError> {
    let name = head.name();
    let version = match selector {
        None => return Ok(head.current.clone()),
        Some(Selector::Version(v)) => *v,
        Some(Selector::Label(l)) => *head.labels.get(l).ok_or_else(|| label_not_found(name, l))?,
    };
    if version == head.version() {
        return Ok(head.current.clone());
    }
    let missing = || version_not_found(name, version);
    if version < head.oldest_version || version > head.version() {
        return Err(missing());
    }
    ctx.store
        .get_version(name, version)
        .await?
        .ok_or_else(missing)
}

pub async fn get_parameter(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = GetParameterRequest::from_json(body)?;
    let (given, sel) = selector::split(&req.name)?;
    let name = ctx.scope.resolve_name(&given);
    let arn = ctx.scope.parameter_arn(&name);
    ctx.caller.authorize("ssm:GetParameter", &arn)?;
    let head = ctx
        .store
        .find(&name)
        .await?
        .ok_or_else(|| not_found(&req.name))?;
    let v = resolve(ctx, &head, sel.as_ref()).await?;
    let value = readable_value(ctx, &v, req.with_decryption).await?;
    let sel_text = sel.as_ref().map(Selector::text);
    Ok(json!({ "Parameter": parameter_view(&v, &value, &arn, sel_text.as_deref()) }))
}

pub async fn get_parameters(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = NamesRequest::from_json(body)?;
    let mut seen = std::collections::BTreeSet::new();
    // (as given, resolved name, selector); a malformed reference is invalid.
    let mut wanted = Vec::new();
    let mut invalid = Vec::new();
    for given in req.names.iter().filter(|n| seen.insert(n.as_str())) {
        match selector::split(given) {
            Ok((n, sel)) => wanted.push((given, ctx.scope.resolve_name(&n), sel)),
            Err(_) => invalid.push(given.clone()),
        }
    }
    // Every name is authorized before anything is read: one denied name
    // refuses the whole call, as IAM does.
    for (_, name, _) in &wanted {
        ctx.caller
            .authorize("ssm:GetParameters", &ctx.scope.parameter_arn(name))?;
    }
    // Each name as given and as its other spelling (`solo`, `/solo`).
    let mut names: Vec<String> = wanted
        .iter()
        .flat_map(|(_, n, _)| std::iter::once(n.clone()).chain(super::name::other_spelling(n)))
        .collect();
    names.sort();
    names.dedup();
    let heads: BTreeMap<String, Parameter> = if names.is_empty() {
        BTreeMap::new()
    } else {
        ctx.store
            .get_many(&names)
            .await?
            .into_iter()
            .map(|p| (p.name().to_string(), p))
            .collect()
    };
    let mut out = Vec::new();
    for (given, name, sel) in wanted {
        let found = heads
            .get(&name)
            .or_else(|| super::name::other_spelling(&name).and_then(|other| heads.get(&other)));
        let Some(head) = found else {
            invalid.push(given.clone());
            continue;
        };
        let v = match resolve(ctx, head, sel.as_ref()).await {
            Ok(v) => v,
            Err(SsmError::ParameterVersionNotFound(_)) => {
                invalid.push(given.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        let value = readable_value(ctx, &v, req.with_decryption).await?;
        let arn = ctx.scope.parameter_arn(&name);
        let sel_text = sel.as_ref().map(Selector::text);
        out.push(parameter_view(&v, &value, &arn, sel_text.as_deref()));
    }
    Ok(json!({ "Parameters": out, "InvalidParameters": invalid }))
}
