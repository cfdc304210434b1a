//! The `PatchOrchestratorFilter`s of DescribePatchBaselines and
//! DescribePatchGroups, and their NextTokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::SsmError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct FilterInput {
    pub(crate) key: String,
    pub(crate) values: Vec<String>,
}

/// DescribePatchBaselines' and DescribePatchGroups' request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub(crate) struct DescribeInput {
    pub(crate) filters: Vec<FilterInput>,
    pub(crate) max_results: Option<i64>,
    pub(crate) next_token: Option<String>,
}

/// `PatchBaselineMaxResults`: 1 to 100; SSM's page when none is given.
pub(crate) const MAX_RESULTS: i64 = 100;
pub(crate) const DEFAULT_RESULTS: i64 = 50;

/// The filter's values, refused in words when it has none.
pub(crate) fn values(f: &FilterInput) -> Result<&[String], SsmError> {
    if f.values.is_empty() {
        return Err(SsmError::ValidationException(format!(
            "Filter {} has no values; give at least one.",
            f.key
        )));
    }
    Ok(&f.values)
}

pub(crate) fn unknown_key(key: &str, op: &str, keys: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "Filter key {key} is not valid for {op}; use {keys}."
    ))
}

pub(crate) fn encode<T: Serialize>(cursor: &T) -> String {
    B64.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

pub(crate) fn decode<T: DeserializeOwned>(token: &str) -> Result<T, SsmError> {
    B64.decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(crate::paging::invalid_token)
}
