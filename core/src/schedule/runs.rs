//! What scheduled work needs of Run Command and Automation: start a run as
//! the user who scheduled it, and see how it ends. State Manager and
//! maintenance windows both go through it; the api crate implements it with
//! the same authorization and checks a request gets (a user whose policy
//! no longer allows the run is refused at the run, not only at creation),
//! and [`memory::FakeRuns`] serves unit tests.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::SsmError;
use crate::targets::Target;

/// One node's part of a run, as Run Command or Automation reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOutcome {
    pub instance_id: String,
    /// SSM's invocation Status (`Success`, `Failed`, `TimedOut`, …).
    pub status: String,
    /// SSM's StatusDetails.
    pub details: String,
    /// Whether the invocation will change no more.
    pub is_final: bool,
}

/// A run as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The command's or the execution's Status (`Success`, `Failed`,
    /// `Cancelled`, `TimedOut`, `InProgress`, …).
    pub status: String,
    pub is_final: bool,
    /// Per node (commands only; empty for an automation).
    pub nodes: Vec<NodeOutcome>,
}

#[async_trait]
pub trait ScheduledRuns: Send + Sync {
    /// SendCommand's `body` as the user `run_as`, under `command_id`. A
    /// command that already has the id is left as it is (a repeated start
    /// sends nothing twice). Refusals come back in SSM's words.
    async fn send_command(
        &self,
        run_as: &str,
        command_id: &str,
        body: &Value,
    ) -> Result<(), SsmError>;
    /// StartAutomationExecution's `body` as `run_as`; the same
    /// `client_token` starts nothing new. Answers the execution id.
    async fn start_automation(
        &self,
        run_as: &str,
        client_token: &str,
        body: &Value,
    ) -> Result<String, SsmError>;
    /// A command's state; `None`: no such command (not sent yet).
    async fn command(&self, command_id: &str) -> Result<Option<RunOutcome>, SsmError>;
    /// An automation execution's state; `None`: no such execution.
    async fn automation(&self, execution_id: &str) -> Result<Option<RunOutcome>, SsmError>;
    /// CancelCommand (all its nodes); a final command is left as it is.
    async fn cancel_command(&self, command_id: &str) -> Result<(), SsmError>;
    /// StopAutomationExecution; a final execution is left as it is.
    async fn stop_automation(&self, execution_id: &str) -> Result<(), SsmError>;
    /// The managed nodes `targets` name now (instance ids, tags, resource
    /// groups, `InstanceIds=*`), as SendCommand would resolve them.
    async fn resolve_targets(&self, targets: &[Target]) -> Result<Vec<String>, SsmError>;
    /// Whether the node is registered, and its tags (for a new node that
    /// may newly match an association's targets); `None`: not registered.
    async fn node_tags(&self, instance_id: &str)
    -> Result<Option<Vec<(String, String)>>, SsmError>;
}

/// An in-memory [`ScheduledRuns`] for unit tests: records what was started
/// and answers the outcomes a test sets.
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    pub struct Started {
        pub run_as: String,
        pub id: String,
        pub body: Value,
    }

    #[derive(Default)]
    pub struct FakeRuns {
        pub commands: Mutex<BTreeMap<String, (Started, RunOutcome)>>,
        pub automations: Mutex<BTreeMap<String, (Started, RunOutcome)>>,
        pub cancelled: Mutex<Vec<String>>,
        /// Registered nodes and their tags.
        pub nodes: Mutex<BTreeMap<String, Vec<(String, String)>>>,
        /// A refusal every start answers, when set.
        pub refuse: Mutex<Option<SsmError>>,
    }

    fn pending() -> RunOutcome {
        RunOutcome {
            status: "InProgress".into(),
            is_final: false,
            nodes: Vec::new(),
        }
    }

    impl FakeRuns {
        /// Sets a run's outcome (command or automation, whichever has the id).
        pub fn finish(&self, id: &str, outcome: RunOutcome) {
            if let Some(entry) = self.commands.lock().unwrap().get_mut(id) {
                entry.1 = outcome;
                return;
            }
            if let Some(entry) = self.automations.lock().unwrap().get_mut(id) {
                entry.1 = outcome;
            }
        }

        fn refusal(&self) -> Option<SsmError> {
            self.refuse.lock().unwrap().clone()
        }

        fn matches(tags: &[(String, String)], targets: &[Target]) -> bool {
            targets.iter().all(|t| {
                if t.key == "InstanceIds" {
                    return true;
                }
                let Some(name) = t.key.strip_prefix("tag:") else {
                    return t.key == "tag-key" && tags.iter().any(|(k, _)| t.values.contains(k));
                };
                tags.iter()
                    .any(|(k, v)| k == name && t.values.iter().any(|x| x == v))
            })
        }
    }

    #[async_trait]
    impl ScheduledRuns for FakeRuns {
        async fn send_command(
            &self,
            run_as: &str,
            command_id: &str,
            body: &Value,
        ) -> Result<(), SsmError> {
            if let Some(e) = self.refusal() {
                return Err(e);
            }
            self.commands
                .lock()
                .unwrap()
                .entry(command_id.to_string())
                .or_insert_with(|| {
                    (
                        Started {
                            run_as: run_as.into(),
                            id: command_id.into(),
                            body: body.clone(),
                        },
                        pending(),
                    )
                });
            Ok(())
        }

        async fn start_automation(
            &self,
            run_as: &str,
            client_token: &str,
            body: &Value,
        ) -> Result<String, SsmError> {
            if let Some(e) = self.refusal() {
                return Err(e);
            }
            let id = format!("exec-{client_token}");
            self.automations
                .lock()
                .unwrap()
                .entry(id.clone())
                .or_insert_with(|| {
                    (
                        Started {
                            run_as: run_as.into(),
                            id: id.clone(),
                            body: body.clone(),
                        },
                        pending(),
                    )
                });
            Ok(id)
        }

        async fn command(&self, command_id: &str) -> Result<Option<RunOutcome>, SsmError> {
            Ok(self
                .commands
                .lock()
                .unwrap()
                .get(command_id)
                .map(|e| e.1.clone()))
        }

        async fn automation(&self, execution_id: &str) -> Result<Option<RunOutcome>, SsmError> {
            Ok(self
                .automations
                .lock()
                .unwrap()
                .get(execution_id)
                .map(|e| e.1.clone()))
        }

        async fn cancel_command(&self, command_id: &str) -> Result<(), SsmError> {
            self.cancelled.lock().unwrap().push(command_id.into());
            Ok(())
        }

        async fn stop_automation(&self, execution_id: &str) -> Result<(), SsmError> {
            self.cancelled.lock().unwrap().push(execution_id.into());
            Ok(())
        }

        async fn resolve_targets(&self, targets: &[Target]) -> Result<Vec<String>, SsmError> {
            let nodes = self.nodes.lock().unwrap();
            let named: Vec<&String> = targets
                .iter()
                .filter(|t| t.key == "InstanceIds")
                .flat_map(|t| t.values.iter())
                .collect();
            Ok(nodes
                .iter()
                .filter(|(id, tags)| {
                    let by_id =
                        named.is_empty() || named.iter().any(|n| n.as_str() == "*" || n == id);
                    by_id && Self::matches(tags, targets)
                })
                .map(|(id, _)| id.clone())
                .collect())
        }

        async fn node_tags(
            &self,
            instance_id: &str,
        ) -> Result<Option<Vec<(String, String)>>, SsmError> {
            Ok(self.nodes.lock().unwrap().get(instance_id).cloned())
        }
    }
}
