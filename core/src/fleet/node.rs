//! Managed nodes: the record kept per node, its PingStatus, and the
//! `InstanceInformation` SSM reports for it.

use serde::Serialize;

use crate::tags::TagSet;

/// A registered node (`NodesTable`, docs/internals.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub instance_id: String,
    /// How the node joined: an activation (`mi-`) or its EC2 identity (`i-`).
    pub resource_type: ResourceType,
    /// Empty for an EC2 instance.
    pub activation_id: String,
    /// The activation's DefaultInstanceName.
    pub name: String,
    pub iam_role: String,
    pub registration_date: f64,
    pub last_ping_date_time: f64,
    pub agent_version: String,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub computer_name: String,
    pub ip_address: String,
    /// Base64 raw Ed25519 public key: the node's identity on the uplink.
    pub public_key: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub tags: TagSet,
    /// Bumped by every tag change: tag writes are conditional on it.
    pub tags_version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PingStatus {
    Online,
    ConnectionLost,
}

impl PingStatus {
    /// `Online` while the last heartbeat is at most `lost_after` seconds old.
    pub fn of(last_ping: f64, now: f64, lost_after: u64) -> Self {
        if now - last_ping <= lost_after as f64 {
            PingStatus::Online
        } else {
            PingStatus::ConnectionLost
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PingStatus::Online => "Online",
            PingStatus::ConnectionLost => "ConnectionLost",
        }
    }
}

/// SSM's ResourceType of a node, with the SourceType it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ResourceType {
    /// A hybrid node, registered with an activation.
    ManagedInstance,
    /// An EC2 instance, registered by its signed instance identity document.
    EC2Instance,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::ManagedInstance => "ManagedInstance",
            ResourceType::EC2Instance => "EC2Instance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ManagedInstance" => Some(ResourceType::ManagedInstance),
            "EC2Instance" => Some(ResourceType::EC2Instance),
            _ => None,
        }
    }

    pub fn source_type(self) -> &'static str {
        match self {
            ResourceType::ManagedInstance => "AWS::SSM::ManagedInstance",
            ResourceType::EC2Instance => "AWS::EC2::Instance",
        }
    }
}

/// The resource type AddTagsToResource and friends take for nodes.
pub const RESOURCE_TYPE: &str = "ManagedInstance";

/// SSM's `InstanceInformation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceInformation {
    pub instance_id: String,
    pub ping_status: PingStatus,
    pub last_ping_date_time: f64,
    pub agent_version: String,
    pub is_latest_version: bool,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub activation_id: String,
    pub iam_role: String,
    pub registration_date: f64,
    pub resource_type: ResourceType,
    pub name: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    pub computer_name: String,
    pub source_id: String,
    pub source_type: &'static str,
}

impl Node {
    pub fn ping_status(&self, now: f64, lost_after: u64) -> PingStatus {
        PingStatus::of(self.last_ping_date_time, now, lost_after)
    }

    pub fn information(&self, now: f64, lost_after: u64) -> InstanceInformation {
        InstanceInformation {
            instance_id: self.instance_id.clone(),
            ping_status: self.ping_status(now, lost_after),
            last_ping_date_time: self.last_ping_date_time,
            agent_version: self.agent_version.clone(),
            // There is one agent line and nodes update it themselves.
            is_latest_version: true,
            platform_type: self.platform_type.clone(),
            platform_name: self.platform_name.clone(),
            platform_version: self.platform_version.clone(),
            activation_id: self.activation_id.clone(),
            iam_role: self.iam_role.clone(),
            registration_date: self.registration_date,
            resource_type: self.resource_type,
            name: self.name.clone(),
            ip_address: self.ip_address.clone(),
            computer_name: self.computer_name.clone(),
            source_id: self.instance_id.clone(),
            source_type: self.resource_type.source_type(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_status_follows_heartbeat_age() {
        assert_eq!(PingStatus::of(100.0, 400.0, 300), PingStatus::Online);
        assert_eq!(
            PingStatus::of(100.0, 400.5, 300),
            PingStatus::ConnectionLost
        );
        assert_eq!(PingStatus::of(0.0, 10.0, 30), PingStatus::Online);
    }
}
