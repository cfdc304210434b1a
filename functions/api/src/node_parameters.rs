//! `Steward.GetNodeParameters`: the values of a command's
//! `{{ssm-secure:…}}` references, for the node running it, just before the
//! step that uses them runs. Authenticated like `GetNodeCredentials`: an
//! Ed25519 signature by the node's registered key over every field of the
//! request, within the clock-skew window.
//!
//! The API answers only while the invocation (CommandId, InstanceId) exists
//! and is not final, and only for names the command's recorded steps
//! reference with `{{ssm-secure:…}}` — the references SendCommand checked
//! against its caller's rights (ssm:GetParameters, kms:Decrypt). Anything
//! else is AccessDeniedException. Values are never logged.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::commands::CommandTable;
use steward_aws::nodes::NodeTable;
use steward_aws::parameter_service::ParameterAdapters;
use steward_core::SsmError;
use steward_core::channel::verify_node_signature;
use steward_core::fleet::NodeStore;
use steward_core::fleet::ops::MAX_CLOCK_SKEW_SECONDS;
use steward_core::ids;
use steward_core::parameters::ParameterStore;
use steward_core::parameters::StoredValue;
use steward_core::parameters::name::ArnScope;
use steward_core::parameters::references::{
    self, Kind, MAX_REFERENCES, Reference, node_parameters_request_message,
};
use steward_core::parameters::secrets::Sealer;
use steward_core::parameters::{ParameterType, ParameterVersion};
use steward_core::run_command::ports::CommandStore;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Request {
    instance_id: String,
    command_id: String,
    names: Vec<String>,
    timestamp: i64,
    signature: String,
}

/// Process-wide: the sealer's data-key cache outlives a request.
fn parameters(stack: &Stack) -> &'static ParameterAdapters {
    static P: OnceLock<ParameterAdapters> = OnceLock::new();
    P.get_or_init(|| ParameterAdapters::new(stack))
}

pub async fn handle(stack: &Stack, body: &Value, now: f64) -> Result<Value, SsmError> {
    let p = parameters(stack);
    let ports = Ports {
        nodes: &NodeTable::new(stack),
        commands: &CommandTable::new(stack),
        store: &p.store,
        sealer: &p.sealer,
        scope: &p.scope,
    };
    get_node_parameters(&ports, body, now).await
}

pub struct Ports<'a> {
    pub nodes: &'a dyn NodeStore,
    pub commands: &'a dyn CommandStore,
    pub store: &'a dyn ParameterStore,
    pub sealer: &'a Sealer,
    pub scope: &'a ArnScope,
}

fn denied(why: &str) -> SsmError {
    SsmError::AccessDeniedException(format!(
        "The node may not read these parameters: {why}. Nodes read only the {{{{ssm-secure:…}}}} parameters of a command they are running."
    ))
}

pub async fn get_node_parameters(
    ports: &Ports<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: Request = serde_json::from_value(body.clone()).map_err(|e| {
        SsmError::SerializationException(format!(
            "The request does not match GetNodeParameters' shape ({{InstanceId, CommandId, Names, Timestamp, Signature}}): {e}"
        ))
    })?;
    if req.names.is_empty() || req.names.len() > MAX_REFERENCES {
        return Err(SsmError::ValidationException(format!(
            "Names must hold 1 to {MAX_REFERENCES} parameter names."
        )));
    }
    let refused = || {
        SsmError::InvalidSignatureException(
            "The node's signature does not verify; the node must sign the request with the key it registered. Re-register the node if its key was lost.".into(),
        )
    };
    if !ids::is_instance_id(&req.instance_id) {
        return Err(refused());
    }
    let node = ports
        .nodes
        .get(&req.instance_id)
        .await?
        .ok_or_else(refused)?;
    let message = node_parameters_request_message(
        &req.instance_id,
        &req.command_id,
        &req.names,
        req.timestamp,
    );
    verify_node_signature(&node.public_key, &message, &req.signature).map_err(|_| refused())?;
    if (now as i64 - req.timestamp).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(SsmError::InvalidSignatureException(
            "Signature expired: the Timestamp is more than 5 minutes from the server's time. Synchronize the node's clock (NTP) and retry.".into(),
        ));
    }
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
