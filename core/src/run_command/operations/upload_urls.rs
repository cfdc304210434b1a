//! `Steward.GetOutputUploadUrls`: a node asks again for the presigned PUT
//! URLs of one step's output, because the ones its RunCommand carried no
//! longer work (their signing credentials expired before the step ended: a
//! command may run for days, the control plane's credentials last hours).
//!
//! Authenticated like `GetNodeCredentials`: an Ed25519 signature by the
//! node's registered key over every field of the request, within the
//! clock-skew window. Answered only for an invocation of that command on
//! that node which is not final, or became final (by the node's own report)
//! at most [`FINAL_GRACE_SECONDS`] ago, of a command with S3 output to a
//! bucket the stack may still write; and only with the URLs of that node's
//! keys for that step. Anything else is AccessDeniedException.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::fleet::NodeStore;
use crate::fleet::signed_request;
use crate::run_command::dispatch::{EXECUTION_MARGIN, step_upload, upload_lifetime};
use crate::run_command::ports::{CommandStore, OutputLocations};
use crate::run_command::request::{check_command_id, output_bucket_refusal};

/// How long after its invocation ended a node may still ask: the agent
/// uploads a step's output before it reports, but its final report may
/// overtake a slow upload's retries.
pub const FINAL_GRACE_SECONDS: f64 = 600.0;

/// What answering needs.
#[derive(Clone, Copy)]
pub struct UploadUrlAccess<'a> {
    pub nodes: &'a dyn NodeStore,
    pub commands: &'a dyn CommandStore,
    pub outputs: &'a dyn OutputLocations,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_id: String,
    command_id: String,
    step_index: u32,
    timestamp: i64,
    signature: String,
}

/// What a node signs to ask for fresh upload URLs: every field the answer
/// depends on, one per line.
pub fn upload_urls_request_message(
    instance_id: &str,
    command_id: &str,
    step_index: u32,
    timestamp: i64,
) -> Vec<u8> {
    format!("GetOutputUploadUrls\n{instance_id}\n{command_id}\n{step_index}\n{timestamp}")
        .into_bytes()
}

fn denied(why: &str) -> SsmError {
    SsmError::AccessDeniedException(format!(
        "The node may not write this output: {why}. Nodes get upload URLs only for the output of a command they are running."
    ))
}

const BAD_SIGNATURE: &str = "The node's signature does not verify; the node must sign the request with the key it registered. Re-register the node if its key was lost.";

/// Answers a node's request at `now` (epoch seconds):
/// `{"StdoutPutUrl", "StderrPutUrl"}`.
pub async fn get_output_upload_urls(
    ports: &UploadUrlAccess<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req = Request::deserialize(body).map_err(|e| {
        SsmError::SerializationException(format!(
            "The request does not match GetOutputUploadUrls' shape ({{InstanceId, CommandId, StepIndex, Timestamp, Signature}}): {e}"
        ))
    })?;
    let message = upload_urls_request_message(
        &req.instance_id,
        &req.command_id,
        req.step_index,
        req.timestamp,
    );
    signed_request::verified_node(
        ports.nodes,
        &req.instance_id,
        &message,
        &req.signature,
        req.timestamp,
        now,
    )
    .await
    .map_err(|r| r.into_error(BAD_SIGNATURE))?;
    if check_command_id(&req.command_id).is_err() {
        return Err(denied("the command was not sent to this node"));
    }
    let invocation = ports
        .commands
        .get_invocation(&req.command_id, &req.instance_id)
        .await?
        .ok_or_else(|| denied("the command was not sent to this node"))?;
    // A final invocation's URLs are needed until its grace ends.
    let grace_end = if invocation.status_details.is_final() {
        // Only an end the node reported has a time to count the grace from.
        match invocation.execution_end_date_time {
            Some(end) if now - end <= FINAL_GRACE_SECONDS => Some(end + FINAL_GRACE_SECONDS),
            _ => return Err(denied("the command is over on this node")),
        }
    } else {
        None
    };
    let command = ports
        .commands
        .get_command(&req.command_id)
        .await?
        .ok_or_else(|| denied("the command does not exist"))?;
    if command.output_s3_bucket_name.is_empty() {
        return Err(denied("the command writes no output to S3"));
    }
    if let Some(why) = output_bucket_refusal(
        &command.output_s3_bucket_name,
        &ports.outputs.allowed_buckets(),
    ) {
        return Err(denied(&why));
    }
    let step = req.step_index as usize;
    if step >= command.steps.len() {
        return Err(SsmError::ValidationException(format!(
            "StepIndex {step} is not a step of the command: it has {} (counted from 0).",
            command.steps.len()
        )));
    }
    // A running one's, until its execution deadline.
    let needed_until = grace_end.unwrap_or(
        invocation.delivery_deadline + command.execution_budget() as f64 + EXECUTION_MARGIN,
    );
    let ttl = upload_lifetime(needed_until, now);
    let urls = step_upload(ports.outputs, &command, &req.instance_id, step, ttl).await?;
    tracing::info!(
        instance_id = %req.instance_id,
        command_id = %req.command_id,
        step,
        "fresh output upload URLs handed to a node"
    );
    Ok(json!({
        "StdoutPutUrl": urls.stdout_put_url,
        "StderrPutUrl": urls.stderr_put_url,
    }))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;
    use crate::channel::{NodeKey, PluginStep};
    use crate::fleet::memory::{MemoryNodes, node};
    use crate::run_command::memory as rc;
    use crate::run_command::model::{Command, Invocation};
    use crate::run_command::status::InvocationDetail;

    const NODE: &str = "mi-00000000000000001";
    const OTHER: &str = "mi-00000000000000002";
    const CMD: &str = "11111111-2222-3333-4444-555555555555";
    const NOW: f64 = 1_700_000_000.0;

    struct World {
        key: NodeKey,
        other: NodeKey,
        nodes: MemoryNodes,
        commands: rc::Store,
    }

    impl World {
        fn new(bucket: &str) -> Self {
            let (key, _) = NodeKey::generate().unwrap();
            let (other, _) = NodeKey::generate().unwrap();
            let nodes = MemoryNodes::default();
            nodes.insert(node(NODE, &key.public_key_base64(), NOW));
            nodes.insert(node(OTHER, &other.public_key_base64(), NOW));
            let w = Self {
                key,
                other,
                nodes,
                commands: rc::Store::default(),
            };
            w.commands
                .commands
                .lock()
                .unwrap()
                .insert(CMD.into(), command(bucket));
            w.set(NODE, InvocationDetail::InProgress, None);
            w
        }

        fn set(&self, node: &str, status: InvocationDetail, ended: Option<f64>) {
            let mut inv = invocation(node, status);
            inv.execution_end_date_time = ended;
            self.commands
                .invocations
                .lock()
                .unwrap()
                .insert((CMD.into(), node.into()), inv);
        }

        /// A request for `step` as `node`, signed by `key` at `timestamp`.
        fn request_by(&self, key: &NodeKey, node: &str, step: u32, timestamp: i64) -> Value {
            let message = upload_urls_request_message(node, CMD, step, timestamp);
            json!({
                "InstanceId": node,
                "CommandId": CMD,
                "StepIndex": step,
                "Timestamp": timestamp,
                "Signature": B64.encode(key.sign(&message)),
            })
        }

        fn request(&self, step: u32) -> Value {
            self.request_by(&self.key, NODE, step, NOW as i64)
        }

        async fn ask(&self, body: &Value, now: f64) -> Result<Value, SsmError> {
            let ports = UploadUrlAccess {
                nodes: &self.nodes,
                commands: &self.commands,
                outputs: &rc::Outputs,
            };
            get_output_upload_urls(&ports, body, now).await
        }
    }

    fn step(name: &str) -> PluginStep {
        PluginStep {
            name: name.into(),
            action: "aws:runShellScript".into(),
            run_command: vec!["sleep 100000".into()],
            working_directory: String::new(),
            timeout_seconds: 172_800,
            patch: None,
            inventory: None,
        }
    }

    fn command(bucket: &str) -> Command {
        Command {
            command_id: CMD.into(),
            document_name: "AWS-RunShellScript".into(),
            document_version: "1".into(),
            comment: String::new(),
            parameters: Default::default(),
            instance_ids: vec![NODE.into()],
            targets: vec![],
            resolved_instance_ids: vec![NODE.into()],
            requested_date_time: NOW,
            expires_after: NOW + 3600.0,
            status: "InProgress".into(),
            status_details: "InProgress".into(),
            output_s3_bucket_name: bucket.into(),
            output_s3_key_prefix: "runs".into(),
            output_s3_region: String::new(),
            max_concurrency: "50".into(),
            max_errors: "0".into(),
            service_role: String::new(),
            notification_config: None,
            timeout_seconds: 3600,
            steps: vec![step("first"), step("second")],
            tally: Default::default(),
            cancel_requested: false,
            automation_execution_id: None,
        }
    }

    fn invocation(node: &str, status: InvocationDetail) -> Invocation {
        Invocation {
            command_id: CMD.into(),
            instance_id: node.into(),
            instance_name: String::new(),
            comment: String::new(),
            document_name: "AWS-RunShellScript".into(),
            document_version: "1".into(),
            requested_date_time: NOW,
            status_details: status,
            response_code: -1,
            execution_start_date_time: Some(NOW),
            execution_end_date_time: None,
            plugins: vec![],
            output_s3_bucket_name: String::new(),
            output_s3_key_prefix: String::new(),
            output_s3_region: String::new(),
            service_role: String::new(),
            notification_config: None,
            message_id: "m-1".into(),
            delivery_deadline: NOW + 3600.0,
            released_offline: false,
        }
    }

    fn code(r: Result<Value, SsmError>) -> &'static str {
        r.err().map(|e| e.code()).unwrap_or("answered")
    }

    #[tokio::test]
    async fn a_running_node_gets_its_own_keys_for_the_step() {
        let w = World::new("out-bucket");
        let out = w.ask(&w.request(1), NOW).await.unwrap();
        let stdout = out["StdoutPutUrl"].as_str().unwrap();
        let stderr = out["StderrPutUrl"].as_str().unwrap();
        assert!(
            stdout.starts_with(&format!(
                "https://s3.local/out-bucket/runs/{CMD}/{NODE}/second/1.second/stdout?"
            )),
            "{stdout}"
        );
        assert!(stderr.contains(&format!("/{NODE}/second/1.second/stderr?")));
    }

    #[tokio::test]
    async fn another_key_or_another_node_is_refused() {
        let w = World::new("out-bucket");
        // The node's id, another key.
        let (stranger, _) = NodeKey::generate().unwrap();
        let body = w.request_by(&stranger, NODE, 0, NOW as i64);
        assert_eq!(code(w.ask(&body, NOW).await), "InvalidSignatureException");
        // Signed for another step than the one asked for.
        let mut body = w.request(0);
        body["StepIndex"] = json!(1);
        assert_eq!(code(w.ask(&body, NOW).await), "InvalidSignatureException");
        // Another registered node, rightly signed, asking for NODE's
        // command: it was not sent to it.
        let body = w.request_by(&w.other, OTHER, 0, NOW as i64);
        assert_eq!(code(w.ask(&body, NOW).await), "AccessDeniedException");
        // An unregistered id.
        let body = w.request_by(&w.key, "mi-00000000000000009", 0, NOW as i64);
        assert_eq!(code(w.ask(&body, NOW).await), "InvalidSignatureException");
    }

    #[tokio::test]
    async fn a_node_the_command_was_not_sent_to_is_refused() {
        let w = World::new("out-bucket");
        w.commands.invocations.lock().unwrap().clear();
        assert_eq!(
            code(w.ask(&w.request(0), NOW).await),
            "AccessDeniedException"
        );
    }

    #[tokio::test]
    async fn a_stale_timestamp_is_refused() {
        let w = World::new("out-bucket");
        let stale = NOW as i64 - signed_request::MAX_CLOCK_SKEW_SECONDS - 1;
        let body = w.request_by(&w.key, NODE, 0, stale);
        assert_eq!(code(w.ask(&body, NOW).await), "InvalidSignatureException");
    }

    #[tokio::test]
    async fn a_final_invocation_is_answered_only_within_the_grace() {
        let w = World::new("out-bucket");
        let ended = NOW - 60.0;
        w.set(NODE, InvocationDetail::Success, Some(ended));
        assert_eq!(code(w.ask(&w.request(0), NOW).await), "answered");
        let late = ended + FINAL_GRACE_SECONDS + 1.0;
        let body = w.request_by(&w.key, NODE, 0, late as i64);
        assert_eq!(code(w.ask(&body, late).await), "AccessDeniedException");
        // Ended by the control plane (no end the node reported): no grace.
        w.set(NODE, InvocationDetail::ExecutionTimedOut, None);
        assert_eq!(
            code(w.ask(&w.request(0), NOW).await),
            "AccessDeniedException"
        );
    }

    #[tokio::test]
    async fn a_command_without_s3_output_or_with_a_bucket_no_longer_allowed_is_refused() {
        let w = World::new("");
        assert_eq!(
            code(w.ask(&w.request(0), NOW).await),
            "AccessDeniedException"
        );
        let w = World::new("dropped-from-the-list");
        assert_eq!(
            code(w.ask(&w.request(0), NOW).await),
            "AccessDeniedException"
        );
    }

    #[tokio::test]
    async fn a_step_the_command_does_not_have_is_refused() {
        let w = World::new("out-bucket");
        assert_eq!(code(w.ask(&w.request(2), NOW).await), "ValidationException");
    }
}
