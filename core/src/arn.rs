//! ARNs of this stack's resources: its region and account, and the forms
//! SSM gives them.

/// Where ARNs of this stack's resources point: SSM's parameter ARNs are
/// `arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
}

impl ArnScope {
    /// The ARN a node is authorized by: EC2's for an instance id (`i-…`),
    /// SSM's managed-instance ARN otherwise (`*` for every node).
    pub fn node_arn(&self, instance_id: &str) -> String {
        if instance_id.starts_with("i-") {
            format!(
                "arn:aws:ec2:{}:{}:instance/{instance_id}",
                self.region, self.account
            )
        } else {
            format!(
                "arn:aws:ssm:{}:{}:managed-instance/{instance_id}",
                self.region, self.account
            )
        }
    }

    pub fn parameter_arn(&self, name: &str) -> String {
        format!(
            "{}{}",
            self.parameter_arn_prefix(),
            name.strip_prefix('/').unwrap_or(name)
        )
    }

    fn parameter_arn_prefix(&self) -> String {
        format!("arn:aws:ssm:{}:{}:parameter/", self.region, self.account)
    }

    /// The name an ARN of this stack's parameters stands for, as SSM reads
    /// `Name` given as an ARN: a path (`parameter/a/b`) is `/a/b`, a plain
    /// name (`parameter/a`) is `a`. `None` for any other ARN.
    pub fn name_from_arn(&self, arn: &str) -> Option<String> {
        let rest = arn.strip_prefix(&self.parameter_arn_prefix())?;
        if rest.is_empty() {
            return None;
        }
        Some(if rest.contains('/') {
            format!("/{rest}")
        } else {
            rest.to_string()
        })
    }

    /// `Name` as requests give it (a name or an ARN of this stack) → the name.
    pub fn resolve_name(&self, given: &str) -> String {
        if given.starts_with("arn:") {
            self.name_from_arn(given)
                .unwrap_or_else(|| given.to_string())
        } else {
            given.to_string()
        }
    }
}
