//! An automation execution as it is stored: SSM's statuses, one record per
//! step execution (a retried or looped step has several), what the running
//! step waits for, and the signals it has had.
//!
//! The record is the whole truth of an execution. Every change is one
//! conditional write of it (on `revision`), and the engine decides only from
//! it and what it observes, so a message delivered twice or a function that
//! dies between two writes finds the record as it was and does the same
//! thing again, or nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// SSM's `AutomationExecutionStatus`, for executions and their steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AutomationStatus {
    Pending,
    InProgress,
    Waiting,
    Success,
    TimedOut,
    Cancelling,
    Cancelled,
    Failed,
}

impl AutomationStatus {
    pub const ALL: [AutomationStatus; 8] = [
        AutomationStatus::Pending,
        AutomationStatus::InProgress,
        AutomationStatus::Waiting,
        AutomationStatus::Success,
        AutomationStatus::TimedOut,
        AutomationStatus::Cancelling,
        AutomationStatus::Cancelled,
        AutomationStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AutomationStatus::Pending => "Pending",
            AutomationStatus::InProgress => "InProgress",
            AutomationStatus::Waiting => "Waiting",
            AutomationStatus::Success => "Success",
            AutomationStatus::TimedOut => "TimedOut",
            AutomationStatus::Cancelling => "Cancelling",
            AutomationStatus::Cancelled => "Cancelled",
            AutomationStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            AutomationStatus::Success
                | AutomationStatus::TimedOut
                | AutomationStatus::Cancelled
                | AutomationStatus::Failed
        )
    }
}

/// What a started step waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Wait {
    /// aws:sleep, and aws:waitForAwsResourceProperty between two calls.
    Until { at: f64 },
    /// aws:runCommand: the command this step created (its id was chosen
    /// before it was created, so creating it again is harmless).
    Command { command_id: String },
    /// An API call is out. Until `lease_until` nobody else makes it; past it,
    /// the caller is taken to have died during the call.
    Api { lease_until: f64 },
    /// aws:approve.
    Approval,
    /// aws:pause: a Resume signal.
    Resume,
    /// aws:loop: its steps are running (iteration counts from 1).
    Loop { iteration: u32 },
    /// Nothing: the step has ended.
    Done,
}

/// An approver's decision on an aws:approve step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub approver: String,
    pub approved: bool,
    pub comment: Option<String>,
    pub time: f64,
}

/// One execution of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step_execution_id: String,
    pub name: String,
    pub action: String,
    pub status: AutomationStatus,
    /// 1 for the first try; `maxAttempts` bounds it.
    pub attempt: u32,
    pub start_time: f64,
    pub end_time: Option<f64>,
    /// The inputs with the runbook's values in place (Parameter Store
    /// references stay as written: they are resolved where they are used,
    /// and a secret never enters the record).
    pub inputs: Value,
    pub outputs: BTreeMap<String, Value>,
    pub failure_message: Option<String>,
    pub wait: Wait,
    /// aws:branch: the step it chose.
    pub chosen: Option<String>,
    pub decisions: Vec<Decision>,
    /// The aws:loop record this step runs in.
    pub parent: Option<usize>,
}

/// An automation execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub execution_id: String,
    pub document_name: String,
    pub document_version: String,
    /// The runbook's parameters, every one with its value (defaults filled).
    pub parameters: BTreeMap<String, Value>,
    pub status: AutomationStatus,
    pub steps: Vec<StepRecord>,
    /// Indexes into `steps`: the running step, below it the loops it runs in.
    pub active: Vec<usize>,
    pub outputs: BTreeMap<String, Value>,
    pub failure_message: Option<String>,
    pub executed_by: String,
    /// The access key that started it (none when an EventBridge rule did).
    #[serde(default)]
    pub access_key_id: String,
    /// The Steward user every step calls as, its policy read at each call:
    /// a user deleted or narrowed since is refused from then on.
    #[serde(default)]
    pub run_as: String,
    /// StartAutomationExecution's ClientToken, and what it asked for, so a
    /// retried start finds its execution and a reused token is told apart.
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub request_fingerprint: String,
    /// When StartAutomationExecution was answered (listings sort by it).
    #[serde(default)]
    pub requested_time: f64,
    #[serde(default)]
    pub tags: crate::tags::TagSet,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    /// StopAutomationExecution was called.
    pub cancel_requested: bool,
    /// The onCancel step has been started: when it ends, the execution is
    /// Cancelled.
    pub cancel_handled: bool,
    /// A critical step failed and the execution went on: it ends Failed.
    pub critical_failure: Option<String>,
    /// A rate-controlled execution's targets and children (it runs no
    /// steps of its own).
    #[serde(default)]
    pub fan_out: Option<super::fan_out::FanOut>,
    /// The rate-controlled execution this one is a child of.
    #[serde(default)]
    pub parent_execution_id: Option<String>,
    /// A child's target, as the parent shows it.
    #[serde(default)]
    pub target: Option<String>,
    /// Raised by each conditional write.
    pub revision: u64,
    /// The status changes the write that made `revision` announced: its
    /// events, published from the table's stream (`events::of_execution_change`).
    #[serde(default)]
    pub announced: Announcements,
}

/// A write's status changes, in the order they happened (one write may
/// pass through several: InProgress, then Success).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Announcements {
    /// The revision they belong to: a later write that announces nothing
    /// leaves them behind, and they are not published again.
    pub revision: u64,
    /// When they happened (epoch seconds).
    pub at: f64,
    pub changes: Vec<Announced>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Announced {
    Execution(AutomationStatus),
    /// A step, by index, and the status it changed to.
    Step(usize, AutomationStatus),
}

impl Execution {
    pub fn new(
        execution_id: String,
        document_name: String,
        document_version: String,
        parameters: BTreeMap<String, Value>,
        executed_by: String,
    ) -> Self {
        Execution {
            execution_id,
            document_name,
            document_version,
            parameters,
            status: AutomationStatus::Pending,
            steps: Vec::new(),
            active: Vec::new(),
            outputs: BTreeMap::new(),
            failure_message: None,
            executed_by,
            access_key_id: String::new(),
            run_as: String::new(),
            client_token: None,
            request_fingerprint: String::new(),
            requested_time: 0.0,
            tags: Default::default(),
            start_time: None,
            end_time: None,
            cancel_requested: false,
            cancel_handled: false,
            critical_failure: None,
            fan_out: None,
            parent_execution_id: None,
            target: None,
            revision: 0,
            announced: Announcements::default(),
        }
    }

    /// The running step's record.
    pub fn current(&self) -> Option<&StepRecord> {
        self.active.last().and_then(|&i| self.steps.get(i))
    }

    /// The latest value of `step.output`, from the last execution of that
    /// step that has it.
    pub fn output(&self, step: &str, output: &str) -> Option<&Value> {
        self.steps
            .iter()
            .rev()
            .filter(|r| r.name == step)
            .find_map(|r| r.outputs.get(output))
    }
}
