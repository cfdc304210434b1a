//! GetSessionCredentials (the agent's): SQS credentials for its side of one
//! of its sessions, asked with a request signed by the node's key.

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::ports::SessionStore;
use super::{QUEUE_CREDENTIALS_SECONDS, role_session_name, side_policy};
use crate::channel;
use crate::error::{SsmError, parse_request};
use crate::fleet::ports::{CredentialIssuer, NodeStore};
use crate::fleet::signed_request;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionCredentialsRequest {
    instance_id: String,
    session_id: String,
    timestamp: i64,
    signature: String,
}

pub async fn session_credentials(
    nodes: &dyn NodeStore,
    sessions: &dyn SessionStore,
    credentials: &dyn CredentialIssuer,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: SessionCredentialsRequest = parse_request(body)?;
    let message = channel::session_credentials_request_message(
        &req.instance_id,
        &req.session_id,
        req.timestamp,
    );
    let node = signed_request::verified_node(
        nodes,
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
            "The node's signature does not verify; the node must sign \"session-credentials\\n<InstanceId>\\n<SessionId>\\n<Timestamp>\" with the key it registered.",
        )
    })?;
    // Another node's session, or one that ended, gets nothing: the same
    // answer for both, so a node learns nothing of other nodes' sessions.
    let session = sessions
        .get(&req.session_id)
        .await?
        .filter(|s| s.target == node.instance_id && !s.status.is_ended())
        .ok_or_else(|| {
            SsmError::DoesNotExistException(format!(
                "Session {} is not an open session of {}.",
                req.session_id, node.instance_id
            ))
        })?;
    let creds = credentials
        .issue(
            &role_session_name("agent", &session.session_id),
            &side_policy(&session.to_agent_queue_arn, &session.to_client_queue_arn),
            QUEUE_CREDENTIALS_SECONDS,
        )
        .await?;
    Ok(json!({
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key.expose(),
        "SessionToken": creds.session_token.expose(),
        "Expiration": creds.expiration,
    }))
}
