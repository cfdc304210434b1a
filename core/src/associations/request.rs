//! CreateAssociation's and UpdateAssociation's settings, read and checked
//! as SSM checks them, before any store sees them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::context::validation;
use super::model::Slot;
use crate::error::SsmError;
use crate::ids::is_instance_id;
use crate::run_command::status::Limit;
use crate::schedule::{Schedule, ScheduleUse, Zone};
use crate::tags::{Tag, TagSet, validate_tags};
use crate::targets::{MAX_TARGETS, Target, TargetSpec};

/// The members CreateAssociation, its batch entries and UpdateAssociation share.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociationInput {
    pub association_id: Option<String>,
    pub association_version: Option<String>,
    pub name: Option<String>,
    pub document_version: Option<String>,
    pub instance_id: Option<String>,
    pub parameters: Option<BTreeMap<String, Vec<String>>>,
    pub targets: Option<Vec<Target>>,
    pub schedule_expression: Option<String>,
    pub output_location: Option<Value>,
    pub association_name: Option<String>,
    pub automation_target_parameter_name: Option<String>,
    pub max_errors: Option<String>,
    pub max_concurrency: Option<String>,
    pub compliance_severity: Option<String>,
    pub sync_compliance: Option<String>,
    pub apply_only_at_cron_interval: Option<bool>,
    pub calendar_names: Option<Vec<String>>,
    pub target_locations: Option<Vec<Value>>,
    pub schedule_offset: Option<i32>,
    pub duration: Option<i32>,
    pub target_maps: Option<Vec<Value>>,
    pub tags: Option<Vec<Tag>>,
    pub alarm_configuration: Option<Value>,
}

const SEVERITIES: [&str; 5] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"];
const SYNC: [&str; 2] = ["AUTO", "MANUAL"];

fn length(value: &str, field: &str, min: usize, max: usize) -> Result<(), SsmError> {
    let n = value.chars().count();
    if n < min {
        return Err(validation(
            value,
            field,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(validation(
            value,
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn one_of(value: &str, field: &str, set: &[&str]) -> Result<(), SsmError> {
    if set.contains(&value) {
        Ok(())
    } else {
        Err(validation(
            value,
            field,
            &format!("Member must satisfy enum value set: [{}]", set.join(", ")),
        ))
    }
}

/// SSM's AssociationName: `^[a-zA-Z0-9_\-.]{3,128}$`.
pub fn check_association_name(n: &str) -> Result<(), SsmError> {
    let ok = (3..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(validation(
            n,
            "associationName",
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$",
        ))
    }
}

/// Whether a target is `InstanceIds=*`: every managed node.
pub fn is_all_nodes(t: &Target) -> bool {
    t.key == "InstanceIds" && t.values.iter().any(|v| v == "*")
}

/// Targets as SSM takes them: at most 5, each as SendCommand reads it,
/// and `InstanceIds=*` alone in its entry.
pub fn check_targets(targets: &[Target]) -> Result<(), SsmError> {
    if targets.len() > MAX_TARGETS {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to {MAX_TARGETS}"
        )));
    }
    for t in targets.iter().filter(|t| t.key == "InstanceIds") {
        if t.values.iter().any(|v| v == "*") && t.values.len() > 1 {
            return Err(SsmError::InvalidTarget(
                "Target InstanceIds=* names every managed node: give it no other value.".into(),
            ));
        }
    }
    let rest: Vec<Target> = targets
        .iter()
        .filter(|t| !is_all_nodes(t))
        .cloned()
        .collect();
    if !rest.is_empty() {
        TargetSpec::parse(&[], &rest)?;
    }
    Ok(())
}

/// The run settings of an association, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSettings {
    pub document_version: Option<String>,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub schedule_expression: Option<String>,
    pub apply_only_at_cron_interval: bool,
    pub schedule_offset: Option<i32>,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub compliance_severity: Option<String>,
    pub sync_compliance: Option<String>,
    pub output_location: Option<Value>,
    pub automation_target_parameter_name: Option<String>,
}

/// Refuses what Steward does not run, so nothing is stored that would
/// not be honoured.
fn unsupported(i: &AssociationInput) -> Result<(), SsmError> {
    let refuse = |what: &str| {
        Err(SsmError::ValidationException(format!(
            "{what} is not supported by this State Manager; omit it."
        )))
    };
    if i.calendar_names.as_ref().is_some_and(|c| !c.is_empty()) {
        return refuse("CalendarNames (Change Calendar)");
    }
    if i.target_locations.as_ref().is_some_and(|c| !c.is_empty()) {
        return refuse("TargetLocations");
    }
    if i.target_maps.as_ref().is_some_and(|c| !c.is_empty()) {
        return refuse("TargetMaps");
    }
    if i.duration.is_some() {
        return refuse("Duration");
    }
    if i.alarm_configuration.is_some() {
        return refuse("AlarmConfiguration");
    }
    Ok(())
}

fn check_output_location(o: &Value) -> Result<(), SsmError> {
    let Some(s3) = o.get("S3Location") else {
        return Err(SsmError::ValidationException(
            "OutputLocation takes S3Location {OutputS3Region, OutputS3BucketName, OutputS3KeyPrefix}."
                .into(),
        ));
    };
    let field = |k: &str| s3.get(k).and_then(Value::as_str);
    if let Some(r) = field("OutputS3Region") {
        length(r, "outputLocation.s3Location.outputS3Region", 3, 20)?;
    }
    if let Some(b) = field("OutputS3BucketName") {
        length(b, "outputLocation.s3Location.outputS3BucketName", 3, 63)?;
    }
    if let Some(p) = field("OutputS3KeyPrefix") {
        length(p, "outputLocation.s3Location.outputS3KeyPrefix", 0, 500)?;
    }
    Ok(())
}

impl AssociationInput {
    /// The run settings, checked; the schedule is read as SSM reads an
    /// association's.
    pub fn run_settings(&self) -> Result<RunSettings, SsmError> {
        unsupported(self)?;
        let apply_only = self.apply_only_at_cron_interval.unwrap_or(false);
        if let Some(expr) = &self.schedule_expression {
            length(expr, "scheduleExpression", 1, 256)?;
            let schedule = Schedule::parse(expr, ScheduleUse::Association)?;
            if apply_only && schedule.rate_seconds().is_some() {
                return Err(SsmError::InvalidSchedule(format!(
                    "Schedule expression {expr} is invalid: ApplyOnlyAtCronInterval is not supported for rate expressions."
                )));
            }
            if let Some(days) = self.schedule_offset {
                schedule.with_offset(days, ScheduleUse::Association, apply_only)?;
            }
        } else if self.schedule_offset.is_some() {
            return Err(SsmError::ValidationException(
                "ScheduleOffset is supported with cron expressions only.".into(),
            ));
        }
        if let Some(v) = &self.document_version {
            let ok = v == "$LATEST" || v == "$DEFAULT" || v.parse::<u64>().is_ok_and(|n| n > 0);
            if !ok {
                return Err(validation(
                    v,
                    "documentVersion",
                    "Member must satisfy regular expression pattern: ([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)",
                ));
            }
        }
        if let Some(c) = &self.max_concurrency {
            length(c, "maxConcurrency", 1, 7)?;
            Limit::parse("maxConcurrency", c)?;
        }
        if let Some(e) = &self.max_errors {
            length(e, "maxErrors", 1, 7)?;
            Limit::parse("maxErrors", e)?;
        }
        if let Some(s) = &self.compliance_severity {
            one_of(s, "complianceSeverity", &SEVERITIES)?;
        }
        if let Some(s) = &self.sync_compliance {
            one_of(s, "syncCompliance", &SYNC)?;
        }
        if let Some(o) = &self.output_location {
            check_output_location(o)?;
        }
        if let Some(p) = &self.automation_target_parameter_name {
            length(p, "automationTargetParameterName", 1, 50)?;
        }
        let parameters = self.parameters.clone().unwrap_or_default();
        for (k, v) in &parameters {
            length(k, "parameters.key", 1, 255)?;
            for value in v {
                length(value, "parameters.value", 0, 512)?;
            }
        }
        Ok(RunSettings {
            document_version: self.document_version.clone(),
            parameters,
            schedule_expression: self.schedule_expression.clone(),
            apply_only_at_cron_interval: apply_only,
            schedule_offset: self.schedule_offset,
            max_concurrency: self.max_concurrency.clone(),
            max_errors: self.max_errors.clone(),
            compliance_severity: self.compliance_severity.clone(),
            sync_compliance: self.sync_compliance.clone(),
            output_location: self.output_location.clone(),
            automation_target_parameter_name: self.automation_target_parameter_name.clone(),
        })
    }

    /// InstanceId or Targets (one of them), checked.
    pub fn placement(&self) -> Result<(Option<String>, Vec<Target>), SsmError> {
        let targets = self.targets.clone().unwrap_or_default();
        match (&self.instance_id, targets.is_empty()) {
            (Some(_), false) => Err(SsmError::InvalidTarget(
                "Specify InstanceId or Targets, not both.".into(),
            )),
            (None, true) => Err(SsmError::InvalidTarget(
                "Specify Targets (or InstanceId) to say which managed nodes the association applies to."
                    .into(),
            )),
            (Some(i), true) => {
                if !is_instance_id(i) {
                    return Err(SsmError::InvalidInstanceId(format!(
                        "Instances [[{i}]] not in a valid state for account: an instance id is mi- or i- followed by hex digits."
                    )));
                }
                Ok((Some(i.clone()), Vec::new()))
            }
            (None, false) => {
                check_targets(&targets)?;
                Ok((None, targets))
            }
        }
    }

    pub fn checked_name(&self) -> Result<Option<String>, SsmError> {
        if let Some(n) = &self.association_name {
            check_association_name(n)?;
        }
        Ok(self.association_name.clone())
    }

    pub fn checked_tags(&self) -> Result<TagSet, SsmError> {
        validate_tags(self.tags.as_deref().unwrap_or_default())
    }
}

/// The association's schedule, as stored (it was checked when written).
pub fn schedule_of(
    expression: Option<&str>,
    offset: Option<i32>,
    apply_only: bool,
) -> Option<Schedule> {
    let mut schedule = Schedule::parse(expression?, ScheduleUse::Association).ok()?;
    if let Some(days) = offset {
        schedule = schedule
            .with_offset(days, ScheduleUse::Association, apply_only)
            .ok()?;
    }
    Some(schedule)
}

/// The first scheduled occurrence strictly after `after`; rates count
/// from `anchor` (the association's creation).
pub fn slot_after(
    expression: Option<&str>,
    offset: Option<i32>,
    apply_only: bool,
    after: i64,
    anchor: i64,
) -> Option<Slot> {
    next_slot(&schedule_of(expression, offset, apply_only)?, after, anchor)
}

/// The first occurrence of `schedule` strictly after `after`, in UTC.
pub fn next_slot(schedule: &Schedule, after: i64, anchor: i64) -> Option<Slot> {
    schedule
        .next_after(after, &Zone::utc(), anchor)
        .map(|o| Slot {
            scheduled: o.scheduled,
            due: o.due,
        })
}

/// Whether the expression is a one-time `at(...)`.
pub fn is_one_time(expression: Option<&str>) -> bool {
    expression
        .and_then(|e| Schedule::parse(e, ScheduleUse::Association).ok())
        .is_some_and(|s| s.is_one_time())
}
