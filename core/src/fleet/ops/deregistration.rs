//! DeregisterManagedInstance: a node leaves the fleet for good. Its queue
//! goes (so nothing more reaches it and its credentials reach nothing), then
//! its inventory, compliance and patch state, then, in one conditional
//! transaction, the node with its public key and its tag index rows. Its
//! command history stays (SSM keeps it too).
//!
//! Every step is safe to repeat, and the node record goes last: a request
//! that fails half-way leaves the node registered, so the caller's retry
//! finishes the work. Once the node is gone, a repeat is `InvalidInstanceId`,
//! as SSM answers for a node already deregistered.

use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::fleet::node::ResourceType;
use crate::ids;

use crate::fleet::FleetContext;

/// SSM's `ManagedInstanceId` shape: only activation-registered nodes (and
/// EKS hybrid ones, which Steward has none of) can be deregistered; EC2
/// instance ids are refused by this pattern, as SSM refuses them, unless the
/// id is an EC2 node registered here.
const MANAGED_INSTANCE_ID_PATTERN: &str =
    r"(^mi-[0-9a-f]{17}$)|(^eks_c:[0-9A-Za-z][A-Za-z0-9\-_]{0,99}_\w{17}$)";

/// How many times a deregistration re-reads a node whose tags changed under it.
const ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeregisterRequest {
    instance_id: Option<String>,
}

/// Whether `id` fits SSM's `ManagedInstanceId` pattern at all.
fn fits_ssm_pattern(id: &str) -> bool {
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(MANAGED_INSTANCE_ID_PATTERN).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(id))
}

/// The ids Steward gives: `mi-` and 17 lower-case hex digits.
fn is_managed_instance_id(id: &str) -> bool {
    id.strip_prefix("mi-").is_some_and(|hex| {
        hex.len() == 17
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// SSM's front-end refusal of an id that does not fit `ManagedInstanceId`,
/// every constraint it breaks listed as SSM lists them.
fn malformed(id: &str) -> SsmError {
    let len = id.chars().count();
    let mut broken = Vec::new();
    if len < 20 {
        broken.push("Member must have length greater than or equal to 20".to_string());
    }
    if len > 124 {
        broken.push("Member must have length less than or equal to 124".to_string());
    }
    broken.push(format!(
        "Member must satisfy regular expression pattern: {MANAGED_INSTANCE_ID_PATTERN}"
    ));
    // A value far too long to be an id is not echoed whole.
    let shown: String = id.chars().take(124).collect();
    validation(
        broken
            .iter()
            .map(|c| format!("Value '{shown}' at 'instanceId' failed to satisfy constraint: {c}"))
            .collect(),
    )
}

fn validation(errors: Vec<String>) -> SsmError {
    let n = errors.len();
    let plural = if n == 1 { "" } else { "s" };
    SsmError::ValidationException(format!(
        "{n} validation error{plural} detected: {}",
        errors.join("; ")
    ))
}

fn not_registered(id: &str) -> SsmError {
    SsmError::InvalidInstanceId(format!(
        "Instances [[{id}]] not in a valid state for account: it is not a registered managed node (already deregistered, or never registered). List the registered nodes with describe-instance-information."
    ))
}

pub async fn deregister_managed_instance(
    ctx: &FleetContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let req: DeregisterRequest = parse(body)?;
    let Some(id) = req.instance_id.as_deref() else {
        return Err(validation(vec![
            "Value null at 'instanceId' failed to satisfy constraint: Member must not be null"
                .into(),
        ]));
    };
    let mut node = if id.starts_with("i-") && ids::is_instance_id(id) {
        // Beyond SSM, which removes an EC2 node when the instance ends: an
        // EC2 node registered here by its identity leaves as a hybrid one
        // does (a replaced disk must, to register its new key). Any other
        // EC2 id gets SSM's refusal.
        match ctx.nodes.get(id).await? {
            Some(n) if n.resource_type == ResourceType::EC2Instance => n,
            _ => return Err(malformed(id)),
        }
    } else {
        if !fits_ssm_pattern(id) || id.chars().count() > 124 {
            return Err(malformed(id));
        }
        if !is_managed_instance_id(id) {
            // An EKS hybrid id is SSM's, but no such node registers here.
            return Err(not_registered(id));
        }
        ctx.nodes.get(id).await?.ok_or_else(|| not_registered(id))?
    };
    // Nothing more can be sent to it, and the credentials it holds reach
    // nothing: a release finds no queue and ends its invocation Undeliverable.
    if !node.queue_url.is_empty() {
        ctx.queues.delete_queue(&node.queue_url).await?;
    }
    for _ in 0..ATTEMPTS {
        ctx.nodes.forget_records(id).await?;
        if ctx.nodes.deregister(&node).await? {
            // A report checked against the node just before it went may
            // have written since the first pass; from now on none is
            // accepted (every such write needs a registered node).
            if let Err(e) = ctx.nodes.forget_records(id).await {
                tracing::warn!(instance_id = id, error = %e, "records of a deregistered node may be left");
            }
            return Ok(json!({}));
        }
        // Its tags changed meanwhile (their index rows go with the node, so
        // the transaction needs the current ones), or it is gone already.
        node = ctx.nodes.get(id).await?.ok_or_else(|| not_registered(id))?;
    }
    Err(SsmError::TooManyUpdates(format!(
        "The tags of {id} are being changed by other requests; retry the deregistration shortly."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_managed_instance_ids_fit() {
        assert!(is_managed_instance_id("mi-0123456789abcdef0"));
        assert!(!is_managed_instance_id("mi-0123456789ABCDEF0"));
        assert!(!is_managed_instance_id("i-0123456789abcdef0"));
        assert!(!is_managed_instance_id("mi-0123"));
        assert!(fits_ssm_pattern("mi-0123456789abcdef0"));
        assert!(fits_ssm_pattern("eks_c:cluster-1_0123456789abcdefg"));
        assert!(!fits_ssm_pattern("i-0123456789abcdef0"));
        assert!(!fits_ssm_pattern("eks_c:"));
    }

    #[test]
    fn a_malformed_id_is_refused_in_ssm_words() {
        let e = malformed("i-0123456789abcdef0");
        assert_eq!(e.code(), "ValidationException");
        let text = e.to_string();
        assert!(
            text.starts_with("2 validation errors detected: Value 'i-0123456789abcdef0' at 'instanceId' failed to satisfy constraint: Member must have length greater than or equal to 20; Value 'i-0123456789abcdef0' at 'instanceId'"),
            "{text}"
        );
        assert!(text.contains(MANAGED_INSTANCE_ID_PATTERN), "{text}");
        let long = "i-".to_string() + &"a".repeat(200);
        assert!(!malformed(&long).to_string().contains(&long));
    }
}
