//! The native `aws:softwareInventory` plugin: gathers what the step turns
//! on — `AWS:InstanceInformation` always, `AWS:Application` and
//! `AWS:AWSComponent` from dpkg's database ([`applications`]),
//! `AWS:Network` ([`network`]), `AWS:Service` from systemd unit files
//! ([`services`]) and `Custom:*` types from files ([`custom`]) — by
//! reading files, with no command run.
//!
//! As SSM's agent, it sends only what changed: each type's content hash is
//! compared with the one last sent ([`SentHashes`], kept in the state
//! directory), and an unchanged type is not sent. The memory is written
//! once the report is spooled (the spool sends it until the ingest queue
//! acknowledges it, across restarts). Every [`FULL_RESEND_SECONDS`] a type
//! is sent again whatever its hash, so data removed on the service side
//! (DeleteInventory) comes back within a day.
//!
//! The changed types go as `Uplink::Inventory` reports of at most
//! [`MAX_REPORT_BYTES`] each, split by type, before the invocation's final
//! update; a type too large for one report is not sent and fails the step.

pub mod applications;
pub mod custom;
pub mod network;
pub mod services;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use steward_core::inventory::schema::{
    APPLICATION, AWS_COMPONENT, INSTANCE_INFORMATION, NETWORK, SERVICE, aws_type,
};
use steward_core::inventory::step::{GatherInventory, InventoryReport};
use steward_core::inventory::{Entry, InventoryItem, content_hash};

/// The variable naming the custom inventory folder, when not SSM's.
pub const CUSTOM_DIR_VAR: &str = "STEWARD_AGENT_CUSTOM_INVENTORY_DIR";
/// A report's JSON at most: the signed envelope carries it in base64 (4/3
/// larger) and SQS takes 256 KiB per message.
pub const MAX_REPORT_BYTES: usize = 160 * 1024;
/// How long an unchanged type goes unsent at most.
pub const FULL_RESEND_SECONDS: f64 = 24.0 * 3600.0;
/// The file of [`SentHashes`] in the state directory.
pub const SENT_FILE: &str = "inventory-sent.json";

/// Where the plugin reads: the node's root (`/`; a fixture in tests) and
/// the custom inventory folder (`None`: SSM's, under the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryEnv {
    pub root: PathBuf,
    pub custom_dir: Option<PathBuf>,
}

impl InventoryEnv {
    /// The node's: `/`, and the folder [`CUSTOM_DIR_VAR`] names if set.
    pub fn node() -> Self {
        InventoryEnv {
            root: PathBuf::from("/"),
            custom_dir: std::env::var_os(CUSTOM_DIR_VAR).map(PathBuf::from),
        }
    }

    fn custom_dir(&self, instance_id: &str) -> PathBuf {
        self.custom_dir
            .clone()
            .unwrap_or_else(|| custom::default_dir(&self.root, instance_id))
    }
}

/// What the node says about itself (`AWS:InstanceInformation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub instance_id: String,
    pub agent_version: String,
    pub computer_name: String,
    pub ip_address: String,
    pub platform_name: String,
    pub platform_version: String,
}

/// A gather's types and what went wrong on the way.
#[derive(Debug, Default)]
pub struct Gathered {
    pub items: Vec<InventoryItem>,
    pub warnings: Vec<String>,
    /// A collector that could not read at all.
    pub errors: Vec<String>,
}

fn item(type_name: &str, version: &str, at: &str, content: Vec<Entry>) -> InventoryItem {
    InventoryItem {
        type_name: type_name.to_string(),
        schema_version: version.to_string(),
        capture_time: at.to_string(),
        content_hash: Some(content_hash(&content)),
        content: Some(content),
        context: BTreeMap::new(),
    }
}

fn aws_item(type_name: &str, at: &str, content: Vec<Entry>) -> InventoryItem {
    let version = aws_type(type_name).map_or("1.0", |t| t.version);
    item(type_name, version, at, content)
}

/// Gathers what `g` turns on, captured at `at` (`2026-12-01T10:00:00Z`).
pub fn gather(g: &GatherInventory, env: &InventoryEnv, facts: &NodeFacts, at: &str) -> Gathered {
    let mut out = Gathered::default();
    let info: Entry = [
        ("AgentType", "steward-agent"),
        ("AgentVersion", facts.agent_version.as_str()),
        ("ComputerName", facts.computer_name.as_str()),
        ("InstanceId", facts.instance_id.as_str()),
        ("IpAddress", facts.ip_address.as_str()),
        ("PlatformName", facts.platform_name.as_str()),
        ("PlatformType", "Linux"),
        ("PlatformVersion", facts.platform_version.as_str()),
        (
            "ResourceType",
            if facts.instance_id.starts_with("i-") {
                "EC2Instance"
            } else {
                "ManagedInstance"
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    out.items
        .push(aws_item(INSTANCE_INFORMATION, at, vec![info]));
    let root = &env.root;
    if g.applications || g.aws_components {
        match applications::read(root) {
            Ok(all) => {
                let (apps, components) = applications::split_components(all);
                if g.applications {
                    out.items.push(aws_item(APPLICATION, at, apps));
                }
                if g.aws_components {
                    let c = components
                        .into_iter()
                        .map(applications::as_component)
                        .collect();
                    out.items.push(aws_item(AWS_COMPONENT, at, c));
                }
            }
            Err(e) => out.errors.push(format!(
                "cannot read {}: {e}",
                root.join(applications::STATUS).display()
            )),
        }
    }
    if g.network_config {
        match network::read(root) {
            Ok(n) => out.items.push(aws_item(NETWORK, at, n)),
            Err(e) => out
                .errors
                .push(format!("cannot read the network interfaces: {e}")),
        }
    }
    if g.services {
        match services::read(root) {
            Ok(s) => out.items.push(aws_item(SERVICE, at, s)),
            Err(e) => out
                .errors
                .push(format!("cannot read the systemd units: {e}")),
        }
    }
    if g.custom_inventory {
        let (types, warnings) = custom::read(&env.custom_dir(&facts.instance_id));
        out.warnings.extend(warnings);
        for t in types {
            out.items
                .push(item(&t.type_name, &t.schema_version, at, t.content));
        }
    }
    out
}

/// The hash of each type last spooled, and when.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentHashes {
    pub types: BTreeMap<String, Sent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    pub hash: String,
    pub at: f64,
}

impl SentHashes {
    /// The memory in `state_dir`; empty when there is none or it does not
    /// read (everything is then sent again, which is only more traffic).
    pub fn load(state_dir: &Path) -> Self {
        std::fs::read(state_dir.join(SENT_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(&state_dir.join(SENT_FILE), &bytes, 0o600)
    }

    /// The items whose hash differs from the one last sent, or that went
    /// unsent for [`FULL_RESEND_SECONDS`].
    pub fn changed(&self, items: Vec<InventoryItem>, now: f64) -> Vec<InventoryItem> {
        items
            .into_iter()
            .filter(|i| match self.types.get(&i.type_name) {
                Some(s) => {
                    Some(&s.hash) != i.content_hash.as_ref() || now - s.at >= FULL_RESEND_SECONDS
                }
                None => true,
            })
            .collect()
    }

    pub fn record(&mut self, items: &[InventoryItem], now: f64) {
        for i in items {
            if let Some(h) = &i.content_hash {
                self.types.insert(
                    i.type_name.clone(),
                    Sent {
                        hash: h.clone(),
                        at: now,
                    },
                );
            }
        }
    }
}

/// A report, and the items it carries.
pub type Packed = (InventoryReport, Vec<InventoryItem>);

/// The base64 length of `n` bytes.
fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Packs `items` into compressed reports of at most [`MAX_REPORT_BYTES`],
/// whole types only, grouped by each type's own compressed size (a group
/// compresses about as well as its parts); the types too large for any
/// report even compressed come back apart. Each report comes with the
/// items it carries.
pub fn split(command_id: &str, items: Vec<InventoryItem>) -> (Vec<Packed>, Vec<InventoryItem>) {
    // The report's own fields, the command id among them.
    let overhead = 64 + command_id.len();
    let mut groups: Vec<(usize, Vec<InventoryItem>)> = Vec::new();
    let mut too_large = Vec::new();
    for i in items {
        let n = base64_len(steward_core::inventory::pack(&[&i]).len());
        if overhead + n > MAX_REPORT_BYTES {
            too_large.push(i);
            continue;
        }
        match groups.last_mut() {
            Some((size, g))
                if *size + n <= MAX_REPORT_BYTES
                    && g.len() < steward_core::inventory::put::MAX_ITEMS =>
            {
                *size += n;
                g.push(i);
            }
            _ => groups.push((overhead + n, vec![i])),
        }
    }
    let reports = groups
        .into_iter()
        .map(|(_, g)| (InventoryReport::packed(command_id, &g), g))
        .collect();
    (reports, too_large)
}
