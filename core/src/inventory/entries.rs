//! ListInventoryEntries: one node's entries of one type, filtered, in
//! pages of at most 50.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::InventoryContext;
use super::filters::{Filter, InventoryFilter};
use super::schema::{aws_type, is_custom};
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{self, Cursor};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_id: String,
    type_name: String,
    #[serde(default)]
    filters: Vec<InventoryFilter>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub async fn list_inventory_entries(
    ctx: &InventoryContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: Request = parse(body)?;
    caller.authorize("ssm:ListInventoryEntries", &ctx.node_arn(&req.instance_id))?;
    let limit = paging::max_results(req.max_results, 1, 50, 50)?;
    if aws_type(&req.type_name).is_none() && !is_custom(&req.type_name) {
        return Err(SsmError::InvalidTypeNameException(format!(
            "The parameter type name is not valid: {}.",
            req.type_name
        )));
    }
    let mut filters = Vec::new();
    for f in &req.filters {
        let f = Filter::read(f)?;
        if f.type_name != req.type_name {
            return Err(SsmError::InvalidFilter(format!(
                "The filter name isn't valid. Verify that you entered the correct name and try again. Filters here are on {}'s attributes, not {}'s.",
                req.type_name, f.type_name
            )));
        }
        filters.push(f);
    }
    let start = match req.next_token.as_deref().map(paging::decode).transpose()? {
        None => 0,
        Some(Cursor::Id { after }) => after
            .parse::<usize>()
            .map_err(|_| paging::invalid_token())?,
        Some(_) => return Err(paging::invalid_token()),
    };
    if ctx.nodes.get(&req.instance_id).await?.is_none() {
        return Err(SsmError::InvalidInstanceId(format!(
            "Instance Id {} is not a registered managed node.",
            req.instance_id
        )));
    }
    let Some(stored) = ctx.store.get(&req.instance_id, &req.type_name).await? else {
        return Ok(json!({
            "TypeName": req.type_name, "InstanceId": req.instance_id, "Entries": [],
        }));
    };
    // The position counts entries of the whole content, so a page resumes
    // where the last one stopped whatever the filters kept.
    let mut entries = Vec::new();
    let mut next = None;
    for (i, e) in stored.content.iter().enumerate().skip(start) {
        if entries.len() == limit {
            next = Some(i);
            break;
        }
        if filters.iter().all(|f| f.keep(e)) {
            entries.push(e);
        }
    }
    let mut out = json!({
        "TypeName": stored.type_name,
        "InstanceId": stored.instance_id,
        "SchemaVersion": stored.schema_version,
        "CaptureTime": stored.capture_time,
        "Entries": entries,
    });
    if let Some(i) = next {
        out["NextToken"] = json!(paging::encode(&Cursor::Id {
            after: i.to_string()
        }));
    }
    Ok(out)
}
