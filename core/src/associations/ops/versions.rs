//! ListAssociationVersions: every version's settings, oldest first.

use serde::Deserialize;
use serde_json::{Value, json};

use super::required;
use crate::associations::context::{AssociationContext, check_uuid, does_not_exist};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{max_results, page_of};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    association_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

pub(crate) async fn list_versions(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: Input = parse(body)?;
    let id = required(&i.association_id, "associationId")?;
    check_uuid(id, "associationId")?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    ctx.caller
        .authorize("ssm:ListAssociationVersions", &ctx.association_arn(id))?;
    if ctx.store.get(id).await?.is_none() {
        return Err(does_not_exist());
    }
    let mut versions = ctx.store.versions(id).await?;
    versions.sort_by_key(|a| a.association_version);
    let (page, next) = page_of(versions, limit, i.next_token.as_deref())?;
    let mut out = json!({
        "AssociationVersions": page.iter().map(|a| a.version_info()).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
