//! CreateActivation, DescribeActivations and DeleteActivation.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids;

use super::MAX_ROUNDS;
use crate::fleet::FleetContext;
use crate::fleet::activation::{Activation, CreateActivationRequest};
use crate::paging::{self, Cursor};

pub async fn create_activation(
    ctx: &FleetContext<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: CreateActivationRequest = parse(body)?;
    let (activation, code) = Activation::create(&req, now)?;
    ctx.activations.create(&activation).await?;
    Ok(json!({ "ActivationId": activation.activation_id, "ActivationCode": code }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeActivationsRequest {
    #[serde(default)]
    filters: Vec<ActivationFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ActivationFilter {
    filter_key: String,
    #[serde(default)]
    filter_values: Vec<String>,
}

pub async fn describe_activations(
    ctx: &FleetContext<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: DescribeActivationsRequest = parse(body)?;
    let max = paging::max_results(req.max_results, 1, 50, 50)?;
    let mut ids: Option<BTreeSet<String>> = None;
    let mut names: Option<BTreeSet<String>> = None;
    let mut roles: Option<BTreeSet<String>> = None;
    for f in &req.filters {
        let values: BTreeSet<String> = f.filter_values.iter().cloned().collect();
        let slot = match f.filter_key.as_str() {
            "ActivationIds" => &mut ids,
            "DefaultInstanceName" => &mut names,
            "IamRole" => &mut roles,
            other => {
                return Err(SsmError::InvalidFilter(format!(
                    "Filter key {other} is not supported; use ActivationIds, DefaultInstanceName or IamRole."
                )));
            }
        };
        *slot = Some(match slot.take() {
            None => values,
            Some(prev) => prev.intersection(&values).cloned().collect(),
        });
    }
    let keep = |a: &Activation| {
        names
            .as_ref()
            .is_none_or(|n| n.contains(&a.default_instance_name))
            && roles.as_ref().is_none_or(|r| r.contains(&a.iam_role))
    };
    let cursor = req.next_token.as_deref().map(paging::decode).transpose()?;
    let mut out = Vec::new();
    let mut next = None;
    if let Some(ids) = ids {
        let after = match cursor {
            None => None,
            Some(Cursor::Id { after }) => Some(after),
            Some(_) => return Err(paging::invalid_token()),
        };
        // A value that is no activation id names none: it is not looked up.
        let pending: Vec<&String> = ids
            .iter()
            .filter(|id| ids::is_activation_id(id))
            .filter(|id| after.as_ref().is_none_or(|a| *id > a))
            .collect();
        for (i, id) in pending.iter().enumerate() {
            if out.len() == max {
                next = Some(Cursor::Id {
                    after: pending[i - 1].to_string(),
                });
                break;
            }
            if let Some(a) = ctx.activations.get(id).await?
                && keep(&a)
            {
                out.push(a.view(now));
            }
        }
    } else {
        let mut after = match cursor {
            None => None,
            Some(Cursor::Activation { created, id }) => Some((created, id)),
            Some(_) => return Err(paging::invalid_token()),
        };
        for _ in 0..MAX_ROUNDS {
            let (page, more) = ctx.activations.list(after.clone(), max - out.len()).await?;
            if let Some(last) = page.last() {
                after = Some((last.created_date, last.activation_id.clone()));
            }
            out.extend(page.iter().filter(|a| keep(a)).map(|a| a.view(now)));
            if !more {
                after = None;
                break;
            }
            if out.len() >= max {
                break;
            }
        }
        next = after.map(|(created, id)| Cursor::Activation { created, id });
    }
    let mut resp = json!({ "ActivationList": out });
    if let Some(c) = next {
        resp["NextToken"] = json!(paging::encode(&c));
    }
    Ok(resp)
}

pub async fn delete_activation(ctx: &FleetContext<'_>, body: &Value) -> Result<Value, SsmError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Req {
        activation_id: String,
    }
    let req: Req = parse(body)?;
    if !ctx.activations.delete(&req.activation_id).await? {
        return Err(SsmError::InvalidActivationId(format!(
            "Activation ID {} is not valid. Verify the ID with describe-activations and try again.",
            req.activation_id
        )));
    }
    Ok(json!({}))
}
