//! The records of Run Command: a command, its invocations (one per node) and
//! the plugin results inside an invocation, plus the work items that move
//! them along.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rate_control::{Counters, Delta, Limits, RateControl};
use crate::channel::PluginStep;
use crate::documents::GivenParameters;
use crate::error::SsmError;
use crate::run_command::status::{CommandState, InvocationDetail, Limit, Tally, command_state};
use crate::targets::Target;

/// A command as stored. Field names follow SSM's `Command`.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub command_id: String,
    pub document_name: String,
    pub document_version: String,
    pub comment: String,
    pub parameters: GivenParameters,
    /// `InstanceIds` as the caller gave them (empty when Targets were used).
    pub instance_ids: Vec<String>,
    pub targets: Vec<Target>,
    /// The nodes the command reaches, resolved when it was sent.
    pub resolved_instance_ids: Vec<String>,
    pub requested_date_time: f64,
    /// `RequestedDateTime + TimeoutSeconds`, SSM's `ExpiresAfter`.
    pub expires_after: f64,
    pub status: String,
    pub status_details: String,
    pub output_s3_bucket_name: String,
    pub output_s3_key_prefix: String,
    pub output_s3_region: String,
    pub max_concurrency: String,
    pub max_errors: String,
    pub service_role: String,
    /// SSM's `NotificationConfig`, kept as given and echoed.
    pub notification_config: Option<Value>,
    /// The delivery timeout (SSM's `TimeoutSeconds`).
    pub timeout_seconds: u32,
    /// What each node runs, resolved from the document when the command was sent.
    pub steps: Vec<PluginStep>,
    pub tally: Tally,
    pub cancel_requested: bool,
    /// The automation execution whose aws:runCommand step sent it: woken
    /// when the command ends, so the step waits without a poll.
    pub automation_execution_id: Option<String>,
}

impl Command {
    /// MaxErrors as an absolute number for this command's targets.
    pub fn max_errors_allowed(&self) -> u32 {
        Limit::parse("maxErrors", &self.max_errors)
            .map(|l| l.resolve(self.tally.target_count, false))
            .unwrap_or(0)
    }

    /// What the status should be from the counters.
    pub fn derived_state(&self) -> CommandState {
        command_state(
            &self.tally,
            self.max_errors_allowed(),
            self.cancel_requested,
        )
    }

    pub fn is_final(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "Pending" | "InProgress" | "Cancelling"
        )
    }

    /// Its rate control as the counters stand: `finished` and `errors` are
    /// the tally's, which only counts invocations that were released (or,
    /// once stopped, closed).
    pub fn rate_control(&self) -> Result<RateControl, SsmError> {
        let t = &self.tally;
        let limits = Limits::parse(t.target_count, &self.max_concurrency, &self.max_errors)?;
        Ok(RateControl {
            limits,
            counters: Counters {
                released: t.released,
                // An invocation released to a node that was not Online is
                // counted acknowledged and finished from its release on
                // (`Invocation::initial_tally`), and its own later moves are
                // not counted again: it holds no slot of the ramp or of
                // MaxConcurrency, so a dead node cannot hold up the living.
                acknowledged: t.acknowledged,
                finished: (t.completed() + t.offline_released).saturating_sub(t.offline_finished),
                errors: t.errors(),
                cancelled: self.cancel_requested,
                // Closing raises `released` to the end of the list.
                closed: t.released >= t.target_count,
            },
        })
    }

    /// The longest a node may run the steps once it started (seconds).
    pub fn execution_budget(&self) -> u32 {
        self.steps.iter().map(|s| s.timeout_seconds).sum()
    }
}

/// One plugin's (step's) result inside an invocation, as stored: SSM's
/// `CommandPlugin` plus the inline output it shows in GetCommandInvocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginRecord {
    pub name: String,
    pub status_details: InvocationDetail,
    pub response_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_start_date_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_finish_date_time: Option<f64>,
    #[serde(default)]
    pub standard_output_content: String,
    #[serde(default)]
    pub standard_error_content: String,
    #[serde(default)]
    pub standard_output_url: String,
    #[serde(default)]
    pub standard_error_url: String,
}

/// One node's copy of a command. Field names follow SSM's `CommandInvocation`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub command_id: String,
    pub instance_id: String,
    pub instance_name: String,
    pub comment: String,
    pub document_name: String,
    pub document_version: String,
    /// The command's RequestedDateTime (the ByInstance index sorts on it).
    pub requested_date_time: f64,
    pub status_details: InvocationDetail,
    pub response_code: i32,
    pub execution_start_date_time: Option<f64>,
    pub execution_end_date_time: Option<f64>,
    pub plugins: Vec<PluginRecord>,
    pub output_s3_bucket_name: String,
    pub output_s3_key_prefix: String,
    pub output_s3_region: String,
    pub service_role: String,
    pub notification_config: Option<Value>,
    /// The `msg_id` of the RunCommand downlink: a resend reuses it, so the
    /// agent recognises the repeat.
    pub message_id: String,
    /// After this, an invocation not yet started is `Delivery Timed Out`.
    pub delivery_deadline: f64,
    /// Its node was not Online when rate control released it: it was sent
    /// all the same, and holds no rate-control slot.
    pub released_offline: bool,
}

impl Invocation {
    /// What the command's counters gain when this invocation is created.
    pub fn initial_tally(&self) -> Tally {
        let mut t = Transition::status_only(
            &self.command_id,
            &self.instance_id,
            InvocationDetail::Pending,
            self.status_details,
        )
        .tally_delta();
        if self.released_offline {
            // Acknowledged at once, so the ramp goes on; `Command::rate_control`
            // counts it finished until it really ends.
            t.acknowledged = 1;
            t.offline_released = 1;
        }
        t
    }

    /// The transition of this invocation, as it stands, to `to`.
    pub fn moved_to(&self, to: InvocationDetail) -> Transition {
        Transition {
            released_offline: self.released_offline,
            ..Transition::status_only(&self.command_id, &self.instance_id, self.status_details, to)
        }
    }
}

/// How an invocation changes, with what a report carried. Applied together
/// with the command's counters, on the condition that the invocation is
/// still in `from`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub command_id: String,
    pub instance_id: String,
    pub from: InvocationDetail,
    pub to: InvocationDetail,
    pub response_code: Option<i32>,
    pub execution_start_date_time: Option<f64>,
    pub execution_end_date_time: Option<f64>,
    pub plugins: Option<Vec<PluginRecord>>,
    /// The invocation's `released_offline`: its moves count apart.
    pub released_offline: bool,
}

impl Transition {
    pub fn status_only(
        command_id: &str,
        instance_id: &str,
        from: InvocationDetail,
        to: InvocationDetail,
    ) -> Self {
        Self {
            command_id: command_id.into(),
            instance_id: instance_id.into(),
            from,
            to,
            response_code: None,
            execution_start_date_time: None,
            execution_end_date_time: None,
            plugins: None,
            released_offline: false,
        }
    }

    /// What the command's counters gain (rate control's included).
    pub fn tally_delta(&self) -> Tally {
        let mut t = Tally::default();
        t.record(self.to);
        let delta = Delta::of(self.from, self.to);
        if self.released_offline {
            // Counted acknowledged when it was released.
            t.offline_finished = delta.finished;
        } else {
            t.acknowledged = delta.acknowledged;
        }
        t
    }
}

/// Control-plane work on the work queue (`kind` tells them apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum WorkItem {
    /// Create the command's invocations and send them to their nodes.
    FanOut { command_id: String },
    /// At `at`, an invocation still waiting for its node is `Delivery Timed Out`.
    DeliveryDeadline {
        command_id: String,
        instance_id: String,
        at: f64,
    },
    /// At `at`, an invocation still running (its agent gone for good) is
    /// `Execution Timed Out`.
    ExecutionDeadline {
        command_id: String,
        instance_id: String,
        at: f64,
    },
    /// [`WorkItem::DeliveryDeadline`] for several invocations of one
    /// command that share their deadline (one fan-out round's). Queued
    /// before the round writes anything, it first comes back after
    /// `RESEND_AFTER_SECONDS`: the round's invocations still Pending then are
    /// sent again under their message ids (an agent that has one refuses
    /// the repeat), so a release that died between writing its invocations
    /// and sending them leaves none waiting for a message that never went.
    DeliveryDeadlines {
        command_id: String,
        instance_ids: Vec<String>,
        at: f64,
        /// The early resend is done.
        #[serde(default)]
        resent: bool,
    },
    /// [`WorkItem::ExecutionDeadline`] for several invocations of one
    /// command that share their deadline.
    ExecutionDeadlines {
        command_id: String,
        instance_ids: Vec<String>,
        at: f64,
    },
    /// Send what the command's rate control allows now (and close what it
    /// will never send). Enqueued whenever a report moved its counters.
    Release { command_id: String },
    /// Cancel the command on these nodes (all of them when empty).
    Cancel {
        command_id: String,
        #[serde(default)]
        instance_ids: Vec<String>,
    },
}

/// A page of results and the opaque token for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// The S3 key SSM uses for one stream of one step's output.
pub fn output_key(
    prefix: &str,
    command_id: &str,
    instance_id: &str,
    plugin: &str,
    step: usize,
    stream: &str,
) -> String {
    let plugin: String = plugin.chars().filter(|c| *c != ':').collect();
    let tail = format!("{command_id}/{instance_id}/{plugin}/{step}.{plugin}/{stream}");
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        tail
    } else {
        format!("{prefix}/{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keys_are_laid_out_as_ssm() {
        assert_eq!(
            output_key("logs", "c1", "mi-1", "aws:runShellScript", 0, "stdout"),
            "logs/c1/mi-1/awsrunShellScript/0.awsrunShellScript/stdout"
        );
        assert_eq!(
            output_key("", "c1", "mi-1", "aws:runShellScript", 0, "stderr"),
            "c1/mi-1/awsrunShellScript/0.awsrunShellScript/stderr"
        );
    }

    #[test]
    fn work_items_carry_their_kind() {
        let w = WorkItem::DeliveryDeadline {
            command_id: "c".into(),
            instance_id: "mi-1".into(),
            at: 5.0,
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["kind"], "DeliveryDeadline");
        assert_eq!(serde_json::from_value::<WorkItem>(json).unwrap(), w);
        let c: WorkItem = serde_json::from_str(r#"{"kind":"Cancel","command_id":"c"}"#).unwrap();
        assert_eq!(
            c,
            WorkItem::Cancel {
                command_id: "c".into(),
                instance_ids: vec![]
            }
        );
    }
}
