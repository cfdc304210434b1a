//! ListComplianceItems: one resource's items of every type (or of those the
//! filters keep), by compliance type and item Id, paged.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::ComplianceContext;
use super::filters::{self, Field, Filter, FilterInput};
use super::model::{ComplianceRecord, StoredItem, item_to_wire};
use super::put::{check_resource, unknown_resource};
use super::token::{self, After};
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::max_results;

const KEYS: &[&str] = &[
    "ComplianceType",
    "Id",
    "Title",
    "Status",
    "Severity",
    "ExecutionId",
    "ExecutionType",
    "ExecutionTime",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListInput {
    filters: Vec<FilterInput>,
    resource_ids: Option<Vec<String>>,
    resource_types: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

fn passes(f: &Filter, r: &ComplianceRecord, i: &StoredItem) -> bool {
    f.passes(match f.key {
        "ComplianceType" => Field::Text(&r.compliance_type),
        "Id" => Field::Text(&i.entry.id),
        "Title" => Field::Text(&i.entry.title),
        "Status" => Field::Text(i.entry.status.as_str()),
        "Severity" => Field::Text(i.entry.severity.as_str()),
        "ExecutionId" => Field::Text(i.execution.execution_id.as_deref().unwrap_or_default()),
        "ExecutionType" => Field::Text(i.execution.execution_type.as_deref().unwrap_or_default()),
        _ => Field::Time(i.execution.execution_time),
    })
}

pub(super) async fn list_compliance_items(
    ctx: &ComplianceContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: ListInput = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let filters = filters::parse(i.filters, KEYS)?;
    // SSM lists one resource per call.
    let resource_id = match i.resource_ids.as_deref() {
        Some([one]) => one.clone(),
        Some(_) => {
            return Err(SsmError::InvalidResourceId(
                "ListComplianceItems takes exactly one resource ID in ResourceIds.".into(),
            ));
        }
        None => {
            return Err(SsmError::InvalidResourceId(
                "ResourceIds is required: give the one managed node whose compliance items to list."
                    .into(),
            ));
        }
    };
    for t in i.resource_types.unwrap_or_default() {
        check_resource(&t, &resource_id)?;
    }
    if !crate::ids::is_instance_id(&resource_id) {
        return Err(unknown_resource(&resource_id));
    }
    caller.authorize("ssm:ListComplianceItems", &ctx.resource_arn(&resource_id))?;
    let after = token::decode(i.next_token.as_deref())?;
    let mut records = ctx.store.resource(&resource_id).await?;
    records.sort_by(|a, b| a.compliance_type.cmp(&b.compliance_type));
    let mut listed = records
        .iter()
        .flat_map(|r| r.items.iter().map(move |i| (r, i)))
        .filter(|(r, i)| filters.iter().all(|f| passes(f, r, i)))
        .filter(|(r, i)| match &after {
            None => true,
            Some(a) => {
                (r.compliance_type.as_str(), i.entry.id.as_str())
                    > (
                        a.compliance_type.as_str(),
                        a.key.as_deref().unwrap_or_default(),
                    )
            }
        });
    let page: Vec<(&ComplianceRecord, &StoredItem)> = listed.by_ref().take(limit).collect();
    let mut answer = json!({
        "ComplianceItems": page.iter().map(|(r, i)| item_to_wire(r, i)).collect::<Vec<_>>(),
    });
    if listed.next().is_some()
        && let Some((r, i)) = page.last()
    {
        answer["NextToken"] = json!(token::encode(&After {
            compliance_type: r.compliance_type.clone(),
            key: Some(i.entry.id.clone()),
        }));
    }
    Ok(answer)
}
