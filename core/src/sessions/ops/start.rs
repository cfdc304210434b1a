//! StartSession: a shell, a command or port forwarding on a node, over a
//! new pair of queues. The agent learns of it in a signed message on its
//! own queue, which alone carries the frame key to it; the caller gets the
//! key and its queue credentials in `TokenValue`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::context::{SessionContext, new_session_id};
use super::super::documents::{self, SessionDocument, SessionPlan};
use super::super::frames::SessionKey;
use super::super::model::{Session, SessionStatus};
use super::super::token::{SessionToken, TOKEN_VERSION};
use super::{QUEUE_CREDENTIALS_SECONDS, queue_credentials, role_session_name, side_policy};
use crate::channel::{self, Downlink, DownlinkPayload, SessionStart};
use crate::documents::document_type::DocumentType;
use crate::error::{SsmError, parse_request};
use crate::fleet::node::PingStatus;
use crate::run_command::ports::Delivery;
use crate::secret::Secret;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartSessionRequest {
    target: String,
    #[serde(default)]
    document_name: Option<String>,
    #[serde(default)]
    parameters: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    reason: Option<String>,
}

/// How long the agent has to take the start message before it is stale.
const START_MESSAGE_SECONDS: f64 = 120.0;

pub async fn start_session(ctx: &SessionContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req: StartSessionRequest = parse_request(body)?;
    let node_arn = ctx.scope.node_arn(&req.target);
    ctx.caller.authorize("ssm:StartSession", &node_arn)?;
    let plan = session_plan(ctx, req.document_name.as_deref(), &req.parameters).await?;
    ctx.caller
        .authorize("ssm:StartSession", &ctx.document_arn(&plan.document_name))?;
    let node = match ctx.nodes.get(&req.target).await? {
        Some(n) if !n.queue_url.is_empty() => n,
        _ => return Err(not_connected(&req.target)),
    };
    if node.ping_status(ctx.now, ctx.connection_lost_seconds) != PingStatus::Online {
        return Err(not_connected(&req.target));
    }

    let user_name = crate::automation::start::user_name(&ctx.caller.user_arn());
    let session_id = new_session_id(&user_name);
    let key = SessionKey::generate().map_err(|_| SsmError::internal())?;
    let key_text = Secret::new(key.expose_base64());
    let sealed_key = ctx.sealer.seal(&session_id, &key_text).await?;
    let queues = ctx.queues.create(&session_id).await?;
    let transcript = transcript_location(ctx, &plan, &session_id).await?;

    let session = Session {
        session_id: session_id.clone(),
        target: req.target.clone(),
        status: SessionStatus::Connecting,
        start_date: ctx.now,
        end_date: None,
        document_name: plan.document_name.clone(),
        owner: ctx.caller.user_arn(),
        reason: req.reason.clone(),
        details: None,
        max_session_duration: plan.max_duration_minutes.map(|m| m.to_string()),
        s3_output_url: transcript.as_ref().map(|(_, object)| object.clone()),
        to_agent_queue_url: queues.to_agent.url.clone(),
        to_client_queue_url: queues.to_client.url.clone(),
        to_agent_queue_arn: queues.to_agent.arn.clone(),
        to_client_queue_arn: queues.to_client.arn.clone(),
        sealed_key,
        queues_deleted: false,
        revision: 1,
    };
    if !ctx.store.create(&session).await? {
        // A fresh random id that exists: nothing to recover, only retry.
        return Err(SsmError::internal());
    }

    let start = SessionStart {
        session_id: session_id.clone(),
        key: key_text.clone(),
        to_agent_queue_url: queues.to_agent.url.clone(),
        to_client_queue_url: queues.to_client.url.clone(),
        document_name: plan.document_name.clone(),
        kind: plan.kind.clone(),
        run_as: plan.run_as.clone(),
        shell_profile: plan.shell_profile.clone(),
        idle_timeout_seconds: plan.idle_timeout_seconds,
        max_duration_seconds: plan.max_duration_seconds(),
        transcript_put_url: transcript.map(|(put, _)| put),
    };
    let delivered = send_to_node(
        ctx,
        &node.instance_id,
        &node.queue_url,
        Downlink::StartSession(start),
    )
    .await?;
    if delivered == Delivery::QueueGone {
        return Err(not_connected(&req.target));
    }

    let creds = ctx
        .credentials
        .issue(
            &role_session_name("client", &session_id),
            &side_policy(&queues.to_client.arn, &queues.to_agent.arn),
            QUEUE_CREDENTIALS_SECONDS,
        )
        .await?;
    tracing::info!(
        session_id = %session_id,
        target = %req.target,
        document = %plan.document_name,
        "session started"
    );
    Ok(answer(ctx, &session, key_text, queue_credentials(creds)))
}

/// StartSession's and ResumeSession's answer.
pub(super) fn answer(
    ctx: &SessionContext<'_>,
    session: &Session,
    key: Secret,
    credentials: crate::sessions::QueueCredentials,
) -> Value {
    let token = SessionToken {
        version: TOKEN_VERSION,
        session_id: session.session_id.clone(),
        key,
        region: ctx.scope.region.clone(),
        send_queue_url: session.to_agent_queue_url.clone(),
        receive_queue_url: session.to_client_queue_url.clone(),
        credentials,
    };
    json!({
        "SessionId": session.session_id,
        "TokenValue": token.encode(),
        "StreamUrl": session.to_client_queue_url,
    })
}

/// Signs `message` for `node_id` and puts it on its queue.
pub(super) async fn send_to_node(
    ctx: &SessionContext<'_>,
    node_id: &str,
    queue_url: &str,
    message: Downlink,
) -> Result<Delivery, SsmError> {
    let payload = DownlinkPayload {
        v: channel::VERSION,
        msg_id: crate::ids::new_command_id(),
        node_id: node_id.to_string(),
        issued_at: ctx.now,
        expires_at: ctx.now + START_MESSAGE_SECONDS,
        message,
    };
    let bodies = channel::seal_downlinks(std::slice::from_ref(&payload), ctx.signer)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign a session message");
            SsmError::internal()
        })?;
    let body = bodies.into_iter().next().ok_or_else(SsmError::internal)?;
    ctx.mailbox.send(queue_url, &body).await
}

fn not_connected(target: &str) -> SsmError {
    SsmError::TargetNotConnected(format!(
        "{target} is not connected. Check that its agent is running and Online (DescribeInstanceInformation), then start the session again."
    ))
}

/// A Session document the account stored (`None`: there is none).
async fn stored_session_document(
    ctx: &SessionContext<'_>,
    name: &str,
) -> Result<Option<SessionDocument>, SsmError> {
    let Some(head) = ctx.documents.head(name).await? else {
        return Ok(None);
    };
    if DocumentType::stored(&head.document_type) != DocumentType::Session {
        return Err(SsmError::InvalidDocument(format!(
            "Document {name} is a {} document, not a Session document; give a Session document (SSM-SessionManagerRunShell by default).",
            head.document_type
        )));
    }
    let Some(version) = ctx.documents.version(name, head.default_version).await? else {
        return Ok(None);
    };
    SessionDocument::parse(&version.content, version.format).map(Some)
}

/// The plan for the request: Amazon's documents under the account's
/// preferences (SSM-SessionManagerRunShell's inputs, SSM's defaults when
/// there is none), or a shell under an account document of sessionType
/// Standard_Stream, whose inputs are its preferences.
async fn session_plan(
    ctx: &SessionContext<'_>,
    document_name: Option<&str>,
    parameters: &BTreeMap<String, Vec<String>>,
) -> Result<SessionPlan, SsmError> {
    let name = document_name
        .map(documents::short_name)
        .unwrap_or(documents::RUN_SHELL);
    if name == documents::RUN_SHELL || documents::AMAZON_SESSION_DOCUMENTS.contains(&name) {
        let preferences = stored_session_document(ctx, documents::RUN_SHELL)
            .await?
            .map(|d| d.inputs)
            .unwrap_or_default();
        return documents::plan(Some(name), parameters, &preferences);
    }
    let document = stored_session_document(ctx, name).await?.ok_or_else(|| {
        SsmError::InvalidDocument(format!(
            "Document {name} does not exist; give a Session document (SSM-SessionManagerRunShell by default, or {}).",
            documents::AMAZON_SESSION_DOCUMENTS.join(", ")
        ))
    })?;
    if document.session_type != "Standard_Stream" {
        return Err(SsmError::InvalidDocument(format!(
            "Document {name} has sessionType {}; Steward runs the account's Session documents of sessionType Standard_Stream, and Amazon's ({}) for the others.",
            document.session_type,
            documents::AMAZON_SESSION_DOCUMENTS.join(", ")
        )));
    }
    let mut plan = documents::plan(None, parameters, &document.inputs)?;
    plan.document_name = name.to_string();
    Ok(plan)
}

/// Where the transcript goes: a presigned PUT for the agent and the
/// object's `s3://` URL for the record.
async fn transcript_location(
    ctx: &SessionContext<'_>,
    plan: &SessionPlan,
    session_id: &str,
) -> Result<Option<(String, String)>, SsmError> {
    let Some((bucket, prefix)) = &plan.transcript else {
        return Ok(None);
    };
    if !ctx.outputs.allowed_buckets().contains(bucket) {
        return Err(SsmError::InvalidDocument(format!(
            "{}: s3BucketName {bucket} is not a bucket this stack may write to; name one of {} (the template's OutputBuckets).",
            documents::RUN_SHELL,
            ctx.outputs.allowed_buckets().join(", ")
        )));
    }
    let prefix = prefix.trim_matches('/');
    let key = if prefix.is_empty() {
        format!("{session_id}.log")
    } else {
        format!("{prefix}/{session_id}.log")
    };
    let lifetime = plan.max_duration_seconds() + 3600;
    let put = ctx
        .outputs
        .presign_put(bucket, &ctx.scope.region, &key, lifetime)
        .await?;
    Ok(Some((put.put_url, format!("s3://{bucket}/{key}"))))
}
