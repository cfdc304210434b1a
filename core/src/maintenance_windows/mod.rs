//! Maintenance windows: windows on a schedule, the targets and tasks
//! registered with them, and their executions, which run the tasks in
//! priority order between the window's start and its cutoff.
//!
//! [`ops`] serves SSM's operations over a [`context::WindowContext`] and
//! the [`ports::WindowStore`] ([`memory`] is its fake); [`tick::run_due`]
//! starts due windows and advances running executions, through
//! [`crate::schedule::runs::ScheduledRuns`].
//!
//! # Choices where SSM is silent
//!
//! - A window's id follows from its ClientToken (so does a target's or a
//!   task's within its window): a retry finds what the first request
//!   created; the same token with another request is
//!   IdempotentParameterMismatch.
//! - A missed occurrence (the tick ran late) still runs once when the tick
//!   comes before the occurrence's start + Duration; occurrences whose whole
//!   window has passed are not run and leave no execution record (only the
//!   latest runnable occurrence runs).
//! - An occurrence that comes while the window's previous execution is
//!   still running is recorded as an execution with SKIPPED_OVERLAPPING and
//!   runs nothing.
//! - A task not started because the cutoff (start + Duration − Cutoff)
//!   was reached is CANCELLED, its StatusDetails saying so; the execution
//!   then ends TIMED_OUT.
//! - At the window's end (start + Duration), running CANCEL_TASK tasks are
//!   cancelled (CANCELLED); CONTINUE_TASK tasks run on to their end.
//! - A RUN_COMMAND task sends its resolved nodes in commands of at most 50
//!   InstanceIds each (one task invocation per command), with the task's
//!   MaxConcurrency and MaxErrors on each; a task whose targets resolve to
//!   no node succeeds with no invocation.
//! - An AUTOMATION task starts one automation execution with the task's
//!   parameters (no per-target fan-out).
//! - A task runs as the IAM user who registered it or last updated it.
//! - Tasks resolve their targets when they start, not when the execution
//!   starts.

pub mod context;
pub mod memory;
pub mod model;
pub mod ops;
pub mod ports;
pub mod tick;

pub use context::WindowContext;
pub use ports::WindowStore;
pub use tick::{DueReport, run_due};

#[cfg(test)]
mod tests;
