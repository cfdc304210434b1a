//! The API's Run Command operations: SendCommand, ListCommands,
//! ListCommandInvocations, GetCommandInvocation, CancelCommand. Each takes
//! the request body and answers SSM's response body.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RunCommandContext;
use super::model::{Command, Invocation, WorkItem};
use super::progress::settle;
use super::request::{
    CancelRequest, CommandFilters, GetInvocationRequest, ListRequest, SendCommandRequest,
    check_output_bucket,
};
use super::view;
use crate::access::Authorizer;
use crate::documents::HASH_TYPE;
use crate::documents::context::load_for_run;
use crate::documents::nested::expand;
use crate::error::SsmError;
use crate::ids::new_command_id;
use crate::parameters::references::{self, ReferenceCheck, validate_reference_set};
use crate::run_command::status::{Tally, command_state};
use crate::targets::{self, TargetSpec};

pub mod upload_urls;

/// How many store pages one listing call reads at most before it answers
/// with what it has and a NextToken (filters may drop many items).
const MAX_PAGES_PER_CALL: usize = 10;

/// Dispatches an SSM operation name; `None`: not a Run Command operation.
pub async fn handle(
    rc: &RunCommandContext<'_>,
    caller: &dyn Authorizer,
    op: &str,
    body: &Value,
    now: f64,
) -> Option<Result<Value, SsmError>> {
    Some(match op {
        "SendCommand" => send_command(rc, caller, body, now).await,
        "ListCommands" => list_commands(rc, body).await,
        "ListCommandInvocations" => list_command_invocations(rc, body).await,
        "GetCommandInvocation" => get_command_invocation(rc, body, now).await,
        "CancelCommand" => cancel_command(rc, body).await,
        _ => return None,
    })
}

/// Sends a command as `caller`, who must be able to read every parameter
/// its `{{ssm:…}}` references name (and decrypt the `{{ssm-secure:…}}` ones).
/// The document is a built-in or one of the account's (`rc.documents`); its
/// parameters are checked and its steps computed here, so a bad value
/// dispatches nothing.
pub async fn send_command(
    rc: &RunCommandContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    // A new id: no command can have it, so there is nothing to look up first.
    send(rc, caller, body, now, &new_command_id(), None).await
}

/// SendCommand under a command id the caller chose (an automation step
/// chooses it in its own record first, so a step retried after a crash
/// finds its command instead of sending a second). A command that already
/// has the id is answered as it is; nothing is sent again.
pub async fn send_command_as(
    rc: &RunCommandContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
    now: f64,
    command_id: &str,
    automation_execution_id: Option<&str>,
) -> Result<Value, SsmError> {
    if let Some(existing) = rc.store.get_command(command_id).await? {
        return Ok(json!({ "Command": view::command(&existing) }));
    }
    send(rc, caller, body, now, command_id, automation_execution_id).await
}

/// SendCommand under `command_id`: checked, stored if the id is free (else
/// answered with the command that has it), fanned out.
async fn send(
    rc: &RunCommandContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
    now: f64,
    command_id: &str,
    automation_execution_id: Option<&str>,
) -> Result<Value, SsmError> {
    let req = SendCommandRequest::from_json(body)?;
    check_output_bucket(&req.output_s3_bucket_name, &rc.outputs.allowed_buckets())?;
    let documents = rc.documents;
    let doc = load_for_run(
        documents,
        &req.document_name,
        req.document_version.as_deref(),
    )
    .await?;
    check_hash(&doc.name, &doc.hash, body)?;
    let params = doc.document.validate_parameters(&req.parameters)?;
    let platforms = doc.document.platform_types();
    if !platforms.iter().any(|p| NODE_PLATFORMS.contains(p)) {
        return Err(SsmError::UnsupportedPlatformType(format!(
            "Document {} runs on {} only, and Steward nodes run Linux or macOS: send a document with {} steps.",
            doc.name,
            platforms.join(", "),
            crate::documents::plugins::RUN_SHELL_SCRIPT
        )));
    }
    // Every Steward node is Linux today: preconditions are decided here,
    // once, and a skipped step is not sent.
    // `aws:runDocument` steps are expanded here, so a missing or bad nested
    // document dispatches nothing.
    let expanded = expand(documents, &doc.name, &doc.document, &params, NODE_PLATFORM).await?;
    // A step that would fail on every node (a schema 1.2 Windows plugin)
    // refuses the command instead of failing it node by node.
    if let Some(output) = expanded.steps.iter().find_map(|s| match &s.outcome {
        crate::documents::StepOutcome::Failed { output } => Some(output),
        _ => None,
    }) {
        return Err(SsmError::UnsupportedPlatformType(format!(
            "Document {} cannot run on a {NODE_PLATFORM} node: {output}",
            doc.name
        )));
    }
    let steps: Vec<_> = expanded
        .steps
        .iter()
        .filter_map(|s| s.plugin_step())
        .collect();
    let steps_size: usize = steps
        .iter()
        .map(|s| s.working_directory.len() + s.run_command.iter().map(String::len).sum::<usize>())
        .sum();
    if steps_size > super::request::MAX_STEPS_BYTES {
        return Err(SsmError::InvalidParameters(format!(
            "With these parameters the steps of document {} come to {steps_size} bytes; a command sends at most {} to a node.",
            doc.name,
            super::request::MAX_STEPS_BYTES
        )));
    }
    if steps.is_empty() {
        return Err(SsmError::InvalidParameters(format!(
            "No step of document {} runs on a {NODE_PLATFORM} node with these parameters: every step is skipped by its precondition or fails there.",
            doc.name
        )));
    }
    // The record keeps the references as written; values are looked up
    // again at dispatch (plain) or on the node (secure). What is checked is
    // the text that will be resolved: the steps after interpolation, nested
    // documents and defaults, so a reference written into a document, split
    // across parameters or left in a default is authorized like one given
    // as a parameter. References in parameters no step uses are checked too.
    let check = ReferenceCheck {
        store: rc.parameters,
        caller,
        scope: rc.scope,
    };
    let mut refs = references::in_steps(&steps);
    refs.extend(references::in_parameters(&req.parameters));
    validate_reference_set(&check, refs).await?;
    let spec = TargetSpec::parse(&req.instance_ids, &req.targets)?;
    let nodes = targets::resolve(&spec, rc.targets, rc.groups).await?;
    let tally = Tally {
        target_count: nodes.len() as u32,
        ..Default::default()
    };
    let state = command_state(&tally, 0, false);
    let command = Command {
        command_id: command_id.to_string(),
        document_name: req.document_name.clone(),
        // The version that runs, whatever `$DEFAULT`/`$LATEST` meant then.
        document_version: doc.version.to_string(),
        comment: req.comment,
        parameters: req.parameters,
        instance_ids: req.instance_ids,
        targets: req.targets,
        resolved_instance_ids: nodes,
        requested_date_time: now,
        expires_after: now + req.timeout_seconds as f64,
        status: state.status.into(),
        status_details: state.details.into(),
        output_s3_bucket_name: req.output_s3_bucket_name,
        output_s3_key_prefix: req.output_s3_key_prefix,
        output_s3_region: req.output_s3_region,
        max_concurrency: req.max_concurrency,
        max_errors: req.max_errors,
        service_role: req.service_role_arn,
        notification_config: req.notification_config,
        timeout_seconds: req.timeout_seconds,
        steps,
        tally,
        cancel_requested: false,
        automation_execution_id: automation_execution_id.map(str::to_string),
    };
    if let Err(e) = rc.store.put_command(&command).await {
        // Another delivery of the same step created it first: that one
        // fans it out.
        return match rc.store.get_command(&command.command_id).await? {
            Some(existing) => Ok(json!({ "Command": view::command(&existing) })),
            None => Err(e),
        };
    }
    if !command.resolved_instance_ids.is_empty() {
        let item = WorkItem::FanOut {
            command_id: command.command_id.clone(),
        };
        if let Err(e) = rc.work.enqueue(&item, 0).await {
            // Nothing will ever send it: say so on the record rather than
            // leave it Pending forever.
            let failed = crate::run_command::status::CommandState {
                status: "Failed",
                details: "Failed",
            };
            let _ = rc
                .store
                .set_command_state(
                    &command.command_id,
                    (&command.status, &command.status_details),
                    failed,
                )
                .await;
            return Err(e);
        }
    }
    Ok(json!({ "Command": view::command(&command) }))
}

/// The platform every Steward node runs today.
pub const NODE_PLATFORM: &str = "Linux";
/// The platforms a Steward agent runs on (SSM's `PlatformType` names).
pub const NODE_PLATFORMS: [&str; 2] = ["Linux", "MacOS"];

/// SendCommand's `DocumentHash` (and `DocumentHashType`), when given, must be
/// the hash of the version that would run.
fn check_hash(name: &str, hash: &str, body: &Value) -> Result<(), SsmError> {
    if let Some(t) = body.get("DocumentHashType").and_then(Value::as_str)
        && t != HASH_TYPE
    {
        return Err(SsmError::InvalidParameters(format!(
            "DocumentHashType {t} is not supported: Steward hashes documents with {HASH_TYPE}."
        )));
    }
    match body.get("DocumentHash").and_then(Value::as_str) {
        Some(given) if !given.eq_ignore_ascii_case(hash) => {
            Err(SsmError::InvalidDocument(format!(
                "DocumentHash {given} is not the hash of the version of document {name} that would run ({hash}); DescribeDocument shows it."
            )))
        }
        _ => Ok(()),
    }
}

/// A listing cursor over several store queries, as one opaque NextToken.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// The store's token for the outer listing (commands, or a node's invocations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outer: Option<String>,
    /// The command whose invocations are being listed, and where in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inner: Option<String>,
}

impl Cursor {
    fn decode(token: Option<&str>) -> Result<Self, SsmError> {
        let Some(t) = token else {
            return Ok(Self::default());
        };
        B64.decode(t)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                SsmError::InvalidNextToken(
                    "NextToken is not one this operation returned; start again without it.".into(),
                )
            })
    }

    fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn is_done(&self) -> bool {
        self.outer.is_none() && self.command.is_none()
    }
}

fn command_passes(f: &CommandFilters, c: &Command) -> bool {
    f.accepts(c.requested_date_time, &c.status, &c.document_name)
}

fn invocation_passes(f: &CommandFilters, i: &Invocation) -> bool {
    f.accepts(
        i.requested_date_time,
        i.status_details.status().as_str(),
        &i.document_name,
    )
}

fn unknown_command(id: &str) -> SsmError {
    SsmError::InvalidCommandId(format!(
        "Command {id} does not exist; list commands with list-commands."
    ))
}

pub async fn list_commands(rc: &RunCommandContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = ListRequest::from_json(body)?;
    let f = &req.filters;
    let mut out = Vec::new();
    let mut cursor = Cursor::decode(req.next_token.as_deref())?;
    if let Some(id) = &req.command_id {
        let c = rc
            .store
            .get_command(id)
            .await?
            .ok_or_else(|| unknown_command(id))?;
        let on_node = req
            .instance_id
            .as_ref()
            .is_none_or(|n| c.resolved_instance_ids.contains(n));
        if on_node && command_passes(f, &c) {
            out.push(view::command(&c));
        }
        return Ok(json!({ "Commands": out }));
    }
    for page_no in 0..MAX_PAGES_PER_CALL {
        if page_no > 0 && cursor.outer.is_none() {
            break;
        }
        let want = req.max_results - out.len() as u32;
        if let Some(node) = &req.instance_id {
            let page = rc
                .store
                .query_node_invocations(node, f.range, want, cursor.outer.as_deref())
                .await?;
            for inv in page.items {
                if let Some(c) = rc.store.get_command(&inv.command_id).await?
                    && command_passes(f, &c)
                {
                    out.push(view::command(&c));
                }
            }
            cursor.outer = page.next_token;
        } else {
            let page = rc
                .store
                .query_commands(f.range, want, cursor.outer.as_deref())
                .await?;
            out.extend(
                page.items
                    .iter()
                    .filter(|c| command_passes(f, c))
                    .map(view::command),
            );
            cursor.outer = page.next_token;
        }
        if out.len() as u32 >= req.max_results {
            break;
        }
    }
    let mut answer = json!({ "Commands": out });
    if !cursor.is_done() {
        answer["NextToken"] = json!(cursor.encode());
    }
    Ok(answer)
}

pub async fn list_command_invocations(
    rc: &RunCommandContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req = ListRequest::from_json(body)?;
    let f = &req.filters;
    let mut out = Vec::new();
    let mut cursor = Cursor::decode(req.next_token.as_deref())?;
    match (&req.command_id, &req.instance_id) {
        (Some(cid), Some(node)) => {
            match rc.store.get_invocation(cid, node).await? {
                Some(inv) => {
                    if invocation_passes(f, &inv) {
                        out.push(view::invocation(&inv, req.details));
                    }
                }
                None => {
                    rc.store
                        .get_command(cid)
                        .await?
                        .ok_or_else(|| unknown_command(cid))?;
                }
            }
            return Ok(json!({ "CommandInvocations": out }));
        }
        (Some(cid), None) => {
            rc.store
                .get_command(cid)
                .await?
                .ok_or_else(|| unknown_command(cid))?;
            for page_no in 0..MAX_PAGES_PER_CALL {
                if page_no > 0 && cursor.outer.is_none() {
                    break;
                }
                let want = req.max_results - out.len() as u32;
                let page = rc
                    .store
                    .query_invocations(cid, want, cursor.outer.as_deref())
                    .await?;
                out.extend(
                    page.items
                        .iter()
                        .filter(|i| invocation_passes(f, i))
                        .map(|i| view::invocation(i, req.details)),
                );
                cursor.outer = page.next_token;
                if out.len() as u32 >= req.max_results {
                    break;
                }
            }
        }
        (None, Some(node)) => {
            for page_no in 0..MAX_PAGES_PER_CALL {
                if page_no > 0 && cursor.outer.is_none() {
                    break;
                }
                let want = req.max_results - out.len() as u32;
                let page = rc
                    .store
                    .query_node_invocations(node, f.range, want, cursor.outer.as_deref())
                    .await?;
                out.extend(
                    page.items
                        .iter()
                        .filter(|i| invocation_passes(f, i))
                        .map(|i| view::invocation(i, req.details)),
                );
                cursor.outer = page.next_token;
                if out.len() as u32 >= req.max_results {
                    break;
                }
            }
        }
        (None, None) => {
            // Every invocation, newest command first: walk the commands one by
            // one and each command's invocations.
            let mut first = true;
            for _ in 0..MAX_PAGES_PER_CALL {
                if cursor.command.is_none() {
                    if !first && cursor.outer.is_none() {
                        break;
                    }
                    let page = rc
                        .store
                        .query_commands(f.range, 1, cursor.outer.as_deref())
                        .await?;
                    cursor.outer = page.next_token;
                    match page.items.into_iter().next() {
                        Some(c) => cursor.command = Some(c.command_id),
                        None => break,
                    }
                }
                first = false;
                let Some(cid) = cursor.command.clone() else {
                    break;
                };
                let want = req.max_results - out.len() as u32;
                let page = rc
                    .store
                    .query_invocations(&cid, want, cursor.inner.as_deref())
                    .await?;
                out.extend(
                    page.items
                        .iter()
                        .filter(|i| invocation_passes(f, i))
                        .map(|i| view::invocation(i, req.details)),
                );
                cursor.inner = page.next_token;
                if cursor.inner.is_none() {
                    cursor.command = None;
                }
                if out.len() as u32 >= req.max_results {
                    break;
                }
            }
        }
    }
    let mut answer = json!({ "CommandInvocations": out });
    if !cursor.is_done() {
        answer["NextToken"] = json!(cursor.encode());
    }
    Ok(answer)
}

pub async fn get_command_invocation(
    rc: &RunCommandContext<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req = GetInvocationRequest::from_json(body)?;
    let missing = || {
        SsmError::InvocationDoesNotExist(format!(
            "Command {} has no invocation on {}; check both ids with list-command-invocations.",
            req.command_id, req.instance_id
        ))
    };
    let inv = rc
        .store
        .get_invocation(&req.command_id, &req.instance_id)
        .await?
        .ok_or_else(missing)?;
    let plugin = match &req.plugin_name {
        None => None,
        Some(name) => Some(
            inv.plugins
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| {
                    SsmError::InvocationDoesNotExist(format!(
                        "The invocation has no plugin {name}; its plugins are {}.",
                        inv.plugins
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        ),
    };
    Ok(view::get_invocation(&inv, plugin, now))
}

pub async fn cancel_command(rc: &RunCommandContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = CancelRequest::from_json(body)?;
    let c = rc
        .store
        .get_command(&req.command_id)
        .await?
        .ok_or_else(|| unknown_command(&req.command_id))?;
    let strangers: Vec<&str> = req
        .instance_ids
        .iter()
        .filter(|i| !c.resolved_instance_ids.contains(i))
        .map(String::as_str)
        .collect();
    if !strangers.is_empty() {
        return Err(SsmError::InvalidInstanceId(format!(
            "Command {} was not sent to [{}]; give instance ids it targets, or none to cancel it everywhere.",
            c.command_id,
            strangers.join(", ")
        )));
    }
    if c.is_final() {
        return Ok(json!({}));
    }
    // A target rate control has not sent to yet has no invocation to
    // cancel. Saying yes and sending it later would be a lie, so the request
    // is refused and nothing changes; cancelling the whole command closes
    // such targets (`dispatch::release`).
    let mut unsent = Vec::new();
    for id in &req.instance_ids {
        if rc.store.get_invocation(&c.command_id, id).await?.is_none() {
            unsent.push(id.as_str());
        }
    }
    if !unsent.is_empty() {
        return Err(SsmError::InvalidInstanceId(format!(
            "Command {} has not been sent to [{}] yet: rate control is holding them back. Cancel the whole command (no InstanceIds) to stop them, or cancel them once they are sent.",
            c.command_id,
            unsent.join(", ")
        )));
    }
    if req.instance_ids.is_empty() && rc.store.request_cancel(&c.command_id).await? {
        settle(rc, &c.command_id).await?;
    }
    let item = WorkItem::Cancel {
        command_id: c.command_id.clone(),
        instance_ids: req.instance_ids,
    };
    rc.work.enqueue(&item, 0).await?;
    Ok(json!({}))
}
