//! The patch-state reads: DescribeInstancePatchStates,
//! DescribeInstancePatchStatesForPatchGroup, DescribeInstancePatches and
//! DescribePatchGroupState, in SSM's shapes. SSM's input constraints
//! (lengths, list sizes, MaxResults' range) are checked by `api_model`
//! before these run; what is here is what the model cannot say.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{InstancePatchState, PatchStateStore};
use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::fleet::ports::NodeStore;
use crate::paging;
use crate::patching::report::{PatchEntry, PatchState};

/// What the reads need. A node's patches are authorized on the node's ARN,
/// as its compliance and inventory are; a patch group's, on every node's.
#[derive(Clone, Copy)]
pub struct PatchStateReads<'a> {
    pub states: &'a dyn PatchStateStore,
    pub nodes: &'a dyn NodeStore,
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
}

/// Every answer of these operations pages at 10 to 100 (SSM's
/// `PatchComplianceMaxResults`); with none given, 50.
const DEFAULT_PAGE: usize = 50;

fn serialization(e: serde_json::Error) -> SsmError {
    SsmError::SerializationException(format!("The request body is not valid: {e}"))
}

fn epoch(t: f64) -> Value {
    json!(t)
}

/// SSM's InstancePatchState.
pub fn state_view(s: &InstancePatchState) -> Value {
    let c = &s.counts;
    let mut v = json!({
        "InstanceId": s.instance_id,
        "PatchGroup": s.patch_group.clone().unwrap_or_default(),
        "BaselineId": s.baseline_id,
        "SnapshotId": s.snapshot_id,
        "InstalledCount": c.installed,
        "InstalledOtherCount": c.installed_other,
        "InstalledPendingRebootCount": c.installed_pending_reboot,
        "InstalledRejectedCount": c.installed_rejected,
        "MissingCount": c.missing,
        "FailedCount": c.failed,
        "UnreportedNotApplicableCount": 0,
        "NotApplicableCount": c.not_applicable,
        "AvailableSecurityUpdateCount": 0,
        "OperationStartTime": epoch(s.operation_start_time),
        "OperationEndTime": epoch(s.operation_end_time),
        "Operation": s.operation.as_str(),
        "RebootOption": s.reboot_option.as_str(),
        "CriticalNonCompliantCount": c.critical_non_compliant,
        "SecurityNonCompliantCount": c.security_non_compliant,
        "OtherNonCompliantCount": c.other_non_compliant,
    });
    if let Some(t) = s.last_no_reboot_install_operation_time {
        v["LastNoRebootInstallOperationTime"] = epoch(t);
    }
    v
}

/// SSM's PatchComplianceData.
pub fn patch_view(p: &PatchEntry) -> Value {
    json!({
        "Title": p.title,
        "KBId": p.kb_id,
        "Classification": p.classification,
        "Severity": p.severity,
        "State": p.state.as_str(),
        // SSM gives every patch an InstalledTime; 0 for one not installed.
        "InstalledTime": epoch(p.installed_time.unwrap_or(0.0)),
    })
}

fn limit(given: Option<i64>) -> usize {
    // The range is the model's to check.
    given.map_or(DEFAULT_PAGE, |n| n.clamp(1, 100) as usize)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StatesRequest {
    instance_ids: Vec<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// DescribeInstancePatchStates: the states of the given nodes that have
/// reported one, in the order asked.
pub async fn describe_instance_patch_states(
    ctx: &PatchStateReads<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: StatesRequest = serde_json::from_value(body.clone()).map_err(serialization)?;
    for id in &req.instance_ids {
        ctx.caller
            .authorize("ssm:DescribeInstancePatchStates", &ctx.scope.node_arn(id))?;
    }
    let mut states = Vec::new();
    for id in &req.instance_ids {
        if let Some(s) = ctx.states.get(id).await? {
            states.push(s);
        }
    }
    let (items, next) = paging::page_of(states, limit(req.max_results), req.next_token.as_deref())?;
    let mut out =
        json!({ "InstancePatchStates": items.iter().map(state_view).collect::<Vec<_>>() });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StateFilter {
    key: String,
    values: Vec<String>,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupStatesRequest {
    patch_group: String,
    #[serde(default)]
    filters: Vec<StateFilter>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// The InstancePatchState fields DescribeInstancePatchStatesForPatchGroup
/// filters on (SSM's keys), and their values.
const STATE_FILTER_KEYS: [&str; 11] = [
    "InstalledCount",
    "InstalledOtherCount",
    "InstalledPendingRebootCount",
    "InstalledRejectedCount",
    "MissingCount",
    "FailedCount",
    "NotApplicableCount",
    "UnreportedNotApplicableCount",
    "CriticalNonCompliantCount",
    "SecurityNonCompliantCount",
    "OtherNonCompliantCount",
];

fn count_of(view: &Value, key: &str) -> i64 {
    view[key].as_i64().unwrap_or(0)
}

/// DescribeInstancePatchStatesForPatchGroup: the states of the group's
/// nodes that pass every filter.
pub async fn describe_instance_patch_states_for_patch_group(
    ctx: &PatchStateReads<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: GroupStatesRequest = serde_json::from_value(body.clone()).map_err(serialization)?;
    ctx.caller.authorize(
        "ssm:DescribeInstancePatchStatesForPatchGroup",
        &ctx.scope.node_arn("*"),
    )?;
    let mut checks = Vec::new();
    for f in &req.filters {
        if !STATE_FILTER_KEYS.contains(&f.key.as_str()) {
            return Err(SsmError::InvalidFilter(format!(
                "The filter key {} is not valid; use one of {}.",
                f.key,
                STATE_FILTER_KEYS.join(", ")
            )));
        }
        let [value] = f.values.as_slice() else {
            return Err(SsmError::InvalidFilter(format!(
                "Filter {} takes exactly one value.",
                f.key
            )));
        };
        let n: i64 = value.parse().map_err(|_| {
            SsmError::InvalidFilter(format!(
                "The value {value} of filter {} is not a whole number.",
                f.key
            ))
        })?;
        let op: fn(i64, i64) -> bool = match f.kind.as_str() {
            "Equal" => |a, b| a == b,
            "NotEqual" => |a, b| a != b,
            "LessThan" => |a, b| a < b,
            "GreaterThan" => |a, b| a > b,
            other => {
                return Err(SsmError::InvalidFilter(format!(
                    "The filter type {other} is not valid; use Equal, NotEqual, LessThan or GreaterThan."
                )));
            }
        };
        checks.push((f.key.clone(), op, n));
    }
    let mut views: Vec<Value> = ctx
        .states
        .in_group(&req.patch_group)
        .await?
        .iter()
        .map(state_view)
        .filter(|v| checks.iter().all(|(k, op, n)| op(count_of(v, k), *n)))
        .collect();
    views.sort_by(|a, b| a["InstanceId"].as_str().cmp(&b["InstanceId"].as_str()));
    let (items, next) = paging::page_of(views, limit(req.max_results), req.next_token.as_deref())?;
    let mut out = json!({ "InstancePatchStates": items });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PatchFilter {
    key: String,
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PatchesRequest {
    instance_id: String,
    #[serde(default)]
    filters: Vec<PatchFilter>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// DescribeInstancePatches' filter keys.
const PATCH_FILTER_KEYS: [&str; 4] = ["Classification", "KBId", "Severity", "State"];

/// DescribeInstancePatches: the patches of the node's latest operation
/// that pass the filters (within one filter any value may match; every
/// filter must).
pub async fn describe_instance_patches(
    ctx: &PatchStateReads<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: PatchesRequest = serde_json::from_value(body.clone()).map_err(serialization)?;
    ctx.caller.authorize(
        "ssm:DescribeInstancePatches",
        &ctx.scope.node_arn(&req.instance_id),
    )?;
    for f in &req.filters {
        if !PATCH_FILTER_KEYS.contains(&f.key.as_str()) {
            return Err(SsmError::InvalidFilter(format!(
                "The filter key {} is not valid; use one of {}.",
                f.key,
                PATCH_FILTER_KEYS.join(", ")
            )));
        }
        if f.key == "State"
            && let Some(bad) = f.values.iter().find(|v| PatchState::parse(v).is_none())
        {
            return Err(SsmError::InvalidFilter(format!(
                "The State {bad} is not valid; use one of {}.",
                PatchState::ALL.map(|s| s.as_str()).join(", ")
            )));
        }
    }
    let Some(state) = ctx.states.get(&req.instance_id).await? else {
        if ctx.nodes.get(&req.instance_id).await?.is_none() {
            return Err(SsmError::InvalidInstanceId(format!(
                "Instance {} is not a managed node of this account.",
                req.instance_id
            )));
        }
        // A node that never reported has no patches yet.
        return Ok(json!({ "Patches": [] }));
    };
    let patches: Vec<Value> = ctx
        .states
        .patches(&req.instance_id, &state.snapshot_id)
        .await?
        .iter()
        .filter(|p| {
            req.filters.iter().all(|f| {
                let field = match f.key.as_str() {
                    "Classification" => p.classification.as_str(),
                    "KBId" => p.kb_id.as_str(),
                    "Severity" => p.severity.as_str(),
                    _ => p.state.as_str(),
                };
                f.values.iter().any(|v| v.eq_ignore_ascii_case(field))
            })
        })
        .map(patch_view)
        .collect();
    let (items, next) =
        paging::page_of(patches, limit(req.max_results), req.next_token.as_deref())?;
    let mut out = json!({ "Patches": items });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupStateRequest {
    patch_group: String,
}

/// DescribePatchGroupState: how many of the group's nodes are in each
/// state.
pub async fn describe_patch_group_state(
    ctx: &PatchStateReads<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: GroupStateRequest = serde_json::from_value(body.clone()).map_err(serialization)?;
    ctx.caller
        .authorize("ssm:DescribePatchGroupState", &ctx.scope.node_arn("*"))?;
    let states = ctx.states.in_group(&req.patch_group).await?;
    let with = |f: &dyn Fn(&InstancePatchState) -> u32| states.iter().filter(|s| f(s) > 0).count();
    Ok(json!({
        "Instances": states.len(),
        "InstancesWithInstalledPatches": with(&|s| s.counts.installed),
        "InstancesWithInstalledOtherPatches": with(&|s| s.counts.installed_other),
        "InstancesWithInstalledPendingRebootPatches": with(&|s| s.counts.installed_pending_reboot),
        "InstancesWithInstalledRejectedPatches": with(&|s| s.counts.installed_rejected),
        "InstancesWithMissingPatches": with(&|s| s.counts.missing),
        "InstancesWithFailedPatches": with(&|s| s.counts.failed),
        "InstancesWithNotApplicablePatches": with(&|s| s.counts.not_applicable),
        "InstancesWithUnreportedNotApplicablePatches": 0,
        "InstancesWithCriticalNonCompliantPatches": with(&|s| s.counts.critical_non_compliant),
        "InstancesWithSecurityNonCompliantPatches": with(&|s| s.counts.security_non_compliant),
        "InstancesWithOtherNonCompliantPatches": with(&|s| s.counts.other_non_compliant),
        "InstancesWithAvailableSecurityUpdates": 0,
    }))
}

/// The operations of this module, for the API's routing table.
pub const OPERATIONS: [&str; 4] = [
    "DescribeInstancePatchStates",
    "DescribeInstancePatchStatesForPatchGroup",
    "DescribeInstancePatches",
    "DescribePatchGroupState",
];

/// Serves one of [`OPERATIONS`]; `None` for any other.
pub async fn handle(
    ctx: &PatchStateReads<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "DescribeInstancePatchStates" => describe_instance_patch_states(ctx, body).await,
        "DescribeInstancePatchStatesForPatchGroup" => {
            describe_instance_patch_states_for_patch_group(ctx, body).await
        }
        "DescribeInstancePatches" => describe_instance_patches(ctx, body).await,
        "DescribePatchGroupState" => describe_patch_group_state(ctx, body).await,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::memory::{MemoryFleet, node};
    use crate::patching::instance_state::ingest::apply_part;
    use crate::patching::instance_state::memory::MemoryPatchStates;
    use crate::patching::report::{PatchCounts, PatchReport};
    use crate::patching::step::{PatchOperation, RebootOption};

    fn entry(name: &str, state: PatchState, classification: &str) -> PatchEntry {
        PatchEntry {
            title: format!("{name} 1.1"),
            kb_id: name.into(),
            classification: classification.into(),
            severity: "important".into(),
            state,
            installed_time: None,
            compliance_level: None,
        }
    }

    async fn reported(states: &MemoryPatchStates, id: &str, group: &str, patches: Vec<PatchEntry>) {
        let header = PatchReport {
            command_id: format!("c-{id}"),
            snapshot_id: format!("c-{id}"),
            baseline_id: "pb-0d3b2e7f5a1c94e60".into(),
            patch_group: Some(group.into()),
            operation: PatchOperation::Scan,
            reboot_option: RebootOption::NoReboot,
            operation_start_time: 1.0,
            operation_end_time: 2.0,
            last_no_reboot_install_operation_time: None,
            counts: PatchCounts::default(),
            part: 0,
            parts: 0,
            patches: Vec::new(),
        };
        for part in PatchReport::into_parts(header, patches) {
            apply_part(states, id, &part).await.unwrap();
        }
    }

    #[tokio::test]
    async fn reads_answer_in_ssms_shapes_with_filters_and_pages() {
        let states = MemoryPatchStates::default();
        let fleet = MemoryFleet::default();
        for id in [
            "mi-00000000000000001",
            "mi-00000000000000002",
            "mi-00000000000000003",
        ] {
            fleet.nodes.insert(node(id, "key", 1.0));
        }
        let many: Vec<_> = (0..25)
            .map(|n| entry(&format!("pkg{n:02}"), PatchState::InstalledOther, ""))
            .chain([
                entry("openssl", PatchState::Missing, "Security"),
                entry("tzdata", PatchState::Missing, "Bugfix"),
            ])
            .collect();
        reported(&states, "mi-00000000000000001", "web", many).await;
        reported(
            &states,
            "mi-00000000000000002",
            "web",
            vec![entry("bash", PatchState::Installed, "")],
        )
        .await;
        let admin = caller("*");
        let scope = ArnScope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        };
        let ctx = PatchStateReads {
            states: &states,
            nodes: fleet.context().nodes,
            caller: &admin,
            scope: &scope,
        };

        let v = describe_instance_patch_states(
            &ctx,
            &json!({"InstanceIds": ["mi-00000000000000002", "mi-00000000000000003", "mi-00000000000000001"]}),
        )
        .await
        .unwrap();
        let listed = v["InstancePatchStates"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "a node with no report is left out");
        assert_eq!(listed[0]["InstanceId"], "mi-00000000000000002");
        assert_eq!(listed[1]["MissingCount"], 2);
        assert_eq!(listed[1]["SecurityNonCompliantCount"], 1);
        assert_eq!(listed[1]["Operation"], "Scan");
        assert_eq!(listed[1]["PatchGroup"], "web");

        let missing = describe_instance_patches(
            &ctx,
            &json!({"InstanceId": "mi-00000000000000001", "Filters": [{"Key": "State", "Values": ["Missing"]}]}),
        )
        .await
        .unwrap();
        let kbs: Vec<_> = missing["Patches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["KBId"].clone())
            .collect();
        assert_eq!(kbs, [json!("openssl"), json!("tzdata")]);
        let security = describe_instance_patches(
            &ctx,
            &json!({"InstanceId": "mi-00000000000000001", "Filters": [{"Key": "State", "Values": ["Missing"]}, {"Key": "Classification", "Values": ["Security"]}]}),
        )
        .await
        .unwrap();
        assert_eq!(security["Patches"].as_array().unwrap().len(), 1);

        // Pages of 10 cover all 27 once.
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"InstanceId": "mi-00000000000000001", "MaxResults": 10});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let v = describe_instance_patches(&ctx, &body).await.unwrap();
            seen.extend(
                v["Patches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["KBId"].to_string()),
            );
            match v["NextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 27);
        seen.dedup();
        assert_eq!(seen.len(), 27);

        let none = describe_instance_patches(&ctx, &json!({"InstanceId": "mi-00000000000000003"}))
            .await
            .unwrap();
        assert_eq!(none["Patches"], json!([]));
        let unknown =
            describe_instance_patches(&ctx, &json!({"InstanceId": "mi-0000000000000000f"}))
                .await
                .unwrap_err();
        assert_eq!(unknown.code(), "InvalidInstanceId");
        let bad = describe_instance_patches(
            &ctx,
            &json!({"InstanceId": "mi-00000000000000001", "Filters": [{"Key": "State", "Values": ["Broken"]}]}),
        )
        .await
        .unwrap_err();
        assert_eq!(bad.code(), "InvalidFilter");

        let group = describe_patch_group_state(&ctx, &json!({"PatchGroup": "web"}))
            .await
            .unwrap();
        assert_eq!(group["Instances"], 2);
        assert_eq!(group["InstancesWithMissingPatches"], 1);
        assert_eq!(group["InstancesWithInstalledPatches"], 1);
        let filtered = describe_instance_patch_states_for_patch_group(
            &ctx,
            &json!({"PatchGroup": "web", "Filters": [{"Key": "MissingCount", "Values": ["0"], "Type": "GreaterThan"}]}),
        )
        .await
        .unwrap();
        let ids: Vec<_> = filtered["InstancePatchStates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["InstanceId"].clone())
            .collect();
        assert_eq!(ids, [json!("mi-00000000000000001")]);
        let e = describe_instance_patch_states_for_patch_group(
            &ctx,
            &json!({"PatchGroup": "web", "Filters": [{"Key": "Color", "Values": ["0"], "Type": "Equal"}]}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "InvalidFilter");

        // Another node's patches are refused to a caller allowed only this one.
        let one =
            caller("arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-00000000000000001");
        let ctx = PatchStateReads {
            caller: &one,
            ..ctx
        };
        describe_instance_patches(&ctx, &json!({"InstanceId": "mi-00000000000000001"}))
            .await
            .unwrap();
        for (op, body) in [
            ("patches", json!({"InstanceId": "mi-00000000000000002"})),
            (
                "states",
                json!({"InstanceIds": ["mi-00000000000000001", "mi-00000000000000002"]}),
            ),
            ("group", json!({"PatchGroup": "web"})),
        ] {
            let e = match op {
                "patches" => describe_instance_patches(&ctx, &body).await,
                "states" => describe_instance_patch_states(&ctx, &body).await,
                _ => describe_patch_group_state(&ctx, &body).await,
            }
            .unwrap_err();
            assert_eq!(e.code(), "AccessDeniedException", "{op}");
        }
    }

    fn caller(resource: &str) -> crate::access::Caller {
        crate::access::Caller {
            access_key_id: "AKTEST".into(),
            user_arn: "arn:aws:iam::123456789012:user/t".into(),
            policy: crate::access::Policy::parse(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"ssm:Describe*","Resource":"{resource}"}}]}}"#
            ))
            .unwrap(),
        }
    }
}
