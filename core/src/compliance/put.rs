//! PutComplianceItems, and [`put_items`]: the one write of compliance,
//! which the operation and Steward's own writers (patch reports) share. It
//! checks the write as SSM does, keeps the resource's record by a
//! conditional write, and publishes the status change it makes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::ComplianceContext;
use super::events::{StatusChange, status_change};
use super::model::{
    ComplianceRecord, ExecutionSummary, ItemEntry, MANAGED_INSTANCE, Severity, Status, StoredItem,
};
use crate::access::Authorizer;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids;

/// The most custom (`Custom:…`) compliance types one resource may have.
pub const MAX_CUSTOM_TYPES: usize = 10;
/// The most items one put may carry (SSM's model).
pub const MAX_ITEMS: usize = 10_000;
/// The most a resource's items of one type may take, as JSON. DynamoDB
/// keeps a record in one item of at most 400 KB.
pub const MAX_ITEMS_BYTES: usize = 350 * 1024;
/// How often a write is retried when another one came in between.
const ATTEMPTS: usize = 4;

/// COMPLETE replaces all of the resource's items of the type; PARTIAL
/// replaces or adds the items given (by Id) and keeps the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UploadType {
    #[default]
    Complete,
    Partial,
}

/// One put of compliance items (PutComplianceItems' request).
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceWrite {
    pub resource_id: String,
    /// `ManagedInstance`, the only type SSM's Compliance knows.
    pub resource_type: String,
    /// `Patch`, `Association` or `Custom:<name>`.
    pub compliance_type: String,
    pub execution: ExecutionSummary,
    pub items: Vec<ItemEntry>,
    /// When it equals the stored one's, the put is ignored.
    pub item_content_hash: Option<String>,
    pub upload_type: UploadType,
}

fn too_long(value: &str, at: &str, constraint: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "1 validation error detected: Value '{value}' at '{at}' failed to satisfy constraint: {constraint}"
    ))
}

fn length(value: &str, at: &str, min: usize, max: usize) -> Result<(), SsmError> {
    let n = value.chars().count();
    let constraint = if n < min {
        format!("Member must have length greater than or equal to {min}")
    } else if n > max {
        format!("Member must have length less than or equal to {max}")
    } else {
        return Ok(());
    };
    Err(too_long(value, at, &constraint))
}

/// SSM's ComplianceTypeName pattern, `[A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+`.
pub fn is_compliance_type(s: &str) -> bool {
    fn word(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }
    fn name(s: &str) -> bool {
        let mut chars = s.chars();
        match chars.next() {
            Some(c) if word(c) || c == '-' => {}
            _ => return false,
        }
        let rest = chars.as_str();
        !rest.is_empty() && rest.chars().all(word)
    }
    name(s) || s.strip_prefix("Custom:").is_some_and(name)
}

/// The checks of SSM's model and of the operation, for writes that do not
/// come through the API's model check (Steward's own writers) as well.
fn check(w: &ComplianceWrite) -> Result<(), SsmError> {
    length(&w.resource_id, "resourceId", 1, 100)?;
    length(&w.resource_type, "resourceType", 1, 50)?;
    length(&w.compliance_type, "complianceType", 1, 100)?;
    if !is_compliance_type(&w.compliance_type) {
        return Err(too_long(
            &w.compliance_type,
            "complianceType",
            r"Member must satisfy regular expression pattern: [A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+",
        ));
    }
    if let Some(id) = &w.execution.execution_id {
        length(id, "executionSummary.executionId", 0, 100)?;
    }
    if let Some(t) = &w.execution.execution_type {
        length(t, "executionSummary.executionType", 0, 50)?;
    }
    if let Some(h) = &w.item_content_hash {
        length(h, "itemContentHash", 0, 256)?;
    }
    if w.items.len() > MAX_ITEMS {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'items' failed to satisfy constraint: Member must have length less than or equal to {MAX_ITEMS}"
        )));
    }
    for (n, i) in w.items.iter().enumerate() {
        let at = format!("items.{}.member", n + 1);
        length(&i.title, &format!("{at}.title"), 0, 500)?;
        for (k, v) in &i.details {
            length(k, &format!("{at}.details"), 1, 64)?;
            length(v, &format!("{at}.details.{k}"), 0, 4096)?;
        }
    }
    check_resource(&w.resource_type, &w.resource_id)?;
    let mut seen = BTreeSet::new();
    for i in &w.items {
        if !seen.insert(i.id.as_str()) {
            return Err(SsmError::InvalidItemContentException(format!(
                "Item Id \"{}\" is given more than once; each item of a put needs an Id of its own.",
                i.id
            )));
        }
    }
    Ok(())
}

/// The resource type and the id's form (whether the node is registered is
/// read later).
pub(crate) fn check_resource(resource_type: &str, resource_id: &str) -> Result<(), SsmError> {
    if resource_type != MANAGED_INSTANCE {
        return Err(SsmError::InvalidResourceType(format!(
            "Resource type {resource_type} is not valid for compliance; use ManagedInstance."
        )));
    }
    if !ids::is_instance_id(resource_id) {
        return Err(unknown_resource(resource_id));
    }
    Ok(())
}

pub(crate) fn unknown_resource(resource_id: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "The resource ID \"{resource_id}\" is not valid. Verify the ID with describe-instance-information and try again."
    ))
}

/// The record after `w` on `prev`.
fn next_record(prev: Option<&ComplianceRecord>, w: &ComplianceWrite) -> ComplianceRecord {
    let stored = |e: &ItemEntry| StoredItem {
        entry: e.clone(),
        execution: w.execution.clone(),
    };
    let mut by_id: BTreeMap<String, StoredItem> = match (w.upload_type, prev) {
        (UploadType::Partial, Some(p)) => p
            .items
            .iter()
            .map(|i| (i.entry.id.clone(), i.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    for e in &w.items {
        by_id.insert(e.id.clone(), stored(e));
    }
    ComplianceRecord {
        resource_id: w.resource_id.clone(),
        resource_type: w.resource_type.clone(),
        compliance_type: w.compliance_type.clone(),
        execution: w.execution.clone(),
        items: by_id.into_values().collect(),
        content_hash: w.item_content_hash.clone(),
        revision: prev.map_or(1, |p| p.revision + 1),
    }
}

fn check_size(r: &ComplianceRecord) -> Result<(), SsmError> {
    let bytes = serde_json::to_vec(&r.items)
        .map_err(|_| SsmError::internal())?
        .len();
    if bytes > MAX_ITEMS_BYTES {
        return Err(SsmError::TotalSizeLimitExceededException(format!(
            "The compliance items of type {} for {} would take {} KB; Steward keeps at most {} KB of one resource's items of one type. Put fewer items or shorter details.",
            r.compliance_type,
            r.resource_id,
            bytes.div_ceil(1024),
            MAX_ITEMS_BYTES / 1024
        )));
    }
    Ok(())
}

/// Writes one put of compliance items: checked as SSM checks
/// PutComplianceItems, for a registered node only, by a conditional write
/// (retried when another write came in between). A put whose
/// ItemContentHash equals the stored one's changes nothing. When the
/// resource's status for the type changes (or is first set) the change is
/// returned; its `Configuration Compliance State Change` event follows from
/// the table's stream ([`super::events::of_compliance_change`]).
pub async fn put_items(
    ctx: &ComplianceContext<'_>,
    write: ComplianceWrite,
) -> Result<Option<StatusChange>, SsmError> {
    check(&write)?;
    if ctx.nodes.get(&write.resource_id).await?.is_none() {
        return Err(unknown_resource(&write.resource_id));
    }
    for _ in 0..ATTEMPTS {
        let prev = ctx
            .store
            .get(&write.resource_id, &write.compliance_type)
            .await?;
        if let (Some(p), Some(h)) = (&prev, &write.item_content_hash)
            && p.content_hash.as_ref() == Some(h)
        {
            return Ok(None);
        }
        if prev.is_none() && write.compliance_type.starts_with("Custom:") {
            let custom = ctx
                .store
                .resource(&write.resource_id)
                .await?
                .iter()
                .filter(|r| r.compliance_type.starts_with("Custom:"))
                .count();
            if custom >= MAX_CUSTOM_TYPES {
                return Err(SsmError::ComplianceTypeCountLimitExceededException(
                    format!(
                        "{} already has {MAX_CUSTOM_TYPES} custom compliance types, the most a resource may have; put {} under one of them.",
                        write.resource_id, write.compliance_type
                    ),
                ));
            }
        }
        let next = next_record(prev.as_ref(), &write);
        check_size(&next)?;
        if !ctx
            .store
            .put(&next, prev.as_ref().map(|p| p.revision))
            .await?
        {
            continue;
        }
        // Its event follows from the table's stream.
        return Ok(status_change(prev.as_ref(), &next));
    }
    Err(SsmError::TooManyUpdates(format!(
        "The {} compliance of {} is being changed by other requests; retry shortly.",
        write.compliance_type, write.resource_id
    )))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutInput {
    resource_id: String,
    resource_type: String,
    compliance_type: String,
    execution_summary: ExecutionInput,
    items: Vec<EntryInput>,
    #[serde(default)]
    item_content_hash: Option<String>,
    #[serde(default)]
    upload_type: Option<UploadType>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecutionInput {
    execution_time: Value,
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    execution_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryInput {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    severity: String,
    status: String,
    #[serde(default)]
    details: BTreeMap<String, String>,
}

/// A JSON 1.1 timestamp: epoch seconds, or ISO 8601 text.
pub(crate) fn timestamp(v: &Value, at: &str) -> Result<f64, SsmError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| bad_time(at)),
        Value::String(s) => s
            .parse::<f64>()
            .or_else(|_| crate::clock::parse_filter_time(s))
            .map_err(|_| bad_time(at)),
        _ => Err(bad_time(at)),
    }
}

fn bad_time(at: &str) -> SsmError {
    SsmError::SerializationException(format!(
        "{at} is not a timestamp; give epoch seconds or ISO 8601 (2024-01-01T10:10:10Z)."
    ))
}

fn entry(e: EntryInput) -> Result<ItemEntry, SsmError> {
    // The API's model check has refused other values already; a writer
    // that bypasses it gets the same words.
    let severity = Severity::parse(&e.severity).ok_or_else(|| {
        SsmError::ValidationException(format!(
            "1 validation error detected: Value '{}' at 'severity' failed to satisfy constraint: Member must satisfy enum value set: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNSPECIFIED]",
            e.severity
        ))
    })?;
    let status = Status::parse(&e.status).ok_or_else(|| {
        SsmError::ValidationException(format!(
            "1 validation error detected: Value '{}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [COMPLIANT, NON_COMPLIANT]",
            e.status
        ))
    })?;
    Ok(ItemEntry {
        id: e.id.unwrap_or_default(),
        title: e.title.unwrap_or_default(),
        severity,
        status,
        details: e.details,
    })
}

/// PutComplianceItems' request as a [`ComplianceWrite`].
pub fn write_from_request(body: &Value) -> Result<ComplianceWrite, SsmError> {
    let i: PutInput = parse(body)?;
    Ok(ComplianceWrite {
        execution: ExecutionSummary {
            execution_time: timestamp(
                &i.execution_summary.execution_time,
                "ExecutionSummary.ExecutionTime",
            )?,
            execution_id: i.execution_summary.execution_id,
            execution_type: i.execution_summary.execution_type,
        },
        items: i.items.into_iter().map(entry).collect::<Result<_, _>>()?,
        resource_id: i.resource_id,
        resource_type: i.resource_type,
        compliance_type: i.compliance_type,
        item_content_hash: i.item_content_hash,
        upload_type: i.upload_type.unwrap_or_default(),
    })
}

/// The operation: authorized on the resource, then [`put_items`].
pub(super) async fn put_compliance_items(
    ctx: &ComplianceContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let write = write_from_request(body)?;
    check_resource(&write.resource_type, &write.resource_id)?;
    caller.authorize(
        "ssm:PutComplianceItems",
        &ctx.resource_arn(&write.resource_id),
    )?;
    put_items(ctx, write).await?;
    Ok(json!({}))
}
