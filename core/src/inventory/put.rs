//! PutInventory, and [`put_items`]: the one write of inventory, shared by
//! the operation and by ingest (the agent's `Uplink::Inventory` reports).
//! It checks what SSM checks, then keeps each type by a conditional write
//! that skips an unchanged content hash, so a repeated report, or a gather
//! that found nothing new, changes nothing.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::InventoryContext;
use super::model::{CustomSchema, InventoryItem, StoredType, content_hash, version_key};
use super::schema::{aws_type, is_custom};
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;

/// Items (types) one put may carry (SSM's model).
pub const MAX_ITEMS: usize = 30;
/// Entries one type may hold (SSM's model).
pub const MAX_ENTRIES: usize = 10_000;
/// Attributes one entry may hold (SSM's model).
pub const MAX_ATTRIBUTES: usize = 50;
/// Custom types an account may have (SSM's quota).
pub const MAX_CUSTOM_TYPES: usize = 20;
/// A custom type's data, as JSON (SSM's quota: 200 KB).
pub const MAX_CUSTOM_TYPE_BYTES: usize = 200 * 1024;
/// Any type's data, as JSON: what one put may carry. The table keeps it
/// compressed ([`super::pack`]), in an item of at most 400 KB; content that
/// does not compress that far is refused by the store with
/// ItemSizeLimitExceededException.
pub const MAX_TYPE_BYTES: usize = MAX_PUT_BYTES;
/// All the data of one put, as JSON (SSM's quota: 1 MB per call).
pub const MAX_PUT_BYTES: usize = 1024 * 1024;

/// What a put did, type by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Types whose data was written.
    pub written: Vec<String>,
    /// Types whose content hash was already the stored one (or whose
    /// stored capture is later).
    pub unchanged: Vec<String>,
    /// Types at or below a version DeleteInventory disabled.
    pub ignored: Vec<String>,
}

fn invalid_content(why: String) -> SsmError {
    SsmError::InvalidItemContentException(why)
}

fn is_capture_time(s: &str) -> bool {
    // SSM's pattern: 20YY-MM-DDTHH:MM:SSZ.
    let b = s.as_bytes();
    b.len() == 20
        && s.starts_with("20")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && [2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
}

fn is_schema_version(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| (1..=6).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// SSM's checks of one item, those of its model included: ingest's items
/// do not pass the API's model check.
fn check_item(item: &InventoryItem) -> Result<(), SsmError> {
    let name = &item.type_name;
    let well_formed = (1..=100).contains(&name.chars().count())
        && (name.starts_with("AWS:") || name.starts_with("Custom:"))
        && name.len() > name.find(':').map_or(0, |i| i + 1)
        && !name.chars().any(char::is_whitespace);
    let known = !name.starts_with("AWS:") || aws_type(name).is_some();
    if !well_formed || !known {
        return Err(SsmError::InvalidTypeNameException(format!(
            "The parameter type name is not valid: {name}. Use one of the AWS types GetInventorySchema lists, or a Custom: type."
        )));
    }
    if !is_schema_version(&item.schema_version) {
        return Err(SsmError::UnsupportedInventorySchemaVersionException(
            format!(
                "Schema version {} of {name} is not valid: write it as major.minor, for example 1.0.",
                item.schema_version
            ),
        ));
    }
    if let Some(t) = aws_type(name)
        && t.version != item.schema_version
    {
        return Err(SsmError::UnsupportedInventorySchemaVersionException(
            "Inventory item type schema version has to match supported versions in the service. Check output of GetInventorySchema to see the available schema version for each type.".into(),
        ));
    }
    if !is_capture_time(&item.capture_time) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{}' at 'items.member.captureTime' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(20)[0-9][0-9]-(0[1-9]|1[012])-([12][0-9]|3[01]|0[1-9])(T)(2[0-3]|[0-1][0-9])(:[0-5][0-9])(:[0-5][0-9])(Z)$",
            item.capture_time
        )));
    }
    if item.content_hash.as_ref().is_some_and(|h| h.len() > 256) {
        return Err(SsmError::ValidationException(
            "1 validation error detected: Value at 'items.member.contentHash' failed to satisfy constraint: Member must have length less than or equal to 256".into(),
        ));
    }
    if !item.context.is_empty() {
        return Err(SsmError::UnsupportedInventoryItemContextException(
            "The Context attribute that you specified for the InventoryItem isn't allowed for this inventory type. You can only use the Context attribute with inventory types like AWS:ComplianceItem.".into(),
        ));
    }
    let Some(content) = &item.content else {
        return Ok(());
    };
    if content.len() > MAX_ENTRIES {
        return Err(invalid_content(format!(
            "{name} has {} entries; a type holds at most {MAX_ENTRIES}.",
            content.len()
        )));
    }
    let allowed = aws_type(name).map(|t| t.attributes);
    for (n, entry) in content.iter().enumerate() {
        if entry.len() > MAX_ATTRIBUTES {
            return Err(invalid_content(format!(
                "Entry {} of {name} has {} attributes; an entry holds at most {MAX_ATTRIBUTES}.",
                n + 1,
                entry.len()
            )));
        }
        for (k, v) in entry {
            if !(1..=64).contains(&k.chars().count()) || v.chars().count() > 4096 {
                return Err(invalid_content(format!(
                    "Entry {} of {name}: attribute names are 1 to 64 characters and values at most 4096.",
                    n + 1
                )));
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&k.as_str())
            {
                return Err(invalid_content(format!(
                    "{name} has no attribute {k}; its attributes are {}.",
                    allowed.join(", ")
                )));
            }
        }
    }
    let bytes = serde_json::to_vec(content).map(|b| b.len()).unwrap_or(0);
    let limit = if is_custom(name) {
        MAX_CUSTOM_TYPE_BYTES
    } else {
        MAX_TYPE_BYTES
    };
    if bytes > limit {
        return Err(SsmError::ItemSizeLimitExceededException(format!(
            "The inventory item size has exceeded the size limit. {name} is {bytes} bytes as JSON; at most {limit} are kept."
        )));
    }
    Ok(())
}

/// The one write of inventory: `items` of node `instance_id`, checked
/// whole before anything is written.
pub async fn put_items(
    ctx: &InventoryContext<'_>,
    instance_id: &str,
    items: &[InventoryItem],
) -> Result<PutOutcome, SsmError> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'items' failed to satisfy constraint: Member must have length between 1 and {MAX_ITEMS}"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0usize;
    for item in items {
        check_item(item)?;
        if !seen.insert(item.type_name.as_str()) {
            return Err(invalid_content(format!(
                "{} is given twice; put each type once.",
                item.type_name
            )));
        }
        total += item
            .content
            .as_ref()
            .and_then(|c| serde_json::to_vec(c).ok())
            .map_or(0, |b| b.len());
    }
    if total > MAX_PUT_BYTES {
        return Err(SsmError::TotalSizeLimitExceededException(
            "The size of inventory data has exceeded the total size limit for the resource.".into(),
        ));
    }
    if ctx.nodes.get(instance_id).await?.is_none() {
        return Err(SsmError::InvalidInstanceId(format!(
            "Instance Id {instance_id} is not a registered managed node."
        )));
    }
    let schemas = ctx.store.schemas().await?;
    let new_custom: BTreeSet<&str> = items
        .iter()
        .map(|i| i.type_name.as_str())
        .filter(|t| is_custom(t) && !schemas.iter().any(|s| s.type_name == *t))
        .collect();
    if schemas.len() + new_custom.len() > MAX_CUSTOM_TYPES {
        return Err(SsmError::CustomSchemaCountLimitExceededException(
            "You have exceeded the limit for custom schemas. Delete one or more custom schemas and try again.".into(),
        ));
    }
    // Hash-only items are settled before any write: a mismatch refuses the
    // whole put, as SSM does, so the caller resends with content.
    for item in items.iter().filter(|i| i.content.is_none()) {
        let stored = ctx.store.get(instance_id, &item.type_name).await?;
        let same =
            matches!((&stored, &item.content_hash), (Some(s), Some(h)) if &s.content_hash == h);
        if !same && item.content_hash.is_some() {
            return Err(SsmError::ItemContentMismatchException(format!(
                "The inventory item has invalid content: the ContentHash of {} is not that of its stored data. Send it with its Content.",
                item.type_name
            )));
        }
    }

    let mut outcome = PutOutcome::default();
    for item in items {
        let schema = schemas.iter().find(|s| s.type_name == item.type_name);
        if let Some(disabled) = schema.and_then(|s| s.disabled_version.as_deref())
            && version_key(&item.schema_version) <= version_key(disabled)
        {
            outcome.ignored.push(item.type_name.clone());
            continue;
        }
        let content = match &item.content {
            Some(c) => c.clone(),
            None if item.content_hash.is_some() => {
                // Its hash is the stored one's: nothing to write.
                outcome.unchanged.push(item.type_name.clone());
                continue;
            }
            None => Vec::new(),
        };
        let hash = item
            .content_hash
            .clone()
            .unwrap_or_else(|| content_hash(&content));
        if is_custom(&item.type_name) {
            keep_schema(ctx, schema, item, &content).await?;
        }
        let stored = StoredType {
            instance_id: instance_id.to_string(),
            type_name: item.type_name.clone(),
            schema_version: item.schema_version.clone(),
            capture_time: item.capture_time.clone(),
            content_hash: hash,
            content,
        };
        if ctx.store.put_if_changed(&stored).await? {
            outcome.written.push(item.type_name.clone());
        } else {
            outcome.unchanged.push(item.type_name.clone());
        }
    }
    Ok(outcome)
}

/// Records a custom type's schema: its newest version and every attribute
/// seen (written only when that changes).
async fn keep_schema(
    ctx: &InventoryContext<'_>,
    known: Option<&CustomSchema>,
    item: &InventoryItem,
    content: &[super::model::Entry],
) -> Result<(), SsmError> {
    let mut attributes: BTreeSet<String> = known
        .map(|s| s.attributes.iter().cloned().collect())
        .unwrap_or_default();
    for entry in content {
        attributes.extend(entry.keys().cloned());
    }
    let version = match known {
        Some(s) if version_key(&s.version) > version_key(&item.schema_version) => s.version.clone(),
        _ => item.schema_version.clone(),
    };
    let next = CustomSchema {
        type_name: item.type_name.clone(),
        version,
        attributes: attributes.into_iter().collect(),
        disabled_version: known.and_then(|s| s.disabled_version.clone()),
    };
    if known != Some(&next) {
        ctx.store.put_schema(&next).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRequest {
    instance_id: String,
    items: Vec<InventoryItem>,
}

/// The operation: authorized on the node, then [`put_items`].
pub async fn put_inventory(
    ctx: &InventoryContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: PutRequest = parse(body)?;
    caller.authorize("ssm:PutInventory", &ctx.node_arn(&req.instance_id))?;
    let outcome = put_items(ctx, &req.instance_id, &req.items).await?;
    tracing::info!(
        instance_id = %req.instance_id,
        written = ?outcome.written,
        unchanged = ?outcome.unchanged,
        "inventory put"
    );
    Ok(json!({}))
}
