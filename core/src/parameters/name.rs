//! Parameter names and hierarchies: SSM's rules for names, paths and ARNs.

/// The parent path of a name: `/a/b/c` → `/a/b`, `/a` and `a` → `/`.
pub fn parent_of(name: &str) -> &str {
    match name.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &name[..i],
    }
}

/// Where ARNs of this stack's resources point: SSM's parameter ARNs are
/// `arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
}

impl ArnScope {
    pub fn parameter_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:parameter/{}",
            self.region,
            self.account,
            name.strip_prefix('/').unwrap_or(name)
        )
    }
}
