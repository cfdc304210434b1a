//! Operator access keys and what their policies allow.
//!
//! A policy is IAM-shaped: `{"Statement":[{"Effect":"Allow"|"Deny",
//! "Action":["ssm:SendCommand","ssm:Describe*","*"]}]}`. An action is allowed
//! when some Allow statement matches it and no Deny statement does.

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
                })
                .collect(),
        })
    }

    /// Whether `action` (e.g. `ssm:SendCommand`) is allowed: Deny wins.
    pub fn allows(&self, action: &str) -> bool {
        let matching = |e: Effect| {
            self.statements
                .iter()
                .filter(|s| s.effect == e)
                .any(|s| s.actions.iter().any(|p| glob(p, action)))
        };
        !matching(Effect::Deny) && matching(Effect::Allow)
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
        assert!(p.allows("ssm:DescribeInstanceInformation"));
        assert!(p.allows("SSM:sendcommand"));
        assert!(!p.allows("ssm:DescribeActivations"));
        assert!(!p.allows("ssm:CreateActivation"));
        let admin = Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#).unwrap();
        assert!(admin.allows("ssm:DeleteActivation"));
        let ssm = Policy::parse(r#"{"Statement":{"Effect":"Allow","Action":"ssm:*"}}"#).unwrap();
        assert!(ssm.allows("ssm:AddTagsToResource"));
        assert!(!ssm.allows("kms:Decrypt"));
        assert!(Policy::parse("not json").is_err());
    }

    #[test]
    fn glob_rules() {
        assert!(glob("a*b?d", "aXXbcd"));
        assert!(!glob("a*b?d", "aXXbd"));
        assert!(glob("*", ""));
        assert!(!glob("", "x"));
    }
}
