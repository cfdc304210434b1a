//! SendCommand and friends. (Being written.)
use serde_json::Value;
use steward_aws::Stack;
use steward_core::SsmError;

use crate::auth::Principal;

pub async fn handle(_stack: &Stack, _p: &Principal, _op: &str, _body: &Value) -> Option<Result<Value, SsmError>> {
    None
}
