//! `Steward.GetNodeParameters`: the values of a command's
//! `{{ssm-secure:…}}` references, for the node running it, just before the
//! step that uses them runs. Authenticated like `GetNodeCredentials`: an
//! Ed25519 signature by the node's registered key over every field of the
//! request, within the clock-skew window.
//!
//! Answered only while the invocation (CommandId, InstanceId) exists and is
//! not final, and only for names the command's recorded steps reference with
//! `{{ssm-secure:…}}` — the references SendCommand checked against its
//! caller's rights (ssm:GetParameters, kms:Decrypt). Anything else is
//! AccessDeniedException. Values are never logged.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{ParameterType, ParameterVersion, StoredValue};
use super::ports::ParameterStore;
use super::references::{self, Kind, MAX_REFERENCES, Reference, node_parameters_request_message};
use super::secrets::Sealer;
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::fleet::NodeStore;
use crate::fleet::signed_request;
use crate::run_command::ports::CommandStore;

/// What answering a node needs.
#[derive(Clone, Copy)]
pub struct NodeAccess<'a> {
    pub nodes: &'a dyn NodeStore,
    pub commands: &'a dyn CommandStore,
    pub store: &'a dyn ParameterStore,
    pub sealer: &'a Sealer,
    pub scope: &'a ArnScope,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_id: String,
    command_id: String,
    names: Vec<String>,
    timestamp: i64,
    signature: String,
}

fn denied(why: &str) -> SsmError {
    SsmError::AccessDeniedException(format!(
        "The node may not read these parameters: {why}. Nodes read only the {{{{ssm-secure:…}}}} parameters of a command they are running."
    ))
}

const BAD_SIGNATURE: &str = "The node's signature does not verify; the node must sign the request with the key it registered. Re-register the node if its key was lost.";

/// Answers a node's request at `now` (epoch seconds).
pub async fn get_node_parameters(
    ports: &NodeAccess<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req = Request::deserialize(body).map_err(|e| {
        SsmError::SerializationException(format!(
            "The request does not match GetNodeParameters' shape ({{InstanceId, CommandId, Names, Timestamp, Signature}}): {e}"
        ))
    })?;
    if req.names.is_empty() || req.names.len() > MAX_REFERENCES {
        return Err(SsmError::ValidationException(format!(
            "Names must hold 1 to {MAX_REFERENCES} parameter names."
        )));
    }
    let message = node_parameters_request_message(
        &req.instance_id,
        &req.command_id,
        &req.names,
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
    let invocation = ports
        .commands
        .get_invocation(&req.command_id, &req.instance_id)
        .await?
        .ok_or_else(|| denied("the command was not sent to this node"))?;
    if invocation.status_details.is_final() {
        return Err(denied("the command is over on this node"));
    }
    let command = ports
        .commands
        .get_command(&req.command_id)
        .await?
        .ok_or_else(|| denied("the command does not exist"))?;
    // The steps as recorded (before dispatch resolved any `{{ssm:…}}`): every
    // reference in them was authorized at SendCommand. A reference that only
    // appears once a plain value is substituted was never checked.
    let referenced: BTreeSet<String> = references::in_steps(&command.steps)
        .into_iter()
        .filter(|(kind, _)| *kind == Kind::Secure)
        .map(|(_, target)| target)
        .collect();
    if let Some(stranger) = req.names.iter().find(|n| !referenced.contains(*n)) {
        return Err(denied(&format!(
            "the command does not reference {}",
            references::display(Kind::Secure, stranger)
        )));
    }
    let mut out = Vec::with_capacity(req.names.len());
    for target in req.names.iter().collect::<BTreeSet<_>>() {
        let r = Reference {
            kind: Kind::Secure,
            target: target.clone(),
            span: 0..0,
        };
        let (name, selector) = r.parse()?;
        let version = references::select(ports.store, &name, selector.as_ref())
            .await?
            .ok_or_else(|| {
                SsmError::ParameterNotFound(format!(
                    "Parameter {target} does not exist any more (it did when the command was sent)."
                ))
            })?;
        let sealed = sealed_value(&version, target)?;
        let value = ports
            .sealer
            .open(&ports.scope.parameter_arn(&name), sealed)
            .await?;
        out.push(json!({ "Name": target, "Value": value.expose() }));
    }
    tracing::info!(
        instance_id = %req.instance_id,
        command_id = %req.command_id,
        count = out.len(),
        "SecureString values handed to a node"
    );
    Ok(json!({ "Parameters": out }))
}

fn sealed_value<'a>(version: &'a ParameterVersion, target: &str) -> Result<&'a str, SsmError> {
    match (&version.value, version.parameter_type) {
        (StoredValue::Sealed(s), ParameterType::SecureString) => Ok(s),
        _ => Err(SsmError::InvalidParameters(format!(
            "Parameter {target} is no longer a SecureString; send the command again with the reference that fits its type."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;
    use crate::access::{Caller, Policy};
    use crate::channel::{NodeKey, PluginStep};
    use crate::fleet::memory::{MemoryNodes, node};
    use crate::parameters::context::ParameterContext;
    use crate::parameters::memory::{MemoryDataKeys, MemoryParameterStore};
    use crate::parameters::put::put_parameter;
    use crate::run_command::memory as rc;
    use crate::run_command::model::{Command, Invocation};
    use crate::run_command::status::InvocationDetail;

    const NODE: &str = "mi-00000000000000001";
    const CMD: &str = "11111111-2222-3333-4444-555555555555";
    const NOW: f64 = 1_700_000_000.0;
    const SECRET: &str = "hunter2-very-secret";

    struct World {
        key: NodeKey,
        nodes: MemoryNodes,
        commands: rc::Store,
        store: MemoryParameterStore,
        sealer: Sealer,
        scope: ArnScope,
    }

    impl World {
        /// A node running a command whose steps reference `/db/pass` as a
        /// SecureString and `/app/plain` as a String whose value is itself
        /// a SecureString reference (to `/db/other`).
        async fn new() -> Self {
            let (key, _) = NodeKey::generate().unwrap();
            let nodes = MemoryNodes::default();
            nodes.insert(node(NODE, &key.public_key_base64(), NOW));
            let w = Self {
                key,
                nodes,
                commands: rc::Store::default(),
                store: MemoryParameterStore::new(),
                sealer: Sealer::new(
                    Box::new(MemoryDataKeys::default()),
                    Duration::from_secs(60),
                    16,
                ),
                scope: ArnScope {
                    region: "us-east-1".into(),
                    account: "123456789012".into(),
                },
            };
            w.put("/db/pass", SECRET, "SecureString").await;
            w.put("/db/other", "other-secret", "SecureString").await;
            w.put("/app/plain", "{{ssm-secure:/db/other}}", "String")
                .await;
            w.commands
                .commands
                .lock()
                .unwrap()
                .insert(CMD.into(), command());
            w.set_status(InvocationDetail::InProgress);
            w
        }

        async fn put(&self, name: &str, value: &str, kind: &str) {
            let admin = Caller {
                access_key_id: "AKSTADMIN".into(),
                user_arn: "arn:aws:iam::123456789012:user/admin".into(),
                policy: Policy::parse(
                    r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                )
                .unwrap(),
            };
            let ctx = ParameterContext {
                store: &self.store,
                sealer: &self.sealer,
                caller: &admin,
                scope: &self.scope,
                default_key_id: "stack-key",
                now: NOW,
            };
            put_parameter(&ctx, &json!({"Name": name, "Value": value, "Type": kind}))
                .await
                .unwrap();
        }

        fn set_status(&self, status: InvocationDetail) {
            self.commands
                .invocations
                .lock()
                .unwrap()
                .insert((CMD.into(), NODE.into()), invocation(status));
        }

        /// A request for `names` signed by the node's key at `timestamp`.
        fn request(&self, names: &[&str], timestamp: i64) -> Value {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let message = node_parameters_request_message(NODE, CMD, &names, timestamp);
            json!({
                "InstanceId": NODE,
                "CommandId": CMD,
                "Names": names,
                "Timestamp": timestamp,
                "Signature": B64.encode(self.key.sign(&message)),
            })
        }

        async fn ask(&self, body: &Value) -> Result<Value, SsmError> {
            let ports = NodeAccess {
                nodes: &self.nodes,
                commands: &self.commands,
                store: &self.store,
                sealer: &self.sealer,
                scope: &self.scope,
            };
            get_node_parameters(&ports, body, NOW).await
        }
    }

    fn command() -> Command {
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
            output_s3_bucket_name: String::new(),
            output_s3_key_prefix: String::new(),
            output_s3_region: String::new(),
            max_concurrency: "50".into(),
            max_errors: "0".into(),
            service_role: String::new(),
            notification_config: None,
            timeout_seconds: 3600,
            steps: vec![PluginStep {
                name: "aws:runShellScript".into(),
                action: "aws:runShellScript".into(),
                run_command: vec![
                    "login {{ssm-secure:/db/pass}}".into(),
                    "echo {{ssm:/app/plain}}".into(),
                ],
                working_directory: String::new(),
                timeout_seconds: 3600,
                patch: None,
                inventory: None,
            }],
            tally: Default::default(),
            cancel_requested: false,
            automation_execution_id: None,
        }
    }

    fn invocation(status: InvocationDetail) -> Invocation {
        Invocation {
            command_id: CMD.into(),
            instance_id: NODE.into(),
            instance_name: String::new(),
            comment: String::new(),
            document_name: "AWS-RunShellScript".into(),
            document_version: "1".into(),
            requested_date_time: NOW,
            status_details: status,
            response_code: -1,
            execution_start_date_time: None,
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
    async fn a_good_request_is_answered_with_the_opened_value() {
        let w = World::new().await;
        let out = w.ask(&w.request(&["/db/pass"], NOW as i64)).await.unwrap();
        assert_eq!(
            out,
            json!({"Parameters": [{"Name": "/db/pass", "Value": SECRET}]})
        );
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused() {
        let w = World::new().await;
        let mut body = w.request(&["/db/pass"], NOW as i64);
        // Signed over other names than the ones asked for.
        body["Signature"] = w.request(&["/db/other"], NOW as i64)["Signature"].clone();
        assert_eq!(code(w.ask(&body).await), "InvalidSignatureException");
        // Or by another key.
        let (other, _) = NodeKey::generate().unwrap();
        let message = node_parameters_request_message(NODE, CMD, &["/db/pass".into()], NOW as i64);
        body["Signature"] = json!(B64.encode(other.sign(&message)));
        assert_eq!(code(w.ask(&body).await), "InvalidSignatureException");
    }

    #[tokio::test]
    async fn a_stale_timestamp_is_refused() {
        let w = World::new().await;
        let stale = NOW as i64 - signed_request::MAX_CLOCK_SKEW_SECONDS - 1;
        let err = w.ask(&w.request(&["/db/pass"], stale)).await.unwrap_err();
        assert_eq!(err.code(), "InvalidSignatureException");
        assert!(err.to_string().contains("Signature expired"), "{err}");
        let fresh = NOW as i64 - signed_request::MAX_CLOCK_SKEW_SECONDS;
        assert_eq!(
            code(w.ask(&w.request(&["/db/pass"], fresh)).await),
            "answered"
        );
    }

    #[tokio::test]
    async fn a_final_invocation_is_refused() {
        let w = World::new().await;
        w.set_status(InvocationDetail::Success);
        let r = w.ask(&w.request(&["/db/pass"], NOW as i64)).await;
        assert_eq!(code(r), "AccessDeniedException");
    }

    #[tokio::test]
    async fn a_command_not_sent_to_the_node_is_refused() {
        let w = World::new().await;
        w.commands.invocations.lock().unwrap().clear();
        let r = w.ask(&w.request(&["/db/pass"], NOW as i64)).await;
        assert_eq!(code(r), "AccessDeniedException");
    }

    #[tokio::test]
    async fn a_name_the_command_does_not_reference_is_refused() {
        let w = World::new().await;
        let r = w
            .ask(&w.request(&["/db/pass", "/db/elsewhere"], NOW as i64))
            .await;
        assert_eq!(code(r), "AccessDeniedException");
        // A plain reference is not a SecureString one.
        let r = w.ask(&w.request(&["/app/plain"], NOW as i64)).await;
        assert_eq!(code(r), "AccessDeniedException");
    }

    #[tokio::test]
    async fn a_reference_that_appears_only_after_substitution_is_refused() {
        let w = World::new().await;
        // `{{ssm:/app/plain}}` resolves to `{{ssm-secure:/db/other}}`, which
        // SendCommand never checked.
        let err = w
            .ask(&w.request(&["/db/other"], NOW as i64))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(!err.to_string().contains("other-secret"));
    }
}
