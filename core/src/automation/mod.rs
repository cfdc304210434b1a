//! Automation: runbooks (Automation documents, schemaVersion 0.3) and their
//! executions.
//!
//! [`runbook::Runbook::parse`] checks a runbook as SSM's CreateDocument
//! does; [`variables`] reads and fills its `{{ … }}`; [`branch`] decides
//! aws:branch; [`selector`] takes step outputs from responses;
//! [`duration`] reads aws:sleep's times.
//!
//! Executions: [`execution`] is the stored record, [`engine`] advances it
//! (pure), [`runner`] drives the engine from the automation queue over the
//! [`ports`], [`control`] takes signals and stops; the operations, one file
//! each, are dispatched by [`operations`] over an
//! [`context::AutomationContext`]; [`memory`] holds the fakes of the ports.

pub mod actions;
pub mod branch;
pub mod context;
pub mod control;
mod describe_executions;
mod describe_step_executions;
pub mod duration;
pub mod engine;
pub mod events;
pub mod execution;
pub mod fan_out;
mod get;
pub mod memory;
pub mod operations;
pub mod ports;
pub mod runbook;
pub mod runner;
pub mod selector;
mod signal;
pub mod start;
mod stop;
pub mod variables;
pub mod view;

pub use actions::ActionKind;
pub use runbook::{OnCancel, OnFailure, OutputType, Runbook, RunbookStep, StepOutput};

#[cfg(test)]
mod tests;
