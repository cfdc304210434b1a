//! ListAssociations with SSM's AssociationFilterList, paged.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::associations::context::AssociationContext;
use crate::associations::model::Association;
use crate::clock::parse_filter_time;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{max_results, page_of};

/// SSM's AssociationFilter spells its members in lower case.
#[derive(Deserialize)]
struct Filter {
    #[serde(alias = "Key")]
    key: String,
    #[serde(alias = "Value")]
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    association_filter_list: Option<Vec<Filter>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

const KEYS: [&str; 8] = [
    "InstanceId",
    "Name",
    "AssociationId",
    "AssociationStatusName",
    "LastExecutedBefore",
    "LastExecutedAfter",
    "AssociationName",
    "ResourceGroupName",
];

fn keep(a: &Association, f: &Filter) -> Result<bool, SsmError> {
    let v = f.value.as_str();
    Ok(match f.key.as_str() {
        "InstanceId" => {
            a.instance_id.as_deref() == Some(v)
                || a.targets
                    .iter()
                    .any(|t| t.key == "InstanceIds" && t.values.iter().any(|x| x == v))
        }
        "Name" => a.name == v,
        "AssociationId" => a.association_id == v,
        "AssociationStatusName" => a.overview.status == v,
        "LastExecutedBefore" => {
            let at = parse_filter_time(v)?;
            a.last_execution_date.is_some_and(|d| d < at)
        }
        "LastExecutedAfter" => {
            let at = parse_filter_time(v)?;
            a.last_execution_date.is_some_and(|d| d > at)
        }
        "AssociationName" => a.association_name.as_deref() == Some(v),
        "ResourceGroupName" => a
            .targets
            .iter()
            .any(|t| t.key == "resource-groups:Name" && t.values.iter().any(|x| x == v)),
        _ => false,
    })
}

pub(crate) async fn list(ctx: &AssociationContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: Input = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let filters = i.association_filter_list.unwrap_or_default();
    for f in &filters {
        if !KEYS.contains(&f.key.as_str()) {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{}' at 'associationFilterList.member.key' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                f.key,
                KEYS.join(", ")
            )));
        }
        if f.value.is_empty() {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value '' at 'associationFilterList.member.value' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
    }
    ctx.caller
        .authorize("ssm:ListAssociations", &ctx.association_arn("*"))?;
    let mut kept = Vec::new();
    for a in ctx.store.list().await? {
        let mut all = true;
        for f in &filters {
            if !keep(&a, f)? {
                all = false;
                break;
            }
        }
        if all {
            kept.push(a);
        }
    }
    kept.sort_by(|x, y| {
        x.date
            .total_cmp(&y.date)
            .then_with(|| x.association_id.cmp(&y.association_id))
    });
    let (page, next) = page_of(kept, limit, i.next_token.as_deref())?;
    let mut out = json!({ "Associations": page.iter().map(|a| a.summary()).collect::<Vec<_>>() });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
