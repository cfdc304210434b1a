//! What can go wrong, what the user should do next, and the exit codes.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;

/// Exit codes: 0 the command succeeded, 1 it ran but did not succeed
/// everywhere, 2 usage or API errors (clap uses 2 for usage too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    CommandFailed = 1,
    Error = 2,
}

impl Exit {
    /// A command's final status as an exit code.
    pub fn for_command_status(status: &str) -> Self {
        if status == "Success" {
            Exit::Ok
        } else {
            Exit::CommandFailed
        }
    }
}

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{operation} failed: {code}: {message}")]
    Api {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("{operation} could not reach the API: {detail}")]
    Unreachable {
        operation: &'static str,
        detail: String,
    },
    #[error("{operation}: no usable credentials: {detail}")]
    Credentials {
        operation: &'static str,
        detail: String,
    },
    #[error("{operation} failed: {detail}")]
    Other {
        operation: &'static str,
        detail: String,
    },
    #[error(
        "automation execution {id} is still {status} after {waited}s of following it; it goes on"
    )]
    StillRunning {
        id: String,
        status: String,
        waited: u64,
    },
    #[error("{0}")]
    Usage(String),
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    pub fn from_sdk<E, R>(operation: &'static str, e: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        match &e {
            SdkError::ServiceError(s) => {
                let err = s.err();
                CliError::Api {
                    operation,
                    code: err.code().unwrap_or("UnknownError").to_string(),
                    message: err.message().unwrap_or("no message").to_string(),
                }
            }
            _ if caused_by_credentials(&e) => CliError::Credentials {
                operation,
                detail: chain(&e),
            },
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => CliError::Unreachable {
                operation,
                detail: chain(&e),
            },
            _ => CliError::Other {
                operation,
                detail: chain(&e),
            },
        }
    }

    /// What to do next, shown under the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Api { code, .. } => hint_for_code(code),
            CliError::Unreachable { .. } => Some(
                "check the endpoint: pass --endpoint-url, set STEWARD_ENDPOINT_URL or endpoint_url in your profile; locally, start the stack with `make up`",
            ),
            CliError::Credentials { .. } => Some(
                "name a profile with Steward's access key (--profile, AWS_PROFILE; locally: AWS_CONFIG_FILE=.local/aws/config and --profile steward)",
            ),
            CliError::Other { .. } => Some(
                "check your credentials and region (--profile, --region, AWS_PROFILE) and the endpoint (--endpoint-url)",
            ),
            CliError::StillRunning { .. } => Some(
                "follow it again with `steward automation show <id>`, or give a longer --timeout",
            ),
            CliError::Usage(_) => Some("see `steward --help`"),
            CliError::Io(_) => None,
        }
    }

    pub fn exit(&self) -> Exit {
        Exit::Error
    }
}

/// An error and its causes, one line, without debug dumps.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn caused_by_credentials(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The next step for an SSM error code.
pub fn hint_for_code(code: &str) -> Option<&'static str> {
    Some(match code {
        "InvalidInstanceId" => "list nodes with `steward nodes`",
        "InvalidCommandId" => "list commands with `steward commands`",
        "InvocationDoesNotExist" => {
            "list the command's invocations with `steward invocations <command-id>`"
        }
        "InvalidTarget" => {
            "targets look like tag:env=dev or InstanceIds=mi-…; see the tags nodes carry with `steward nodes`"
        }
        "InvalidDocument" | "InvalidDocumentVersion" => {
            "use --document AWS-RunShellScript (the document Steward runs)"
        }
        "InvalidParameters" | "ValidationException" | "SerializationException" => {
            "check the flags against `steward <command> --help`"
        }
        "InvalidActivation" | "InvalidActivationId" => {
            "list activations with `steward activation list`, or create one with `steward activation create`"
        }
        "AssociationDoesNotExist" | "InvalidAssociationVersion" => {
            "list associations with `steward associations`"
        }
        "InvalidSchedule" => {
            "give a schedule SSM takes: cron(min hour day month weekday year), e.g. cron(0 2 ? * * *) (an association at most every 30 minutes, a window every 5 minutes or less often), or rate(30 minutes)"
        }
        "DoesNotExistException" => {
            "list sessions with `steward session list` (windows with `steward windows`, associations with `steward associations`)"
        }
        "TargetNotConnected" => {
            "the node's agent is not connected: check it is Online with `steward nodes`, then start the session again"
        }
        "AssociationAlreadyExists" => {
            "an association of this document with these targets exists; see it with `steward associations --document <name>`"
        }
        "AssociationLimitExceeded" | "ResourceLimitExceededException" => {
            "delete what is no longer needed (`steward associations delete <id>`) and try again"
        }
        "InvalidNextToken" => "run the command again from the start",
        "InvalidOutputFolder" | "InvalidOutputLocation" => {
            "write output to the stack's bucket (its output OutputBucketName), or add the bucket to the stack's OutputBuckets parameter and deploy again"
        }
        "AutomationDefinitionNotFoundException" => {
            "name an Automation document; list them with `aws ssm list-documents --filters Key=DocumentType,Values=Automation`"
        }
        "AutomationDefinitionVersionNotFoundException" => {
            "leave out --version to run the runbook's default version, or give one it has"
        }
        "InvalidAutomationExecutionParametersException" => {
            "give the runbook's parameters as --param <name>=<value> (repeat a name for a list)"
        }
        "AutomationExecutionNotFoundException" => "list executions with `steward automation list`",
        "InvalidAutomationSignalException" | "InvalidAutomationStatusUpdateException" => {
            "see what the execution is doing with `steward automation show <id> --no-wait`"
        }
        "IdempotentParameterMismatch" => {
            "give a new --client-token for a new execution, or the same parameters to get the first one back"
        }
        "InvalidAction" => {
            "this Steward control plane does not serve that operation; update it, or point --endpoint-url at one that does"
        }
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => {
            "check the access key in your profile (--profile or AWS_PROFILE) is a Steward key, and that --endpoint-url points at Steward"
        }
        "AccessDeniedException" | "AccessDenied" => {
            "use an access key whose policy allows this operation"
        }
        "InvalidClientTokenId" | "SignatureDoesNotMatch" => {
            "check the access key in your profile (--profile or AWS_PROFILE) is an active Steward key"
        }
        "NoSuchEntity" => {
            "list users with `steward keys users` and their keys with `steward keys list <user>`"
        }
        "MalformedPolicyDocument" => {
            "a policy holds Effect, Action or NotAction, Resource or NotResource (see README, Policies)"
        }
        "DeleteConflict" => {
            "delete the user's keys and policies first (`steward keys list <user>`, `steward keys policies <user>`)"
        }
        "LimitExceeded" => {
            "a user has at most two keys; delete one with `steward keys delete <user> <key-id>`"
        }
        "ThrottlingException" => "wait a moment and retry",
        "InternalServerError" => "retry; if it persists, look at the control plane's logs",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_command_status() {
        assert_eq!(Exit::for_command_status("Success") as i32, 0);
        for s in [
            "Failed",
            "TimedOut",
            "Cancelled",
            "Cancelling",
            "InProgress",
            "",
        ] {
            assert_eq!(Exit::for_command_status(s) as i32, 1, "{s}");
        }
    }

    #[test]
    fn api_errors_exit_2_with_a_next_step() {
        let e = CliError::Api {
            operation: "SendCommand",
            code: "InvalidInstanceId".into(),
            message: "mi-x is not a managed node".into(),
        };
        assert_eq!(e.exit() as i32, 2);
        assert_eq!(
            e.to_string(),
            "SendCommand failed: InvalidInstanceId: mi-x is not a managed node"
        );
        assert!(e.hint().unwrap().contains("steward nodes"));
        let c = CliError::Credentials {
            operation: "ListCommands",
            detail: "none".into(),
        };
        assert!(c.hint().unwrap().contains("--profile"));
        let u = CliError::Unreachable {
            operation: "ListCommands",
            detail: "connection refused".into(),
        };
        assert_eq!(u.exit() as i32, 2);
        assert!(u.hint().unwrap().contains("--endpoint-url"));
        assert_eq!(hint_for_code("SomethingNew"), None);
    }
}
