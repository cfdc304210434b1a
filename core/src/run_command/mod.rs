//! Run Command: SendCommand and its companions on the API, the dispatch of a
//! command to its nodes' queues, and the agents' reports coming back.
//!
//! The operations here are written against the [`ports`]; the functions are
//! thin shells that build [`RunCommandContext`] from the stack's adapters.
//!
//! Choices where SSM is silent or the platform differs:
//! - every invocation is created `Pending` when rate control releases its
//!   target ([`rate_control`]), with its own `DeliveryDeadline` (creation +
//!   TimeoutSeconds); the RunCommand message to the node expires then too;
//! - an `ExecutionDeadline` safety net fires at the delivery deadline plus
//!   the steps' execution timeouts plus [`dispatch::EXECUTION_MARGIN`]: an
//!   invocation still `In Progress` then (its agent gone for good) becomes
//!   `Execution Timed Out`, one still `Cancelling` becomes `Canceled`;
//! - a cancelled `Pending` invocation becomes `Canceled` at once, and its node
//!   also gets a CancelCommand so that a RunCommand still queued is not run;
//! - events are not published by the writers: each follows from its
//!   table's stream (commands' and invocations' records, old and new), so a
//!   crash after a write cannot lose it ([`events::of_command_change`]).

pub mod dispatch;
pub mod events;
pub mod ingest;
pub mod model;
pub mod operations;
pub mod patch_dispatch;
pub mod ports;
pub mod progress;
pub mod rate_control;
pub mod request;
pub mod status;
pub mod view;

#[cfg(test)]
pub(crate) mod memory;
#[cfg(test)]
mod tests;

use crate::arn::ArnScope;
use crate::channel::DigestSigner;
use crate::parameters::ParameterStore;
use crate::targets::{GroupQueries, TargetDirectory};
use ports::{CommandStore, NodeDirectory, NodeMailbox, OutputLocations, WorkQueue};

/// The ports Run Command works through.
#[derive(Clone, Copy)]
pub struct RunCommandContext<'a> {
    pub store: &'a dyn CommandStore,
    pub targets: &'a dyn TargetDirectory,
    /// Resource groups, for `resource-groups:Name` targets.
    pub groups: &'a dyn GroupQueries,
    pub nodes: &'a dyn NodeDirectory,
    pub mailbox: &'a dyn NodeMailbox,
    pub work: &'a dyn WorkQueue,
    pub outputs: &'a dyn OutputLocations,
    pub signer: &'a dyn DigestSigner,
    /// Parameter Store, read for the `{{ssm:…}}` references of a command:
    /// checked when it is sent, resolved when a node's message is built.
    pub parameters: &'a dyn ParameterStore,
    /// The ARNs those parameters are authorized by.
    pub scope: &'a ArnScope,
    /// The account's documents, read by SendCommand (built-ins need none).
    pub documents: &'a dyn crate::documents::store::DocumentStore,
    /// Woken when a command an automation step sent ends.
    pub automation: &'a dyn crate::automation::ports::AutomationQueue,
    /// Patch baselines, read when a patch step is sent to a node.
    pub patch_baselines: &'a dyn crate::patching::ports::PatchBaselineStore,
}
