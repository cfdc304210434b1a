//! Refusals of schedule expressions, in SSM's error codes.

use thiserror::Error;

use crate::error::SsmError;

use super::ScheduleUse;

/// Why an expression does not read, before it is known which API refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub String);

/// A refused schedule. The code is SSM's: CreateAssociation and
/// UpdateAssociation answer `InvalidSchedule`, the maintenance window
/// operations `ValidationException`. SSM does not document its message
/// texts for these, so the message names the expression and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("{0}")]
    InvalidSchedule(String),
    #[error("{0}")]
    Validation(String),
}

impl ScheduleError {
    pub(crate) fn refused(use_: ScheduleUse, expression: &str, why: Refusal) -> Self {
        let message = format!("Schedule expression {expression} is invalid: {}.", why.0);
        match use_ {
            ScheduleUse::Association => ScheduleError::InvalidSchedule(message),
            ScheduleUse::MaintenanceWindow => ScheduleError::Validation(message),
        }
    }

    /// SSM's `__type` for this refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::InvalidSchedule(_) => "InvalidSchedule",
            ScheduleError::Validation(_) => "ValidationException",
        }
    }
}

impl From<ScheduleError> for SsmError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::InvalidSchedule(m) => SsmError::InvalidSchedule(m),
            ScheduleError::Validation(m) => SsmError::ValidationException(m),
        }
    }
}
