//! StartAutomationExecution: checks the request and the runbook's
//! parameters, writes a Pending execution, and wakes the engine. A bad
//! request starts nothing; a retried request with the same ClientToken
//! starts once.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::AutomationContext;
use super::execution::{AutomationStatus, Execution};
use super::fan_out::{Child, FanOut};
use super::runbook::Runbook;
use crate::access::{Authorizer, Caller};
use crate::documents::context::load_runbook;
use crate::documents::declared_parameters::validate;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids::{new_command_id, sha256_hex};
use crate::run_command::status::Limit;
use crate::tags::{Tag, validate_tags};
use crate::targets::{self, Target, TargetSpec};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartInput {
    document_name: Option<String>,
    document_version: Option<String>,
    parameters: BTreeMap<String, Vec<String>>,
    client_token: Option<String>,
    mode: Option<String>,
    target_parameter_name: Option<String>,
    targets: Option<Value>,
    target_maps: Option<Value>,
    max_concurrency: Option<String>,
    max_errors: Option<String>,
    target_locations: Option<Value>,
    #[serde(rename = "TargetLocationsURL")]
    target_locations_url: Option<String>,
    alarm_configuration: Option<Value>,
    tags: Vec<Tag>,
}

fn invalid(msg: String) -> SsmError {
    SsmError::InvalidAutomationExecutionParametersException(msg)
}

/// The execution id a ClientToken gives: the same token (any case) from the
/// same account is the same execution.
fn id_for_token(account: &str, token: &str) -> String {
    crate::ids::id_from(&format!("{account}/{}", token.to_lowercase()))
}

/// The user name of a Steward user ARN (`arn:aws:iam::<account>:user/<path/>name`).
pub fn user_name(user_arn: &str) -> String {
    user_arn
        .rsplit_once(":user/")
        .map(|(_, n)| n.rsplit('/').next().unwrap_or(n))
        .unwrap_or(user_arn)
        .to_string()
}

/// Every parameter of the runbook with its value, given or default.
fn resolve(
    runbook: &Runbook,
    given: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Value>, SsmError> {
    let resolved = validate(&runbook.parameters, given).map_err(|e| match e {
        SsmError::InvalidParameters(m) => invalid(m),
        other => other,
    })?;
    Ok(resolved
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect())
}

/// Targets one rate-controlled execution may have (its children are kept in
/// its record).
pub const MAX_CHILDREN: usize = 1000;

/// A rate-controlled start's children: one per target value (Targets with
/// TargetParameterName) or per TargetMap, each with every parameter checked
/// as its own start would be. MaxConcurrency and MaxErrors default as
/// SendCommand's do (50 and 0).
async fn rate_control(
    ctx: &AutomationContext<'_>,
    runbook: &Runbook,
    i: &StartInput,
) -> Result<FanOut, SsmError> {
    let max_concurrency = i.max_concurrency.clone().unwrap_or_else(|| "50".into());
    let max_errors = i.max_errors.clone().unwrap_or_else(|| "0".into());
    Limit::parse("maxConcurrency", &max_concurrency)?;
    Limit::parse("maxErrors", &max_errors)?;
    let per_child: Vec<(String, BTreeMap<String, Vec<String>>)> = match (&i.targets, &i.target_maps)
    {
        (Some(_), Some(_)) => {
            return Err(invalid("Give Targets or TargetMaps, not both.".into()));
        }
        (None, None) => {
            return Err(invalid(
                    "A rate-controlled execution needs Targets (with TargetParameterName) or TargetMaps.".into(),
                ));
        }
        (Some(targets), None) => {
            let Some(param) = &i.target_parameter_name else {
                return Err(invalid(
                        "Targets need TargetParameterName: the runbook parameter each target's value is given as.".into(),
                    ));
            };
            if !runbook.parameters.iter().any(|p| p.name == *param) {
                return Err(invalid(format!(
                    "TargetParameterName {param} is not a parameter of the runbook."
                )));
            }
            let targets: Vec<Target> = serde_json::from_value(targets.clone()).map_err(|e| {
                invalid(format!(
                    "Targets are a list of {{\"Key\", \"Values\"}}: {e}."
                ))
            })?;
            let values = match targets.as_slice() {
                [t] if t.key == "ParameterValues" => t.values.clone(),
                _ => {
                    let spec = TargetSpec::parse(&[], &targets)?;
                    targets::resolve(&spec, ctx.targets, ctx.groups).await?
                }
            };
            values
                .into_iter()
                .map(|v| {
                    let mut given = i.parameters.clone();
                    given.insert(param.clone(), vec![v.clone()]);
                    (v, given)
                })
                .collect()
        }
        (None, Some(maps)) => {
            let maps: Vec<BTreeMap<String, Vec<String>>> = serde_json::from_value(maps.clone())
                .map_err(|e| invalid(format!("TargetMaps are a list of parameter maps: {e}.")))?;
            maps.into_iter()
                .map(|m| {
                    let shown = serde_json::to_string(&m).unwrap_or_default();
                    let mut given = i.parameters.clone();
                    given.extend(m);
                    (shown, given)
                })
                .collect()
        }
    };
    if per_child.len() > MAX_CHILDREN {
        return Err(invalid(format!(
            "The targets come to {} executions; one rate-controlled execution runs at most {MAX_CHILDREN}. Narrow the targets or start several.",
            per_child.len()
        )));
    }
    let children = per_child
        .into_iter()
        .map(|(target, given)| {
            Ok(Child {
                parameters: resolve(runbook, &given)?,
                target,
                started: false,
                status: None,
            })
        })
        .collect::<Result<Vec<_>, SsmError>>()?;
    Ok(FanOut {
        target_parameter_name: i.target_parameter_name.clone(),
        targets: i.targets.clone().unwrap_or(Value::Null),
        target_maps: i.target_maps.clone().unwrap_or(Value::Null),
        max_concurrency,
        max_errors,
        children,
    })
}

pub(super) async fn start(
    ctx: &AutomationContext<'_>,
    caller: &Caller,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: StartInput = parse(body)?;
    let name = match i.document_name.clone() {
        Some(n) if !n.is_empty() => n,
        _ => {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
    };
    caller.authorize("ssm:StartAutomationExecution", &ctx.definition_arn(&name))?;
    match i.mode.as_deref() {
        None | Some("Auto") => {}
        Some("Interactive") => {
            return Err(invalid(
                "Mode Interactive is not supported: Steward runs every step in Auto mode. Pause where a person must act with an aws:pause or aws:approve step.".into(),
            ));
        }
        Some(other) => {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'mode' failed to satisfy constraint: Member must satisfy enum value set: [Auto, Interactive]"
            )));
        }
    }
    if i.target_locations.is_some() || i.target_locations_url.is_some() {
        return Err(invalid(
            "TargetLocations are not supported: Steward runs in one account and region.".into(),
        ));
    }
    if i.alarm_configuration.is_some() {
        return Err(invalid(
            "AlarmConfiguration is not supported: Steward watches no CloudWatch alarms.".into(),
        ));
    }
    let tags = validate_tags(&i.tags)?;
    let loaded = load_runbook(ctx.documents, &name, i.document_version.as_deref()).await?;
    let rate_controlled = i.targets.is_some()
        || i.target_maps.is_some()
        || i.target_parameter_name.is_some()
        || i.max_concurrency.is_some()
        || i.max_errors.is_some();
    let (parameters, fan_out) = if rate_controlled {
        let fan_out = rate_control(ctx, &loaded.runbook, &i).await?;
        // The parent runs no steps: its parameters are those given.
        let given = i
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        (given, Some(fan_out))
    } else {
        (resolve(&loaded.runbook, &i.parameters)?, None)
    };
    let fingerprint = sha256_hex(
        json!([loaded.name, loaded.version, parameters, tags, fan_out])
            .to_string()
            .as_bytes(),
    );
    let execution_id = match &i.client_token {
        Some(t) => id_for_token(&ctx.scope.account, t),
        None => new_command_id(),
    };
    let mut exec = Execution::new(
        execution_id.clone(),
        loaded.name.clone(),
        loaded.version.to_string(),
        parameters,
        caller.user_arn.clone(),
    );
    exec.access_key_id = caller.access_key_id.clone();
    exec.run_as = user_name(&caller.user_arn);
    exec.client_token = i.client_token.clone();
    exec.request_fingerprint = fingerprint.clone();
    exec.requested_time = ctx.now;
    exec.tags = tags;
    exec.fan_out = fan_out;
    if !ctx.store.create(&exec).await? {
        let existing = ctx.store.get(&execution_id).await?;
        return match existing {
            Some(e) if e.request_fingerprint == fingerprint => {
                Ok(json!({ "AutomationExecutionId": e.execution_id }))
            }
            _ => Err(SsmError::IdempotentParameterMismatch(
                "ClientToken was used before with other parameters: give a new ClientToken for a new execution.".into(),
            )),
        };
    }
    if let Err(e) = ctx.queue.wake(&execution_id, 0).await {
        // Nothing would ever run it: say so on the record rather than leave
        // it Pending for ever.
        let mut failed = exec.clone();
        failed.status = AutomationStatus::Failed;
        failed.failure_message = Some("The execution could not be queued; start it again.".into());
        failed.end_time = Some(ctx.now);
        failed.revision = exec.revision + 1;
        if let Err(w) = ctx.store.update(&failed, exec.revision).await {
            tracing::error!(execution = %execution_id, error = %w, "unqueued execution not marked failed");
        }
        return Err(e);
    }
    tracing::info!(execution = %execution_id, document = %loaded.name, "automation execution started");
    Ok(json!({ "AutomationExecutionId": execution_id }))
}
