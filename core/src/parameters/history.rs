//! GetParameterHistory: the kept versions, oldest first, one page at a time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::ParameterContext;
use super::get::not_found;
use super::requests::HistoryRequest;
use super::views::{history_view, readable_value};
use crate::error::SsmError;
use crate::paging::invalid_token;

/// Where the next page starts: the next version of the named parameter.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    n: String,
    v: u64,
}

fn decode(token: &str, name: &str) -> Result<u64, SsmError> {
    let c: Cursor = B64
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid_token)?;
    if c.n != name {
        return Err(invalid_token());
    }
    Ok(c.v)
}

fn encode(name: &str, v: u64) -> String {
    let c = Cursor {
        n: name.to_string(),
        v,
    };
    B64.encode(serde_json::to_vec(&c).unwrap_or_default())
}

pub async fn get_parameter_history(
    ctx: &ParameterContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req = HistoryRequest::from_json(body)?;
    let name = ctx.scope.resolve_name(&req.name);
    let arn = ctx.scope.parameter_arn(&name);
    ctx.caller.authorize("ssm:GetParameterHistory", &arn)?;
    let head = ctx
        .store
        .find(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let name = head.name().to_string();
    let from = match &req.next_token {
        None => head.oldest_version,
        // Versions dropped since the token was made are simply skipped.
        Some(t) => decode(t, &name)?.max(head.oldest_version),
    };
    let latest = head.version();
    let versions = ctx
        .store
        .versions(&name, from, latest, req.max_results)
        .await?;
    let mut out = Vec::with_capacity(versions.len());
    for v in &versions {
        // The head is the truth for the latest version.
        let v = if v.version == latest {
            &head.current
        } else {
            v
        };
        let value = readable_value(ctx, v, req.with_decryption).await?;
        out.push(history_view(v, &value));
    }
    let mut resp = json!({ "Parameters": out });
    if let Some(last) = versions.last()
        && versions.len() == req.max_results
        && last.version < latest
    {
        resp["NextToken"] = json!(encode(&name, last.version + 1));
    }
    Ok(resp)
}
