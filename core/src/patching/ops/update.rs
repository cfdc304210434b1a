//! UpdatePatchBaseline: the members given replace the baseline's own; with
//! `Replace`, the baseline becomes exactly what the request gives (Name
//! required, every optional member absent taking CreatePatchBaseline's
//! default). The result is checked as CreatePatchBaseline checks a new one.

use serde_json::{Map, Value};

use crate::error::SsmError;
use crate::patching::baseline::CreatePatchBaselineRequest;
use crate::patching::context::{
    ATTEMPTS, Named, PatchingContext, does_not_exist, named, too_many_updates,
};
use crate::patching::wire::baseline_view;

/// UpdatePatchBaselineRequest's members besides BaselineId and Replace.
const MEMBERS: [&str; 11] = [
    "Name",
    "GlobalFilters",
    "ApprovalRules",
    "ApprovedPatches",
    "ApprovedPatchesComplianceLevel",
    "ApprovedPatchesEnableNonSecurity",
    "RejectedPatches",
    "RejectedPatchesAction",
    "Description",
    "Sources",
    "AvailableSecurityUpdatesComplianceStatus",
];

fn shape_error(what: String) -> SsmError {
    SsmError::SerializationException(format!(
        "The request does not match the operation's input shape: {what}"
    ))
}

pub(crate) async fn update(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let given = body
        .as_object()
        .ok_or_else(|| shape_error("expected a JSON object".into()))?;
    for key in given.keys() {
        if !MEMBERS.contains(&key.as_str()) && key != "BaselineId" && key != "Replace" {
            return Err(shape_error(format!("unknown field `{key}`")));
        }
    }
    let baseline_id = match given.get("BaselineId") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value null at 'baselineId' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
        Some(_) => return Err(shape_error("BaselineId: expected a string".into())),
    };
    let replace = match given.get("Replace") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(shape_error("Replace: expected a boolean".into())),
    };
    let mut stored = match named(ctx, "ssm:UpdatePatchBaseline", &baseline_id).await? {
        Named::Stored(s) => s,
        Named::Predefined { .. } => {
            return Err(SsmError::InvalidResourceId(format!(
                "Patch baseline {baseline_id} is predefined by AWS and cannot be changed. Create your own (CreatePatchBaseline) and register it as the default (RegisterDefaultPatchBaseline)."
            )));
        }
    };
    for _ in 0..ATTEMPTS {
        let mut merged: Map<String, Value> = if replace {
            Map::from_iter([(
                "OperatingSystem".to_string(),
                Value::from(stored.baseline.operating_system.as_str()),
            )])
        } else {
            match stored.baseline.to_create_json() {
                Value::Object(m) => m,
                _ => return Err(SsmError::internal()),
            }
        };
        for key in MEMBERS {
            if let Some(v) = given.get(key).filter(|v| !v.is_null()) {
                merged.insert(key.to_string(), v.clone());
            }
        }
        let checked = CreatePatchBaselineRequest::parse(&Value::Object(merged))?;
        let mut next = stored.clone();
        next.baseline = checked.baseline;
        next.modified = ctx.now;
        next.revision = stored.revision + 1;
        if ctx.store.update(&next, stored.revision).await? {
            return Ok(baseline_view(
                &next.id,
                &next.baseline,
                next.created,
                next.modified,
                None,
            ));
        }
        stored = ctx
            .store
            .get(&stored.id)
            .await?
            .ok_or_else(does_not_exist)?;
    }
    Err(too_many_updates(&stored.id))
}
