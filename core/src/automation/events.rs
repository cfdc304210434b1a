//! The events an execution publishes on the bus, with SSM's detail-types
//! and detail fields.

use serde_json::json;

use super::execution::{Announced, AutomationStatus, Execution, StepRecord};
use crate::clock::iso8601_seconds;
use crate::events::Event;

pub const EXECUTION_STATUS_CHANGE: &str = "EC2 Automation Execution Status-change Notification";
pub const STEP_STATUS_CHANGE: &str = "EC2 Automation Step Status-change Notification";

fn time(t: Option<f64>) -> String {
    t.map(iso8601_seconds).unwrap_or_default()
}

/// `status` is the one the execution changed to, which a later change in
/// the same write may have passed already.
pub fn execution_changed(e: &Execution, status: AutomationStatus, now: f64) -> Event {
    Event {
        detail_type: EXECUTION_STATUS_CHANGE,
        resources: vec![],
        detail: json!({
            "ExecutionId": e.execution_id,
            "Definition": e.document_name,
            "DefinitionVersion": e.document_version.parse::<f64>().unwrap_or(1.0),
            "Status": status.as_str(),
            "StartTime": time(e.start_time),
            "EndTime": time(e.end_time),
            "Time": now * 1000.0,
            "ExecutedBy": e.executed_by,
        }),
    }
}

/// The events a change of an execution's record makes, as its table's
/// stream tells it: those its write announced, in order. A write that
/// announced nothing (or a record that did not change) makes none.
pub fn of_execution_change(old: Option<&Execution>, new: Option<&Execution>) -> Vec<Event> {
    let Some(new) = new else {
        return Vec::new();
    };
    if old.is_some_and(|o| o.revision == new.revision) || new.announced.revision != new.revision {
        return Vec::new();
    }
    let at = new.announced.at;
    new.announced
        .changes
        .iter()
        .filter_map(|c| match *c {
            Announced::Execution(status) => Some(execution_changed(new, status, at)),
            Announced::Step(i, status) => {
                new.steps.get(i).map(|r| step_changed(new, r, status, at))
            }
        })
        .collect()
}

pub fn step_changed(e: &Execution, r: &StepRecord, status: AutomationStatus, now: f64) -> Event {
    Event {
        detail_type: STEP_STATUS_CHANGE,
        resources: vec![],
        detail: json!({
            "ExecutionId": e.execution_id,
            "Definition": e.document_name,
            "DefinitionVersion": e.document_version.parse::<f64>().unwrap_or(1.0),
            "Status": status.as_str(),
            "StepName": r.name,
            "Action": r.action,
            "StartTime": time(Some(r.start_time)),
            "EndTime": time(r.end_time),
            "Time": now * 1000.0,
        }),
    }
}
