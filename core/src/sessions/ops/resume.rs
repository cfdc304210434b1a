//! ResumeSession: the key and fresh queue credentials again, for a client
//! that reconnects or whose credentials are about to expire.

use serde::Deserialize;
use serde_json::Value;

use super::super::context::SessionContext;
use super::start::answer;
use super::{QUEUE_CREDENTIALS_SECONDS, queue_credentials, role_session_name, side_policy};
use crate::error::{SsmError, parse_request};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResumeSessionRequest {
    session_id: String,
}

pub async fn resume_session(ctx: &SessionContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req: ResumeSessionRequest = parse_request(body)?;
    let session = ctx.session("ssm:ResumeSession", &req.session_id).await?;
    if session.status.is_ended() {
        return Err(SsmError::DoesNotExistException(format!(
            "Session {} has ended ({}); start a new session with StartSession.",
            session.session_id,
            session.status.as_str()
        )));
    }
    let key = ctx
        .sealer
        .open(&session.session_id, &session.sealed_key)
        .await?;
    let creds = ctx
        .credentials
        .issue(
            &role_session_name("client", &session.session_id),
            &side_policy(&session.to_client_queue_arn, &session.to_agent_queue_arn),
            QUEUE_CREDENTIALS_SECONDS,
        )
        .await?;
    Ok(answer(ctx, &session, key, queue_credentials(creds)))
}
