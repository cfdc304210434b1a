//! SDK values back into SSM's JSON shapes (field names as on the wire, times
//! as epoch seconds), for `-o json`.

use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::primitives::DateTime;
use aws_sdk_ssm::types::{
    Activation, AutomationExecution, AutomationExecutionMetadata, Command, CommandInvocation,
    CommandPlugin, FailureDetails, InstanceInformation, StepExecution, Tag, Target,
};
use serde_json::{Map, Value};

/// A JSON object that leaves out absent fields, as SSM does.
#[derive(Default)]
pub(crate) struct Obj(Map<String, Value>);

impl Obj {
    pub(crate) fn s(mut self, k: &str, v: Option<&str>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), Value::from(v));
        }
        self
    }
    pub(crate) fn v(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.0.insert(k.into(), v.into());
        self
    }
    pub(crate) fn opt<T: Into<Value>>(mut self, k: &str, v: Option<T>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), v.into());
        }
        self
    }
    pub(crate) fn t(self, k: &str, v: Option<&DateTime>) -> Self {
        let secs = v.map(|d| d.as_secs_f64());
        self.opt(k, secs)
    }
    pub(crate) fn done(self) -> Value {
        Value::Object(self.0)
    }
}

pub fn tags(tags: &[Tag]) -> Value {
    tags.iter()
        .map(|t| {
            Obj::default()
                .v("Key", t.key())
                .v("Value", t.value())
                .done()
        })
        .collect()
}

pub(crate) fn targets(targets: &[Target]) -> Value {
    targets
        .iter()
        .map(|t| {
            Obj::default()
                .s("Key", t.key())
                .v("Values", t.values().to_vec())
                .done()
        })
        .collect()
}

pub fn command(c: &Command) -> Value {
    let parameters = c.parameters().map(|p| {
        p.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect::<Map<_, _>>()
    });
    Obj::default()
        .s("CommandId", c.command_id())
        .s("DocumentName", c.document_name())
        .s("DocumentVersion", c.document_version())
        .s("Comment", c.comment())
        .t("ExpiresAfter", c.expires_after())
        .opt("Parameters", parameters)
        .v("InstanceIds", c.instance_ids().to_vec())
        .v("Targets", targets(c.targets()))
        .t("RequestedDateTime", c.requested_date_time())
        .s("Status", c.status().map(|s| s.as_str()))
        .s("StatusDetails", c.status_details())
        .s("OutputS3Region", c.output_s3_region())
        .s("OutputS3BucketName", c.output_s3_bucket_name())
        .s("OutputS3KeyPrefix", c.output_s3_key_prefix())
        .s("MaxConcurrency", c.max_concurrency())
        .s("MaxErrors", c.max_errors())
        .v("TargetCount", c.target_count())
        .v("CompletedCount", c.completed_count())
        .v("ErrorCount", c.error_count())
        .v("DeliveryTimedOutCount", c.delivery_timed_out_count())
        .s("ServiceRole", c.service_role())
        .opt("TimeoutSeconds", c.timeout_seconds())
        .done()
}

fn plugin(p: &CommandPlugin) -> Value {
    Obj::default()
        .s("Name", p.name())
        .s("Status", p.status().map(|s| s.as_str()))
        .s("StatusDetails", p.status_details())
        .v("ResponseCode", p.response_code())
        .t("ResponseStartDateTime", p.response_start_date_time())
        .t("ResponseFinishDateTime", p.response_finish_date_time())
        .s("Output", p.output())
        .s("StandardOutputUrl", p.standard_output_url())
        .s("StandardErrorUrl", p.standard_error_url())
        .s("OutputS3Region", p.output_s3_region())
        .s("OutputS3BucketName", p.output_s3_bucket_name())
        .s("OutputS3KeyPrefix", p.output_s3_key_prefix())
        .done()
}

pub fn invocation(i: &CommandInvocation) -> Value {
    Obj::default()
        .s("CommandId", i.command_id())
        .s("InstanceId", i.instance_id())
        .s("InstanceName", i.instance_name())
        .s("Comment", i.comment())
        .s("DocumentName", i.document_name())
        .s("DocumentVersion", i.document_version())
        .t("RequestedDateTime", i.requested_date_time())
        .s("Status", i.status().map(|s| s.as_str()))
        .s("StatusDetails", i.status_details())
        .s("TraceOutput", i.trace_output())
        .s("StandardOutputUrl", i.standard_output_url())
        .s("StandardErrorUrl", i.standard_error_url())
        .v(
            "CommandPlugins",
            i.command_plugins().iter().map(plugin).collect::<Vec<_>>(),
        )
        .s("ServiceRole", i.service_role())
        .done()
}

pub fn invocation_output(o: &GetCommandInvocationOutput) -> Value {
    Obj::default()
        .s("CommandId", o.command_id())
        .s("InstanceId", o.instance_id())
        .s("Comment", o.comment())
        .s("DocumentName", o.document_name())
        .s("DocumentVersion", o.document_version())
        .s("PluginName", o.plugin_name())
        .v("ResponseCode", o.response_code())
        .s("ExecutionStartDateTime", o.execution_start_date_time())
        .s("ExecutionElapsedTime", o.execution_elapsed_time())
        .s("ExecutionEndDateTime", o.execution_end_date_time())
        .s("Status", o.status().map(|s| s.as_str()))
        .s("StatusDetails", o.status_details())
        .s("StandardOutputContent", o.standard_output_content())
        .s("StandardOutputUrl", o.standard_output_url())
        .s("StandardErrorContent", o.standard_error_content())
        .s("StandardErrorUrl", o.standard_error_url())
        .done()
}

/// An `InstanceInformation`, plus the node's `Tags` (from ListTagsForResource).
pub fn instance(i: &InstanceInformation, node_tags: &[Tag]) -> Value {
    Obj::default()
        .s("InstanceId", i.instance_id())
        .s("PingStatus", i.ping_status().map(|s| s.as_str()))
        .t("LastPingDateTime", i.last_ping_date_time())
        .s("AgentVersion", i.agent_version())
        .opt("IsLatestVersion", i.is_latest_version())
        .s("PlatformType", i.platform_type().map(|s| s.as_str()))
        .s("PlatformName", i.platform_name())
        .s("PlatformVersion", i.platform_version())
        .s("ActivationId", i.activation_id())
        .s("IamRole", i.iam_role())
        .t("RegistrationDate", i.registration_date())
        .s("ResourceType", i.resource_type().map(|s| s.as_str()))
        .s("Name", i.name())
        .s("IPAddress", i.ip_address())
        .s("ComputerName", i.computer_name())
        .s("SourceId", i.source_id())
        .s("SourceType", i.source_type().map(|s| s.as_str()))
        .v("Tags", tags(node_tags))
        .done()
}

pub fn activation(a: &Activation) -> Value {
    Obj::default()
        .s("ActivationId", a.activation_id())
        .s("Description", a.description())
        .s("DefaultInstanceName", a.default_instance_name())
        .s("IamRole", a.iam_role())
        .opt("RegistrationLimit", a.registration_limit())
        .opt("RegistrationsCount", a.registrations_count())
        .t("ExpirationDate", a.expiration_date())
        .v("Expired", a.expired())
        .t("CreatedDate", a.created_date())
        .v("Tags", tags(a.tags()))
        .done()
}

/// A map of string lists (`Parameters`, `Outputs`, `Payload`).
pub(crate) fn string_lists(
    m: Option<&std::collections::HashMap<String, Vec<String>>>,
) -> Option<Value> {
    m.map(|m| {
        let sorted: std::collections::BTreeMap<&String, &Vec<String>> = m.iter().collect();
        Value::Object(
            sorted
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect(),
        )
    })
}

fn failure_details(f: &FailureDetails) -> Value {
    Obj::default()
        .s("FailureStage", f.failure_stage())
        .s("FailureType", f.failure_type())
        .opt("Details", string_lists(f.details()))
        .done()
}

/// A `StepExecution`, as GetAutomationExecution shows it.
pub fn step_execution(s: &StepExecution) -> Value {
    let inputs = s.inputs().map(|m| {
        let sorted: std::collections::BTreeMap<&String, &String> = m.iter().collect();
        Value::Object(
            sorted
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        )
    });
    Obj::default()
        .s("StepName", s.step_name())
        .s("Action", s.action())
        .opt("TimeoutSeconds", s.timeout_seconds())
        .s("OnFailure", s.on_failure())
        .opt("MaxAttempts", s.max_attempts())
        .t("ExecutionStartTime", s.execution_start_time())
        .t("ExecutionEndTime", s.execution_end_time())
        .s("StepStatus", s.step_status().map(|v| v.as_str()))
        .s("ResponseCode", s.response_code())
        .opt("Inputs", inputs)
        .opt("Outputs", string_lists(s.outputs()))
        .s("Response", s.response())
        .s("FailureMessage", s.failure_message())
        .opt("FailureDetails", s.failure_details().map(failure_details))
        .s("StepExecutionId", s.step_execution_id())
        .opt("IsEnd", s.is_end())
        .s("NextStep", s.next_step())
        .opt("IsCritical", s.is_critical())
        .opt(
            "ValidNextSteps",
            s.valid_next_steps.as_ref().map(|v| Value::from(v.clone())),
        )
        .opt("Targets", s.targets.as_deref().map(targets))
        .done()
}

/// An `AutomationExecution`, as GetAutomationExecution shows it.
pub fn automation_execution(e: &AutomationExecution) -> Value {
    Obj::default()
        .s("AutomationExecutionId", e.automation_execution_id())
        .s("DocumentName", e.document_name())
        .s("DocumentVersion", e.document_version())
        .t("ExecutionStartTime", e.execution_start_time())
        .t("ExecutionEndTime", e.execution_end_time())
        .s(
            "AutomationExecutionStatus",
            e.automation_execution_status().map(|v| v.as_str()),
        )
        .opt(
            "StepExecutions",
            e.step_executions
                .as_deref()
                .map(|s| s.iter().map(step_execution).collect::<Vec<_>>()),
        )
        .v("StepExecutionsTruncated", e.step_executions_truncated())
        .opt("Parameters", string_lists(e.parameters()))
        .opt("Outputs", string_lists(e.outputs()))
        .s("FailureMessage", e.failure_message())
        .s("WarningMessage", e.warning_message())
        .s("Mode", e.mode().map(|v| v.as_str()))
        .s(
            "ParentAutomationExecutionId",
            e.parent_automation_execution_id(),
        )
        .s("ExecutedBy", e.executed_by())
        .s("CurrentStepName", e.current_step_name())
        .s("CurrentAction", e.current_action())
        .s("TargetParameterName", e.target_parameter_name())
        .opt("Targets", e.targets.as_deref().map(targets))
        .s("MaxConcurrency", e.max_concurrency())
        .s("MaxErrors", e.max_errors())
        .s("Target", e.target())
        .done()
}

/// An `AutomationExecutionMetadata`, as DescribeAutomationExecutions lists it.
pub fn automation_metadata(m: &AutomationExecutionMetadata) -> Value {
    Obj::default()
        .s("AutomationExecutionId", m.automation_execution_id())
        .s("DocumentName", m.document_name())
        .s("DocumentVersion", m.document_version())
        .s(
            "AutomationExecutionStatus",
            m.automation_execution_status().map(|v| v.as_str()),
        )
        .t("ExecutionStartTime", m.execution_start_time())
        .t("ExecutionEndTime", m.execution_end_time())
        .s("ExecutedBy", m.executed_by())
        .s("LogFile", m.log_file())
        .opt("Outputs", string_lists(m.outputs()))
        .s("Mode", m.mode().map(|v| v.as_str()))
        .s(
            "ParentAutomationExecutionId",
            m.parent_automation_execution_id(),
        )
        .s("CurrentStepName", m.current_step_name())
        .s("CurrentAction", m.current_action())
        .s("FailureMessage", m.failure_message())
        .s("WarningMessage", m.warning_message())
        .s("TargetParameterName", m.target_parameter_name())
        .opt("Targets", m.targets.as_deref().map(targets))
        .s("MaxConcurrency", m.max_concurrency())
        .s("MaxErrors", m.max_errors())
        .s("Target", m.target())
        .s("AutomationType", m.automation_type().map(|v| v.as_str()))
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::types::{CommandInvocationStatus, CommandStatus};

    #[test]
    fn command_has_ssm_field_names_and_epoch_times() {
        let c = Command::builder()
            .command_id("c-1")
            .document_name("AWS-RunShellScript")
            .parameters("commands", vec!["uptime".to_string()])
            .targets(Target::builder().key("tag:env").values("dev").build())
            .requested_date_time(DateTime::from_secs(1_700_000_000))
            .status(CommandStatus::InProgress)
            .target_count(3)
            .completed_count(1)
            .build();
        let v = command(&c);
        assert_eq!(v["CommandId"], "c-1");
        assert_eq!(v["Parameters"]["commands"][0], "uptime");
        assert_eq!(v["Targets"][0]["Key"], "tag:env");
        assert_eq!(v["Targets"][0]["Values"][0], "dev");
        assert_eq!(v["RequestedDateTime"], 1_700_000_000.0);
        assert_eq!(v["Status"], "InProgress");
        assert_eq!(
            (v["TargetCount"].as_i64(), v["CompletedCount"].as_i64()),
            (Some(3), Some(1))
        );
        assert!(v.get("Comment").is_none());
    }

    #[test]
    fn invocation_keeps_plugins() {
        let i = CommandInvocation::builder()
            .command_id("c-1")
            .instance_id("mi-1")
            .status(CommandInvocationStatus::Failed)
            .command_plugins(
                CommandPlugin::builder()
                    .name("aws:runShellScript")
                    .response_code(3)
                    .output("boom")
                    .build(),
            )
            .build();
        let v = invocation(&i);
        assert_eq!(v["Status"], "Failed");
        assert_eq!(v["CommandPlugins"][0]["ResponseCode"], 3);
        assert_eq!(v["CommandPlugins"][0]["Output"], "boom");
    }
}
