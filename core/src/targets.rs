//! Which nodes a command reaches: `InstanceIds`, or `Targets` of
//! `InstanceIds` / `tag:<key>` / `tag-key`, resolved as SSM does —
//! AND across target entries, OR across the values of one entry.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::SsmError;
use crate::ids::is_instance_id;

/// SSM's `Target`: `{"Key": "tag:env", "Values": ["dev"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Target {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// One parsed criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    InstanceIds(Vec<String>),
    /// `tag:<key>` with one or more values (any of them matches).
    Tag {
        key: String,
        values: Vec<String>,
    },
    /// `tag-key` with one or more keys (a node having any of them matches).
    TagKey(Vec<String>),
}

/// What a SendCommand asked for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    InstanceIds(Vec<String>),
    Criteria(Vec<Criterion>),
}

/// SSM's limits: 50 instance ids, 5 targets, 50 values per target.
pub const MAX_INSTANCE_IDS: usize = 50;
pub const MAX_TARGETS: usize = 5;
pub const MAX_TARGET_VALUES: usize = 50;

impl TargetSpec {
    pub fn parse(instance_ids: &[String], targets: &[Target]) -> Result<Self, SsmError> {
        match (instance_ids.is_empty(), targets.is_empty()) {
            (false, false) => Err(SsmError::ValidationException(
                "Specify either InstanceIds or Targets, not both.".into(),
            )),
            (true, true) => Err(SsmError::ValidationException(
                "Specify InstanceIds or Targets to say which managed nodes run the command.".into(),
            )),
            (false, true) => {
                if instance_ids.len() > MAX_INSTANCE_IDS {
                    return Err(SsmError::ValidationException(format!(
                        "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to {MAX_INSTANCE_IDS}; use Targets to reach more nodes."
                    )));
                }
                Ok(TargetSpec::InstanceIds(check_ids(instance_ids)?))
            }
            (true, false) => {
                if targets.len() > MAX_TARGETS {
                    return Err(SsmError::ValidationException(format!(
                        "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to {MAX_TARGETS}"
                    )));
                }
                let criteria = targets
                    .iter()
                    .map(Criterion::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(TargetSpec::Criteria(criteria))
            }
        }
    }
}

fn check_ids(ids: &[String]) -> Result<Vec<String>, SsmError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in ids {
        if !is_instance_id(id) {
            return Err(SsmError::InvalidInstanceId(format!(
                "Instances [[{id}]] not in a valid state for account: an instance id is mi- or i- followed by hex digits."
            )));
        }
        if seen.insert(id.clone()) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

impl Criterion {
    fn parse(t: &Target) -> Result<Self, SsmError> {
        if t.values.is_empty() {
            return Err(SsmError::InvalidTarget(format!(
                "Target {} has no values; give at least one.",
                t.key
            )));
        }
        if t.values.len() > MAX_TARGET_VALUES {
            return Err(SsmError::InvalidTarget(format!(
                "Target {} has more than {MAX_TARGET_VALUES} values.",
                t.key
            )));
        }
        // The AWS CLI shorthand sends one value "a,b" for Values=a,b only when
        // quoted oddly; SSM itself treats comma-separated values as several.
        let values: Vec<String> = t
            .values
            .iter()
            .flat_map(|v| v.split(',').map(str::trim).map(String::from))
            .filter(|v| !v.is_empty())
            .collect();
        if t.key == "InstanceIds" {
            return Ok(Criterion::InstanceIds(check_ids(&values)?));
        }
        if t.key == "tag-key" {
            return Ok(Criterion::TagKey(values));
        }
        if let Some(key) = t.key.strip_prefix("tag:") {
            if key.is_empty() || key.len() > 128 {
                return Err(SsmError::InvalidTarget(
                    "A tag key in tag:<key> must be 1 to 128 characters.".into(),
                ));
            }
            return Ok(Criterion::Tag {
                key: key.to_string(),
                values,
            });
        }
        Err(SsmError::InvalidTarget(format!(
            "Target key {} is not supported; use InstanceIds, tag:<key> or tag-key.",
            t.key
        )))
    }
}

/// Answers the questions target resolution needs; implemented over the tag index.
#[async_trait::async_trait]
pub trait TargetDirectory: Send + Sync {
    /// Managed nodes carrying tag `key` = `value`.
    async fn nodes_with_tag(&self, key: &str, value: &str) -> Result<Vec<String>, SsmError>;
    /// Managed nodes carrying tag `key`, whatever its value.
    async fn nodes_with_tag_key(&self, key: &str) -> Result<Vec<String>, SsmError>;
    /// Which of `ids` are registered (and not deregistered) nodes.
    async fn existing_nodes(&self, ids: &[String]) -> Result<BTreeSet<String>, SsmError>;
}

/// Resolves a spec to node ids, sorted. Explicit ids must all exist
/// (`InvalidInstanceId` otherwise, as SSM); tag criteria may match nothing.
pub async fn resolve(
    spec: &TargetSpec,
    dir: &dyn TargetDirectory,
) -> Result<Vec<String>, SsmError> {
    match spec {
        TargetSpec::InstanceIds(ids) => {
            require_existing(ids, dir).await?;
            Ok(ids
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect())
        }
        TargetSpec::Criteria(criteria) => {
            let mut result: Option<BTreeSet<String>> = None;
            for c in criteria {
                let matched: BTreeSet<String> = match c {
                    Criterion::InstanceIds(ids) => {
                        require_existing(ids, dir).await?;
                        ids.iter().cloned().collect()
                    }
                    Criterion::Tag { key, values } => {
                        let mut s = BTreeSet::new();
                        for v in values {
                            s.extend(dir.nodes_with_tag(key, v).await?);
                        }
                        s
                    }
                    Criterion::TagKey(keys) => {
                        let mut s = BTreeSet::new();
                        for k in keys {
                            s.extend(dir.nodes_with_tag_key(k).await?);
                        }
                        s
                    }
                };
                result = Some(match result {
                    None => matched,
                    Some(prev) => prev.intersection(&matched).cloned().collect(),
                });
            }
            Ok(result.unwrap_or_default().into_iter().collect())
        }
    }
}

async fn require_existing(ids: &[String], dir: &dyn TargetDirectory) -> Result<(), SsmError> {
    let existing = dir.existing_nodes(ids).await?;
    let missing: Vec<&str> = ids
        .iter()
        .filter(|id| !existing.contains(*id))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SsmError::InvalidInstanceId(format!(
            "Instances [[{}]] not in a valid state for account: they are not registered managed nodes. List them with describe-instance-information.",
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Nodes and their tags, in memory.
    struct Fleet(BTreeMap<String, BTreeMap<String, String>>);

    #[async_trait::async_trait]
    impl TargetDirectory for Fleet {
        async fn nodes_with_tag(&self, key: &str, value: &str) -> Result<Vec<String>, SsmError> {
            Ok(self
                .0
                .iter()
                .filter(|(_, t)| t.get(key).map(String::as_str) == Some(value))
                .map(|(id, _)| id.clone())
                .collect())
        }
        async fn nodes_with_tag_key(&self, key: &str) -> Result<Vec<String>, SsmError> {
            Ok(self
                .0
                .iter()
                .filter(|(_, t)| t.contains_key(key))
                .map(|(id, _)| id.clone())
                .collect())
        }
        async fn existing_nodes(&self, ids: &[String]) -> Result<BTreeSet<String>, SsmError> {
            Ok(ids
                .iter()
                .filter(|i| self.0.contains_key(*i))
                .cloned()
                .collect())
        }
    }

    fn id(n: u8) -> String {
        format!("mi-{:017x}", n)
    }

    fn fleet() -> Fleet {
        let mut m = BTreeMap::new();
        let tags = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        m.insert(id(1), tags(&[("env", "dev"), ("role", "web")]));
        m.insert(id(2), tags(&[("env", "dev"), ("role", "db")]));
        m.insert(id(3), tags(&[("env", "prod"), ("role", "web")]));
        m.insert(id(4), tags(&[]));
        Fleet(m)
    }

    fn target(key: &str, values: &[&str]) -> Target {
        Target {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    async fn run(ids: &[String], targets: &[Target]) -> Result<Vec<String>, SsmError> {
        let spec = TargetSpec::parse(ids, targets)?;
        resolve(&spec, &fleet()).await
    }

    #[tokio::test]
    async fn one_tag_one_value() {
        assert_eq!(
            run(&[], &[target("tag:env", &["dev"])]).await.unwrap(),
            vec![id(1), id(2)]
        );
    }

    #[tokio::test]
    async fn values_are_ored_and_keys_anded() {
        assert_eq!(
            run(&[], &[target("tag:env", &["dev", "prod"])])
                .await
                .unwrap(),
            vec![id(1), id(2), id(3)]
        );
        assert_eq!(
            run(
                &[],
                &[
                    target("tag:env", &["dev", "prod"]),
                    target("tag:role", &["web"])
                ]
            )
            .await
            .unwrap(),
            vec![id(1), id(3)]
        );
        assert_eq!(
            run(&[], &[target("tag-key", &["role"])])
                .await
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn no_match_is_empty_not_an_error() {
        assert!(
            run(&[], &[target("tag:env", &["qa"])])
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn unknown_instance_id_is_refused() {
        let err = run(&[id(9)], &[]).await.unwrap_err();
        assert_eq!(err.code(), "InvalidInstanceId");
        let err = run(&["bogus".into()], &[]).await.unwrap_err();
        assert_eq!(err.code(), "InvalidInstanceId");
        let err = run(&[], &[target("InstanceIds", &[&id(1), &id(9)])])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "InvalidInstanceId");
    }

    #[tokio::test]
    async fn explicit_ids_are_deduplicated() {
        assert_eq!(
            run(&[id(2), id(1), id(2)], &[]).await.unwrap(),
            vec![id(1), id(2)]
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert_eq!(
            TargetSpec::parse(&[], &[]).unwrap_err().code(),
            "ValidationException"
        );
        assert_eq!(
            TargetSpec::parse(&[id(1)], &[target("tag:a", &["b"])])
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            TargetSpec::parse(&[], &[target("color", &["b"])])
                .unwrap_err()
                .code(),
            "InvalidTarget"
        );
        assert_eq!(
            TargetSpec::parse(&[], &[target("tag:a", &[])])
                .unwrap_err()
                .code(),
            "InvalidTarget"
        );
        let six: Vec<Target> = (0..6)
            .map(|i| target(&format!("tag:k{i}"), &["v"]))
            .collect();
        assert_eq!(
            TargetSpec::parse(&[], &six).unwrap_err().code(),
            "ValidationException"
        );
    }
}
