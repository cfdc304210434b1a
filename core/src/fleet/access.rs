//! Operator access keys and what their policies allow.
//!
//! A policy is IAM-shaped: `{"Statement":[{"Effect":"Allow"|"Deny",
//! "Action":["ssm:SendCommand","ssm:Describe*","*"],
//! "Resource":"arn:aws:ssm:*:*:parameter/app/dev/*"}]}`. A request is allowed
//! when some Allow statement matches its action and resource and no Deny
//! statement does. `Resource` defaults to `*`.
//!
//! Checks happen twice: once per operation, before anything is read
//! ([`Policy::allows_action`]: some Allow may match, no Deny covers every
//! resource), and once per resource the operation touches
//! ([`Policy::allows`]), e.g. each parameter's ARN, and `kms:Decrypt` on the
//! key when a SecureString is decrypted.

use serde::Deserialize;

use crate::error::SsmError;

/// An access key as stored (`AccessKeysTable`); the secret stays encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_ciphertext: String,
    pub policy: String,
    pub user_name: String,
    pub status: String,
}

impl AccessKey {
    pub fn is_active(&self) -> bool {
        self.status == "Active"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct RawStatement {
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Action")]
    action: OneOrMany,
    #[serde(rename = "Resource")]
    resource: Option<OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawPolicy {
    #[serde(rename = "Statement")]
    statement: StatementList,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StatementList {
    One(RawStatement),
    Many(Vec<RawStatement>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    /// Resource ARN patterns; `["*"]` when the statement names none.
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses a stored policy. A policy that does not parse allows nothing.
    pub fn parse(json: &str) -> Result<Self, SsmError> {
        let raw: RawPolicy = serde_json::from_str(json).map_err(|e| {
            SsmError::AccessDeniedException(format!(
                "The access key's policy is not valid ({e}); ask an administrator to fix it."
            ))
        })?;
        let list = match raw.statement {
            StatementList::One(s) => vec![s],
            StatementList::Many(v) => v,
        };
        Ok(Self {
            statements: list
                .into_iter()
                .map(|s| Statement {
                    effect: s.effect,
                    actions: s.action.into_vec(),
                    resources: s
                        .resource
                        .map(OneOrMany::into_vec)
                        .unwrap_or_else(|| vec!["*".to_string()]),
                })
                .collect(),
        })
    }

    /// Whether `action` (e.g. `ssm:GetParameter`) on `resource` (an ARN) is
    /// allowed: Deny wins.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let matching = |e: Effect| {
            self.statements.iter().filter(|s| s.effect == e).any(|s| {
                s.actions.iter().any(|p| glob(p, action))
                    && s.resources.iter().any(|p| glob(p, resource))
            })
        };
        !matching(Effect::Deny) && matching(Effect::Allow)
    }

    /// Whether `action` may be allowed on some resource: an Allow names it
    /// and no Deny names it for every resource (`*`). The per-resource check
    /// ([`Policy::allows`]) follows once the resources are known.
    pub fn allows_action(&self, action: &str) -> bool {
        let names = |s: &&Statement| s.actions.iter().any(|p| glob(p, action));
        let denied = self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .filter(names)
            .any(|s| s.resources.iter().any(|r| r == "*"));
        let allowed = self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .any(|s| names(&s));
        allowed && !denied
    }
}

/// Who is calling, as an operation needs to know it: whether it may act on
/// a resource, and the name its writes are recorded under.
pub trait Authorizer: Send + Sync {
    /// `AccessDeniedException` unless `action` on `resource` is allowed.
    fn authorize(&self, action: &str, resource: &str) -> Result<(), SsmError>;
    /// The caller's ARN, e.g. `arn:aws:iam::123456789012:user/alice`.
    fn user_arn(&self) -> String;
}

/// A caller with a policy: the api's principal, and tests' callers.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    pub user_arn: String,
    pub policy: Policy,
}

impl Authorizer for Caller {
    fn authorize(&self, action: &str, resource: &str) -> Result<(), SsmError> {
        if self.policy.allows(action, resource) {
            Ok(())
        } else {
            Err(SsmError::AccessDeniedException(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no policy of access key {} allows it. Ask an administrator to grant it.",
                self.user_arn, self.access_key_id
            )))
        }
    }

    fn user_arn(&self) -> String {
        self.user_arn.clone()
    }
}

/// IAM action matching: case-insensitive, `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_and_wildcards_match() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["ssm:Describe*","ssm:SendCommand"],"Resource":"*"},
                {"Effect":"Deny","Action":"ssm:DescribeActivations"}]}"#,
        )
        .unwrap();
        assert!(p.allows_action("ssm:DescribeInstanceInformation"));
        assert!(p.allows_action("SSM:sendcommand"));
        assert!(!p.allows_action("ssm:DescribeActivations"));
        assert!(!p.allows_action("ssm:CreateActivation"));
        let admin = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#).unwrap();
        assert!(admin.allows_action("ssm:DeleteActivation"));
        assert!(admin.allows("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k"));
        let ssm = Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"ssm:*"}}"#).unwrap();
        assert!(ssm.allows_action("ssm:AddTagsToResource"));
        assert!(!ssm.allows_action("kms:Decrypt"));
        assert!(Policy::parse("not json").is_err());
    }

    #[test]
    fn resources_narrow_a_statement() {
        let p = Policy::parse(
            r#"{"Statement":[
                {"Effect":"Allow","Action":["ssm:GetParameter*"],"Resource":"arn:aws:ssm:*:*:parameter/app/dev/*"},
                {"Effect":"Deny","Action":"ssm:GetParameter*","Resource":"arn:aws:ssm:*:*:parameter/app/dev/root*"}]}"#,
        )
        .unwrap();
        let arn = |n: &str| format!("arn:aws:ssm:us-east-1:123456789012:parameter{n}");
        assert!(p.allows_action("ssm:GetParameter"));
        assert!(p.allows("ssm:GetParameter", &arn("/app/dev/db/url")));
        assert!(!p.allows("ssm:GetParameter", &arn("/app/prod/db/url")));
        assert!(!p.allows("ssm:GetParameter", &arn("/app/dev/root-password")));
        assert!(!p.allows_action("ssm:PutParameter"));
        // A Deny limited to some resources does not refuse the operation up front.
        let all_but =
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*"},{"Effect":"Deny","Action":"ssm:PutParameter","Resource":"arn:aws:ssm:*:*:parameter/prod/*"}]}"#)
                .unwrap();
        assert!(all_but.allows_action("ssm:PutParameter"));
        assert!(!all_but.allows("ssm:PutParameter", &arn("/prod/x")));
        let none = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*"},{"Effect":"Deny","Action":"ssm:Delete*"}]}"#).unwrap();
        assert!(!none.allows_action("ssm:DeleteParameter"));
    }

    #[test]
    fn glob_rules() {
        assert!(glob("a*b?d", "aXXbcd"));
        assert!(!glob("a*b?d", "aXXbd"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
    }
}
