//! SSM's session operations, one file each, and the agent's request for
//! its side's queue credentials.

pub mod agent_credentials;
pub mod connection_status;
pub mod describe;
pub mod resume;
pub mod start;
pub mod terminate;

use serde_json::{Value, json};

use super::SessionContext;
use super::token::QueueCredentials;
use crate::error::SsmError;
use crate::fleet::ports::NodeCredentials;
use crate::secret::Secret;

/// The SSM operations sessions serve.
pub const OPERATIONS: [&str; 5] = [
    "StartSession",
    "ResumeSession",
    "TerminateSession",
    "DescribeSessions",
    "GetConnectionStatus",
];

/// Serves `op`; `None` if it is not a session operation.
pub async fn handle(
    ctx: &SessionContext<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "StartSession" => start::start_session(ctx, body).await,
        "ResumeSession" => resume::resume_session(ctx, body).await,
        "TerminateSession" => terminate::terminate_session(ctx, body).await,
        "DescribeSessions" => describe::describe_sessions(ctx, body).await,
        "GetConnectionStatus" => connection_status::get_connection_status(ctx, body).await,
        _ => return None,
    })
}

/// Credentials are issued for an hour: the role's longest session. The
/// client renews them with ResumeSession, the agent with its signed request.
pub const QUEUE_CREDENTIALS_SECONDS: i32 = 3600;

/// The session policy of one side's credentials: receive from its inbound
/// queue, send to its outbound one, nothing else.
pub fn side_policy(receive_arn: &str, send_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Receive",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                "Resource": receive_arn
            },
            {
                "Sid": "Send",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": send_arn
            }
        ]
    })
    .to_string()
}

/// STS's role session names: 2–64 of `[\w+=,.@-]`.
pub(super) fn role_session_name(prefix: &str, session_id: &str) -> String {
    let suffix = super::context::queue_suffix(session_id);
    format!("{prefix}-{suffix}")
}

pub(super) fn queue_credentials(c: NodeCredentials) -> QueueCredentials {
    QueueCredentials {
        access_key_id: c.access_key_id,
        secret_access_key: Secret::new(c.secret_access_key.expose()),
        session_token: Secret::new(c.session_token.expose()),
        expiration: crate::clock::iso8601_seconds(c.expiration),
    }
}
