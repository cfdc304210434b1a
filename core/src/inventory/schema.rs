//! The inventory types Steward's agent gathers, with SSM's names, schema
//! versions and attributes (what GetInventorySchema shows, and what a put
//! of an `AWS:` type is checked against).

/// One `AWS:` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsType {
    pub name: &'static str,
    pub version: &'static str,
    pub display_name: &'static str,
    pub attributes: &'static [&'static str],
}

pub const INSTANCE_INFORMATION: &str = "AWS:InstanceInformation";
pub const APPLICATION: &str = "AWS:Application";
pub const AWS_COMPONENT: &str = "AWS:AWSComponent";
pub const NETWORK: &str = "AWS:Network";
pub const SERVICE: &str = "AWS:Service";

pub const AWS_TYPES: [AwsType; 5] = [
    AwsType {
        name: APPLICATION,
        version: "1.1",
        display_name: "Application",
        attributes: &[
            "Name",
            "ApplicationType",
            "Publisher",
            "Version",
            "Release",
            "Epoch",
            "InstalledTime",
            "Architecture",
            "URL",
            "Summary",
            "PackageId",
        ],
    },
    AwsType {
        name: AWS_COMPONENT,
        version: "1.0",
        display_name: "AWSComponent",
        attributes: &[
            "Name",
            "ApplicationType",
            "Publisher",
            "Version",
            "InstalledTime",
            "Architecture",
            "URL",
        ],
    },
    AwsType {
        name: INSTANCE_INFORMATION,
        version: "1.0",
        display_name: "InstanceInformation",
        attributes: &[
            "AgentType",
            "AgentVersion",
            "ComputerName",
            "InstanceId",
            "InstanceStatus",
            "IpAddress",
            "PlatformName",
            "PlatformType",
            "PlatformVersion",
            "ResourceType",
        ],
    },
    AwsType {
        name: NETWORK,
        version: "1.0",
        display_name: "Network",
        attributes: &[
            "Name",
            "SubnetMask",
            "Gateway",
            "DHCPServer",
            "DNSServer",
            "MacAddress",
            "IPV4",
            "IPV6",
        ],
    },
    AwsType {
        name: SERVICE,
        version: "1.0",
        display_name: "Service",
        attributes: &[
            "Name",
            "DisplayName",
            "ServiceType",
            "Status",
            "DependentServices",
            "ServicesDependedOn",
            "StartType",
        ],
    },
];

pub fn aws_type(name: &str) -> Option<&'static AwsType> {
    AWS_TYPES.iter().find(|t| t.name == name)
}

pub fn is_custom(name: &str) -> bool {
    name.starts_with("Custom:")
}
