//! Which nodes a command reaches: `InstanceIds`, or `Targets` of
//! `InstanceIds` / `tag:<key>` / `tag-key` / `resource-groups:Name`
//! (with `resource-groups:ResourceTypeFilters`), resolved as SSM does —
//! AND across target entries, OR across the values of one entry.
//!
//! A resource group is read through [`GroupQueries`]: its tag query
//! (`TAG_FILTERS_1_0`) becomes tag criteria over the same tag index, so a
//! group costs one GetGroupQuery and no scan.

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
    /// `InstanceIds` = `*`: every registered node.
    AllNodes,
    /// `tag:<key>` with one or more values (any of them matches).
    Tag {
        key: String,
        values: Vec<String>,
    },
    /// `tag-key` with one or more keys (a node having any of them matches).
    TagKey(Vec<String>),
    /// `resource-groups:Name`: the nodes the group's tag query selects.
    ResourceGroup(String),
    /// `resource-groups:ResourceTypeFilters`: narrows a group to these
    /// resource types; only given with `resource-groups:Name`.
    ResourceTypes(Vec<String>),
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
                // Alone, a type filter would select every node of the
                // fleet, which nothing can answer without a scan; SSM also
                // pairs it with a group.
                let has = |f: fn(&Criterion) -> bool| criteria.iter().any(f);
                if has(|c| matches!(c, Criterion::ResourceTypes(_)))
                    && !has(|c| matches!(c, Criterion::ResourceGroup(_)))
                {
                    return Err(SsmError::InvalidTarget(
                        "resource-groups:ResourceTypeFilters narrows a resource group: give resource-groups:Name too.".into(),
                    ));
                }
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
            if values == ["*"] {
                return Ok(Criterion::AllNodes);
            }
            return Ok(Criterion::InstanceIds(check_ids(&values)?));
        }
        if t.key == "tag-key" {
            return Ok(Criterion::TagKey(values));
        }
        if t.key == "resource-groups:Name" {
            return match values.as_slice() {
                [name] => Ok(Criterion::ResourceGroup(name.clone())),
                _ => Err(SsmError::InvalidTarget(
                    "Target resource-groups:Name takes exactly one group name.".into(),
                )),
            };
        }
        if t.key == "resource-groups:ResourceTypeFilters" {
            return Ok(Criterion::ResourceTypes(values));
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
            "Target key {} is not supported; use InstanceIds, tag:<key>, tag-key, resource-groups:Name or resource-groups:ResourceTypeFilters.",
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
    /// Every registered node (`InstanceIds` = `*`).
    async fn all_nodes(&self) -> Result<Vec<String>, SsmError>;
}

/// A resource group's query as AWS Resource Groups stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupQuery {
    /// `TAG_FILTERS_1_0`, `CLOUDFORMATION_STACK_1_0`, …
    pub query_type: String,
    /// The query document, JSON.
    pub query: String,
}

/// The query type whose groups can target nodes.
pub const TAG_FILTERS: &str = "TAG_FILTERS_1_0";

/// Resource types a group may name to include managed nodes.
pub const NODE_RESOURCE_TYPES: [&str; 3] = [
    "AWS::SSM::ManagedInstance",
    "AWS::EC2::Instance",
    "AWS::AllSupported",
];

/// A `TAG_FILTERS_1_0` query: resources of these types carrying every
/// tag filter (a filter matches any of its values, or any value if none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagQuery {
    #[serde(default)]
    pub resource_type_filters: Vec<String>,
    #[serde(default)]
    pub tag_filters: Vec<TagFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagFilter {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl GroupQuery {
    /// The tag query of group `name`, or why it cannot target nodes.
    pub fn tag_query(&self, name: &str) -> Result<TagQuery, SsmError> {
        if self.query_type != TAG_FILTERS {
            return Err(SsmError::InvalidTarget(format!(
                "Resource group {name} uses a {} query; only tag-based groups ({TAG_FILTERS}) can target managed nodes.",
                self.query_type
            )));
        }
        let q: TagQuery = serde_json::from_str(&self.query).map_err(|_| {
            SsmError::InvalidTarget(format!(
                "Resource group {name} has a tag query that cannot be read; fix it with resource-groups update-group-query."
            ))
        })?;
        if q.tag_filters.is_empty() {
            return Err(SsmError::InvalidTarget(format!(
                "Resource group {name} has no tag filters; give its query at least one TagFilter."
            )));
        }
        Ok(q)
    }
}

/// Reads resource groups' queries (AWS Resource Groups).
#[async_trait::async_trait]
pub trait GroupQueries: Send + Sync {
    /// The query of group `name`, `None` if there is no such group.
    async fn group_query(&self, name: &str) -> Result<Option<GroupQuery>, SsmError>;
}

/// Whether any of `types` names a resource type managed nodes have.
fn includes_nodes(types: &[String]) -> bool {
    types
        .iter()
        .any(|t| NODE_RESOURCE_TYPES.contains(&t.as_str()))
}

/// The nodes group `name` selects: AND across its tag filters, OR across
/// the values of one; none if its resource types exclude managed nodes.
async fn group_nodes(
    name: &str,
    dir: &dyn TargetDirectory,
    groups: &dyn GroupQueries,
) -> Result<BTreeSet<String>, SsmError> {
    let Some(group) = groups.group_query(name).await? else {
        return Err(SsmError::InvalidTarget(format!(
            "Resource group {name} does not exist; create it with resource-groups create-group or check the name."
        )));
    };
    let query = group.tag_query(name)?;
    if !includes_nodes(&query.resource_type_filters) {
        return Ok(BTreeSet::new());
    }
    let mut result: Option<BTreeSet<String>> = None;
    for f in &query.tag_filters {
        let mut s = BTreeSet::new();
        if f.values.is_empty() {
            s.extend(dir.nodes_with_tag_key(&f.key).await?);
        }
        for v in &f.values {
            s.extend(dir.nodes_with_tag(&f.key, v).await?);
        }
        result = Some(match result {
            None => s,
            Some(prev) => prev.intersection(&s).cloned().collect(),
        });
    }
    Ok(result.unwrap_or_default())
}

/// Resolves a spec to node ids, sorted. Explicit ids must all exist
/// (`InvalidInstanceId` otherwise, as SSM), and named resource groups too
/// (`InvalidTarget`); tag criteria may match nothing.
pub async fn resolve(
    spec: &TargetSpec,
    dir: &dyn TargetDirectory,
    groups: &dyn GroupQueries,
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
                    Criterion::AllNodes => dir.all_nodes().await?.into_iter().collect(),
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
                    Criterion::ResourceGroup(name) => group_nodes(name, dir, groups).await?,
                    // Every node is a managed instance: a filter naming
                    // their type keeps the group as it is (parse ensured a
                    // group is there to narrow), any other empties it.
                    Criterion::ResourceTypes(types) if includes_nodes(types) => continue,
                    Criterion::ResourceTypes(_) => BTreeSet::new(),
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

/// Groups in memory, by name: the tests' Resource Groups.
#[cfg(test)]
#[async_trait::async_trait]
impl GroupQueries for std::collections::BTreeMap<String, GroupQuery> {
    async fn group_query(&self, name: &str) -> Result<Option<GroupQuery>, SsmError> {
        Ok(self.get(name).cloned())
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
        async fn all_nodes(&self) -> Result<Vec<String>, SsmError> {
            Ok(self.0.keys().cloned().collect())
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

    /// A tag query group over `types` and `filters` (key, values).
    fn tag_group(types: &[&str], filters: &[(&str, &[&str])]) -> GroupQuery {
        let filters: Vec<serde_json::Value> = filters
            .iter()
            .map(|(k, vs)| serde_json::json!({"Key": k, "Values": vs}))
            .collect();
        GroupQuery {
            query_type: TAG_FILTERS.into(),
            query: serde_json::json!({"ResourceTypeFilters": types, "TagFilters": filters})
                .to_string(),
        }
    }

    fn groups() -> BTreeMap<String, GroupQuery> {
        let node = &["AWS::SSM::ManagedInstance"][..];
        BTreeMap::from([
            ("dev".into(), tag_group(node, &[("env", &["dev"])])),
            (
                "web-anywhere".into(),
                tag_group(
                    &["AWS::EC2::Instance"],
                    &[("env", &["dev", "prod"]), ("role", &["web"])],
                ),
            ),
            (
                "all-roles".into(),
                tag_group(&["AWS::AllSupported"], &[("role", &[])]),
            ),
            (
                "buckets".into(),
                tag_group(&["AWS::S3::Bucket"], &[("env", &["dev"])]),
            ),
            (
                "stack".into(),
                GroupQuery {
                    query_type: "CLOUDFORMATION_STACK_1_0".into(),
                    query: "{}".into(),
                },
            ),
            ("no-filters".into(), tag_group(node, &[])),
        ])
    }

    async fn run(ids: &[String], targets: &[Target]) -> Result<Vec<String>, SsmError> {
        let spec = TargetSpec::parse(ids, targets)?;
        resolve(&spec, &fleet(), &groups()).await
    }

    #[tokio::test]
    async fn instance_ids_star_is_every_node_and_narrows_like_any_criterion() {
        let every = target("InstanceIds", &["*"]);
        let all = run(&[], std::slice::from_ref(&every)).await.unwrap();
        assert_eq!(all, fleet().0.keys().cloned().collect::<Vec<_>>());
        assert!(all.len() > 1);
        assert_eq!(
            run(&[], &[every, target("tag:role", &["db"])])
                .await
                .unwrap(),
            vec![id(2)]
        );
        // `*` is only a whole value: beside an id it is a bad id.
        let mixed = target("InstanceIds", &["*", &id(1)]);
        assert!(matches!(
            run(&[], &[mixed]).await,
            Err(SsmError::InvalidInstanceId(_))
        ));
    }

    #[tokio::test]
    async fn a_group_selects_by_its_tag_filters() {
        let group = |name: &str| target("resource-groups:Name", &[name]);
        assert_eq!(run(&[], &[group("dev")]).await.unwrap(), vec![id(1), id(2)]);
        // AND across filters, OR across one filter's values.
        assert_eq!(
            run(&[], &[group("web-anywhere")]).await.unwrap(),
            vec![id(1), id(3)]
        );
        // A filter without values matches any value of its key.
        assert_eq!(
            run(&[], &[group("all-roles")]).await.unwrap(),
            vec![id(1), id(2), id(3)]
        );
        // A group of other resource types holds no nodes.
        assert!(run(&[], &[group("buckets")]).await.unwrap().is_empty());
        // A group is one more criterion, ANDed with the others.
        assert_eq!(
            run(&[], &[group("dev"), target("tag:role", &["db"])])
                .await
                .unwrap(),
            vec![id(2)]
        );
    }

    #[tokio::test]
    async fn resource_type_filters_narrow_a_group() {
        let group = target("resource-groups:Name", &["web-anywhere"]);
        let types = |t: &[&str]| target("resource-groups:ResourceTypeFilters", t);
        assert_eq!(
            run(&[], &[group.clone(), types(&["AWS::EC2::Instance"])])
                .await
                .unwrap(),
            vec![id(1), id(3)]
        );
        assert!(
            run(&[], &[group, types(&["AWS::S3::Bucket"])])
                .await
                .unwrap()
                .is_empty()
        );
        let err = TargetSpec::parse(&[], &[types(&["AWS::EC2::Instance"])]).unwrap_err();
        assert_eq!(err.code(), "InvalidTarget");
    }

    #[tokio::test]
    async fn unusable_groups_are_invalid_targets() {
        let group = |name: &str| target("resource-groups:Name", &[name]);
        for name in ["missing", "stack", "no-filters"] {
            let err = run(&[], &[group(name)]).await.unwrap_err();
            assert_eq!(err.code(), "InvalidTarget", "{name}");
            assert!(err.to_string().contains(name), "{err}");
        }
        let err =
            TargetSpec::parse(&[], &[target("resource-groups:Name", &["a", "b"])]).unwrap_err();
        assert_eq!(err.code(), "InvalidTarget");
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
