//! In-memory ports for unit tests of the operations and the runner, with
//! the adapters' conditions. The DynamoDB and SQS adapters are tested
//! against the local stack with the same expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::events::of_execution_change;
use super::execution::Execution;
use super::ports::*;
use crate::error::SsmError;
use crate::events::Event;

#[derive(Default)]
pub struct MemoryExecutions {
    pub executions: Mutex<BTreeMap<String, Execution>>,
    /// The events the table's stream would carry.
    pub feed: Mutex<Vec<Event>>,
}

#[async_trait]
impl ExecutionStore for MemoryExecutions {
    async fn create(&self, execution: &Execution) -> Result<bool, SsmError> {
        let mut all = self.executions.lock().unwrap();
        if all.contains_key(&execution.execution_id) {
            return Ok(false);
        }
        all.insert(execution.execution_id.clone(), execution.clone());
        drop(all);
        self.feed
            .lock()
            .unwrap()
            .extend(of_execution_change(None, Some(execution)));
        Ok(true)
    }

    async fn get(&self, execution_id: &str) -> Result<Option<Execution>, SsmError> {
        Ok(self.executions.lock().unwrap().get(execution_id).cloned())
    }

    async fn update(&self, next: &Execution, expected_revision: u64) -> Result<bool, SsmError> {
        let mut all = self.executions.lock().unwrap();
        match all.get_mut(&next.execution_id) {
            Some(e) if e.revision == expected_revision => {
                let old = std::mem::replace(e, next.clone());
                drop(all);
                self.feed
                    .lock()
                    .unwrap()
                    .extend(of_execution_change(Some(&old), Some(next)));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list(&self, limit: u32, token: Option<&str>) -> Result<ExecutionPage, SsmError> {
        let mut all: Vec<Execution> = self.executions.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| {
            b.requested_time
                .total_cmp(&a.requested_time)
                .then(b.execution_id.cmp(&a.execution_id))
        });
        let start: usize = match token {
            None => 0,
            Some(t) => t.parse().map_err(|_| crate::paging::invalid_token())?,
        };
        let end = (start + limit as usize).min(all.len());
        Ok(ExecutionPage {
            items: all.get(start..end).map(<[_]>::to_vec).unwrap_or_default(),
            next_token: (end < all.len()).then(|| end.to_string()),
        })
    }
}

/// Wake-ups asked for: (execution id, delay).
#[derive(Default)]
pub struct MemoryQueue {
    pub wakes: Mutex<Vec<(String, u32)>>,
}

#[async_trait]
impl AutomationQueue for MemoryQueue {
    async fn wake(&self, execution_id: &str, delay_seconds: u32) -> Result<(), SsmError> {
        self.wakes
            .lock()
            .unwrap()
            .push((execution_id.to_string(), delay_seconds));
        Ok(())
    }
}

/// Commands that end as told, and an API that answers from a table.
#[derive(Default)]
pub struct MemoryServices {
    /// command id → (the inputs it was created with, the user it ran as).
    pub created: Mutex<BTreeMap<String, (Value, String)>>,
    /// command id → how it ended; absent: still running.
    pub ended: Mutex<BTreeMap<String, super::engine::CommandOutcome>>,
    /// SendCommand refusals by document name.
    pub refuse_documents: Mutex<BTreeMap<String, String>>,
    /// API answers by operation name.
    pub answers: Mutex<BTreeMap<String, Result<Value, String>>>,
    /// Calls made: (user, api, request).
    pub calls: Mutex<Vec<(String, String, Value)>>,
}

#[async_trait]
impl StepServices for MemoryServices {
    async fn create_command(
        &self,
        run_as: &str,
        _execution_id: &str,
        command_id: &str,
        inputs: &Value,
    ) -> Result<(), String> {
        let doc = inputs
            .get("DocumentName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(why) = self.refuse_documents.lock().unwrap().get(doc) {
            return Err(why.clone());
        }
        self.created
            .lock()
            .unwrap()
            .entry(command_id.to_string())
            .or_insert((inputs.clone(), run_as.to_string()));
        Ok(())
    }

    async fn command(&self, command_id: &str) -> Result<CommandSeen, SsmError> {
        if let Some(o) = self.ended.lock().unwrap().get(command_id) {
            return Ok(CommandSeen::Ended(o.clone()));
        }
        Ok(if self.created.lock().unwrap().contains_key(command_id) {
            CommandSeen::Running
        } else {
            CommandSeen::Missing
        })
    }

    async fn call_api(&self, run_as: &str, api: &str, request: &Value) -> Result<Value, String> {
        self.calls
            .lock()
            .unwrap()
            .push((run_as.to_string(), api.to_string(), request.clone()));
        self.answers
            .lock()
            .unwrap()
            .get(api)
            .cloned()
            .unwrap_or_else(|| Err(format!("{api} is not answered in this test")))
    }
}
