//! DeleteInventory: a custom type's data on every node, and with
//! SchemaDeleteOption its schema (DeleteSchema) or its current version
//! (DisableSchema: later puts at or below it are ignored). DryRun counts
//! and deletes nothing. Done before answering, so RemainingCount is 0 (SSM
//! deletes in the background); a repeat finds nothing left.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::InventoryContext;
use super::schema::is_custom;
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    type_name: String,
    schema_delete_option: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    client_token: Option<String>,
}

pub async fn delete_inventory(
    ctx: &InventoryContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: Request = parse(body)?;
    caller.authorize("ssm:DeleteInventory", &ctx.node_arn("*"))?;
    if !is_custom(&req.type_name) {
        return Err(SsmError::InvalidTypeNameException(format!(
            "The parameter type name is not valid: {}. Only Custom: types may be deleted.",
            req.type_name
        )));
    }
    let option = req.schema_delete_option.as_deref();
    if !matches!(option, None | Some("DisableSchema") | Some("DeleteSchema")) {
        return Err(SsmError::InvalidOptionException(
            "The delete inventory option specified is not valid. Verify the option and try again."
                .into(),
        ));
    }
    let schemas = ctx.store.schemas().await?;
    let Some(schema) = schemas.into_iter().find(|s| s.type_name == req.type_name) else {
        return Err(SsmError::InvalidTypeNameException(format!(
            "The parameter type name is not valid: {} has never been put.",
            req.type_name
        )));
    };
    // Every node holding the type, and how many per schema version.
    let mut holders = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (ids, more) = ctx
            .store
            .holders(&req.type_name, after.as_deref(), 100)
            .await?;
        after = ids.last().cloned();
        holders.extend(ids);
        if !more || after.is_none() {
            break;
        }
    }
    let mut by_version: BTreeMap<String, u64> = BTreeMap::new();
    for id in &holders {
        if let Some(t) = ctx.store.get(id, &req.type_name).await? {
            *by_version.entry(t.schema_version).or_default() += 1;
        }
    }
    if !req.dry_run {
        for id in &holders {
            ctx.store.delete(id, &req.type_name).await?;
        }
        match option {
            Some("DeleteSchema") => ctx.store.delete_schema(&req.type_name).await?,
            Some("DisableSchema") => {
                let mut s = schema.clone();
                s.disabled_version = Some(s.version.clone());
                ctx.store.put_schema(&s).await?;
            }
            _ => {}
        }
        tracing::info!(type_name = %req.type_name, nodes = holders.len(), option = ?option, "inventory deleted");
    }
    let total: u64 = by_version.values().sum();
    let items: Vec<Value> = by_version
        .iter()
        .map(|(v, n)| json!({ "Version": v, "Count": n, "RemainingCount": if req.dry_run { *n } else { 0 } }))
        .collect();
    // The same request (ClientToken) names the same deletion.
    let deletion_id = match &req.client_token {
        Some(t) => uuid_from(&format!("{}\n{t}", req.type_name)),
        None => uuid::Uuid::new_v4().to_string(),
    };
    Ok(json!({
        "DeletionId": deletion_id,
        "TypeName": req.type_name,
        "DeletionSummary": {
            "TotalCount": total,
            "RemainingCount": if req.dry_run { total } else { 0 },
            "SummaryItems": items,
        },
    }))
}

/// A UUID-shaped id derived from `s`.
fn uuid_from(s: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}
