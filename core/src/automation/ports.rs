//! What Automation needs of the world: a store of executions, a queue that
//! wakes the engine, and the services a step calls (Run Command and the SSM
//! API, as the execution's caller). `steward-aws` implements them; the
//! in-memory fakes of [`super::memory`] serve the unit tests.

use async_trait::async_trait;
use serde_json::Value;

use super::engine::CommandOutcome;
use super::execution::Execution;
use crate::error::SsmError;

/// A page of executions, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionPage {
    pub items: Vec<Execution>,
    pub next_token: Option<String>,
}

#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes a new execution. `false`: one with that id exists (nothing
    /// changed).
    async fn create(&self, execution: &Execution) -> Result<bool, SsmError>;
    /// A consistent read.
    async fn get(&self, execution_id: &str) -> Result<Option<Execution>, SsmError>;
    /// Replaces the record only if it is still at `expected_revision`.
    /// `false`: someone else wrote in between.
    async fn update(&self, next: &Execution, expected_revision: u64) -> Result<bool, SsmError>;
    /// Executions newest first (by start request), at most `limit`, from `token`.
    async fn list(&self, limit: u32, token: Option<&str>) -> Result<ExecutionPage, SsmError>;
}

/// Wakes the engine for one execution.
#[async_trait]
pub trait AutomationQueue: Send + Sync {
    /// Delivers "look at `execution_id`" after `delay_seconds` (at most
    /// SQS's 900; a longer wait is a chain of wake-ups).
    async fn wake(&self, execution_id: &str, delay_seconds: u32) -> Result<(), SsmError>;
}

/// A command as a step sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandSeen {
    /// No command has this id.
    Missing,
    Running,
    Ended(CommandOutcome),
}

/// What steps call. Each call is made as the execution's user
/// ([`super::execution::Execution::run_as`]), authorized as that user's own
/// request would be.
#[async_trait]
pub trait StepServices: Send + Sync {
    /// SendCommand with `inputs` under `command_id`, unless that command
    /// exists. `Err` is the refusal, which fails the step.
    async fn create_command(
        &self,
        run_as: &str,
        execution_id: &str,
        command_id: &str,
        inputs: &Value,
    ) -> Result<(), String>;
    async fn command(&self, command_id: &str) -> Result<CommandSeen, SsmError>;
    /// An SSM operation; `Err` is its error, shown as the step's failure.
    async fn call_api(&self, run_as: &str, api: &str, request: &Value) -> Result<Value, String>;
}
