//! GetNodeCredentials (the agent's): short-lived SQS credentials limited to
//! the node's own queue and the ingest queue.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::channel::{self};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::fleet::FleetContext;
use crate::fleet::signed_request;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsRequest {
    instance_id: String,
    timestamp: i64,
    signature: String,
}

pub use crate::fleet::signed_request::MAX_CLOCK_SKEW_SECONDS;
pub const NODE_CREDENTIALS_SECONDS: i32 = 3600;

/// The session policy of a node's credentials: its own queue, and sending to ingest.
pub fn node_session_policy(node_queue_arn: &str, ingest_queue_arn: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                "Resource": node_queue_arn
            },
            {
                "Sid": "Report",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": ingest_queue_arn
            }
        ]
    })
    .to_string()
}

pub async fn node_credentials(
    ctx: &FleetContext<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: CredentialsRequest = parse(body)?;
    let message = channel::credentials_request_message(&req.instance_id, req.timestamp);
    let node = signed_request::verified_node(
        ctx.nodes,
        &req.instance_id,
        &message,
        &req.signature,
        req.timestamp,
        now,
    )
    .await
    .map_err(|refusal| {
        refusal.into_credentials_error(
            &req.instance_id,
            "The node's signature does not verify; the node must sign \"<InstanceId>\\n<Timestamp>\" with the key it registered. Re-register the node if its key was lost.",
        )
    })?;
    let ingest_arn = ctx.queues.ingest_queue_arn().await?;
    let policy = node_session_policy(&node.queue_arn, &ingest_arn);
    let creds = ctx
        .credentials
        .issue(&node.instance_id, &policy, NODE_CREDENTIALS_SECONDS)
        .await?;
    Ok(json!({
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key.expose(),
        "SessionToken": creds.session_token.expose(),
        "Expiration": creds.expiration,
    }))
}
