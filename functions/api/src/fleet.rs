//! Activations, registration, node information, tags. (Being written.)
use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;

use crate::auth::Principal;

pub async fn handle(_stack: &Stack, _p: &Principal, _op: &str, _body: &Value) -> Option<Result<Value, SsmError>> {
    None
}

pub async fn handle_agent(_stack: &Stack, _op: &str, _body: &Value) -> Result<Value, SsmError> {
    Err(SsmError::InvalidAction("not yet".into()))
}
