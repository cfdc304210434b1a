//! The automation function. Two queues feed it:
//! - `AutomationQueue`: "look at execution X" (`{"ExecutionId": …}`), sent
//!   when an execution starts, when an operator signals or stops it, and by
//!   the engine itself for waits; each advances the execution as far as it
//!   can go now ([`steward_core::automation::runner`]).
//! - `AutomationStartQueue`: runbook starts written by EventBridge rules
//!   (`{"DocumentName", "DocumentVersion", "Parameters"}`), run as the
//!   stack's events user. The message id is the start's ClientToken, so a
//!   redelivered start starts once; a start that fails is retried and then
//!   kept in the start dead-letter queue.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::MessageAttributeValue;
use serde_json::{Map, Value, json};
use steward_aws::Stack;
use steward_aws::automation::Wake;
use steward_core::SsmError;
use steward_core::automation::engine::Env;
use steward_core::automation::runner::Runner;
use steward_core::clock::now_epoch;
use steward_fn_api::automation::{StackStepServices, principal_for_user};
use steward_sqs_batch::{Record, handle_batch};

pub async fn handle(stack: &Stack, event: SqsEvent) -> SqsBatchResponse {
    handle_batch(event, |record| async move {
        handle_record(stack, &record).await.map_err(|e| {
            tracing::warn!(message_id = %record.message_id, code = e.code(), error = %e, "automation message not handled");
            e.code()
        })
    })
    .await
}

async fn handle_record(stack: &Stack, record: &Record) -> Result<(), SsmError> {
    let body: Value = match serde_json::from_str(&record.body) {
        Ok(body) => body,
        Err(e) => {
            let why = SsmError::SerializationException(format!(
                "An automation message is not JSON ({e}); a start needs {{\"DocumentName\": ..., \"Parameters\": {{...}}}}."
            ));
            return refuse(stack, record, &why).await;
        }
    };
    if let Ok(wake) = serde_json::from_value::<Wake>(body.clone()) {
        return advance(stack, &wake.execution_id).await;
    }
    match start(stack, &record.message_id, &body).await {
        Err(e) if will_not_change(&e) => refuse(stack, record, &e).await,
        other => other,
    }
}

/// Whether retrying a refused start could ever go otherwise: only a fault
/// of ours or a busy table can pass.
fn will_not_change(e: &SsmError) -> bool {
    !matches!(
        e,
        SsmError::InternalServerError(_)
            | SsmError::ThrottlingException(_)
            | SsmError::TooManyUpdates(_)
    )
}

/// A message that cannot start anything goes to the start dead-letter queue
/// at once, as it came, with the refusal as its attributes: visible there to
/// be read (and redriven once fixed), never dropped, never retried for half
/// an hour first.
async fn refuse(stack: &Stack, record: &Record, why: &SsmError) -> Result<(), SsmError> {
    tracing::warn!(message_id = %record.message_id, code = why.code(), error = %why, "automation start refused; kept in the start dead-letter queue");
    let attribute = |text: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(text)
            .build()
            .map_err(|_| SsmError::internal())
    };
    let reason: String = why.to_string().chars().take(1000).collect();
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(&stack.settings.automation_start_dlq_url)
        .message_body(&record.body)
        .message_attributes("Error", attribute(why.code())?)
        .message_attributes("Reason", attribute(&reason)?)
        .send()
        .await
        .map_err(|e| {
            tracing::error!(error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "a refused start could not be kept; it will be retried");
            SsmError::internal()
        })?;
    Ok(())
}

/// Advances one execution.
pub async fn advance(stack: &Stack, execution_id: &str) -> Result<(), SsmError> {
    let now = now_epoch();
    let runner = Runner {
        ctx: stack.automation().context(now),
        services: &StackStepServices { stack },
        env: Env {
            now,
            account_id: stack.settings.account_id.clone(),
            region: stack.settings.region.clone(),
            partition: "aws".into(),
        },
        clock: Some(now_epoch),
    };
    runner.run(execution_id).await
}

/// A start from the start queue: parameters may be single strings (as an
/// InputTransformer writes them) or lists.
pub fn start_request(body: &Value, client_token: &str) -> Result<Value, SsmError> {
    let Value::Object(fields) = body else {
        return Err(SsmError::InvalidAutomationExecutionParametersException(
            "A start message is a JSON object: {\"DocumentName\": ..., \"Parameters\": {...}}."
                .into(),
        ));
    };
    for key in fields.keys() {
        if !matches!(
            key.as_str(),
            "DocumentName" | "DocumentVersion" | "Parameters"
        ) {
            return Err(SsmError::InvalidAutomationExecutionParametersException(
                format!(
                    "A start message takes DocumentName, DocumentVersion and Parameters; {key} is not one of them."
                ),
            ));
        }
    }
    let mut request = Map::new();
    for key in ["DocumentName", "DocumentVersion"] {
        if let Some(v) = fields.get(key) {
            request.insert(key.into(), v.clone());
        }
    }
    if let Some(params) = fields.get("Parameters") {
        let Value::Object(params) = params else {
            return Err(SsmError::InvalidAutomationExecutionParametersException(
                "Parameters is an object of name to value (or list of values).".into(),
            ));
        };
        let lists: Map<String, Value> = params
            .iter()
            .map(|(k, v)| {
                let list = match v {
                    Value::Array(items) => items.clone(),
                    other => vec![other.clone()],
                };
                let texts: Vec<Value> = list
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => json!(s),
                        other => json!(other.to_string()),
                    })
                    .collect();
                (k.clone(), Value::Array(texts))
            })
            .collect();
        request.insert("Parameters".into(), Value::Object(lists));
    }
    request.insert("ClientToken".into(), json!(client_token));
    Ok(Value::Object(request))
}

async fn start(stack: &Stack, message_id: &str, body: &Value) -> Result<(), SsmError> {
    let request = start_request(body, message_id)?;
    let principal = principal_for_user(stack, &stack.settings.automation_events_user).await?;
    let answer =
        steward_fn_api::call_as(stack, &principal, "StartAutomationExecution", &request).await?;
    tracing::info!(
        execution = answer["AutomationExecutionId"].as_str().unwrap_or_default(),
        document = request["DocumentName"].as_str().unwrap_or_default(),
        "runbook started by a rule"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transformed_event_becomes_a_start_with_lists_and_the_message_as_token() {
        let body = json!({"DocumentName": "Restart", "Parameters": {"InstanceId": "mi-1", "Ports": ["80", 443]}});
        assert_eq!(
            start_request(&body, "m-1").unwrap(),
            json!({"DocumentName": "Restart", "Parameters": {"InstanceId": ["mi-1"], "Ports": ["80", "443"]}, "ClientToken": "m-1"})
        );
    }

    #[test]
    fn malformed_starts_are_refused_with_what_to_write() {
        for bad in [
            json!([1]),
            json!({"DocumentName": "X", "Extra": 1}),
            json!({"DocumentName": "X", "Parameters": "a=b"}),
        ] {
            let e = start_request(&bad, "m").unwrap_err();
            assert_eq!(
                e.code(),
                "InvalidAutomationExecutionParametersException",
                "{bad}"
            );
        }
    }
}
