//! What every maintenance window operation works with: the context, ids and
//! ARNs, the reading of request fields, and a window's next occurrence.

use serde_json::Value;

use super::model::Window;
use super::ports::WindowStore;
use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::schedule::{Occurrence, Schedule, ScheduleUse, Zone};

pub struct WindowContext<'a> {
    pub store: &'a dyn WindowStore,
    /// Who asks; every window touched is authorized by its ARN.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    /// The buckets this stack may write command output to (SendCommand's
    /// rule); a task naming another is refused when registered or updated.
    pub output_buckets: &'a [String],
    /// Epoch seconds.
    pub now: f64,
}

impl WindowContext<'_> {
    pub fn window_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:maintenancewindow/{id}",
            self.scope.region, self.scope.account
        )
    }

    /// The caller's IAM user name (what follows the last `/` of its ARN):
    /// the user a registered task runs as.
    pub fn run_as(&self) -> String {
        let arn = self.caller.user_arn();
        arn.rsplit('/').next().unwrap_or(&arn).to_string()
    }

    /// The window `id`, authorized for `action`.
    pub async fn window(&self, action: &str, id: &str) -> Result<Window, SsmError> {
        self.caller.authorize(action, &self.window_arn(id))?;
        if !is_window_id(id) {
            return Err(window_does_not_exist(id));
        }
        self.store
            .get_window(id)
            .await?
            .ok_or_else(|| window_does_not_exist(id))
    }
}

/// Conditional writes tried before answering TooManyUpdates.
pub(super) const ATTEMPTS: usize = 5;

/// `mw-` and 17 lowercase hex digits.
pub fn is_window_id(id: &str) -> bool {
    id.strip_prefix("mw-").is_some_and(|hex| {
        hex.len() == 17
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// A new window id; from a ClientToken, always the same one (so a retry
/// finds the window it created).
pub fn new_window_id(token: Option<&str>) -> String {
    let hex = match token {
        Some(t) => crate::ids::sha256_hex(format!("maintenance-window#{t}").as_bytes()),
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    format!("mw-{}", &hex[..17])
}

pub fn window_does_not_exist(id: &str) -> SsmError {
    SsmError::DoesNotExistException(format!("Maintenance window {id} does not exist"))
}

pub(super) fn too_many_updates(what: &str) -> SsmError {
    SsmError::TooManyUpdates(format!(
        "{what} is being changed by other requests; try again."
    ))
}

pub(super) fn invalid(msg: impl Into<String>) -> SsmError {
    SsmError::ValidationException(msg.into())
}

pub(super) fn missing(field: &str) -> SsmError {
    invalid(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

/// A string field; another type is refused.
pub(super) fn opt_str(body: &Value, key: &str) -> Result<Option<String>, SsmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(SsmError::SerializationException(format!(
            "{key} must be a string."
        ))),
    }
}

pub(super) fn req_str(body: &Value, key: &str) -> Result<String, SsmError> {
    opt_str(body, key)?.ok_or_else(|| missing(&lower_first(key)))
}

pub(super) fn opt_int(body: &Value, key: &str) -> Result<Option<i64>, SsmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| SsmError::SerializationException(format!("{key} must be an integer."))),
    }
}

pub(super) fn opt_bool(body: &Value, key: &str) -> Result<Option<bool>, SsmError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(SsmError::SerializationException(format!(
            "{key} must be a boolean."
        ))),
    }
}

/// SSM's length constraint on a string field, in its wording.
pub(super) fn check_len(
    value: Option<&str>,
    field: &str,
    min: usize,
    max: usize,
) -> Result<(), SsmError> {
    let Some(v) = value else { return Ok(()) };
    let n = v.chars().count();
    if n < min {
        return Err(invalid(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
            lower_first(field)
        )));
    }
    if n > max {
        return Err(invalid(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length less than or equal to {max}",
            lower_first(field)
        )));
    }
    Ok(())
}

/// SSM's range constraint on an integer field, in its wording.
pub(super) fn check_range(value: i64, field: &str, min: i64, max: i64) -> Result<(), SsmError> {
    if value < min {
        return Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to {min}",
            lower_first(field)
        )));
    }
    if value > max {
        return Err(invalid(format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: Member must have value less than or equal to {max}",
            lower_first(field)
        )));
    }
    Ok(())
}

pub(super) fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The window's schedule, as its fields give it.
pub fn schedule_of(w: &Window) -> Result<(Schedule, Zone), SsmError> {
    let mut schedule = Schedule::parse(&w.schedule, ScheduleUse::MaintenanceWindow)?;
    if let Some(days) = w.schedule_offset {
        schedule = schedule.with_offset(days, ScheduleUse::MaintenanceWindow, false)?;
    }
    let zone = match &w.schedule_timezone {
        Some(name) => Zone::named(name)?,
        None => Zone::utc(),
    };
    Ok((schedule, zone))
}

/// Where a rate counts from: the StartDate, else the creation time.
pub fn anchor_of(w: &Window) -> i64 {
    w.start_epoch.unwrap_or(w.created.floor() as i64)
}

/// The window's first occurrence scheduled strictly after `after`, within
/// its StartDate and EndDate; `None` when there is none.
pub fn next_occurrence(w: &Window, after: i64) -> Option<Occurrence> {
    let (schedule, zone) = schedule_of(w).ok()?;
    let from = match w.start_epoch {
        // The first run may be at StartDate itself.
        Some(start) if after < start => start - 1,
        _ => after,
    };
    let next = schedule.next_after(from, &zone, anchor_of(w))?;
    match w.end_epoch {
        Some(end) if next.scheduled > end => None,
        _ => Some(next),
    }
}

/// Sets the window's next occurrence after `after` (none when disabled).
pub fn schedule_next(w: &mut Window, after: i64) {
    let next = if w.enabled {
        next_occurrence(w, after)
    } else {
        None
    };
    w.next_due = next.map(|o| o.due);
    w.next_scheduled = next.map(|o| o.scheduled);
}
