//! State Manager: associations. An association names a document (Command
//! or Automation), the nodes it applies to and a schedule; Steward runs it
//! through Run Command or Automation ([`crate::schedule::runs`]) as the
//! user who created it, records each node's outcome and writes the node's
//! `Association` compliance.
//!
//! [`ops`] serves the operations over an [`context::AssociationContext`]
//! and the [`ports::AssociationStore`] ([`memory`] is its fake); [`tick`]
//! starts what is due and follows what runs.
//!
//! # Choices where SSM is silent
//!
//! - An execution is recorded (Pending) before its run starts, and its
//!   command id is its execution id: a tick that runs twice sends nothing
//!   twice. A run refused by Run Command or Automation fails the
//!   execution with the refusal's code as DetailedStatus.
//! - Occurrences missed while no tick ran (the control plane was down)
//!   run once, not once each.
//! - StartAssociationsOnce, and an UpdateAssociation that changes the
//!   document, its version, the parameters, targets or the schedule, run
//!   the association at the next tick (unless ApplyOnlyAtCronInterval).
//! - A node that newly matches an association's targets (registered, or
//!   tagged later) gets an execution of its own, once: an association it
//!   already has a status for is not run again for it.
//! - DeleteAssociation removes the association and its versions; its
//!   executions, their per-node results and the nodes' statuses stay
//!   (readable by the association id) and a command already sent runs on.
//! - UpdateAssociationStatus records the node's status for the
//!   association as given; it starts and stops nothing.
//! - ApplyOnlyAtCronInterval is refused with a rate expression, as SSM's
//!   reference says it "isn't supported for rate expressions".
//! - Automation associations run one automation execution per occurrence;
//!   its outcome is the execution's, with no per-node results.
//! - UpdateAssociation clears the optional settings a request leaves out,
//!   as SSM documents, but keeps Name, Targets (or InstanceId) and
//!   AssociationName; an association made with InstanceId keeps its
//!   document (its Name and InstanceId are what name it).
//! - A command that reached no node ends the execution as the command's
//!   status says, with no counts.
//! - AssociationDoesNotExist, AssociationAlreadyExists,
//!   InvalidAssociationVersion, AssociationVersionLimitExceeded and
//!   AssociationExecutionDoesNotExist come from one function each in
//!   [`context`], so that each code is set in one place.

pub mod context;
pub mod memory;
pub mod model;
pub mod ops;
pub mod ports;
pub mod request;
pub mod tick;

#[cfg(test)]
mod tests;

pub use context::AssociationContext;
pub use ports::AssociationStore;
pub use tick::{DueReport, node_changed, run_due};
