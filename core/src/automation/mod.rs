//! Automation: runbooks (Automation documents, schemaVersion 0.3) and their
//! executions.
//!
//! [`runbook::Runbook::parse`] checks a runbook as SSM's CreateDocument
//! does; [`variables`] reads and fills its `{{ … }}`; [`branch`] decides
//! aws:branch; [`selector`] takes step outputs from responses;
//! [`duration`] reads aws:sleep's times.

pub mod actions;
pub mod branch;
pub mod control;
pub mod duration;
pub mod engine;
pub mod execution;
pub mod runbook;
pub mod selector;
pub mod variables;

pub use actions::ActionKind;
pub use runbook::{OnCancel, OnFailure, OutputType, Runbook, RunbookStep, StepOutput};
