//! GetNodeCredentials (the agent's): short-lived SQS credentials limited to
//! the node's own queue and the ingest queue.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::channel::{self};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids;

use crate::fleet::FleetContext;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsRequest {
    instance_id: String,
    timestamp: i64,
    signature: String,
}

/// How far a node's clock may be from ours.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;
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
    let refused = || {
        SsmError::InvalidSignatureException(
            "The node's signature does not verify; the node must sign \"<InstanceId>\\n<Timestamp>\" with the key it registered. Re-register the node if its key was lost.".into(),
        )
    };
    if !ids::is_instance_id(&req.instance_id) {
        return Err(refused());
    }
    // A node that is not registered (deregistered, say) is told so, in the
    // words SSM's credential endpoint uses, so that its agent can say why it
    // stops working instead of retrying a signature that cannot help.
    let node = ctx.nodes.get(&req.instance_id).await?.ok_or_else(|| {
        SsmError::InvalidInstanceId(format!(
            "Not existing InstanceId {}: this node is not registered (it was deregistered). Register it again with an activation.",
            req.instance_id
        ))
    })?;
    let message = channel::credentials_request_message(&req.instance_id, req.timestamp);
    channel::verify_node_signature(&node.public_key, &message, &req.signature)
        .map_err(|_| refused())?;
    if (now as i64 - req.timestamp).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(SsmError::InvalidSignatureException(
            "Signature expired: the Timestamp is more than 5 minutes from the server's time. Synchronize the node's clock (NTP) and retry.".into(),
        ));
    }
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
