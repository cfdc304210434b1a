//! The fleet's SSM operations, each a function over the ports.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::channel::{self, Heartbeat};
use crate::error::SsmError;
use crate::ids;
use crate::targets::TargetDirectory;

use super::activation::{self, Activation, CreateActivationRequest};
use super::node::{Node, PingStatus, RESOURCE_TYPE};
use super::paging::{self, Cursor};
use super::ports::{ActivationStore, CredentialIssuer, NodeQueues, NodeStore, SigningKey};
use super::tags::{self, Tag, TagSet};

use crate::error::parse_request as parse;

/// How many extra store pages a filtered listing reads before it answers
/// with a NextToken: bounds the work of one request.
const MAX_ROUNDS: usize = 5;

// ------------------------------------------------------------ activations

pub async fn create_activation(
    store: &dyn ActivationStore,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: CreateActivationRequest = parse(body)?;
    let (activation, code) = Activation::create(&req, now)?;
    store.create(&activation).await?;
    Ok(json!({ "ActivationId": activation.activation_id, "ActivationCode": code }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeActivationsRequest {
    #[serde(default)]
    filters: Vec<ActivationFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ActivationFilter {
    filter_key: String,
    #[serde(default)]
    filter_values: Vec<String>,
}

pub async fn describe_activations(
    store: &dyn ActivationStore,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let req: DescribeActivationsRequest = parse(body)?;
    let max = paging::max_results(req.max_results, 1, 50, 50)?;
    let mut ids: Option<BTreeSet<String>> = None;
    let mut names: Option<BTreeSet<String>> = None;
    let mut roles: Option<BTreeSet<String>> = None;
    for f in &req.filters {
        let values: BTreeSet<String> = f.filter_values.iter().cloned().collect();
        let slot = match f.filter_key.as_str() {
            "ActivationIds" => &mut ids,
            "DefaultInstanceName" => &mut names,
            "IamRole" => &mut roles,
            other => {
                return Err(SsmError::InvalidFilter(format!(
                    "Filter key {other} is not supported; use ActivationIds, DefaultInstanceName or IamRole."
                )));
            }
        };
        *slot = Some(match slot.take() {
            None => values,
            Some(prev) => prev.intersection(&values).cloned().collect(),
        });
    }
    let keep = |a: &Activation| {
        names
            .as_ref()
            .is_none_or(|n| n.contains(&a.default_instance_name))
            && roles.as_ref().is_none_or(|r| r.contains(&a.iam_role))
    };
    let cursor = req.next_token.as_deref().map(paging::decode).transpose()?;
    let mut out = Vec::new();
    let mut next = None;
    if let Some(ids) = ids {
        let after = match cursor {
            None => None,
            Some(Cursor::Id { after }) => Some(after),
            Some(_) => return Err(paging::invalid_token()),
        };
        // A value that is no activation id names none: it is not looked up.
        let pending: Vec<&String> = ids
            .iter()
            .filter(|id| ids::is_activation_id(id))
            .filter(|id| after.as_ref().is_none_or(|a| *id > a))
            .collect();
        for (i, id) in pending.iter().enumerate() {
            if out.len() == max {
                next = Some(Cursor::Id {
                    after: pending[i - 1].to_string(),
                });
                break;
            }
            if let Some(a) = store.get(id).await?
                && keep(&a)
            {
                out.push(a.view(now));
            }
        }
    } else {
        let mut after = match cursor {
            None => None,
            Some(Cursor::Activation { created, id }) => Some((created, id)),
            Some(_) => return Err(paging::invalid_token()),
        };
        for _ in 0..MAX_ROUNDS {
            let (page, more) = store.list(after.clone(), max - out.len()).await?;
            if let Some(last) = page.last() {
                after = Some((last.created_date, last.activation_id.clone()));
            }
            out.extend(page.iter().filter(|a| keep(a)).map(|a| a.view(now)));
            if !more {
                after = None;
                break;
            }
            if out.len() >= max {
                break;
            }
        }
        next = after.map(|(created, id)| Cursor::Activation { created, id });
    }
    let mut resp = json!({ "ActivationList": out });
    if let Some(c) = next {
        resp["NextToken"] = json!(paging::encode(&c));
    }
    Ok(resp)
}

pub async fn delete_activation(
    store: &dyn ActivationStore,
    body: &Value,
) -> Result<Value, SsmError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Req {
        activation_id: String,
    }
    let req: Req = parse(body)?;
    if !store.delete(&req.activation_id).await? {
        return Err(SsmError::InvalidActivationId(format!(
            "Activation ID {} is not valid. Verify the ID with describe-activations and try again.",
            req.activation_id
        )));
    }
    Ok(json!({}))
}

// ------------------------------------------------------------ registration

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterRequest {
    pub activation_id: String,
    pub activation_code: String,
    pub public_key: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub platform_name: String,
    #[serde(default)]
    pub platform_version: String,
    #[serde(default)]
    pub agent_version: String,
    #[serde(rename = "IPAddress", default)]
    pub ip_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterResponse {
    pub instance_id: String,
    pub queue_url: String,
    pub ingest_queue_url: String,
    pub region: String,
    pub command_signing_public_key: String,
}

/// Registers a node with an activation: its queue first (idempotent, removed
/// again if registration fails), then one transaction that takes a
/// registration from the activation, puts the node and indexes its tags.
pub async fn register(
    nodes: &dyn NodeStore,
    activations: &dyn ActivationStore,
    queues: &dyn NodeQueues,
    signing: &dyn SigningKey,
    body: &Value,
    now: f64,
) -> Result<RegisterResponse, SsmError> {
    let req: RegisterRequest = parse(body)?;
    // Unsigned: everything is checked before any store sees it.
    if !ids::is_activation_id(&req.activation_id) || req.activation_code.len() > 250 {
        return Err(activation::invalid_activation());
    }
    for (field, value, max) in [
        ("Hostname", &req.hostname, 255),
        ("PlatformName", &req.platform_name, 128),
        ("PlatformVersion", &req.platform_version, 128),
        ("AgentVersion", &req.agent_version, 64),
        ("IPAddress", &req.ip_address, 64),
    ] {
        if value.chars().count() > max {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            )));
        }
    }
    match B64.decode(&req.public_key) {
        Ok(k) if k.len() == 32 => {}
        _ => {
            return Err(SsmError::ValidationException(
                "PublicKey must be the base64 of a raw 32-byte Ed25519 public key.".into(),
            ));
        }
    }
    let activation = activations
        .get(&req.activation_id)
        .await?
        .ok_or_else(activation::invalid_activation)?;
    activation.admits(&req.activation_code, now)?;
    let command_signing_public_key = signing.public_key_b64().await?;

    let instance_id = ids::new_managed_instance_id();
    let queue = queues.ensure_queue(&instance_id).await?;
    let node = Node {
        instance_id: instance_id.clone(),
        activation_id: activation.activation_id.clone(),
        name: activation.default_instance_name.clone(),
        iam_role: activation.iam_role.clone(),
        registration_date: now,
        last_ping_date_time: now,
        agent_version: req.agent_version,
        platform_type: "Linux".into(),
        platform_name: req.platform_name,
        platform_version: req.platform_version,
        computer_name: req.hostname,
        ip_address: req.ip_address,
        public_key: req.public_key,
        queue_url: queue.url.clone(),
        queue_arn: queue.arn.clone(),
        tags: activation.tags.clone(),
        tags_version: 0,
    };
    if let Err(e) = nodes.register(&node, &activation.code_hash, now).await {
        // The queue is empty and no node owns it; the adapter logs a failed
        // cleanup, and the registration's own error is what the caller needs.
        let _ = queues.delete_queue(&queue.url).await;
        return Err(e);
    }
    Ok(RegisterResponse {
        instance_id,
        queue_url: queue.url,
        ingest_queue_url: queues.ingest_queue_url().to_string(),
        region: queues.region().to_string(),
        command_signing_public_key,
    })
}

// ------------------------------------------------------------ credentials

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
    nodes: &dyn NodeStore,
    queues: &dyn NodeQueues,
    issuer: &dyn CredentialIssuer,
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
    let node = nodes.get(&req.instance_id).await?.ok_or_else(refused)?;
    let message = channel::credentials_request_message(&req.instance_id, req.timestamp);
    channel::verify_node_signature(&node.public_key, &message, &req.signature)
        .map_err(|_| refused())?;
    if (now as i64 - req.timestamp).abs() > MAX_CLOCK_SKEW_SECONDS {
        return Err(SsmError::InvalidSignatureException(
            "Signature expired: the Timestamp is more than 5 minutes from the server's time. Synchronize the node's clock (NTP) and retry.".into(),
        ));
    }
    let ingest_arn = queues.ingest_queue_arn().await?;
    let policy = node_session_policy(&node.queue_arn, &ingest_arn);
    let creds = issuer
        .issue(&node.instance_id, &policy, NODE_CREDENTIALS_SECONDS)
        .await?;
    Ok(json!({
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key.expose(),
        "SessionToken": creds.session_token.expose(),
        "Expiration": creds.expiration,
    }))
}

// ------------------------------------------------------------ node information

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstanceInformationRequest {
    #[serde(default)]
    instance_information_filter_list: Vec<LegacyFilter>,
    #[serde(default)]
    filters: Vec<StringFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LegacyFilter {
    key: String,
    #[serde(rename = "valueSet", default)]
    value_set: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StringFilter {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

/// Filters of DescribeInstanceInformation, parsed: every present filter must
/// match (AND); any value of one filter may match (OR).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NodeFilter {
    pub instance_ids: Option<BTreeSet<String>>,
    pub tags: Vec<(String, Vec<String>)>,
    pub tag_keys: Option<Vec<String>>,
    pub agent_versions: Option<BTreeSet<String>>,
    pub ping_statuses: Option<BTreeSet<String>>,
    pub platform_types: Option<BTreeSet<String>>,
    pub activation_ids: Option<BTreeSet<String>>,
    pub iam_roles: Option<BTreeSet<String>>,
    pub resource_types: Option<BTreeSet<String>>,
    /// No association runs yet: any AssociationStatus filter matches nothing.
    pub association_status: bool,
}

fn and_set(slot: &mut Option<BTreeSet<String>>, values: &[String]) {
    let v: BTreeSet<String> = values.iter().cloned().collect();
    *slot = Some(match slot.take() {
        None => v,
        Some(prev) => prev.intersection(&v).cloned().collect(),
    });
}

impl NodeFilter {
    fn add(&mut self, key: &str, values: &[String]) -> Result<(), SsmError> {
        if values.is_empty() {
            return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                "Filter {key} has no values; give at least one."
            )));
        }
        match key {
            "InstanceIds" => {
                if let Some(bad) = values.iter().find(|v| !ids::is_instance_id(v)) {
                    return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                        "{bad} is not a valid instance id (mi- or i- followed by hex digits)."
                    )));
                }
                and_set(&mut self.instance_ids, values)
            }
            "AgentVersion" => and_set(&mut self.agent_versions, values),
            "PingStatus" => {
                if let Some(bad) = values
                    .iter()
                    .find(|v| !["Online", "ConnectionLost", "Inactive"].contains(&v.as_str()))
                {
                    return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                        "PingStatus {bad} is not valid; use Online, ConnectionLost or Inactive."
                    )));
                }
                and_set(&mut self.ping_statuses, values)
            }
            "PlatformTypes" => and_set(&mut self.platform_types, values),
            "ActivationIds" => and_set(&mut self.activation_ids, values),
            "IamRole" => and_set(&mut self.iam_roles, values),
            "ResourceType" => and_set(&mut self.resource_types, values),
            "AssociationStatus" => self.association_status = true,
            "tag-key" => self
                .tag_keys
                .get_or_insert_with(Vec::new)
                .extend(values.iter().cloned()),
            k => match k.strip_prefix("tag:") {
                Some(tk) if !tk.is_empty() => self.tags.push((tk.to_string(), values.to_vec())),
                _ => {
                    return Err(SsmError::InvalidFilterKey(format!(
                        "Filter key {k} is not supported; use InstanceIds, AgentVersion, PingStatus, PlatformTypes, ActivationIds, IamRole, ResourceType, AssociationStatus, tag:<key> or tag-key."
                    )));
                }
            },
        }
        Ok(())
    }

    pub fn matches(&self, n: &Node, now: f64, lost_after: u64) -> bool {
        let has = |s: &Option<BTreeSet<String>>, v: &str| s.as_ref().is_none_or(|s| s.contains(v));
        !self.association_status
            && has(&self.instance_ids, &n.instance_id)
            && has(&self.agent_versions, &n.agent_version)
            && has(&self.ping_statuses, n.ping_status(now, lost_after).as_str())
            && has(&self.platform_types, &n.platform_type)
            && has(&self.activation_ids, &n.activation_id)
            && has(&self.iam_roles, &n.iam_role)
            && has(&self.resource_types, RESOURCE_TYPE)
            && self
                .tags
                .iter()
                .all(|(k, vs)| n.tags.get(k).is_some_and(|v| vs.contains(v)))
            && self
                .tag_keys
                .as_ref()
                .is_none_or(|ks| ks.iter().any(|k| n.tags.contains_key(k)))
    }

    /// The candidate ids when ids or tags narrow the search, sorted.
    async fn candidates(
        &self,
        dir: &dyn TargetDirectory,
    ) -> Result<Option<BTreeSet<String>>, SsmError> {
        let mut set: Option<BTreeSet<String>> = self.instance_ids.clone();
        let narrow = |s: &mut Option<BTreeSet<String>>, found: BTreeSet<String>| {
            *s = Some(match s.take() {
                None => found,
                Some(prev) => prev.intersection(&found).cloned().collect(),
            });
        };
        for (k, vs) in &self.tags {
            let mut found = BTreeSet::new();
            for v in vs {
                found.extend(dir.nodes_with_tag(k, v).await?);
            }
            narrow(&mut set, found);
        }
        if let Some(keys) = &self.tag_keys {
            let mut found = BTreeSet::new();
            for k in keys {
                found.extend(dir.nodes_with_tag_key(k).await?);
            }
            narrow(&mut set, found);
        }
        Ok(set)
    }
}

pub async fn describe_instance_information(
    nodes: &dyn NodeStore,
    dir: &dyn TargetDirectory,
    body: &Value,
    now: f64,
    lost_after: u64,
) -> Result<Value, SsmError> {
    let req: DescribeInstanceInformationRequest = parse(body)?;
    if !req.instance_information_filter_list.is_empty() && !req.filters.is_empty() {
        return Err(SsmError::InvalidInstanceInformationFilterValue(
            "Use either InstanceInformationFilterList or Filters, not both (Filters is the current one).".into(),
        ));
    }
    let max = paging::max_results(req.max_results, 5, 50, 50)?;
    let mut filter = NodeFilter::default();
    for f in &req.instance_information_filter_list {
        if f.key.starts_with("tag") {
            return Err(SsmError::InvalidFilterKey(format!(
                "{} is not a key of InstanceInformationFilterList; filter by tags with Filters.",
                f.key
            )));
        }
        filter.add(&f.key, &f.value_set)?;
    }
    for f in &req.filters {
        filter.add(&f.key, &f.values)?;
    }
    let cursor = req.next_token.as_deref().map(paging::decode).transpose()?;
    let mut out = Vec::new();
    let mut next = None;
    match filter.candidates(dir).await? {
        Some(ids) => {
            let after = match cursor {
                None => None,
                Some(Cursor::Id { after }) => Some(after),
                Some(_) => return Err(paging::invalid_token()),
            };
            let pending: Vec<String> = ids
                .into_iter()
                .filter(|id| after.as_ref().is_none_or(|a| id > a))
                .collect();
            let mut start = 0;
            while start < pending.len() && out.len() < max {
                let end = (start + (max - out.len())).min(pending.len());
                let chunk = &pending[start..end];
                let mut found = nodes.get_many(chunk).await?;
                found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
                out.extend(
                    found
                        .into_iter()
                        .filter(|n| filter.matches(n, now, lost_after)),
                );
                start = end;
            }
            if start < pending.len() {
                next = Some(Cursor::Id {
                    after: pending[start - 1].clone(),
                });
            }
        }
        None => {
            let mut after = match cursor {
                None => None,
                Some(Cursor::Node { after }) => Some(after),
                Some(_) => return Err(paging::invalid_token()),
            };
            for _ in 0..MAX_ROUNDS {
                let (page, more) = nodes.list(after.as_deref(), max - out.len()).await?;
                if let Some(last) = page.last() {
                    after = Some(last.instance_id.clone());
                }
                out.extend(
                    page.into_iter()
                        .filter(|n| filter.matches(n, now, lost_after)),
                );
                if !more {
                    after = None;
                    break;
                }
                if out.len() >= max {
                    break;
                }
            }
            next = after.map(|after| Cursor::Node { after });
        }
    }
    let list: Vec<_> = out.iter().map(|n| n.information(now, lost_after)).collect();
    let mut resp = json!({ "InstanceInformationList": list });
    if let Some(c) = next {
        resp["NextToken"] = json!(paging::encode(&c));
    }
    Ok(resp)
}

// ------------------------------------------------------------ tags

fn check_resource(resource_type: &str, resource_id: &str) -> Result<(), SsmError> {
    if resource_type != RESOURCE_TYPE {
        return Err(SsmError::InvalidResourceType(format!(
            "Resource type {resource_type} is not supported by Steward's tagging; use ManagedInstance."
        )));
    }
    if !ids::is_instance_id(resource_id) {
        return Err(unknown_resource(resource_id));
    }
    Ok(())
}

fn unknown_resource(resource_id: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "The resource ID \"{resource_id}\" is not valid. Verify the ID with describe-instance-information and try again."
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagRequest {
    resource_type: String,
    resource_id: String,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

/// Read the node, compute its next tags, write them if nobody changed them
/// meanwhile; a few attempts, then TooManyUpdates.
async fn update_tags(
    nodes: &dyn NodeStore,
    resource_id: &str,
    change: impl Fn(&TagSet) -> Result<TagSet, SsmError>,
) -> Result<(), SsmError> {
    for _ in 0..4 {
        let node = nodes
            .get(resource_id)
            .await?
            .ok_or_else(|| unknown_resource(resource_id))?;
        let next = change(&node.tags)?;
        if next == node.tags {
            return Ok(());
        }
        if nodes.replace_tags(&node, &next).await? {
            return Ok(());
        }
    }
    Err(SsmError::TooManyUpdates(format!(
        "The tags of {resource_id} are being changed by other requests; retry shortly."
    )))
}

pub async fn add_tags_to_resource(nodes: &dyn NodeStore, body: &Value) -> Result<Value, SsmError> {
    let req: TagRequest = parse(body)?;
    check_resource(&req.resource_type, &req.resource_id)?;
    if req.tags.is_empty() {
        return Err(SsmError::ValidationException(
            "Tags is empty; give at least one tag to add.".into(),
        ));
    }
    let add = tags::validate_tags(&req.tags)?;
    update_tags(nodes, &req.resource_id, |current| {
        tags::merged(current, &add)
    })
    .await?;
    Ok(json!({}))
}

pub async fn remove_tags_from_resource(
    nodes: &dyn NodeStore,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: TagRequest = parse(body)?;
    check_resource(&req.resource_type, &req.resource_id)?;
    let keys: BTreeSet<String> = req.tag_keys.iter().cloned().collect();
    update_tags(nodes, &req.resource_id, |current| {
        Ok(current
            .iter()
            .filter(|(k, _)| !keys.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    })
    .await?;
    Ok(json!({}))
}

pub async fn list_tags_for_resource(
    nodes: &dyn NodeStore,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: TagRequest = parse(body)?;
    check_resource(&req.resource_type, &req.resource_id)?;
    let node = nodes
        .get(&req.resource_id)
        .await?
        .ok_or_else(|| unknown_resource(&req.resource_id))?;
    Ok(json!({ "TagList": tags::to_list(&node.tags) }))
}

// ------------------------------------------------------------ heartbeats

/// Applies a heartbeat; `false` when the node is unknown.
pub async fn heartbeat(
    nodes: &dyn NodeStore,
    instance_id: &str,
    hb: &Heartbeat,
    at: f64,
) -> Result<bool, SsmError> {
    nodes.record_heartbeat(instance_id, hb, at).await
}

/// `PingStatus` helper re-exported for callers that only have a timestamp.
pub fn ping_status(last_ping: f64, now: f64, lost_after: u64) -> PingStatus {
    PingStatus::of(last_ping, now, lost_after)
}
