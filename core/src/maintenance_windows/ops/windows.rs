//! CreateMaintenanceWindow, UpdateMaintenanceWindow, GetMaintenanceWindow,
//! DeleteMaintenanceWindow and DescribeMaintenanceWindows.

use serde_json::{Map, Value, json};

use crate::clock::{iso8601_millis, parse_filter_time};
use crate::error::SsmError;
use crate::maintenance_windows::context::{
    ATTEMPTS, WindowContext, check_len, check_range, invalid, missing, new_window_id, opt_bool,
    opt_int, opt_str, req_str, schedule_next, schedule_of, too_many_updates,
};
use crate::maintenance_windows::model::Window;
use crate::paging::page_of;
use crate::tags::{Tag, validate_tags};

use super::{filters_of, page_limits};

fn name_ok(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn check_name(name: &str) -> Result<(), SsmError> {
    if name_ok(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{{3,128}}$"
        )))
    }
}

fn date(value: Option<String>, field: &str) -> Result<(Option<String>, Option<i64>), SsmError> {
    match value {
        None => Ok((None, None)),
        Some(v) => {
            let epoch = parse_filter_time(&v).map_err(|_| {
                invalid(format!(
                    "{field} {v} is not a date and time in ISO-8601 Extended format, for example 2021-04-07T14:29:00-08:00."
                ))
            })?;
            Ok((Some(v), Some(epoch.floor() as i64)))
        }
    }
}

/// Checks the fields every window must satisfy together, as they stand
/// after a create or an update.
fn check_window(w: &Window, now: f64) -> Result<(), SsmError> {
    check_name(&w.name)?;
    check_len(w.description.as_deref(), "Description", 1, 128)?;
    check_len(Some(&w.schedule), "Schedule", 1, 256)?;
    check_len(w.schedule_timezone.as_deref(), "ScheduleTimezone", 0, 256)?;
    check_range(w.duration, "Duration", 1, 24)?;
    check_range(w.cutoff, "Cutoff", 0, 23)?;
    if w.cutoff >= w.duration {
        return Err(invalid(
            "The maintenance window Cutoff must be less than its Duration.",
        ));
    }
    if let (Some(start), Some(end)) = (w.start_epoch, w.end_epoch)
        && end <= start
    {
        return Err(invalid(
            "The maintenance window EndDate must be later than its StartDate.",
        ));
    }
    if let Some(end) = w.end_epoch
        && (end as f64) < now
    {
        return Err(invalid(
            "The maintenance window EndDate must be in the future.",
        ));
    }
    // The schedule, its zone and its offset read together (SSM's
    // ValidationException for each).
    schedule_of(w)?;
    Ok(())
}

fn offset_of(body: &Value) -> Result<Option<i32>, SsmError> {
    match opt_int(body, "ScheduleOffset")? {
        None => Ok(None),
        Some(d) => {
            check_range(d, "ScheduleOffset", 1, 6)?;
            Ok(Some(d as i32))
        }
    }
}

fn tags_of(body: &Value) -> Result<crate::tags::TagSet, SsmError> {
    match body.get("Tags") {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(v) => {
            let tags: Vec<Tag> = serde_json::from_value(v.clone()).map_err(|_| {
                SsmError::SerializationException("Tags must be a list of Key and Value.".into())
            })?;
            validate_tags(&tags)
        }
    }
}

pub(crate) async fn create(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let token = opt_str(body, "ClientToken")?;
    check_len(token.as_deref(), "ClientToken", 1, 64)?;
    let (start_date, start_epoch) = date(opt_str(body, "StartDate")?, "StartDate")?;
    let (end_date, end_epoch) = date(opt_str(body, "EndDate")?, "EndDate")?;
    let mut w = Window {
        id: new_window_id(token.as_deref()),
        name: req_str(body, "Name")?,
        description: opt_str(body, "Description")?,
        start_date,
        start_epoch,
        end_date,
        end_epoch,
        schedule: req_str(body, "Schedule")?,
        schedule_timezone: opt_str(body, "ScheduleTimezone")?,
        schedule_offset: offset_of(body)?,
        duration: opt_int(body, "Duration")?.ok_or_else(|| missing("duration"))?,
        cutoff: opt_int(body, "Cutoff")?.ok_or_else(|| missing("cutoff"))?,
        allow_unassociated_targets: opt_bool(body, "AllowUnassociatedTargets")?
            .ok_or_else(|| missing("allowUnassociatedTargets"))?,
        enabled: true,
        created: ctx.now,
        modified: ctx.now,
        tags: tags_of(body)?,
        next_due: None,
        next_scheduled: None,
        fingerprint: None,
        revision: 1,
    };
    check_window(&w, ctx.now)?;
    ctx.caller
        .authorize("ssm:CreateMaintenanceWindow", &ctx.window_arn(&w.id))?;
    schedule_next(&mut w, ctx.now.floor() as i64);
    if token.is_some() {
        w.fingerprint = Some(fingerprint(body));
    }
    if ctx.store.insert_window(&w).await? {
        return Ok(json!({ "WindowId": w.id }));
    }
    // Only a ClientToken's id can be taken: a retry finds its window.
    match ctx.store.get_window(&w.id).await? {
        Some(first) if first.fingerprint == w.fingerprint => Ok(json!({ "WindowId": w.id })),
        _ => Err(SsmError::IdempotentParameterMismatch(format!(
            "ClientToken {} was given before with other parameters. Repeat that request unchanged, or give a new ClientToken.",
            token.unwrap_or_default()
        ))),
    }
}

/// A request as a retry must repeat it: its JSON with sorted keys.
pub(crate) fn fingerprint(body: &Value) -> String {
    // serde_json's map is ordered by key, so the text is canonical.
    let sorted: Map<String, Value> = body
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Value::Object(sorted).to_string()
}

fn next_time(w: &Window) -> Option<String> {
    w.next_due.map(|t| iso8601_millis(t as f64))
}

fn put_opt(out: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        out.insert(key.into(), v);
    }
}

/// The fields UpdateMaintenanceWindow and GetMaintenanceWindow share.
fn window_json(w: &Window) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("WindowId".into(), json!(w.id));
    out.insert("Name".into(), json!(w.name));
    put_opt(
        &mut out,
        "Description",
        w.description.as_ref().map(|v| json!(v)),
    );
    put_opt(
        &mut out,
        "StartDate",
        w.start_date.as_ref().map(|v| json!(v)),
    );
    put_opt(&mut out, "EndDate", w.end_date.as_ref().map(|v| json!(v)));
    out.insert("Schedule".into(), json!(w.schedule));
    put_opt(
        &mut out,
        "ScheduleTimezone",
        w.schedule_timezone.as_ref().map(|v| json!(v)),
    );
    put_opt(
        &mut out,
        "ScheduleOffset",
        w.schedule_offset.map(|v| json!(v)),
    );
    out.insert("Duration".into(), json!(w.duration));
    out.insert("Cutoff".into(), json!(w.cutoff));
    out.insert(
        "AllowUnassociatedTargets".into(),
        json!(w.allow_unassociated_targets),
    );
    out.insert("Enabled".into(), json!(w.enabled));
    out
}

pub(crate) async fn get(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowId")?;
    let w = ctx.window("ssm:GetMaintenanceWindow", &id).await?;
    let mut out = window_json(&w);
    put_opt(
        &mut out,
        "NextExecutionTime",
        next_time(&w).map(|v| json!(v)),
    );
    out.insert("CreatedDate".into(), json!(w.created));
    out.insert("ModifiedDate".into(), json!(w.modified));
    Ok(Value::Object(out))
}

pub(crate) async fn update(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowId")?;
    let replace = opt_bool(body, "Replace")?.unwrap_or(false);
    for _ in 0..ATTEMPTS {
        let cur = ctx.window("ssm:UpdateMaintenanceWindow", &id).await?;
        let mut w = cur.clone();
        // With Replace, what is not given is cleared (and what
        // CreateMaintenanceWindow requires must be given).
        macro_rules! field {
            ($key:literal, $slot:expr, $read:expr) => {
                match $read {
                    Some(v) => $slot = v,
                    None if replace => {
                        return Err(missing(&super::super::context::lower_first($key)))
                    }
                    None => {}
                }
            };
        }
        field!("Name", w.name, opt_str(body, "Name")?);
        field!("Schedule", w.schedule, opt_str(body, "Schedule")?);
        field!("Duration", w.duration, opt_int(body, "Duration")?);
        field!("Cutoff", w.cutoff, opt_int(body, "Cutoff")?);
        field!(
            "AllowUnassociatedTargets",
            w.allow_unassociated_targets,
            opt_bool(body, "AllowUnassociatedTargets")?
        );
        if let Some(e) = opt_bool(body, "Enabled")? {
            w.enabled = e;
        } else if replace {
            w.enabled = true;
        }
        macro_rules! optional {
            ($key:literal, $slot:expr, $read:expr) => {
                match $read {
                    Some(v) => $slot = Some(v),
                    None if replace => $slot = None,
                    None => {}
                }
            };
        }
        optional!("Description", w.description, opt_str(body, "Description")?);
        optional!(
            "ScheduleTimezone",
            w.schedule_timezone,
            opt_str(body, "ScheduleTimezone")?
        );
        optional!("ScheduleOffset", w.schedule_offset, offset_of(body)?);
        match opt_str(body, "StartDate")? {
            Some(v) => (w.start_date, w.start_epoch) = date(Some(v), "StartDate")?,
            None if replace => (w.start_date, w.start_epoch) = (None, None),
            None => {}
        }
        match opt_str(body, "EndDate")? {
            Some(v) => (w.end_date, w.end_epoch) = date(Some(v), "EndDate")?,
            None if replace => (w.end_date, w.end_epoch) = (None, None),
            None => {}
        }
        check_window(&w, ctx.now)?;
        let same_schedule = (
            &w.schedule,
            &w.schedule_timezone,
            w.schedule_offset,
            w.start_epoch,
            w.end_epoch,
            w.enabled,
        ) == (
            &cur.schedule,
            &cur.schedule_timezone,
            cur.schedule_offset,
            cur.start_epoch,
            cur.end_epoch,
            cur.enabled,
        );
        // An unchanged schedule keeps its pending occurrence (one due but
        // not yet claimed still runs).
        if !same_schedule {
            schedule_next(&mut w, ctx.now.floor() as i64);
        }
        w.modified = ctx.now;
        w.revision = cur.revision + 1;
        if ctx.store.update_window(&w, cur.revision).await? {
            return Ok(Value::Object(window_json(&w)));
        }
    }
    Err(too_many_updates(&format!("Maintenance window {id}")))
}

pub(crate) async fn delete(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let id = req_str(body, "WindowId")?;
    ctx.caller
        .authorize("ssm:DeleteMaintenanceWindow", &ctx.window_arn(&id))?;
    // SSM answers the id whether or not the window still exists, so a
    // repeated delete succeeds.
    if super::super::context::is_window_id(&id) {
        ctx.store.delete_window(&id).await?;
    }
    Ok(json!({ "WindowId": id }))
}

pub(crate) async fn describe(ctx: &WindowContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let (limit, token) = page_limits(body, 10, 100, 10)?;
    let filters = filters_of(body, &["Name", "Enabled"])?;
    let mut out = Vec::new();
    for w in ctx.store.list_windows().await? {
        let keep = filters.iter().all(|(k, vals)| match k.as_str() {
            "Name" => vals.contains(&w.name),
            "Enabled" => vals
                .iter()
                .any(|v| v.eq_ignore_ascii_case(&w.enabled.to_string())),
            _ => true,
        });
        if keep
            && ctx
                .caller
                .authorize("ssm:DescribeMaintenanceWindows", &ctx.window_arn(&w.id))
                .is_ok()
        {
            out.push(w);
        }
    }
    let (page, next) = page_of(out, limit, token.as_deref())?;
    let identities: Vec<Value> = page
        .iter()
        .map(|w| {
            let mut m = Map::new();
            m.insert("WindowId".into(), json!(w.id));
            m.insert("Name".into(), json!(w.name));
            put_opt(
                &mut m,
                "Description",
                w.description.as_ref().map(|v| json!(v)),
            );
            m.insert("Enabled".into(), json!(w.enabled));
            m.insert("Duration".into(), json!(w.duration));
            m.insert("Cutoff".into(), json!(w.cutoff));
            m.insert("Schedule".into(), json!(w.schedule));
            put_opt(
                &mut m,
                "ScheduleTimezone",
                w.schedule_timezone.as_ref().map(|v| json!(v)),
            );
            put_opt(
                &mut m,
                "ScheduleOffset",
                w.schedule_offset.map(|v| json!(v)),
            );
            put_opt(&mut m, "StartDate", w.start_date.as_ref().map(|v| json!(v)));
            put_opt(&mut m, "EndDate", w.end_date.as_ref().map(|v| json!(v)));
            put_opt(&mut m, "NextExecutionTime", next_time(w).map(|v| json!(v)));
            Value::Object(m)
        })
        .collect();
    let mut resp = json!({ "WindowIdentities": identities });
    if let Some(t) = next {
        resp["NextToken"] = json!(t);
    }
    Ok(resp)
}
