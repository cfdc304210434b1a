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

/// Conditional writes tried before answering TooManyUpdates.
const ATTEMPTS: usize = 5;

/// Applies `change` to the execution and writes it on the revision it was
/// read at (reading again and changing again when another writer came
/// first), then wakes the engine to act on it. A change that leaves the
/// record as it was writes nothing.
pub(super) async fn change_and_wake(
    ctx: &AutomationContext<'_>,
    mut e: Execution,
    mut change: impl FnMut(&mut Execution) -> Result<(), SsmError>,
) -> Result<(), SsmError> {
    for _ in 0..ATTEMPTS {
        let mut next = e.clone();
        change(&mut next)?;
        next.revision = e.revision + 1;
        let same = Execution {
            revision: e.revision,
            ..next.clone()
        } == e;
        if same || ctx.store.update(&next, e.revision).await? {
            return ctx.queue.wake(&e.execution_id, 0).await;
        }
        e = ctx
            .store
            .get(&e.execution_id)
            .await?
            .ok_or_else(|| not_found(&e.execution_id))?;
    }
    Err(SsmError::TooManyUpdates(format!(
        "Automation execution {} is being changed by other requests; try again.",
        e.execution_id
    )))
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
