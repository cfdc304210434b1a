//! GetConnectionStatus: whether a session could be started on the node now.

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::context::SessionContext;
use crate::error::{SsmError, parse_request};
use crate::fleet::node::PingStatus;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetConnectionStatusRequest {
    target: String,
}

pub async fn get_connection_status(
    ctx: &SessionContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: GetConnectionStatusRequest = parse_request(body)?;
    ctx.caller
        .authorize("ssm:GetConnectionStatus", &ctx.scope.node_arn(&req.target))?;
    let connected = ctx.nodes.get(&req.target).await?.is_some_and(|n| {
        !n.queue_url.is_empty()
            && n.ping_status(ctx.now, ctx.connection_lost_seconds) == PingStatus::Online
    });
    Ok(json!({
        "Target": req.target,
        "Status": if connected { "connected" } else { "notconnected" },
    }))
}
