//! TerminateSession: the agent is told to end the session; it closes the
//! client's side and reports it Terminated. Ending an ended session is
//! not an error (SSM answers it the same way).

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::context::{ATTEMPTS, SessionContext};
use super::super::model::SessionStatus;
use super::start::send_to_node;
use crate::channel::{Downlink, SessionTerminate};
use crate::error::{SsmError, parse_request};
use crate::run_command::ports::Delivery;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TerminateSessionRequest {
    session_id: String,
}

pub async fn terminate_session(ctx: &SessionContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req: TerminateSessionRequest = parse_request(body)?;
    for _ in 0..ATTEMPTS {
        let session = ctx.session("ssm:TerminateSession", &req.session_id).await?;
        if session.status.is_ended() {
            return Ok(json!({ "SessionId": session.session_id }));
        }
        let node = ctx.nodes.get(&session.target).await?;
        let delivered = match node.filter(|n| !n.queue_url.is_empty()) {
            Some(n) => {
                send_to_node(
                    ctx,
                    &n.instance_id,
                    &n.queue_url,
                    Downlink::TerminateSession(SessionTerminate {
                        session_id: session.session_id.clone(),
                    }),
                )
                .await?
            }
            None => Delivery::QueueGone,
        };
        let mut next = session.clone();
        next.revision += 1;
        if delivered == Delivery::QueueGone {
            // No agent will ever report it: it ends here.
            next.status = SessionStatus::Terminated;
            next.end_date = Some(ctx.now);
            next.details = Some("The node was deregistered.".into());
        } else {
            next.status = SessionStatus::Terminating;
        }
        if ctx.store.update(&next).await? {
            if next.status.is_ended() {
                super::super::ingest::delete_queues(ctx.store, ctx.queues, next).await?;
            }
            tracing::info!(session_id = %req.session_id, "session termination asked");
            return Ok(json!({ "SessionId": req.session_id }));
        }
    }
    Err(SsmError::internal())
}
