//! GetInventorySchema: the AWS types the agent gathers and the custom
//! types put so far, with their attributes.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::InventoryContext;
use super::schema::AWS_TYPES;
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{self, Cursor};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    type_name: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    #[serde(default)]
    aggregator: bool,
    #[serde(default)]
    sub_type: bool,
}

fn schema(type_name: &str, version: &str, display: Option<&str>, attributes: &[String]) -> Value {
    let mut v = json!({
        "TypeName": type_name,
        "Version": version,
        "Attributes": attributes
            .iter()
            .map(|a| json!({ "Name": a, "DataType": "string" }))
            .collect::<Vec<_>>(),
    });
    if let Some(d) = display {
        v["DisplayName"] = json!(d);
    }
    v
}

pub async fn get_inventory_schema(
    ctx: &InventoryContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: Request = parse(body)?;
    caller.authorize("ssm:GetInventorySchema", &ctx.node_arn("*"))?;
    let limit = paging::max_results(req.max_results, 50, 200, 200)?;
    // Steward's types have no sub-types; every attribute may be aggregated.
    let _ = (req.aggregator, req.sub_type);
    let mut all: Vec<(String, Value)> = AWS_TYPES
        .iter()
        .map(|t| {
            let attrs: Vec<String> = t.attributes.iter().map(|a| a.to_string()).collect();
            (
                t.name.to_string(),
                schema(t.name, t.version, Some(t.display_name), &attrs),
            )
        })
        .collect();
    for s in ctx.store.schemas().await? {
        all.push((
            s.type_name.clone(),
            schema(&s.type_name, &s.version, None, &s.attributes),
        ));
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(t) = &req.type_name {
        all.retain(|(name, _)| name == t);
        if all.is_empty() {
            return Err(SsmError::InvalidTypeNameException(format!(
                "The parameter type name is not valid: {t}."
            )));
        }
    }
    let after = match req.next_token.as_deref().map(paging::decode).transpose()? {
        None => None,
        Some(Cursor::Id { after }) => Some(after),
        Some(_) => return Err(paging::invalid_token()),
    };
    let mut rest = all
        .into_iter()
        .filter(|(name, _)| after.as_ref().is_none_or(|a| name > a));
    let page: Vec<(String, Value)> = rest.by_ref().take(limit).collect();
    let mut out = json!({ "Schemas": page.iter().map(|(_, v)| v).collect::<Vec<_>>() });
    if rest.next().is_some()
        && let Some((last, _)) = page.last()
    {
        out["NextToken"] = json!(paging::encode(&Cursor::Id {
            after: last.clone()
        }));
    }
    Ok(out)
}
