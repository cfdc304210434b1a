//! The listings' `NextToken`s: where the last page ended, as a small JSON
//! cursor, opaque to clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::error::SsmError;
use crate::paging::invalid_token;

/// After (compliance type, and a resource id or item id within it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct After {
    #[serde(rename = "t")]
    pub compliance_type: String,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

pub(super) fn encode(a: &After) -> String {
    B64.encode(serde_json::to_vec(a).unwrap_or_default())
}

pub(super) fn decode(token: Option<&str>) -> Result<Option<After>, SsmError> {
    token
        .map(|t| {
            B64.decode(t)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(invalid_token)
        })
        .transpose()
}
