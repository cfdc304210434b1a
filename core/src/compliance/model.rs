//! What Compliance keeps: per resource and compliance type, the items last
//! put and the summary SSM reports of them (status, overall severity and
//! counts by severity).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The one resource type SSM's Compliance knows.
pub const MANAGED_INSTANCE: &str = "ManagedInstance";

/// SSM's severities, least to most severe (the order `max` reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Unspecified,
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Informational,
        Severity::Unspecified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
            Severity::Unspecified => "UNSPECIFIED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Compliant,
    NonCompliant,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Compliant => "COMPLIANT",
            Status::NonCompliant => "NON_COMPLIANT",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "COMPLIANT" => Some(Status::Compliant),
            "NON_COMPLIANT" => Some(Status::NonCompliant),
            _ => None,
        }
    }
}

/// SSM's ComplianceExecutionSummary; the time in epoch seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub execution_time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_type: Option<String>,
}

impl ExecutionSummary {
    /// As SSM's responses carry it.
    pub fn to_wire(&self) -> Value {
        let mut v = json!({ "ExecutionTime": self.execution_time });
        if let Some(id) = &self.execution_id {
            v["ExecutionId"] = json!(id);
        }
        if let Some(t) = &self.execution_type {
            v["ExecutionType"] = json!(t);
        }
        v
    }
}

/// One compliance item as put (a ComplianceItemEntry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemEntry {
    /// SSM does not require an Id; absent is "".
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

/// An item as kept: the entry and the execution that put it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    #[serde(flatten)]
    pub entry: ItemEntry,
    pub execution: ExecutionSummary,
}

/// Counts by severity (SSM's SeveritySummary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: u32,
    pub high: u32,
    pub medium: u32,
    pub low: u32,
    pub informational: u32,
    pub unspecified: u32,
}

impl SeverityCounts {
    pub fn add(&mut self, s: Severity, n: u32) {
        let slot = match s {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Informational => &mut self.informational,
            Severity::Unspecified => &mut self.unspecified,
        };
        *slot = slot.saturating_add(n);
    }

    pub fn total(&self) -> u32 {
        [
            self.critical,
            self.high,
            self.medium,
            self.low,
            self.informational,
            self.unspecified,
        ]
        .iter()
        .fold(0u32, |a, b| a.saturating_add(*b))
    }

    pub fn to_wire(&self) -> Value {
        json!({
            "CriticalCount": self.critical,
            "HighCount": self.high,
            "MediumCount": self.medium,
            "LowCount": self.low,
            "InformationalCount": self.informational,
            "UnspecifiedCount": self.unspecified,
        })
    }
}

/// What SSM reports of one resource's items of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub status: Status,
    pub overall_severity: Severity,
    pub compliant: SeverityCounts,
    pub non_compliant: SeverityCounts,
}

impl Summary {
    /// NON_COMPLIANT when any item is; the overall severity is the highest
    /// of the items that decide the status (the non-compliant ones, else
    /// all). No items: COMPLIANT, UNSPECIFIED.
    pub fn of<'a>(items: impl IntoIterator<Item = &'a ItemEntry>) -> Self {
        let mut compliant = SeverityCounts::default();
        let mut non_compliant = SeverityCounts::default();
        let mut worst_compliant = None;
        let mut worst_non_compliant = None;
        for i in items {
            match i.status {
                Status::Compliant => {
                    compliant.add(i.severity, 1);
                    worst_compliant = worst_compliant.max(Some(i.severity));
                }
                Status::NonCompliant => {
                    non_compliant.add(i.severity, 1);
                    worst_non_compliant = worst_non_compliant.max(Some(i.severity));
                }
            }
        }
        let (status, overall) = match worst_non_compliant {
            Some(s) => (Status::NonCompliant, s),
            None => (
                Status::Compliant,
                worst_compliant.unwrap_or(Severity::Unspecified),
            ),
        };
        Summary {
            status,
            overall_severity: overall,
            compliant,
            non_compliant,
        }
    }
}

/// A resource's summary for one compliance type, as listings read it
/// (without the items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummary {
    pub resource_id: String,
    pub resource_type: String,
    pub compliance_type: String,
    pub execution: ExecutionSummary,
    pub summary: Summary,
}

impl ResourceSummary {
    /// SSM's ResourceComplianceSummaryItem.
    pub fn to_wire(&self) -> Value {
        json!({
            "ComplianceType": self.compliance_type,
            "ResourceType": self.resource_type,
            "ResourceId": self.resource_id,
            "Status": self.summary.status.as_str(),
            "OverallSeverity": self.summary.overall_severity.as_str(),
            "ExecutionSummary": self.execution.to_wire(),
            "CompliantSummary": {
                "CompliantCount": self.summary.compliant.total(),
                "SeveritySummary": self.summary.compliant.to_wire(),
            },
            "NonCompliantSummary": {
                "NonCompliantCount": self.summary.non_compliant.total(),
                "SeveritySummary": self.summary.non_compliant.to_wire(),
            },
        })
    }
}

/// Everything kept for one resource and compliance type. `revision`
/// counts its writes; each write is conditional on the one it read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceRecord {
    pub resource_id: String,
    pub resource_type: String,
    pub compliance_type: String,
    /// The latest put's execution.
    pub execution: ExecutionSummary,
    /// In Id order.
    pub items: Vec<StoredItem>,
    /// The ItemContentHash of the latest put, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    pub revision: u64,
}

impl ComplianceRecord {
    pub fn summary(&self) -> ResourceSummary {
        ResourceSummary {
            resource_id: self.resource_id.clone(),
            resource_type: self.resource_type.clone(),
            compliance_type: self.compliance_type.clone(),
            execution: self.execution.clone(),
            summary: Summary::of(self.items.iter().map(|i| &i.entry)),
        }
    }
}

/// SSM's ComplianceItem: one item of a record.
pub fn item_to_wire(r: &ComplianceRecord, i: &StoredItem) -> Value {
    let mut v = json!({
        "ComplianceType": r.compliance_type,
        "ResourceType": r.resource_type,
        "ResourceId": r.resource_id,
        "Id": i.entry.id,
        "Title": i.entry.title,
        "Status": i.entry.status.as_str(),
        "Severity": i.entry.severity.as_str(),
        "ExecutionSummary": i.execution.to_wire(),
    });
    if !i.entry.details.is_empty() {
        v["Details"] = json!(i.entry.details);
    }
    v
}
