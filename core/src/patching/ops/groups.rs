//! Patch groups: RegisterPatchBaselineForPatchGroup (one baseline per group
//! and operating system), DeregisterPatchBaselineForPatchGroup,
//! GetPatchBaselineForPatchGroup (the system's default when the group has
//! none) and DescribePatchGroups.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::filters::{DEFAULT_RESULTS, DescribeInput, MAX_RESULTS, unknown_key, values};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::max_results;
use crate::patching::baseline::{OperatingSystem, PatchBaseline};
use crate::patching::context::{
    ATTEMPTS, Named, PatchingContext, default_id, does_not_exist, named, required, too_many_updates,
};
use crate::patching::ports::GroupRegistration;
use crate::patching::predefined;
use crate::patching::wire::identity;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct GroupInput {
    baseline_id: Option<String>,
    patch_group: Option<String>,
    operating_system: Option<String>,
}

pub(crate) async fn register(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: GroupInput = parse(body)?;
    let given = required(&i.baseline_id, "baselineId")?;
    let group = required(&i.patch_group, "patchGroup")?;
    if i.operating_system.is_some() {
        return Err(SsmError::SerializationException(
            "The request does not match the operation's input shape: unknown field `OperatingSystem`".into(),
        ));
    }
    let mut baseline = match named(ctx, "ssm:RegisterPatchBaselineForPatchGroup", given).await {
        Ok(b) => b,
        // SSM's words for this operation's missing baseline.
        Err(SsmError::DoesNotExistException(_)) => {
            return Err(SsmError::DoesNotExistException(format!(
                "Maintenance window {given} does not exist"
            )));
        }
        Err(e) => return Err(e),
    };
    for _ in 0..ATTEMPTS {
        let (id, os, revision) = match &baseline {
            Named::Predefined { id, baseline } => (id.clone(), baseline.operating_system, None),
            Named::Stored(s) => (s.id.clone(), s.baseline.operating_system, Some(s.revision)),
        };
        if ctx.store.group_baseline(group, os).await?.is_some() {
            return Err(SsmError::AlreadyExistsException(format!(
                "Patch Group {group} already has a baseline registered for OperatingSystem {os}."
            )));
        }
        let registration = GroupRegistration {
            patch_group: group.to_string(),
            operating_system: os,
            baseline_id: id.clone(),
        };
        if ctx.store.register_group(&registration, revision).await? {
            return Ok(json!({ "BaselineId": ctx.shown_id(&id), "PatchGroup": group }));
        }
        if revision.is_some() {
            baseline = Named::Stored(ctx.store.get(&id).await?.ok_or_else(does_not_exist)?);
        }
    }
    Err(too_many_updates(given))
}

pub(crate) async fn deregister(ctx: &PatchingContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: GroupInput = parse(body)?;
    let given = required(&i.baseline_id, "baselineId")?;
    let group = required(&i.patch_group, "patchGroup")?;
    if i.operating_system.is_some() {
        return Err(SsmError::SerializationException(
            "The request does not match the operation's input shape: unknown field `OperatingSystem`".into(),
        ));
    }
    let baseline = named(ctx, "ssm:DeregisterPatchBaselineForPatchGroup", given).await?;
    let (id, os) = match &baseline {
        Named::Predefined { id, baseline } => (id.clone(), baseline.operating_system),
        Named::Stored(s) => (s.id.clone(), s.baseline.operating_system),
    };
    let registration = GroupRegistration {
        patch_group: group.to_string(),
        operating_system: os,
        baseline_id: id.clone(),
    };
    if !ctx.store.deregister_group(&registration).await? {
        return Err(SsmError::InvalidResourceId(format!(
            "Patch Group {group} is not registered with patch baseline {given}."
        )));
    }
    Ok(json!({ "BaselineId": ctx.shown_id(&id), "PatchGroup": group }))
}

pub(crate) async fn get_for_group(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: GroupInput = parse(body)?;
    if i.baseline_id.is_some() {
        return Err(SsmError::SerializationException(
            "The request does not match the operation's input shape: unknown field `BaselineId`"
                .into(),
        ));
    }
    let group = required(&i.patch_group, "patchGroup")?;
    let os = OperatingSystem::parse(i.operating_system.as_deref())?;
    ctx.caller
        .authorize("ssm:GetPatchBaselineForPatchGroup", &ctx.baseline_arn("*"))?;
    let id = match ctx.store.group_baseline(group, os).await? {
        Some(id) => id,
        None => default_id(ctx.store, os).await?,
    };
    Ok(json!({
        "BaselineId": ctx.shown_id(&id),
        "PatchGroup": group,
        "OperatingSystem": os.as_str(),
    }))
}

/// Store pages one call reads at most while its filters keep nothing.
const MAX_PAGES_PER_CALL: usize = 10;

pub(crate) async fn describe_groups(
    ctx: &PatchingContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: DescribeInput = parse(body)?;
    let limit = max_results(i.max_results, 1, MAX_RESULTS, DEFAULT_RESULTS)?;
    let (mut prefixes, mut systems) = (Vec::new(), Vec::new());
    for f in &i.filters {
        let vals = values(f)?;
        match f.key.as_str() {
            "NAME_PREFIX" => prefixes.extend(vals.iter().cloned()),
            "OPERATING_SYSTEM" => systems.extend(vals.iter().cloned()),
            other => {
                return Err(unknown_key(
                    other,
                    "DescribePatchGroups",
                    "NAME_PREFIX or OPERATING_SYSTEM",
                ));
            }
        }
    }
    ctx.caller
        .authorize("ssm:DescribePatchGroups", &ctx.baseline_arn("*"))?;
    let passes = |r: &GroupRegistration| {
        (prefixes.is_empty()
            || prefixes
                .iter()
                .any(|p| r.patch_group.starts_with(p.as_str())))
            && (systems.is_empty() || systems.iter().any(|s| s == r.operating_system.as_str()))
    };
    let mut kept: Vec<GroupRegistration> = Vec::new();
    let mut token = i.next_token;
    for _ in 0..MAX_PAGES_PER_CALL {
        let page = ctx
            .store
            .list_groups(limit - kept.len(), token.as_deref())
            .await?;
        kept.extend(page.items.into_iter().filter(|r| passes(r)));
        token = page.next_token;
        if token.is_none() || kept.len() >= limit {
            break;
        }
    }
    let mut defaults = Vec::new();
    for os in OperatingSystem::ALL {
        defaults.push(default_id(ctx.store, os).await?);
    }
    let mut baselines: BTreeMap<String, Option<PatchBaseline>> = BTreeMap::new();
    let mut mappings = Vec::new();
    for r in kept {
        if !baselines.contains_key(&r.baseline_id) {
            let b = match predefined::find_id(&r.baseline_id) {
                Some(p) => Some(p.baseline),
                None => ctx.store.get(&r.baseline_id).await?.map(|s| s.baseline),
            };
            baselines.insert(r.baseline_id.clone(), b);
        }
        // A registration's baseline cannot be deleted; should one be
        // missing all the same, the mapping is left out, not invented.
        if let Some(Some(b)) = baselines.get(&r.baseline_id) {
            let default = defaults.contains(&r.baseline_id);
            mappings.push(json!({
                "PatchGroup": r.patch_group,
                "BaselineIdentity": identity(&ctx.shown_id(&r.baseline_id), b, default),
            }));
        }
    }
    let mut answer = json!({ "Mappings": mappings });
    if let Some(t) = token {
        answer["NextToken"] = json!(t);
    }
    Ok(answer)
}
