//! Invocation updates from agents. (Being written.)
use steward_aws::Stack;
use steward_core::SsmError;
use steward_core::channel::InvocationUpdate;

pub async fn apply(_stack: &Stack, _node_id: &str, _update: InvocationUpdate) -> Result<(), SsmError> {
    Err(SsmError::internal())
}
