//! The ports every Automation operation works through.

use super::ports::{AutomationQueue, ExecutionStore};
use crate::arn::ArnScope;
use crate::documents::store::DocumentStore;
use crate::targets::{GroupQueries, TargetDirectory};

#[derive(Clone, Copy)]
pub struct AutomationContext<'a> {
    pub store: &'a dyn ExecutionStore,
    /// Runbooks are documents: read from the account's documents (and the
    /// built-ins).
    pub documents: &'a dyn DocumentStore,
    pub queue: &'a dyn AutomationQueue,
    /// The fleet, for the Targets of a rate-controlled execution.
    pub targets: &'a dyn TargetDirectory,
    pub groups: &'a dyn GroupQueries,
    pub scope: &'a ArnScope,
    /// Epoch seconds.
    pub now: f64,
}

impl AutomationContext<'_> {
    /// The ARN an execution is authorized by.
    pub fn execution_arn(&self, execution_id: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:automation-execution/{execution_id}",
            self.scope.region, self.scope.account
        )
    }

    /// The ARN a runbook is started by (`ssm:StartAutomationExecution` on
    /// the automation definition, as IAM names it for SSM).
    pub fn definition_arn(&self, document_name: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:automation-definition/{document_name}",
            self.scope.region, self.scope.account
        )
    }
}
