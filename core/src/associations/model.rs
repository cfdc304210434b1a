//! What the store keeps of an association, its executions and per-node
//! results, and how SSM shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::tags::TagSet;
use crate::targets::Target;

/// The overview SSM keeps per association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Overview {
    /// `Pending`, `Success` or `Failed`.
    pub status: String,
    pub detailed_status: String,
    /// Nodes per status in the last execution.
    pub counts: BTreeMap<String, u32>,
}

impl Overview {
    pub fn pending() -> Self {
        Overview {
            status: "Pending".into(),
            detailed_status: "Creating".into(),
            counts: BTreeMap::new(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut out = json!({ "Status": self.status, "DetailedStatus": self.detailed_status });
        if !self.counts.is_empty() {
            out["AssociationStatusAggregatedCount"] = json!(self.counts);
        }
        out
    }
}

/// The next scheduled occurrence: when the expression fires and when the
/// run is due (later by ScheduleOffset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub scheduled: i64,
    pub due: i64,
}

/// One version of an association, as requests gave it and checked; the
/// head carries the current version and the scheduling state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Association {
    pub association_id: String,
    pub association_version: u32,
    /// The document's name.
    pub name: String,
    pub document_version: Option<String>,
    /// The legacy single-node form.
    pub instance_id: Option<String>,
    pub targets: Vec<Target>,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub schedule_expression: Option<String>,
    pub apply_only_at_cron_interval: bool,
    pub schedule_offset: Option<i32>,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub compliance_severity: Option<String>,
    pub sync_compliance: Option<String>,
    pub association_name: Option<String>,
    /// `{"S3Location": {...}}` as given.
    pub output_location: Option<Value>,
    pub automation_target_parameter_name: Option<String>,
    /// Whether the document is an Automation runbook.
    pub automation: bool,
    pub tags: TagSet,
    /// Epoch seconds: the association's creation.
    pub date: f64,
    /// Epoch seconds: this version's creation.
    pub last_update: f64,
    pub overview: Overview,
    pub last_execution_date: Option<f64>,
    pub last_successful_execution_date: Option<f64>,
    /// The IAM user whose runs these are.
    pub run_as: String,
    /// A run is due at the next tick (creation, StartAssociationsOnce, a
    /// changing update).
    pub run_now: bool,
    /// The next scheduled occurrence, if the schedule has one.
    pub slot: Option<Slot>,
    /// When the head is next due: the earlier of `run_now` (the time it
    /// was asked) and the slot's due time. `None`: nothing due.
    pub next_due: Option<f64>,
    /// Every write of the head is conditional on it.
    pub revision: u64,
}

impl Association {
    /// The Name+InstanceId key of the legacy form (unique per account).
    pub fn legacy_key(&self) -> Option<String> {
        self.instance_id.as_ref().map(|i| legacy_key(&self.name, i))
    }

    /// The targets a run sends to: Targets, or the legacy InstanceId.
    pub fn run_targets(&self) -> Vec<Target> {
        match &self.instance_id {
            Some(i) => vec![Target {
                key: "InstanceIds".into(),
                values: vec![i.clone()],
            }],
            None => self.targets.clone(),
        }
    }

    /// The compliance item's title: the association's name, else the document's.
    pub fn title(&self) -> String {
        self.association_name
            .clone()
            .unwrap_or_else(|| self.name.clone())
    }

    pub fn sync_auto(&self) -> bool {
        self.sync_compliance.as_deref() != Some("MANUAL")
    }

    /// Recomputes `next_due` from `run_now` and the slot.
    pub fn set_next_due(&mut self, asked_at: f64) {
        let slot = self.slot.map(|s| s.due as f64);
        self.next_due = match (self.run_now, slot) {
            (true, Some(d)) => Some(asked_at.min(d)),
            (true, None) => Some(asked_at),
            (false, d) => d,
        };
    }

    fn common(&self, out: &mut Value) {
        let set = |out: &mut Value, k: &str, v: Option<Value>| {
            if let Some(v) = v {
                out[k] = v;
            }
        };
        // SSM shows the version a run takes: `$DEFAULT` when none was given.
        out["DocumentVersion"] = json!(self.document_version.as_deref().unwrap_or("$DEFAULT"));
        if !self.targets.is_empty() {
            out["Targets"] = json!(self.targets);
        }
        set(
            out,
            "ScheduleExpression",
            self.schedule_expression.as_ref().map(|v| json!(v)),
        );
        set(
            out,
            "AssociationName",
            self.association_name.as_ref().map(|v| json!(v)),
        );
        set(
            out,
            "ScheduleOffset",
            self.schedule_offset.map(|v| json!(v)),
        );
    }

    fn settings(&self, out: &mut Value) {
        let set = |out: &mut Value, k: &str, v: Option<&String>| {
            if let Some(v) = v {
                out[k] = json!(v);
            }
        };
        if !self.parameters.is_empty() {
            out["Parameters"] = json!(self.parameters);
        }
        if let Some(o) = &self.output_location {
            out["OutputLocation"] = o.clone();
        }
        set(out, "MaxConcurrency", self.max_concurrency.as_ref());
        set(out, "MaxErrors", self.max_errors.as_ref());
        set(out, "ComplianceSeverity", self.compliance_severity.as_ref());
        set(out, "SyncCompliance", self.sync_compliance.as_ref());
        set(
            out,
            "AutomationTargetParameterName",
            self.automation_target_parameter_name.as_ref(),
        );
        out["ApplyOnlyAtCronInterval"] = json!(self.apply_only_at_cron_interval);
    }

    /// SSM's `AssociationDescription`.
    pub fn description(&self) -> Value {
        let mut out = json!({
            "Name": self.name,
            "AssociationId": self.association_id,
            "AssociationVersion": self.association_version.to_string(),
            "Date": self.date,
            "LastUpdateAssociationDate": self.last_update,
            "Overview": self.overview.to_json(),
            "Status": {
                "Date": self.last_update,
                "Name": self.overview.status,
                "Message": self.overview.detailed_status,
            },
        });
        if let Some(i) = &self.instance_id {
            out["InstanceId"] = json!(i);
        }
        self.common(&mut out);
        self.settings(&mut out);
        if let Some(d) = self.last_execution_date {
            out["LastExecutionDate"] = json!(d);
        }
        if let Some(d) = self.last_successful_execution_date {
            out["LastSuccessfulExecutionDate"] = json!(d);
        }
        out
    }

    /// SSM's `Association` (ListAssociations).
    pub fn summary(&self) -> Value {
        let mut out = json!({
            "Name": self.name,
            "AssociationId": self.association_id,
            "AssociationVersion": self.association_version.to_string(),
            "Overview": self.overview.to_json(),
        });
        if let Some(i) = &self.instance_id {
            out["InstanceId"] = json!(i);
        }
        self.common(&mut out);
        if let Some(d) = self.last_execution_date {
            out["LastExecutionDate"] = json!(d);
        }
        out
    }

    /// SSM's `AssociationVersionInfo` (ListAssociationVersions).
    pub fn version_info(&self) -> Value {
        let mut out = json!({
            "AssociationId": self.association_id,
            "AssociationVersion": self.association_version.to_string(),
            "CreatedDate": self.last_update,
            "Name": self.name,
        });
        self.common(&mut out);
        self.settings(&mut out);
        out
    }
}

pub fn legacy_key(name: &str, instance_id: &str) -> String {
    format!("{name}#{instance_id}")
}

/// One run of an association.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub association_id: String,
    pub association_version: u32,
    /// A UUID; also the command id (or the automation's client token).
    pub execution_id: String,
    /// `Pending`, `InProgress`, `Success` or `Failed`.
    pub status: String,
    pub detailed_status: String,
    pub created: f64,
    pub last_execution_date: Option<f64>,
    pub resource_counts: BTreeMap<String, u32>,
    /// The run's request: SendCommand's or StartAutomationExecution's body.
    pub request: Value,
    pub automation: bool,
    pub run_as: String,
    /// The automation execution, once started.
    pub automation_execution_id: Option<String>,
    /// An execution for one newly matching node only.
    pub node: Option<String>,
    /// Nodes whose final outcome is recorded.
    pub recorded: Vec<String>,
    /// For the compliance and per-node records.
    pub document_name: String,
    pub document_version: String,
    pub association_name: Option<String>,
    pub title: String,
    pub severity: String,
    pub sync_auto: bool,
    /// Where nodes' output goes (S3 URL without the command and node parts).
    pub output_url: Option<String>,
    pub next_due: Option<f64>,
    pub revision: u64,
}

impl Execution {
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "Success" | "Failed")
    }

    /// SSM's `AssociationExecution`.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "AssociationId": self.association_id,
            "AssociationVersion": self.association_version.to_string(),
            "ExecutionId": self.execution_id,
            "Status": self.status,
            "DetailedStatus": self.detailed_status,
            "CreatedTime": self.created,
            "ResourceCountByStatus": counts_text(&self.resource_counts),
        });
        if let Some(d) = self.last_execution_date {
            out["LastExecutionDate"] = json!(d);
        }
        out
    }
}

/// `{Success=2,Failed=1}`, as SSM writes ResourceCountByStatus.
pub fn counts_text(counts: &BTreeMap<String, u32>) -> String {
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// One node's result in one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionTarget {
    pub association_id: String,
    pub association_version: u32,
    pub execution_id: String,
    pub resource_id: String,
    pub resource_type: String,
    pub status: String,
    pub detailed_status: String,
    pub last_execution_date: f64,
    /// The command (or automation execution) the result comes from.
    pub output_source_id: String,
    pub output_source_type: String,
}

impl ExecutionTarget {
    /// SSM's `AssociationExecutionTarget`.
    pub fn to_json(&self) -> Value {
        json!({
            "AssociationId": self.association_id,
            "AssociationVersion": self.association_version.to_string(),
            "ExecutionId": self.execution_id,
            "ResourceId": self.resource_id,
            "ResourceType": self.resource_type,
            "Status": self.status,
            "DetailedStatus": self.detailed_status,
            "LastExecutionDate": self.last_execution_date,
            "OutputSource": {
                "OutputSourceId": self.output_source_id,
                "OutputSourceType": self.output_source_type,
            },
        })
    }
}

/// A node's latest status for an association.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub association_id: String,
    pub instance_id: String,
    pub name: String,
    pub document_version: String,
    pub association_version: u32,
    pub execution_date: f64,
    pub status: String,
    pub detailed_status: String,
    pub execution_summary: String,
    pub error_code: Option<String>,
    pub output_url: Option<String>,
    pub association_name: Option<String>,
}

impl InstanceStatus {
    /// SSM's `InstanceAssociationStatusInfo`.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "AssociationId": self.association_id,
            "Name": self.name,
            "DocumentVersion": self.document_version,
            "AssociationVersion": self.association_version.to_string(),
            "InstanceId": self.instance_id,
            "ExecutionDate": self.execution_date,
            "Status": self.status,
            "DetailedStatus": self.detailed_status,
            "ExecutionSummary": self.execution_summary,
        });
        if let Some(c) = &self.error_code {
            out["ErrorCode"] = json!(c);
        }
        if let Some(u) = &self.output_url {
            out["OutputUrl"] = json!({ "S3OutputUrl": { "OutputUrl": u } });
        }
        if let Some(n) = &self.association_name {
            out["AssociationName"] = json!(n);
        }
        out
    }
}

/// "This node may newly match some association": written when a node
/// registers or its tags change, handled by the tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub instance_id: String,
    /// When the change was reported (the marker's age counts from it);
    /// later writes are conditional on it.
    pub written: f64,
    pub next_due: f64,
}

/// Whether an association's targets name a node with these tags: AND
/// across entries, OR across one entry's values. `None`: a resource group
/// decides, which only resolving the targets can answer.
pub fn targets_match(
    targets: &[Target],
    instance_id: &str,
    tags: &BTreeMap<String, String>,
) -> Option<bool> {
    let mut unknown = false;
    for t in targets {
        let values = || t.values.iter().flat_map(|v| v.split(',').map(str::trim));
        let hit = if t.key == "InstanceIds" {
            values().any(|v| v == "*" || v == instance_id)
        } else if t.key == "tag-key" {
            values().any(|k| tags.contains_key(k))
        } else if let Some(key) = t.key.strip_prefix("tag:") {
            tags.get(key).is_some_and(|v| values().any(|x| x == v))
        } else if t.key.starts_with("resource-groups:") {
            unknown = true;
            true
        } else {
            false
        };
        if !hit {
            return Some(false);
        }
    }
    if unknown { None } else { Some(true) }
}
