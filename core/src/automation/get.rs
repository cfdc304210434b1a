//! GetAutomationExecution: one execution with its step executions.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::AutomationContext;
use super::execution::Execution;
use super::runbook::Runbook;
use super::view;
use crate::access::Authorizer;
use crate::documents::context::load_runbook;
use crate::error::SsmError;
use crate::error::parse_request as parse;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ExecutionIdInput {
    pub(super) automation_execution_id: Option<String>,
}

pub(super) fn not_found(id: &str) -> SsmError {
    SsmError::AutomationExecutionNotFoundException(format!(
        "Automation execution {id} does not exist; list executions with DescribeAutomationExecutions."
    ))
}

/// The execution a request names, authorized for `action`.
pub(super) async fn named(
    ctx: &AutomationContext<'_>,
    caller: &dyn Authorizer,
    action: &str,
    body: &Value,
) -> Result<Execution, SsmError> {
    let i: ExecutionIdInput = parse(body)?;
    let id = match i.automation_execution_id {
        Some(id) if !id.is_empty() => id,
        _ => {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value null at 'automationExecutionId' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
    };
    caller.authorize(action, &ctx.execution_arn(&id))?;
    ctx.store.get(&id).await?.ok_or_else(|| not_found(&id))
}

/// The runbook version an execution ran, for its steps' fields; none when
/// that version has been deleted since.
pub(super) async fn runbook_of(ctx: &AutomationContext<'_>, e: &Execution) -> Option<Runbook> {
    load_runbook(ctx.documents, &e.document_name, Some(&e.document_version))
        .await
        .ok()
        .map(|r| r.runbook)
}

pub(super) async fn get(
    ctx: &AutomationContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let e = named(ctx, caller, "ssm:GetAutomationExecution", body).await?;
    let runbook = runbook_of(ctx, &e).await;
    Ok(json!({ "AutomationExecution": view::execution(&e, runbook.as_ref()) }))
}
