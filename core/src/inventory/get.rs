//! GetInventory: the fleet's nodes with their data, filtered; or, with
//! Aggregators, counts of nodes by an attribute's values (by application
//! name, and version within it).
//!
//! Nodes are read from the store's index of the nodes holding a type: the
//! first filter's type when it needs one present, else
//! `AWS:InstanceInformation` (every node that gathered has it). A page
//! examines at most [`SCAN_PER_PAGE`] nodes, so it may hold fewer than
//! MaxResults entities and still have a NextToken. Aggregation reads every
//! node holding the type: its cost grows with the fleet, as it must.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::context::InventoryContext;
use super::filters::{Filter, FilterType, InventoryFilter, split_key};
use super::model::StoredType;
use super::schema::{INSTANCE_INFORMATION, aws_type, is_custom};
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{self, Cursor};

/// Nodes one page reads at most.
pub const SCAN_PER_PAGE: usize = 500;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    #[serde(default)]
    filters: Vec<InventoryFilter>,
    #[serde(default)]
    aggregators: Vec<Aggregator>,
    #[serde(default)]
    result_attributes: Vec<ResultAttribute>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Aggregator {
    expression: Option<String>,
    #[serde(default)]
    aggregators: Vec<Aggregator>,
    #[serde(default)]
    groups: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResultAttribute {
    type_name: String,
}

fn invalid_aggregator(why: &str) -> SsmError {
    SsmError::InvalidAggregatorException(format!(
        "The specified aggregator isn't valid for inventory groups. Verify that the aggregator uses a valid inventory type such as AWS:Application or AWS:InstanceInformation. {why}"
    ))
}

/// Whether `type_name` is a type inventory knows (an AWS type or a custom
/// type put before).
async fn known_type(ctx: &InventoryContext<'_>, type_name: &str) -> Result<bool, SsmError> {
    if aws_type(type_name).is_some() {
        return Ok(true);
    }
    Ok(is_custom(type_name)
        && ctx
            .store
            .schemas()
            .await?
            .iter()
            .any(|s| s.type_name == type_name))
}

fn data(t: &StoredType) -> Value {
    json!({
        "TypeName": t.type_name,
        "SchemaVersion": t.schema_version,
        "CaptureTime": t.capture_time,
        "ContentHash": t.content_hash,
        "Content": t.content,
    })
}

/// Whether a node with `types` passes every filter.
fn passes(filters: &[Filter], types: &[StoredType]) -> bool {
    filters.iter().all(|f| {
        let entries = types
            .iter()
            .find(|t| t.type_name == f.type_name)
            .map(|t| t.content.as_slice())
            .unwrap_or(&[]);
        f.matches(entries)
    })
}

pub async fn get_inventory(
    ctx: &InventoryContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: Request = parse(body)?;
    caller.authorize("ssm:GetInventory", &ctx.node_arn("*"))?;
    let limit = paging::max_results(req.max_results, 1, 50, 50)?;
    let mut filters = Vec::new();
    for f in &req.filters {
        let f = Filter::read(f)?;
        if !known_type(ctx, &f.type_name).await? {
            return Err(SsmError::InvalidTypeNameException(format!(
                "The parameter type name is not valid: {}.",
                f.type_name
            )));
        }
        filters.push(f);
    }
    let mut wanted = Vec::new();
    for r in &req.result_attributes {
        if !known_type(ctx, &r.type_name).await? {
            return Err(SsmError::InvalidResultAttributeException(format!(
                "The specified inventory item result attribute isn't valid: {} is not an inventory type.",
                r.type_name
            )));
        }
        wanted.push(r.type_name.clone());
    }
    if wanted.is_empty() {
        wanted.push(INSTANCE_INFORMATION.to_string());
    }
    // The nodes to examine: those holding the first type a filter needs.
    let source = filters
        .iter()
        .find(|f| f.kind != FilterType::NotEqual)
        .map(|f| f.type_name.clone())
        .unwrap_or_else(|| INSTANCE_INFORMATION.to_string());

    if !req.aggregators.is_empty() {
        if req.next_token.is_some() {
            return Err(paging::invalid_token());
        }
        return aggregate(ctx, &req.aggregators, &filters).await;
    }

    let mut after = match req.next_token.as_deref().map(paging::decode).transpose()? {
        None => None,
        Some(Cursor::Id { after }) => Some(after),
        Some(_) => return Err(paging::invalid_token()),
    };
    let mut entities = Vec::new();
    let mut scanned = 0;
    let mut more = true;
    while more && entities.len() < limit && scanned < SCAN_PER_PAGE {
        let (ids, m) = ctx
            .store
            .holders(&source, after.as_deref(), limit - entities.len())
            .await?;
        more = m;
        for id in ids {
            scanned += 1;
            let types = ctx.store.instance(&id).await?;
            if passes(&filters, &types) {
                let mut d = Map::new();
                for t in types.iter().filter(|t| wanted.contains(&t.type_name)) {
                    d.insert(t.type_name.clone(), data(t));
                }
                entities.push(json!({ "Id": id, "Data": d }));
            }
            after = Some(id);
        }
    }
    let mut out = json!({ "Entities": entities });
    if more && let Some(a) = after {
        out["NextToken"] = json!(paging::encode(&Cursor::Id { after: a }));
    }
    Ok(out)
}

/// The attribute chain of an aggregator: `Name`, then nested `Version`.
fn chain(aggs: &[Aggregator]) -> Result<(String, Vec<String>), SsmError> {
    if aggs.len() != 1 {
        return Err(invalid_aggregator(
            "Steward aggregates by one expression at a time (nested Aggregators refine it).",
        ));
    }
    let mut type_name = None::<String>;
    let mut attributes = Vec::new();
    let mut level = aggs;
    while let Some(a) = level.first() {
        if level.len() > 1 {
            return Err(invalid_aggregator("Give one nested aggregator per level."));
        }
        if !a.groups.is_empty() {
            return Err(invalid_aggregator("Groups are not supported by Steward."));
        }
        let Some((t, attr)) = a.expression.as_deref().and_then(split_key) else {
            return Err(invalid_aggregator(
                "An Expression names a type and an attribute, as AWS:Application.Name.",
            ));
        };
        match &type_name {
            Some(known) if known != t => {
                return Err(invalid_aggregator(
                    "Nested aggregators must use the same type.",
                ));
            }
            _ => type_name = Some(t.to_string()),
        }
        attributes.push(attr.to_string());
        level = &a.aggregators;
    }
    let t = type_name.ok_or_else(|| invalid_aggregator("No Expression given."))?;
    if let Some(aws) = aws_type(&t)
        && let Some(bad) = attributes
            .iter()
            .find(|a| !aws.attributes.contains(&a.as_str()))
    {
        return Err(invalid_aggregator(&format!("{t} has no attribute {bad}.")));
    }
    Ok((t, attributes))
}

/// Counts nodes by the values of the chain's attributes.
async fn aggregate(
    ctx: &InventoryContext<'_>,
    aggs: &[Aggregator],
    filters: &[Filter],
) -> Result<Value, SsmError> {
    let (type_name, attributes) = chain(aggs)?;
    if !known_type(ctx, &type_name).await? {
        return Err(invalid_aggregator(&format!(
            "{type_name} is not an inventory type."
        )));
    }
    let mut counts: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    let mut schema_version = String::new();
    let mut after: Option<String> = None;
    loop {
        let (ids, more) = ctx.store.holders(&type_name, after.as_deref(), 100).await?;
        for id in &ids {
            let types = ctx.store.instance(id).await?;
            if !passes(filters, &types) {
                continue;
            }
            let Some(t) = types.iter().find(|t| t.type_name == type_name) else {
                continue;
            };
            schema_version = t.schema_version.clone();
            // A node counts once per distinct value.
            let mut seen: Vec<Vec<String>> = t
                .content
                .iter()
                .filter_map(|e| attributes.iter().map(|a| e.get(a).cloned()).collect())
                .collect();
            seen.sort();
            seen.dedup();
            for key in seen {
                *counts.entry(key).or_default() += 1;
            }
        }
        after = ids.last().cloned();
        if !more || after.is_none() {
            break;
        }
    }
    let content: Vec<Value> = counts
        .into_iter()
        .map(|(values, n)| {
            let mut m = Map::new();
            for (a, v) in attributes.iter().zip(values) {
                m.insert(a.clone(), json!(v));
            }
            m.insert("Count".into(), json!(n.to_string()));
            Value::Object(m)
        })
        .collect();
    let mut d = Map::new();
    d.insert(
        type_name.clone(),
        json!({ "TypeName": type_name, "SchemaVersion": schema_version, "Content": content }),
    );
    Ok(json!({ "Entities": [{ "Data": d }] }))
}
