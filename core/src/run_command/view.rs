//! Commands and invocations in SSM's response shapes.

use serde_json::{Map, Value, json};

use super::model::{Command, Invocation, PluginRecord};
use crate::clock::{elapsed, iso8601_millis};
use crate::output::{STDERR_INLINE_LIMIT, STDOUT_INLINE_LIMIT, plugin_output, truncate_chars};

/// SSM's limit on a CommandPlugin's `Output` in ListCommandInvocations.
pub const PLUGIN_OUTPUT_LIMIT: usize = 2500;

fn notification(n: &Option<Value>) -> Value {
    let mut out = json!({"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""});
    if let (Some(Value::Object(given)), Value::Object(o)) = (n, &mut out) {
        for (k, v) in given {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

fn cloud_watch() -> Value {
    json!({"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false})
}

/// SSM's `Command`.
pub fn command(c: &Command) -> Value {
    let t = &c.tally;
    json!({
        "CommandId": c.command_id,
        "DocumentName": c.document_name,
        "DocumentVersion": c.document_version,
        "Comment": c.comment,
        "ExpiresAfter": c.expires_after,
        "Parameters": c.parameters,
        "InstanceIds": c.instance_ids,
        "Targets": c.targets,
        "RequestedDateTime": c.requested_date_time,
        "Status": c.status,
        "StatusDetails": c.status_details,
        "OutputS3Region": c.output_s3_region,
        "OutputS3BucketName": c.output_s3_bucket_name,
        "OutputS3KeyPrefix": c.output_s3_key_prefix,
        "MaxConcurrency": c.max_concurrency,
        "MaxErrors": c.max_errors,
        "TargetCount": t.target_count,
        "CompletedCount": t.completed(),
        "ErrorCount": t.errors(),
        "DeliveryTimedOutCount": t.delivery_timed_out,
        "ServiceRole": c.service_role,
        "NotificationConfig": notification(&c.notification_config),
        "CloudWatchOutputConfig": cloud_watch(),
        "TimeoutSeconds": c.timeout_seconds,
        "TriggeredAlarms": [],
    })
}

fn plugin(inv: &Invocation, p: &PluginRecord) -> Value {
    let output = plugin_output(&p.standard_output_content, &p.standard_error_content);
    let mut m = Map::new();
    m.insert("Name".into(), json!(p.name));
    m.insert("Status".into(), json!(p.status_details.status().as_str()));
    m.insert("StatusDetails".into(), json!(p.status_details.as_str()));
    m.insert("ResponseCode".into(), json!(p.response_code));
    if let Some(s) = p.response_start_date_time {
        m.insert("ResponseStartDateTime".into(), json!(s));
    }
    if let Some(e) = p.response_finish_date_time {
        m.insert("ResponseFinishDateTime".into(), json!(e));
    }
    m.insert(
        "Output".into(),
        json!(truncate_chars(&output, PLUGIN_OUTPUT_LIMIT)),
    );
    m.insert("StandardOutputUrl".into(), json!(p.standard_output_url));
    m.insert("StandardErrorUrl".into(), json!(p.standard_error_url));
    m.insert("OutputS3Region".into(), json!(inv.output_s3_region));
    m.insert(
        "OutputS3BucketName".into(),
        json!(inv.output_s3_bucket_name),
    );
    m.insert("OutputS3KeyPrefix".into(), json!(inv.output_s3_key_prefix));
    Value::Object(m)
}

/// SSM's `CommandInvocation`; `details` adds its CommandPlugins.
pub fn invocation(inv: &Invocation, details: bool) -> Value {
    // An invocation shows its plugin's URLs when it has just one plugin.
    let (out_url, err_url) = match inv.plugins.as_slice() {
        [only] => (
            only.standard_output_url.as_str(),
            only.standard_error_url.as_str(),
        ),
        _ => ("", ""),
    };
    let plugins: Vec<Value> = if details {
        inv.plugins.iter().map(|p| plugin(inv, p)).collect()
    } else {
        Vec::new()
    };
    json!({
        "CommandId": inv.command_id,
        "InstanceId": inv.instance_id,
        "InstanceName": inv.instance_name,
        "Comment": inv.comment,
        "DocumentName": inv.document_name,
        "DocumentVersion": inv.document_version,
        "RequestedDateTime": inv.requested_date_time,
        "Status": inv.status_details.status().as_str(),
        "StatusDetails": inv.status_details.as_str(),
        "TraceOutput": "",
        "StandardOutputUrl": out_url,
        "StandardErrorUrl": err_url,
        "CommandPlugins": plugins,
        "ServiceRole": inv.service_role,
        "NotificationConfig": notification(&inv.notification_config),
        "CloudWatchOutputConfig": cloud_watch(),
    })
}

/// GetCommandInvocation's answer for one plugin (`None`: the invocation as a
/// whole, with its first plugin's output).
pub fn get_invocation(inv: &Invocation, plugin: Option<&PluginRecord>, now: f64) -> Value {
    let first = inv.plugins.first();
    let p = plugin.or(first);
    let (detail, code, start, end) = match plugin {
        Some(p) => (
            p.status_details,
            p.response_code,
            p.response_start_date_time,
            p.response_finish_date_time,
        ),
        None => (
            inv.status_details,
            inv.response_code,
            inv.execution_start_date_time,
            inv.execution_end_date_time,
        ),
    };
    let elapsed_time = match (start, end) {
        (Some(s), Some(e)) => elapsed(e - s),
        (Some(s), None) => elapsed(now - s),
        _ => String::new(),
    };
    let stdout = p
        .map(|p| truncate_chars(&p.standard_output_content, STDOUT_INLINE_LIMIT))
        .unwrap_or("");
    let stderr = p
        .map(|p| truncate_chars(&p.standard_error_content, STDERR_INLINE_LIMIT))
        .unwrap_or("");
    json!({
        "CommandId": inv.command_id,
        "InstanceId": inv.instance_id,
        "Comment": inv.comment,
        "DocumentName": inv.document_name,
        "DocumentVersion": inv.document_version,
        "PluginName": p.map(|p| p.name.as_str()).unwrap_or(""),
        "ResponseCode": code,
        "ExecutionStartDateTime": start.map(iso8601_millis).unwrap_or_default(),
        "ExecutionElapsedTime": elapsed_time,
        "ExecutionEndDateTime": end.map(iso8601_millis).unwrap_or_default(),
        "Status": detail.status().as_str(),
        "StatusDetails": detail.as_str(),
        "StandardOutputContent": stdout,
        "StandardOutputUrl": p.map(|p| p.standard_output_url.as_str()).unwrap_or(""),
        "StandardErrorContent": stderr,
        "StandardErrorUrl": p.map(|p| p.standard_error_url.as_str()).unwrap_or(""),
        "CloudWatchOutputConfig": cloud_watch(),
    })
}
