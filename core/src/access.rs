//! Operator access keys and what their policies allow.
//!
//! A policy is IAM's identity-policy language, the part Steward evaluates:
//! `{"Version":"2012-10-17","Statement":[{"Sid":"…","Effect":"Allow"|"Deny",
//! "Action"|"NotAction":["ssm:SendCommand","ssm:Describe*","*"],
//! "Resource"|"NotResource":"arn:aws:ssm:*:*:parameter/app/dev/*"}]}`.
//! A request is allowed when some Allow statement matches its action and
//! resource and no Deny statement does. Actions match case-insensitively,
//! resources case-sensitively, as IAM matches them.
//!
//! Anything Steward does not evaluate (`Condition`, `Principal`, an unknown
//! element or `Version`) makes the policy malformed: it is refused when it
//! is written and allows nothing if it was stored anyway. A policy is never
//! read wider than it is written.
//!
//! Checks happen twice: once per operation, before anything is read
//! ([`Policy::allows_action`]: some Allow may match, no Deny covers every
//! resource), and once per resource the operation touches
//! ([`Policy::allows`]), e.g. each parameter's ARN, and `kms:Decrypt` on the
//! key when a SecureString is decrypted.

use serde::Deserialize;

use crate::error::SsmError;

/// Access keys belong to IAM users now (`crate::identity`); their policies
/// are their user's inline policies.
pub use crate::identity::AccessKey;

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

/// A statement as written. Unknown elements (`Condition`, `Principal`, …)
/// fail to parse: they would change the meaning and Steward does not
/// evaluate them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Sid")]
    #[allow(dead_code)]
    sid: Option<String>,
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Action")]
    action: Option<OneOrMany>,
    #[serde(rename = "NotAction")]
    not_action: Option<OneOrMany>,
    #[serde(rename = "Resource")]
    resource: Option<OneOrMany>,
    #[serde(rename = "NotResource")]
    not_resource: Option<OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(rename = "Version")]
    version: Option<String>,
    #[serde(rename = "Id")]
    #[allow(dead_code)]
    id: Option<String>,
    /// One statement or a list; read as a value first so that a
    /// statement's own error (an unknown element) is what the author sees.
    #[serde(rename = "Statement")]
    statement: serde_json::Value,
}

/// Patterns a statement applies to, or all but these (`NotAction`,
/// `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Any(Vec<String>),
    AllBut(Vec<String>),
}

impl Patterns {
    fn matches(&self, text: &str, case: Case) -> bool {
        match self {
            Patterns::Any(p) => p.iter().any(|p| glob_with(p, text, case)),
            Patterns::AllBut(p) => !p.iter().any(|p| glob_with(p, text, case)),
        }
    }

    /// Whether every possible resource matches (`"*"`).
    fn covers_everything(&self) -> bool {
        matches!(self, Patterns::Any(p) if p.iter().any(|p| p == "*"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// Why a policy document is refused; the message is IAM's
/// `MalformedPolicyDocument` text where IAM has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(pub String);

impl From<MalformedPolicy> for SsmError {
    fn from(e: MalformedPolicy) -> Self {
        SsmError::AccessDeniedException(format!(
            "The access key's policy is not valid ({e}); ask an administrator to fix it."
        ))
    }
}

fn syntax_error(e: serde_json::Error) -> MalformedPolicy {
    let e = e.to_string();
    if e.contains("unknown field") {
        MalformedPolicy(format!(
            "Syntax errors in policy: {e}. Steward evaluates Version, Statement, Sid, Effect, Action, NotAction, Resource and NotResource; a Condition or Principal would be ignored, so it is refused."
        ))
    } else {
        MalformedPolicy(format!("Syntax errors in policy: {e}."))
    }
}

/// The policy language versions IAM knows.
const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

fn exactly_one(
    what: &str,
    not: &str,
    plain: Option<OneOrMany>,
    negated: Option<OneOrMany>,
) -> Result<Patterns, MalformedPolicy> {
    let list = |v: OneOrMany| {
        let v = v.into_vec();
        if v.is_empty() {
            Err(MalformedPolicy(format!(
                "Policy statement must contain {}.",
                what.to_lowercase()
            )))
        } else {
            Ok(v)
        }
    };
    match (plain, negated) {
        (Some(p), None) => Ok(Patterns::Any(list(p)?)),
        (None, Some(n)) => Ok(Patterns::AllBut(list(n)?)),
        (Some(_), Some(_)) => Err(MalformedPolicy(format!(
            "Policy statement must contain either {what} or {not}, not both."
        ))),
        (None, None) => Err(MalformedPolicy(format!(
            "Policy statement must contain {}.",
            what.to_lowercase()
        ))),
    }
}

impl Policy {
    /// Parses a policy document. One that does not parse, or that holds an
    /// element Steward does not evaluate, is refused.
    pub fn parse(json: &str) -> Result<Self, MalformedPolicy> {
        let raw: RawPolicy = serde_json::from_str(json).map_err(syntax_error)?;
        if let Some(v) = &raw.version
            && !VERSIONS.contains(&v.as_str())
        {
            return Err(MalformedPolicy(format!(
                "The policy failed legacy parsing: Version {v} is not one of {}.",
                VERSIONS.join(", ")
            )));
        }
        let list = match raw.statement {
            serde_json::Value::Array(v) => v,
            one => vec![one],
        };
        let statements = list
            .into_iter()
            .map(|s| {
                let s: RawStatement = serde_json::from_value(s).map_err(syntax_error)?;
                Ok(Statement {
                    effect: s.effect,
                    actions: exactly_one("Action", "NotAction", s.action, s.not_action)?,
                    resources: exactly_one("Resource", "NotResource", s.resource, s.not_resource)?,
                })
            })
            .collect::<Result<Vec<_>, MalformedPolicy>>()?;
        Ok(Self { statements })
    }

    /// Several policies (a user's inline policies) evaluated as one: any
    /// Allow of any, and a Deny of any wins.
    pub fn union(policies: impl IntoIterator<Item = Policy>) -> Self {
        Self {
            statements: policies.into_iter().flat_map(|p| p.statements).collect(),
        }
    }

    /// Whether `action` (e.g. `ssm:GetParameter`) on `resource` (an ARN) is
    /// allowed: Deny wins.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let matching = |e: Effect| {
            self.statements.iter().filter(|s| s.effect == e).any(|s| {
                s.actions.matches(action, Case::Insensitive)
                    && s.resources.matches(resource, Case::Sensitive)
            })
        };
        !matching(Effect::Deny) && matching(Effect::Allow)
    }

    /// Whether `action` may be allowed on some resource: an Allow names it
    /// and no Deny names it for every resource (`*`). The per-resource check
    /// ([`Policy::allows`]) follows once the resources are known.
    pub fn allows_action(&self, action: &str) -> bool {
        let names = |s: &&Statement| s.actions.matches(action, Case::Insensitive);
        let denied = self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .filter(names)
            .any(|s| s.resources.covers_everything());
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

/// Whether letter case matters: IAM matches actions case-insensitively and
/// resources (ARNs) exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Sensitive,
    Insensitive,
}

/// IAM action matching: case-insensitive, `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    glob_with(pattern, text, Case::Insensitive)
}

/// IAM wildcard matching (`*` any run, `?` one character). Written here
/// because IAM's rules (no character classes, no escapes, no path
/// separators treated specially) are not any glob crate's defaults.
pub fn glob_with(pattern: &str, text: &str, case: Case) -> bool {
    let fold = |s: &str| -> Vec<char> {
        match case {
            Case::Insensitive => s.to_lowercase().chars().collect(),
            Case::Sensitive => s.chars().collect(),
        }
    };
    let p = fold(pattern);
    let t = fold(text);
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
                {"Effect":"Deny","Action":"ssm:DescribeActivations","Resource":"*"}]}"#,
        )
        .unwrap();
        assert!(p.allows_action("ssm:DescribeInstanceInformation"));
        assert!(p.allows_action("SSM:sendcommand"));
        assert!(!p.allows_action("ssm:DescribeActivations"));
        assert!(!p.allows_action("ssm:CreateActivation"));
        let admin =
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
                .unwrap();
        assert!(admin.allows_action("ssm:DeleteActivation"));
        assert!(admin.allows("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k"));
        let ssm =
            Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"ssm:*","Resource":"*"}}"#)
                .unwrap();
        assert!(ssm.allows_action("ssm:AddTagsToResource"));
        assert!(!ssm.allows_action("kms:Decrypt"));
        let e = Policy::parse("not json").unwrap_err();
        assert!(e.0.starts_with("Syntax errors in policy: "), "{e}");
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
            Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"ssm:PutParameter","Resource":"arn:aws:ssm:*:*:parameter/prod/*"}]}"#)
                .unwrap();
        assert!(all_but.allows_action("ssm:PutParameter"));
        assert!(!all_but.allows("ssm:PutParameter", &arn("/prod/x")));
        let none = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"ssm:Delete*","Resource":"*"}]}"#).unwrap();
        assert!(!none.allows_action("ssm:DeleteParameter"));
    }

    #[test]
    fn resources_match_with_their_case_actions_without() {
        let p = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"SSM:getparameter","Resource":"arn:aws:ssm:*:*:parameter/P/dev/*"}]}"#,
        )
        .unwrap();
        let arn = |n: &str| format!("arn:aws:ssm:us-east-1:123456789012:parameter{n}");
        assert!(p.allows("ssm:GetParameter", &arn("/P/dev/x")));
        assert!(!p.allows("ssm:GetParameter", &arn("/P/DEV/x")));
        assert!(!p.allows("ssm:GetParameter", &arn("/p/dev/x")));
    }

    #[test]
    fn not_resource_and_not_action_are_evaluated_not_widened() {
        let p = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","NotResource":"arn:aws:ssm:*:*:parameter/prod/*"}]}"#,
        )
        .unwrap();
        let arn = |n: &str| format!("arn:aws:ssm:us-east-1:123456789012:parameter{n}");
        assert!(p.allows("ssm:GetParameter", &arn("/dev/x")));
        assert!(!p.allows("ssm:GetParameter", &arn("/prod/x")));
        assert!(!p.allows("ssm:PutParameter", &arn("/dev/x")));
        // NotAction: everything but deleting.
        let q = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","NotAction":"ssm:Delete*","Resource":"*"}]}"#,
        )
        .unwrap();
        assert!(q.allows_action("ssm:SendCommand"));
        assert!(!q.allows_action("ssm:DeleteParameter"));
        // A Deny with NotResource covers more than one resource but not
        // every one: the operation goes on to the per-resource check.
        let r = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"ssm:GetParameter","NotResource":"arn:aws:ssm:*:*:parameter/dev/*"}]}"#,
        )
        .unwrap();
        assert!(r.allows_action("ssm:GetParameter"));
        assert!(r.allows("ssm:GetParameter", &arn("/dev/x")));
        assert!(!r.allows("ssm:GetParameter", &arn("/prod/x")));
    }

    #[test]
    fn elements_steward_does_not_evaluate_are_refused() {
        // (document, what the refusal names)
        for (doc, names) in [
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
                "Condition",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}"#,
                "Principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
                "Resource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "Action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"x"}]}"#,
                "NotResource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#,
                "Action",
            ),
            (
                r#"{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                "Version 2020-01-01",
            ),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
                "Maybe",
            ),
            ("not json", "Syntax errors in policy"),
        ] {
            let e = Policy::parse(doc).unwrap_err();
            assert!(
                e.0.to_lowercase().contains(&names.to_lowercase()),
                "{doc}: {e}"
            );
        }
        let e = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#,
        )
        .unwrap_err();
        assert!(e.0.contains("Condition"), "{e}");
        assert!(
            Policy::parse(
                r#"{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}]}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn glob_rules() {
        assert!(glob("a*b?d", "aXXbcd"));
        assert!(!glob("a*b?d", "aXXbd"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
    }
}
