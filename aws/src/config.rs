//! Where the control plane's resources are (from the environment SAM or the
//! local stack sets, docs/internals.md) and the SDK clients to reach them.

use std::env;

use thiserror::Error;

#[derive(Error)]
pub enum ConfigError {
    #[error(
        "the environment variable {0} is not set: deploy with template.yaml, which sets it (locally, source .local/stack.env)"
    )]
    Missing(&'static str),
    #[error("the environment variable {0} is not a number: {1}")]
    NotANumber(&'static str, String),
}

/// The message itself: a binary whose `main` returns this error prints it
/// with `Debug`, and whoever reads that must see what to do, not a variant.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Names and addresses of the stack's resources.
#[derive(Debug, Clone)]
pub struct Settings {
    pub nodes_table: String,
    pub tag_index_table: String,
    pub activations_table: String,
    pub commands_table: String,
    pub invocations_table: String,
    pub access_keys_table: String,
    pub work_queue_url: String,
    pub ingest_queue_url: String,
    pub node_dlq_arn: String,
    pub node_queue_prefix: String,
    pub output_bucket: String,
    /// Other buckets command output may be written to
    /// (`STEWARD_OUTPUT_BUCKETS`, comma-separated; the stack grants its
    /// functions s3:PutObject on them).
    pub output_buckets: Vec<String>,
    pub data_key_id: String,
    pub signing_key_id: String,
    pub event_bus: String,
    pub node_role_arn: String,
    pub connection_lost_seconds: u64,
    pub region: String,
    pub parameters_table: String,
    /// The account parameter ARNs name.
    pub account_id: String,
    pub scheduler_queue_url: String,
    /// How long a decrypted SecureString data key is kept (0: never).
    pub data_key_cache_seconds: u64,
    pub documents_table: String,
    /// IAM users and their inline policies.
    pub users_table: String,
    /// Compliance items and summaries, per node and compliance type.
    pub compliance_table: String,
    /// Inventory: each node's data per type, and custom types' schemas.
    pub inventory_table: String,
    /// Automation executions.
    pub automation_table: String,
    /// The automation engine's wake-ups.
    pub automation_queue_url: String,
    /// Runbook starts from EventBridge rules.
    pub automation_start_queue_url: String,
    /// Where a start that cannot start anything is kept.
    pub automation_start_dlq_url: String,
    /// The user runbooks from the start queue run as.
    pub automation_events_user: String,
    /// Nodes' patch states and the patches of their latest operation.
    pub patch_states_table: String,
    /// Patch baselines, patch-group registrations and default baselines.
    pub patch_baselines_table: String,
    /// State Manager's associations, their versions, executions and per-node status.
    pub associations_table: String,
    /// Maintenance windows, their targets, tasks and executions.
    pub maintenance_windows_table: String,
    pub sessions_table: String,
    /// The length of a window's hour (Duration, Cutoff) in seconds: 3600
    /// deployed; the local test stack shortens it so that a test can reach
    /// a cutoff (`STEWARD_WINDOW_HOUR_SECONDS`).
    pub window_hour_seconds: u64,
    /// The accounts whose EC2 instances may register by their identity
    /// document (`STEWARD_ALLOWED_ACCOUNT_IDS`, comma-separated; unset or
    /// empty: the stack's own account).
    pub allowed_account_ids: Vec<String>,
    /// A PEM bundle that replaces AWS's published certificates for EC2
    /// identity documents (`STEWARD_EC2_IDENTITY_CERTIFICATES`; empty: AWS's
    /// certificate for the stack's region).
    pub ec2_identity_certificates: String,
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    env::var(name).map_err(|_| ConfigError::Missing(name))
}

fn number(name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match env::var(name) {
        Ok(v) => v.parse().map_err(|_| ConfigError::NotANumber(name, v)),
        Err(_) => Ok(default),
    }
}

/// `a, b,,c` → `[a, b, c]`.
fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .collect()
}

/// The listed accounts, or the stack's own when none is listed.
fn allowed_accounts(listed: &str, own: &str) -> Vec<String> {
    let listed = comma_list(listed);
    if listed.is_empty() {
        vec![own.to_string()]
    } else {
        listed
    }
}

impl Settings {
    /// The buckets command output may be written to: the stack's own, then
    /// the ones the operator added. Presigned uploads to any other would be
    /// refused by S3 (the functions' roles may write only these).
    pub fn allowed_output_buckets(&self) -> Vec<String> {
        let mut out = vec![self.output_bucket.clone()];
        for b in &self.output_buckets {
            if !out.contains(b) {
                out.push(b.clone());
            }
        }
        out.retain(|b| !b.is_empty());
        out
    }

    /// The ARNs of this stack's resources (its region and account).
    pub fn arn_scope(&self) -> steward_core::arn::ArnScope {
        steward_core::arn::ArnScope {
            region: self.region.clone(),
            account: self.account_id.clone(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let account_id = var("STEWARD_ACCOUNT_ID")?;
        Ok(Self {
            nodes_table: var("STEWARD_NODES_TABLE")?,
            tag_index_table: var("STEWARD_TAG_INDEX_TABLE")?,
            activations_table: var("STEWARD_ACTIVATIONS_TABLE")?,
            commands_table: var("STEWARD_COMMANDS_TABLE")?,
            invocations_table: var("STEWARD_INVOCATIONS_TABLE")?,
            access_keys_table: var("STEWARD_ACCESS_KEYS_TABLE")?,
            work_queue_url: var("STEWARD_WORK_QUEUE_URL")?,
            ingest_queue_url: var("STEWARD_INGEST_QUEUE_URL")?,
            node_dlq_arn: var("STEWARD_NODE_DLQ_ARN")?,
            node_queue_prefix: env::var("STEWARD_NODE_QUEUE_PREFIX")
                .unwrap_or_else(|_| "steward-node-".into()),
            output_bucket: var("STEWARD_OUTPUT_BUCKET")?,
            output_buckets: comma_list(&env::var("STEWARD_OUTPUT_BUCKETS").unwrap_or_default()),
            data_key_id: var("STEWARD_DATA_KEY_ID")?,
            signing_key_id: var("STEWARD_SIGNING_KEY_ID")?,
            event_bus: env::var("STEWARD_EVENT_BUS").unwrap_or_else(|_| "steward".into()),
            node_role_arn: var("STEWARD_NODE_ROLE_ARN")?,
            // The agent's default heartbeat (900 s) and five minutes more.
            connection_lost_seconds: number("STEWARD_CONNECTION_LOST_SECONDS", 1200)?,
            region: env::var("AWS_REGION")
                .or_else(|_| env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".into()),
            parameters_table: var("STEWARD_PARAMETERS_TABLE")?,
            allowed_account_ids: allowed_accounts(
                &env::var("STEWARD_ALLOWED_ACCOUNT_IDS").unwrap_or_default(),
                &account_id,
            ),
            ec2_identity_certificates: env::var("STEWARD_EC2_IDENTITY_CERTIFICATES")
                .unwrap_or_default(),
            account_id,
            scheduler_queue_url: var("STEWARD_SCHEDULER_QUEUE_URL")?,
            data_key_cache_seconds: number("STEWARD_DATA_KEY_CACHE_SECONDS", 300)?,
            documents_table: var("STEWARD_DOCUMENTS_TABLE")?,
            users_table: var("STEWARD_USERS_TABLE")?,
            compliance_table: var("STEWARD_COMPLIANCE_TABLE")?,
            inventory_table: var("STEWARD_INVENTORY_TABLE")?,
            automation_table: var("STEWARD_AUTOMATION_TABLE")?,
            automation_queue_url: var("STEWARD_AUTOMATION_QUEUE_URL")?,
            automation_start_queue_url: var("STEWARD_AUTOMATION_START_QUEUE_URL")?,
            automation_start_dlq_url: var("STEWARD_AUTOMATION_START_DLQ_URL")?,
            automation_events_user: env::var("STEWARD_AUTOMATION_EVENTS_USER")
                .unwrap_or_else(|_| "steward-events".into()),
            patch_states_table: var("STEWARD_PATCH_STATES_TABLE")?,
            patch_baselines_table: var("STEWARD_PATCH_BASELINES_TABLE")?,
            associations_table: var("STEWARD_ASSOCIATIONS_TABLE")?,
            maintenance_windows_table: var("STEWARD_MAINTENANCE_WINDOWS_TABLE")?,
            sessions_table: var("STEWARD_SESSIONS_TABLE")?,
            window_hour_seconds: number("STEWARD_WINDOW_HOUR_SECONDS", 3600)?,
        })
    }
}

/// One SDK client per service, built once per process and shared by handlers.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub sts: aws_sdk_sts::Client,
    pub resource_groups: aws_sdk_resourcegroups::Client,
    /// The credentials the clients sign with: output upload URLs are signed
    /// with them directly, so that their expiry is known
    /// (crate::output).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Clients {
    /// From the standard AWS configuration chain; `AWS_ENDPOINT_URL` and
    /// `AWS_ENDPOINT_URL_DYNAMODB` point it at the local stack.
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        // LocalStack serves S3 on one host name; path-style addressing avoids
        // bucket subdomains, and is harmless against AWS.
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(std::env::var("AWS_ENDPOINT_URL").is_ok())
            .build();
        // Every client counts its requests (crate::metrics) for the benchmarks.
        let counter = crate::metrics::RequestCounter;
        let s3_config = s3_config.to_builder().interceptor(counter).build();
        // One client per service SDK, each from the shared configuration
        // with the counter; the SDKs share no type to write this once over.
        macro_rules! counted {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&shared)
                        .interceptor(counter)
                        .build(),
                )
            };
        }
        Self {
            dynamodb: counted!(aws_sdk_dynamodb),
            sqs: counted!(aws_sdk_sqs),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            kms: counted!(aws_sdk_kms),
            events: counted!(aws_sdk_eventbridge),
            sts: counted!(aws_sdk_sts),
            resource_groups: counted!(aws_sdk_resourcegroups),
            credentials: shared.credentials_provider(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_says_what_to_do_also_in_debug() {
        let e = ConfigError::Missing("STEWARD_NODES_TABLE");
        let shown = format!("{e:?}");
        assert_eq!(shown, e.to_string());
        assert!(
            shown.starts_with(
                "the environment variable STEWARD_NODES_TABLE is not set: deploy with template.yaml"
            ),
            "{shown}"
        );
        assert!(!shown.contains("Missing("), "{shown}");
    }

    #[test]
    fn extra_buckets_are_a_comma_separated_list() {
        assert!(comma_list("").is_empty());
        assert_eq!(comma_list(" a, b,,c "), vec!["a", "b", "c"]);
    }

    #[test]
    fn no_allowed_account_means_the_stacks_own() {
        let own = "123456789012";
        assert_eq!(allowed_accounts("", own), vec![own]);
        assert_eq!(allowed_accounts(" , ", own), vec![own]);
        assert_eq!(
            allowed_accounts("111111111111, 222222222222", own),
            vec!["111111111111", "222222222222"]
        );
    }
}
