//! [`ScheduledRuns`] over the stack: what State Manager and maintenance
//! windows start, they start as the user who scheduled it, through the same
//! authorization and checks as that user's own request (so a user whose
//! policy no longer allows a run is refused at the run), and they read the
//! outcome from Run Command's and Automation's stores.

use async_trait::async_trait;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::automation::ports::ExecutionStore;
use steward_core::clock::now_epoch;
use steward_core::run_command::operations::{cancel_command, send_command_as};
use steward_core::schedule::runs::{NodeOutcome, RunOutcome, ScheduledRuns};
use steward_core::targets::{self, Target, TargetSpec};

use crate::automation::principal_for_user;

/// Invocations read per page when a command's outcome is looked at.
const PAGE: u32 = 50;

pub struct StackRuns<'a> {
    pub stack: &'a Stack,
}

#[async_trait]
impl ScheduledRuns for StackRuns<'_> {
    async fn send_command(
        &self,
        run_as: &str,
        command_id: &str,
        body: &Value,
    ) -> Result<(), SsmError> {
        let p = principal_for_user(self.stack, run_as).await?;
        p.authorize("SendCommand")?;
        steward_core::api_model::validate("SendCommand", body)?;
        let caller = p.caller(&self.stack.settings.account_id);
        let ports = self.stack.run_command().ports();
        send_command_as(&ports, &caller, body, now_epoch(), command_id, None)
            .await
            .map(|_| ())
    }

    async fn start_automation(
        &self,
        run_as: &str,
        client_token: &str,
        body: &Value,
    ) -> Result<String, SsmError> {
        let p = principal_for_user(self.stack, run_as).await?;
        let mut request = body.clone();
        if let Value::Object(m) = &mut request {
            m.insert("ClientToken".into(), json!(client_token));
        }
        let answer = crate::call_as(self.stack, &p, "StartAutomationExecution", &request).await?;
        answer["AutomationExecutionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(SsmError::internal)
    }

    async fn command(&self, command_id: &str) -> Result<Option<RunOutcome>, SsmError> {
        let ports = self.stack.run_command().ports();
        let Some(command) = ports.store.get_command(command_id).await? else {
            return Ok(None);
        };
        let mut nodes = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = ports
                .store
                .query_invocations(command_id, PAGE, token.as_deref())
                .await?;
            nodes.extend(page.items.iter().map(|i| NodeOutcome {
                instance_id: i.instance_id.clone(),
                status: i.status_details.status().as_str().to_string(),
                details: i.status_details.as_str().to_string(),
                is_final: i.status_details.is_final(),
            }));
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(Some(RunOutcome {
            status: command.status.clone(),
            is_final: command.is_final(),
            nodes,
        }))
    }

    async fn automation(&self, execution_id: &str) -> Result<Option<RunOutcome>, SsmError> {
        let store = &self.stack.automation().store;
        Ok(store.get(execution_id).await?.map(|e| RunOutcome {
            status: e.status.as_str().to_string(),
            is_final: e.status.is_final(),
            nodes: Vec::new(),
        }))
    }

    async fn cancel_command(&self, command_id: &str) -> Result<(), SsmError> {
        let ports = self.stack.run_command().ports();
        match cancel_command(&ports, &json!({ "CommandId": command_id })).await {
            Ok(_) => Ok(()),
            // Ended meanwhile: nothing left to cancel.
            Err(SsmError::InvalidCommandId(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn stop_automation(&self, execution_id: &str) -> Result<(), SsmError> {
        let Some(execution) = self.stack.automation().store.get(execution_id).await? else {
            return Ok(());
        };
        if execution.status.is_final() {
            return Ok(());
        }
        // Stopped as the user it runs as, who may stop what they started.
        let p = principal_for_user(self.stack, &execution.run_as).await?;
        let body = json!({ "AutomationExecutionId": execution_id, "Type": "Cancel" });
        match crate::call_as(self.stack, &p, "StopAutomationExecution", &body).await {
            Ok(_) | Err(SsmError::InvalidAutomationStatusUpdateException(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn resolve_targets(&self, targets_given: &[Target]) -> Result<Vec<String>, SsmError> {
        let spec = TargetSpec::parse(&[], targets_given)?;
        let ports = self.stack.run_command().ports();
        targets::resolve(&spec, ports.targets, ports.groups).await
    }

    async fn node_tags(
        &self,
        instance_id: &str,
    ) -> Result<Option<Vec<(String, String)>>, SsmError> {
        let fleet = self.stack.fleet().ports();
        let nodes = fleet.nodes.get_many(&[instance_id.to_string()]).await?;
        Ok(nodes
            .into_iter()
            .find(|n| n.instance_id == instance_id)
            .map(|n| n.tags.into_iter().collect()))
    }
}
