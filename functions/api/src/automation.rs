//! Automation on the API (StartAutomationExecution and the rest; the work is
//! in `steward_core::automation`), and what a runbook's steps call: Run
//! Command and every SSM operation Steward serves, as the execution's user,
//! each call authorized as that user's own request would be.

use serde_json::{Map, Value, json};
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::automation::engine::CommandOutcome;
use steward_core::automation::operations;
use steward_core::automation::ports::{CommandSeen, StepServices};
use steward_core::clock::now_epoch;
use steward_core::identity::{IdentityStore, effective_policy};
use steward_core::run_command::operations::send_command_as;

use crate::auth::Principal;

/// The automation operations (the table in `lib.rs` names them).
pub async fn handle(
    stack: &Stack,
    p: &Principal,
    op: &str,
    body: &Value,
) -> Result<Value, SsmError> {
    let caller = p.caller(&stack.settings.account_id);
    let ctx = stack.automation().context(now_epoch());
    operations::handle(&ctx, &caller, op, body)
        .await
        .unwrap_or_else(|| Err(crate::unsupported(op)))
}

/// The principal a step calls as: the user's current policy, read now. A
/// user deleted since the execution started is refused.
pub async fn principal_for_user(stack: &Stack, user_name: &str) -> Result<Principal, SsmError> {
    let user = stack
        .identity()
        .store
        .user(user_name)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "the user a runbook runs as cannot be read");
            SsmError::internal()
        })?
        .ok_or_else(|| {
            SsmError::AccessDeniedException(format!(
                "User {user_name}, whom this execution runs as, does not exist (any more); create it and grant it what the runbook does."
            ))
        })?;
    Ok(Principal {
        access_key_id: String::new(),
        user_name: user_name.to_string(),
        policy: effective_policy(&user)?,
    })
}

/// An aws:runCommand step's inputs as SendCommand's request: document
/// parameters as lists of strings, as SendCommand takes them.
pub fn send_command_request(inputs: &Value) -> Value {
    let mut body = inputs.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(params)) = body.get("Parameters") {
        let as_lists: Map<String, Value> = params
            .iter()
            .map(|(k, v)| {
                let list = match v {
                    Value::Array(items) => items.iter().map(text).collect(),
                    other => vec![text(other)],
                };
                (k.clone(), json!(list))
            })
            .collect();
        body.insert("Parameters".into(), Value::Object(as_lists));
    }
    if let Some(Value::String(t)) = body.get("TimeoutSeconds")
        && let Ok(n) = t.parse::<u64>()
    {
        body.insert("TimeoutSeconds".into(), json!(n));
    }
    Value::Object(body)
}

fn text(v: &Value) -> Value {
    match v {
        Value::String(s) => json!(s),
        other => json!(other.to_string()),
    }
}

/// Whether a request asks for SecureString values in plaintext.
pub fn decrypts(request: &Value) -> bool {
    match request.get("WithDecryption") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The steps' services over the stack.
pub struct StackStepServices<'a> {
    pub stack: &'a Stack,
}

#[async_trait::async_trait]
impl StepServices for StackStepServices<'_> {
    async fn create_command(
        &self,
        run_as: &str,
        execution_id: &str,
        command_id: &str,
        inputs: &Value,
    ) -> Result<(), String> {
        let refused = |e: SsmError| format!("{}: {e}", e.code());
        let p = principal_for_user(self.stack, run_as)
            .await
            .map_err(refused)?;
        p.authorize("SendCommand").map_err(refused)?;
        let body = send_command_request(inputs);
        steward_core::api_model::validate("SendCommand", &body).map_err(refused)?;
        let caller = p.caller(&self.stack.settings.account_id);
        let ports = self.stack.run_command().ports();
        send_command_as(
            &ports,
            &caller,
            &body,
            now_epoch(),
            command_id,
            Some(execution_id),
        )
        .await
        .map(|_| ())
        .map_err(refused)
    }

    async fn command(&self, command_id: &str) -> Result<CommandSeen, SsmError> {
        let store = &self.stack.run_command().store;
        use steward_core::run_command::ports::CommandStore;
        let Some(c) = store.get_command(command_id).await? else {
            return Ok(CommandSeen::Missing);
        };
        if matches!(c.status.as_str(), "Pending" | "InProgress" | "Cancelling") {
            return Ok(CommandSeen::Running);
        }
        // SSM's step outputs are the first node's: its exit code and output.
        let first = store.query_invocations(command_id, 1, None).await?;
        let (response_code, output) = first
            .items
            .first()
            .map(|i| {
                let out: String = i
                    .plugins
                    .iter()
                    .map(|p| p.standard_output_content.as_str())
                    .collect();
                (i64::from(i.response_code), out)
            })
            .unwrap_or((0, String::new()));
        Ok(CommandSeen::Ended(CommandOutcome {
            command_id: command_id.to_string(),
            status: c.status.clone(),
            response_code,
            output,
        }))
    }

    async fn call_api(&self, run_as: &str, api: &str, request: &Value) -> Result<Value, String> {
        let refused = |e: SsmError| format!("{}: {e}", e.code());
        if decrypts(request) {
            // A step's response and outputs are kept in the execution and
            // shown to whoever may read it: no plaintext secret goes there.
            return Err(format!(
                "ValidationException: {api} with WithDecryption is not run by a runbook step: its values would be kept in the execution's outputs. Pass {{{{ssm-secure:name}}}} to an aws:runCommand step, which the node resolves."
            ));
        }
        let p = principal_for_user(self.stack, run_as)
            .await
            .map_err(refused)?;
        crate::call_as(self.stack, &p, api, request)
            .await
            .map_err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_asking_for_plaintext_secrets_is_told_apart() {
        assert!(decrypts(
            &json!({"Name": "/db/pass", "WithDecryption": true})
        ));
        assert!(decrypts(
            &json!({"Name": "/db/pass", "WithDecryption": "True"})
        ));
        assert!(!decrypts(
            &json!({"Name": "/db/pass", "WithDecryption": false})
        ));
        assert!(!decrypts(&json!({"Name": "/app/color"})));
    }

    #[test]
    fn run_command_inputs_become_send_command_lists() {
        let body = send_command_request(&json!({
            "DocumentName": "AWS-RunShellScript",
            "Parameters": {"commands": "uptime", "executionTimeout": 60},
            "TimeoutSeconds": "600"
        }));
        assert_eq!(
            body["Parameters"],
            json!({"commands": ["uptime"], "executionTimeout": ["60"]})
        );
        assert_eq!(body["TimeoutSeconds"], json!(600));
    }
}
