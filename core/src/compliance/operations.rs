//! Compliance's SSM operations, by name.

use serde_json::Value;

use super::context::ComplianceContext;
use crate::access::Authorizer;
use crate::error::SsmError;

/// The operations this area serves.
pub const OPERATIONS: [&str; 4] = [
    "PutComplianceItems",
    "ListComplianceItems",
    "ListComplianceSummaries",
    "ListResourceComplianceSummaries",
];

/// Dispatches an SSM operation name; `None`: not a Compliance operation.
pub async fn handle(
    ctx: &ComplianceContext<'_>,
    caller: &dyn Authorizer,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "PutComplianceItems" => super::put::put_compliance_items(ctx, caller, body).await,
        "ListComplianceItems" => super::list_items::list_compliance_items(ctx, caller, body).await,
        "ListComplianceSummaries" => {
            super::summaries::list_compliance_summaries(ctx, caller, body).await
        }
        "ListResourceComplianceSummaries" => {
            super::summaries::list_resource_compliance_summaries(ctx, caller, body).await
        }
        _ => return None,
    })
}
