//! Users, their inline policies and their access keys, with IAM's names,
//! limits and messages.

use std::collections::BTreeMap;

use rand::Rng;

use super::error::IamError;
use crate::access::Policy;
use crate::error::SsmError;

/// IAM's quota of access keys per user.
pub const MAX_ACCESS_KEYS_PER_USER: usize = 2;
/// IAM's quota on the size of a user's inline policies together, counted
/// without whitespace.
pub const MAX_USER_POLICY_CHARS: usize = 2048;
pub const MAX_USER_NAME: usize = 64;
pub const MAX_POLICY_NAME: usize = 128;
/// IAM's `policyDocumentType` length.
pub const MAX_POLICY_DOCUMENT: usize = 131_072;
/// ListUsers/ListUserPolicies/ListAccessKeys: MaxItems default and bound.
pub const DEFAULT_MAX_ITEMS: usize = 100;
pub const MAX_MAX_ITEMS: usize = 1000;
/// Steward keeps every user at IAM's default path.
pub const ROOT_PATH: &str = "/";

/// An IAM user as stored (`UsersTable`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// As created; unique regardless of case, as in IAM.
    pub user_name: String,
    /// `AIDA…`, as IAM's.
    pub user_id: String,
    pub path: String,
    pub create_date: f64,
    /// Inline policies: name → the document as given.
    pub policies: BTreeMap<String, String>,
    /// Access keys the user has; kept with the user so the quota is one
    /// conditional write.
    pub key_count: u32,
    /// Bumped by every write; every write is conditional on it.
    pub revision: u64,
}

impl User {
    pub fn new(user_name: &str, now: f64) -> Self {
        Self {
            user_name: user_name.to_string(),
            user_id: new_user_id(),
            path: ROOT_PATH.to_string(),
            create_date: now,
            policies: BTreeMap::new(),
            key_count: 0,
            revision: 1,
        }
    }

    pub fn arn(&self, account: &str) -> String {
        user_arn(account, &self.user_name)
    }

    /// The next state's skeleton: same user, next revision.
    pub fn next(&self) -> Self {
        Self {
            revision: self.revision + 1,
            ..self.clone()
        }
    }
}

/// The table key of a user name: IAM's names are unique regardless of case.
pub fn user_key(user_name: &str) -> String {
    user_name.to_ascii_lowercase()
}

pub fn user_arn(account: &str, user_name: &str) -> String {
    format!("arn:aws:iam::{account}:user/{user_name}")
}

/// An access key as stored (`AccessKeysTable`); the secret stays encrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_ciphertext: String,
    pub user_name: String,
    /// `Active` or `Inactive`.
    pub status: String,
    pub create_date: f64,
}

impl AccessKey {
    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }
}

pub const STATUS_ACTIVE: &str = "Active";
pub const STATUS_INACTIVE: &str = "Inactive";

/// `AIDA` and 17 characters, as IAM's user ids.
pub fn new_user_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..17)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("AIDA{tail}")
}

/// IAM's wording for a field that fails its constraint.
fn constraint(field: &str, value: &str, rule: &str) -> IamError {
    IamError::ValidationError(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
    ))
}

/// IAM's `[\w+=,.@-]+` with a length bound (user and policy names).
fn check_name(field: &str, value: &str, max: usize) -> Result<(), IamError> {
    if value.is_empty() {
        return Err(constraint(
            field,
            value,
            "Member must have length greater than or equal to 1",
        ));
    }
    if value.chars().count() > max {
        return Err(constraint(
            field,
            value,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !ok {
        return Err(constraint(
            field,
            value,
            r"Member must satisfy regular expression pattern: [\w+=,.@-]+",
        ));
    }
    Ok(())
}

pub fn check_user_name(name: &str) -> Result<(), IamError> {
    check_name("userName", name, MAX_USER_NAME)
}

pub fn check_policy_name(name: &str) -> Result<(), IamError> {
    check_name("policyName", name, MAX_POLICY_NAME)
}

/// IAM's `accessKeyIdType`: `[\w]+`, 16 to 128.
pub fn check_access_key_id(id: &str) -> Result<(), IamError> {
    let n = id.chars().count();
    // IAM words each bound on its own, as for every other field.
    if n < 16 {
        return Err(constraint(
            "accessKeyId",
            id,
            "Member must have length greater than or equal to 16",
        ));
    }
    if n > 128 {
        return Err(constraint(
            "accessKeyId",
            id,
            "Member must have length less than or equal to 128",
        ));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(constraint(
            "accessKeyId",
            id,
            r"Member must satisfy regular expression pattern: [\w]+",
        ));
    }
    Ok(())
}

pub fn check_status(status: &str) -> Result<(), IamError> {
    if status == STATUS_ACTIVE || status == STATUS_INACTIVE {
        Ok(())
    } else {
        Err(constraint(
            "status",
            status,
            "Member must satisfy enum value set: [Active, Inactive]",
        ))
    }
}

/// IAM's path rule, narrowed to what Steward keeps: every user lives at `/`.
pub fn check_path(path: &str) -> Result<(), IamError> {
    if path == ROOT_PATH {
        Ok(())
    } else {
        Err(IamError::ValidationError(format!(
            "Path '{path}' is not supported: Steward keeps every user at the path /. Leave Path out."
        )))
    }
}

/// The document's own shape (IAM's `policyDocumentType`), then what
/// Steward evaluates: a document the evaluator would not apply exactly is
/// refused, never stored.
pub fn check_policy_document(doc: &str) -> Result<Policy, IamError> {
    if doc.is_empty() || doc.chars().count() > MAX_POLICY_DOCUMENT {
        return Err(constraint(
            "policyDocument",
            "<document>",
            &format!("Member must have length between 1 and {MAX_POLICY_DOCUMENT}"),
        ));
    }
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}');
    if !doc.chars().all(allowed) {
        return Err(constraint(
            "policyDocument",
            "<document>",
            r"Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+",
        ));
    }
    Policy::parse(doc).map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))
}

/// A policy's size as IAM counts it against the quota: without whitespace.
pub fn policy_size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// What a user's keys may do: every statement of every inline policy, as
/// IAM evaluates a user's policies together (some Allow, and no Deny).
/// A user without policies may do nothing.
pub fn effective_policy(user: &User) -> Result<Policy, SsmError> {
    let mut statements = Vec::new();
    for doc in user.policies.values() {
        statements.extend(Policy::parse(doc)?.statements);
    }
    Ok(Policy { statements })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_iams_pattern_and_bounds() {
        /// IAM's ValidationError, in its words.
        fn refused(r: Result<(), IamError>, field: &str, value: &str, rule: &str) {
            let e = r.unwrap_err();
            assert_eq!(e.code(), "ValidationError", "{e}");
            assert_eq!(
                e.to_string(),
                format!(
                    "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
                )
            );
        }
        const PATTERN: &str = r"Member must satisfy regular expression pattern: [\w+=,.@-]+";
        assert!(check_user_name("alice.smith+ops@example,com=x_y-z").is_ok());
        refused(check_user_name("bad name"), "userName", "bad name", PATTERN);
        refused(
            check_user_name(""),
            "userName",
            "",
            "Member must have length greater than or equal to 1",
        );
        assert!(check_user_name(&"a".repeat(64)).is_ok());
        let long = "a".repeat(65);
        refused(
            check_user_name(&long),
            "userName",
            &long,
            "Member must have length less than or equal to 64",
        );
        assert!(check_policy_name(&"p".repeat(128)).is_ok());
        let long = "p".repeat(129);
        refused(
            check_policy_name(&long),
            "policyName",
            &long,
            "Member must have length less than or equal to 128",
        );
        refused(check_user_name("é"), "userName", "é", PATTERN);
        assert!(check_access_key_id("AKSTABCDEFGHIJKLMNOP").is_ok());
        refused(
            check_access_key_id("short"),
            "accessKeyId",
            "short",
            "Member must have length greater than or equal to 16",
        );
        let long = "A".repeat(129);
        refused(
            check_access_key_id(&long),
            "accessKeyId",
            &long,
            "Member must have length less than or equal to 128",
        );
        refused(
            check_access_key_id("AKSTABCDEFGHIJKL/MNOP"),
            "accessKeyId",
            "AKSTABCDEFGHIJKL/MNOP",
            r"Member must satisfy regular expression pattern: [\w]+",
        );
        assert!(check_status("Inactive").is_ok());
        refused(
            check_status("inactive"),
            "status",
            "inactive",
            "Member must satisfy enum value set: [Active, Inactive]",
        );
    }

    #[test]
    fn effective_policy_joins_every_inline_policy_and_deny_wins() {
        let mut u = User::new("bob", 1.0);
        assert!(
            !effective_policy(&u)
                .unwrap()
                .allows_action("ssm:GetParameter")
        );
        u.policies.insert(
            "read".into(),
            r#"{"Statement":[{"Effect":"Allow","Action":"ssm:Get*","Resource":"*"}]}"#.into(),
        );
        u.policies.insert(
            "deny".into(),
            r#"{"Statement":[{"Effect":"Deny","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/prod/*"}]}"#.into(),
        );
        let p = effective_policy(&u).unwrap();
        assert!(p.allows(
            "ssm:GetParameter",
            "arn:aws:ssm:us-east-1:1:parameter/dev/x"
        ));
        assert!(!p.allows(
            "ssm:GetParameter",
            "arn:aws:ssm:us-east-1:1:parameter/prod/x"
        ));
        assert!(!p.allows_action("ssm:PutParameter"));
    }

    #[test]
    fn size_is_counted_without_whitespace() {
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }
}
