//! The Run Command operations' inputs, as SSM names and bounds them, parsed
//! and validated before anything is read or written.

use serde::Deserialize;
use serde_json::Value;

use super::ports::TimeRange;
use crate::clock::parse_filter_time;
use crate::documents::GivenParameters;
use crate::error::SsmError;
use crate::ids::is_instance_id;
use crate::run_command::status::Limit;
use crate::targets::{MAX_INSTANCE_IDS, Target};

/// SSM's bounds for SendCommand's `TimeoutSeconds` and its default.
pub const MIN_DELIVERY_TIMEOUT: u32 = 30;
pub const MAX_DELIVERY_TIMEOUT: u32 = 2_592_000;
pub const DEFAULT_DELIVERY_TIMEOUT: u32 = 3600;
pub const DEFAULT_MAX_CONCURRENCY: &str = "50";
pub const DEFAULT_MAX_ERRORS: &str = "0";
/// SSM's page size bounds for ListCommands / ListCommandInvocations.
pub const MAX_RESULTS: u32 = 50;
/// The parameter names and values one SendCommand may carry, in bytes, like
/// a document's content: the record, the node's signed message (an SQS
/// message) and the steps they expand into must stay within their stores'
/// limits.
pub const MAX_PARAMETERS_BYTES: usize = 64 * 1024;
/// The steps a command sends, in bytes, once parameters are put in.
pub const MAX_STEPS_BYTES: usize = 128 * 1024;

pub(crate) use crate::error::parse_request as parse;

fn validation(value: impl std::fmt::Display, field: &str, constraint: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

fn check_len(value: &str, field: &str, min: usize, max: usize) -> Result<(), SsmError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(validation(
            value,
            field,
            &format!("Member must have length between {min} and {max}"),
        ));
    }
    Ok(())
}

/// SSM command ids are UUIDs: a malformed one is a validation error, a
/// well-formed unknown one is `InvalidCommandId` (decided by the caller).
pub fn check_command_id(id: &str) -> Result<(), SsmError> {
    if id.chars().count() != 36 {
        return Err(validation(
            id,
            "commandId",
            "Member must have length equal to 36",
        ));
    }
    Ok(())
}

fn check_instance_id(id: &str) -> Result<(), SsmError> {
    if !is_instance_id(id) {
        return Err(SsmError::InvalidInstanceId(format!(
            "Instance id {id} is not valid: it is mi- followed by 17 hex digits, or i- followed by 8 or 17."
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------- SendCommand

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SendCommandInput {
    pub document_name: Option<String>,
    pub document_version: Option<String>,
    pub document_hash: Option<String>,
    pub document_hash_type: Option<String>,
    pub instance_ids: Vec<String>,
    pub targets: Vec<Target>,
    pub timeout_seconds: Option<i64>,
    pub comment: Option<String>,
    pub parameters: GivenParameters,
    pub output_s3_bucket_name: Option<String>,
    pub output_s3_key_prefix: Option<String>,
    pub output_s3_region: Option<String>,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub service_role_arn: Option<String>,
    pub notification_config: Option<Value>,
    pub cloud_watch_output_config: Option<Value>,
    pub alarm_configuration: Option<Value>,
}

/// SendCommand's input after checks; targets and document resolve next.
#[derive(Debug, Clone, PartialEq)]
pub struct SendCommandRequest {
    pub document_name: String,
    pub document_version: Option<String>,
    pub instance_ids: Vec<String>,
    pub targets: Vec<Target>,
    pub timeout_seconds: u32,
    pub comment: String,
    pub parameters: GivenParameters,
    pub output_s3_bucket_name: String,
    pub output_s3_key_prefix: String,
    pub output_s3_region: String,
    pub max_concurrency: String,
    pub max_errors: String,
    pub service_role_arn: String,
    pub notification_config: Option<Value>,
}

impl SendCommandRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let input: SendCommandInput = parse(body)?;
        Self::validate(input)
    }

    pub fn validate(i: SendCommandInput) -> Result<Self, SsmError> {
        let document_name = i.document_name.unwrap_or_default();
        if document_name.is_empty() {
            return Err(validation(
                "null",
                "documentName",
                "Member must not be null; give the document to run, for example AWS-RunShellScript",
            ));
        }
        if let Some(v) = &i.document_version
            && (v.is_empty()
                || !(v == "$DEFAULT" || v == "$LATEST" || v.bytes().all(|b| b.is_ascii_digit())))
        {
            return Err(validation(
                v,
                "documentVersion",
                "Member must satisfy regular expression pattern: ([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)",
            ));
        }
        let timeout_seconds = match i.timeout_seconds {
            None => DEFAULT_DELIVERY_TIMEOUT,
            Some(t) if t < MIN_DELIVERY_TIMEOUT as i64 => {
                return Err(validation(
                    t,
                    "timeoutSeconds",
                    &format!(
                        "Member must have value greater than or equal to {MIN_DELIVERY_TIMEOUT}"
                    ),
                ));
            }
            Some(t) if t > MAX_DELIVERY_TIMEOUT as i64 => {
                return Err(validation(
                    t,
                    "timeoutSeconds",
                    &format!("Member must have value less than or equal to {MAX_DELIVERY_TIMEOUT}"),
                ));
            }
            Some(t) => t as u32,
        };
        let comment = i.comment.unwrap_or_default();
        check_len(&comment, "comment", 0, 100)?;
        let bucket = i.output_s3_bucket_name.unwrap_or_default();
        if !bucket.is_empty() {
            check_len(&bucket, "outputS3BucketName", 3, 63)?;
            let ok = bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
            if !ok {
                return Err(SsmError::InvalidOutputFolder(format!(
                    "OutputS3BucketName {bucket} is not a valid S3 bucket name: use lowercase letters, digits, dots and hyphens."
                )));
            }
        }
        let prefix = i.output_s3_key_prefix.unwrap_or_default();
        check_len(&prefix, "outputS3KeyPrefix", 0, 500)?;
        let region = i.output_s3_region.unwrap_or_default();
        if !region.is_empty() {
            check_len(&region, "outputS3Region", 3, 20)?;
        }
        if bucket.is_empty() && (!prefix.is_empty() || !region.is_empty()) {
            return Err(SsmError::InvalidOutputFolder(
                "OutputS3KeyPrefix and OutputS3Region need OutputS3BucketName: give the bucket too.".into(),
            ));
        }
        let max_concurrency = i
            .max_concurrency
            .unwrap_or_else(|| DEFAULT_MAX_CONCURRENCY.into());
        check_len(&max_concurrency, "maxConcurrency", 1, 7)?;
        Limit::parse("maxConcurrency", &max_concurrency)?;
        let max_errors = i.max_errors.unwrap_or_else(|| DEFAULT_MAX_ERRORS.into());
        check_len(&max_errors, "maxErrors", 1, 7)?;
        Limit::parse("maxErrors", &max_errors)?;
        let service_role_arn = i.service_role_arn.unwrap_or_default();
        if !service_role_arn.is_empty() && !service_role_arn.starts_with("arn:") {
            return Err(validation(
                &service_role_arn,
                "serviceRoleArn",
                "Member must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
            ));
        }
        if let Some(n) = &i.notification_config
            && !n.is_object()
        {
            return Err(SsmError::SerializationException(
                "NotificationConfig must be an object with NotificationArn, NotificationEvents and NotificationType.".into(),
            ));
        }
        let size: usize = i
            .parameters
            .iter()
            .map(|(name, values)| name.len() + values.iter().map(String::len).sum::<usize>())
            .sum();
        if size > MAX_PARAMETERS_BYTES {
            return Err(SsmError::InvalidParameters(format!(
                "The parameters total {size} bytes; a command takes at most {MAX_PARAMETERS_BYTES}."
            )));
        }
        for (name, values) in &i.parameters {
            if name.is_empty() {
                return Err(SsmError::InvalidParameters(
                    "A parameter name is empty.".into(),
                ));
            }
            if values.is_empty() {
                return Err(SsmError::InvalidParameters(format!(
                    "Parameter \"{name}\" has no values; give at least one or leave it out."
                )));
            }
        }
        Ok(Self {
            document_name,
            document_version: i.document_version,
            instance_ids: i.instance_ids,
            targets: i.targets,
            timeout_seconds,
            comment,
            parameters: i.parameters,
            output_s3_bucket_name: bucket,
            output_s3_key_prefix: prefix,
            output_s3_region: region,
            max_concurrency,
            max_errors,
            service_role_arn,
            notification_config: i.notification_config,
        })
    }
}

/// Why `bucket` may not receive command output, or `None` when it may.
/// `allowed`: the stack's output bucket first, then the operator's extra
/// ones. Output is written through URLs the control plane signs with rights
/// on these buckets only, so S3 would refuse any other bucket's upload.
pub fn output_bucket_refusal(bucket: &str, allowed: &[String]) -> Option<String> {
    if bucket.is_empty() || allowed.iter().any(|a| a == bucket) {
        return None;
    }
    let listed = if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    Some(format!(
        "Output cannot be written to bucket {bucket}: this Steward stack writes command output only to {listed}. Use one of those, or add {bucket} to the stack's OutputBuckets parameter and deploy again."
    ))
}

/// [`output_bucket_refusal`] as SendCommand's error.
pub fn check_output_bucket(bucket: &str, allowed: &[String]) -> Result<(), SsmError> {
    match output_bucket_refusal(bucket, allowed) {
        None => Ok(()),
        Some(why) => Err(SsmError::InvalidOutputFolder(why)),
    }
}

// ---------------------------------------------------------------- listing

/// SSM's `CommandFilter` (`key`/`value`, lower case on the wire).
#[derive(Debug, Clone, Deserialize)]
pub struct CommandFilterInput {
    pub key: String,
    pub value: String,
}

/// The filters of ListCommands / ListCommandInvocations, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandFilters {
    pub range: TimeRange,
    pub status: Option<String>,
    /// `Some(true)`: Executing only; `Some(false)`: Complete only.
    pub executing: Option<bool>,
    pub document_name: Option<String>,
}

const COMMAND_STATUSES: [&str; 7] = [
    "Pending",
    "InProgress",
    "Success",
    "Cancelled",
    "Failed",
    "TimedOut",
    "Cancelling",
];

impl CommandFilters {
    pub fn parse(filters: &[CommandFilterInput]) -> Result<Self, SsmError> {
        if filters.len() > 5 {
            return Err(validation(
                filters.len(),
                "filters",
                "Member must have length less than or equal to 5",
            ));
        }
        let mut f = CommandFilters::default();
        for fl in filters {
            check_len(&fl.value, "filters.member.value", 1, 256)?;
            match fl.key.as_str() {
                "InvokedAfter" => f.range.after = Some(parse_filter_time(&fl.value)?),
                "InvokedBefore" => f.range.before = Some(parse_filter_time(&fl.value)?),
                "Status" => {
                    if !COMMAND_STATUSES.contains(&fl.value.as_str()) {
                        return Err(SsmError::ValidationException(format!(
                            "Status filter value {} is not a command status; use one of {}.",
                            fl.value,
                            COMMAND_STATUSES.join(", ")
                        )));
                    }
                    f.status = Some(fl.value.clone());
                }
                "ExecutionStage" => {
                    f.executing = Some(match fl.value.as_str() {
                        "Executing" => true,
                        "Complete" => false,
                        other => {
                            return Err(SsmError::ValidationException(format!(
                                "ExecutionStage filter value {other} is not valid; use Executing or Complete."
                            )));
                        }
                    })
                }
                "DocumentName" => f.document_name = Some(fl.value.clone()),
                other => {
                    return Err(SsmError::InvalidFilterKey(format!(
                        "Filter key {other} is not supported; use InvokedAfter, InvokedBefore, Status, ExecutionStage or DocumentName."
                    )));
                }
            }
        }
        Ok(f)
    }

    /// Whether a command (or invocation) with these attributes passes.
    pub fn accepts(&self, requested: f64, status: &str, document_name: &str) -> bool {
        if self.range.after.is_some_and(|a| requested < a)
            || self.range.before.is_some_and(|b| requested > b)
        {
            return false;
        }
        if self.status.as_deref().is_some_and(|s| s != status) {
            return false;
        }
        if let Some(executing) = self.executing {
            let running = matches!(status, "Pending" | "InProgress" | "Delayed" | "Cancelling");
            if running != executing {
                return false;
            }
        }
        if self
            .document_name
            .as_deref()
            .is_some_and(|d| d != document_name)
        {
            return false;
        }
        true
    }
}

fn check_max_results(n: Option<i64>) -> Result<u32, SsmError> {
    match n {
        None => Ok(MAX_RESULTS),
        Some(n) if (1..=MAX_RESULTS as i64).contains(&n) => Ok(n as u32),
        Some(n) => Err(validation(
            n,
            "maxResults",
            &format!("Member must have value between 1 and {MAX_RESULTS}"),
        )),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListInput {
    command_id: Option<String>,
    instance_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    filters: Vec<CommandFilterInput>,
    details: bool,
}

/// ListCommands' and ListCommandInvocations' input, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    pub command_id: Option<String>,
    pub instance_id: Option<String>,
    pub max_results: u32,
    pub next_token: Option<String>,
    pub filters: CommandFilters,
    pub details: bool,
}

impl ListRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: ListInput = parse(body)?;
        let command_id = i.command_id.filter(|c| !c.is_empty());
        if let Some(c) = &command_id {
            check_command_id(c)?;
        }
        let instance_id = i.instance_id.filter(|c| !c.is_empty());
        if let Some(n) = &instance_id {
            check_instance_id(n)?;
        }
        Ok(Self {
            command_id,
            instance_id,
            max_results: check_max_results(i.max_results)?,
            next_token: i.next_token.filter(|t| !t.is_empty()),
            filters: CommandFilters::parse(&i.filters)?,
            details: i.details,
        })
    }
}

// ---------------------------------------------------------------- Get / Cancel

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GetInput {
    command_id: Option<String>,
    instance_id: Option<String>,
    plugin_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetInvocationRequest {
    pub command_id: String,
    pub instance_id: String,
    pub plugin_name: Option<String>,
}

impl GetInvocationRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: GetInput = parse(body)?;
        let command_id = i.command_id.unwrap_or_default();
        if command_id.is_empty() {
            return Err(validation("null", "commandId", "Member must not be null"));
        }
        check_command_id(&command_id)?;
        let instance_id = i.instance_id.unwrap_or_default();
        if instance_id.is_empty() {
            return Err(validation("null", "instanceId", "Member must not be null"));
        }
        check_instance_id(&instance_id)?;
        let plugin_name = i.plugin_name.filter(|p| !p.is_empty());
        if let Some(p) = &plugin_name {
            check_len(p, "pluginName", 4, 500)?;
        }
        Ok(Self {
            command_id,
            instance_id,
            plugin_name,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CancelInput {
    command_id: Option<String>,
    instance_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub command_id: String,
    pub instance_ids: Vec<String>,
}

impl CancelRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: CancelInput = parse(body)?;
        let command_id = i.command_id.unwrap_or_default();
        if command_id.is_empty() {
            return Err(validation("null", "commandId", "Member must not be null"));
        }
        check_command_id(&command_id)?;
        if i.instance_ids.len() > MAX_INSTANCE_IDS {
            return Err(validation(
                i.instance_ids.len(),
                "instanceIds",
                &format!("Member must have length less than or equal to {MAX_INSTANCE_IDS}"),
            ));
        }
        let mut ids = Vec::new();
        for id in i.instance_ids {
            check_instance_id(&id)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(Self {
            command_id,
            instance_ids: ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_stacks_buckets_take_output() {
        let allowed = vec!["stack-out".to_string(), "team-logs".to_string()];
        assert!(check_output_bucket("", &allowed).is_ok());
        assert!(check_output_bucket("stack-out", &allowed).is_ok());
        assert!(check_output_bucket("team-logs", &allowed).is_ok());
        let err = check_output_bucket("elsewhere", &allowed).unwrap_err();
        assert_eq!(err.code(), "InvalidOutputFolder");
        let text = err.to_string();
        assert!(text.contains("stack-out, team-logs"), "{text}");
        assert!(text.contains("OutputBuckets"), "{text}");
        assert!(check_output_bucket("elsewhere", &[]).is_err());
    }

    fn send(body: Value) -> Result<SendCommandRequest, SsmError> {
        SendCommandRequest::from_json(&body)
    }

    #[test]
    fn send_command_defaults_are_ssms() {
        let r = send(
            json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ["mi-00000000000000001"],
            "Parameters": {"commands": ["id"]}}),
        )
        .unwrap();
        assert_eq!(r.timeout_seconds, 3600);
        assert_eq!(r.max_concurrency, "50");
        assert_eq!(r.max_errors, "0");
        assert_eq!(r.comment, "");
    }

    #[test]
    fn send_command_bounds() {
        let base =
            json!({"DocumentName": "AWS-RunShellScript", "InstanceIds": ["mi-00000000000000001"]});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            send(b).map(|_| ()).map_err(|e| e.code())
        };
        assert_eq!(
            with("TimeoutSeconds", json!(29)),
            Err("ValidationException")
        );
        assert_eq!(
            with("TimeoutSeconds", json!(2_592_001)),
            Err("ValidationException")
        );
        assert_eq!(with("TimeoutSeconds", json!(30)), Ok(()));
        assert_eq!(
            with("TimeoutSeconds", json!("x")),
            Err("SerializationException")
        );
        assert_eq!(
            with("Comment", json!("c".repeat(101))),
            Err("ValidationException")
        );
        assert_eq!(
            with("MaxConcurrency", json!("0")),
            Err("ValidationException")
        );
        assert_eq!(
            with("MaxConcurrency", json!("0%")),
            Err("ValidationException")
        );
        assert_eq!(with("MaxConcurrency", json!("10%")), Ok(()));
        assert_eq!(with("MaxErrors", json!("0")), Ok(()));
        assert_eq!(with("MaxErrors", json!("abc")), Err("ValidationException"));
        assert_eq!(
            with("OutputS3BucketName", json!("ab")),
            Err("ValidationException")
        );
        assert_eq!(
            with("OutputS3BucketName", json!("Bad_Bucket")),
            Err("InvalidOutputFolder")
        );
        assert_eq!(
            with("OutputS3KeyPrefix", json!("p")),
            Err("InvalidOutputFolder")
        );
        assert_eq!(
            with("DocumentVersion", json!("v1")),
            Err("ValidationException")
        );
        assert_eq!(
            with("ServiceRoleArn", json!("role")),
            Err("ValidationException")
        );
        assert_eq!(
            with(
                "NotificationConfig",
                json!({"NotificationArn": "arn:aws:sns:x"})
            ),
            Ok(())
        );
        assert_eq!(
            send(json!({"InstanceIds": ["mi-00000000000000001"]}))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
    }

    #[test]
    fn filters() {
        let parse = |v: Value| {
            let f: Vec<CommandFilterInput> = serde_json::from_value(v).unwrap();
            CommandFilters::parse(&f)
        };
        let f = parse(json!([{"key": "Status", "value": "Success"}, {"key": "InvokedAfter", "value": "2020-01-01T00:00:00Z"}])).unwrap();
        assert_eq!(f.status.as_deref(), Some("Success"));
        assert_eq!(f.range.after, Some(1_577_836_800.0));
        assert!(f.accepts(1_600_000_000.0, "Success", "AWS-RunShellScript"));
        assert!(!f.accepts(1_500_000_000.0, "Success", "AWS-RunShellScript"));
        assert!(!f.accepts(1_600_000_000.0, "Failed", "AWS-RunShellScript"));
        assert_eq!(
            parse(json!([{"key": "Color", "value": "x"}]))
                .unwrap_err()
                .code(),
            "InvalidFilterKey"
        );
        assert_eq!(
            parse(json!([{"key": "Status", "value": "Done"}]))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            parse(json!([{"key": "InvokedBefore", "value": "yesterday"}]))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        let f = parse(json!([{"key": "ExecutionStage", "value": "Executing"}])).unwrap();
        assert!(f.accepts(0.0, "InProgress", "d"));
        assert!(!f.accepts(0.0, "Success", "d"));
    }

    #[test]
    fn list_get_cancel_inputs() {
        let id = "0b8e4a3c-0000-4000-8000-000000000000";
        assert_eq!(ListRequest::from_json(&json!({})).unwrap().max_results, 50);
        assert_eq!(
            ListRequest::from_json(&json!({"MaxResults": 51}))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            ListRequest::from_json(&json!({"CommandId": "short"}))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            ListRequest::from_json(&json!({"InstanceId": "node"}))
                .unwrap_err()
                .code(),
            "InvalidInstanceId"
        );
        assert!(
            ListRequest::from_json(&json!({"CommandId": id, "Details": true}))
                .unwrap()
                .details
        );
        assert_eq!(
            GetInvocationRequest::from_json(&json!({"CommandId": id}))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert!(
            GetInvocationRequest::from_json(
                &json!({"CommandId": id, "InstanceId": "mi-00000000000000001"})
            )
            .is_ok()
        );
        let c = CancelRequest::from_json(&json!({"CommandId": id, "InstanceIds": ["mi-00000000000000001", "mi-00000000000000001"]})).unwrap();
        assert_eq!(c.instance_ids.len(), 1);
        assert_eq!(
            CancelRequest::from_json(&json!({})).unwrap_err().code(),
            "ValidationException"
        );
    }
}
