//! Parameters (`ParametersTable`) over DynamoDB: Parameter Store's
//! [`ParameterStore`] (docs/internals.md, "Parameter Store").
//!
//! Per parameter, one head item (`Version` 0: the whole [`Parameter`] with its
//! latest version) and one item per kept version (`Version` n ≥ 1). Only heads
//! carry `Kind`, `Parent` and (while a policy is pending) `PolicyShard` and
//! `PolicyDue`, so the `ByName`, `ByParent` and `ByPolicyDue` indexes hold
//! heads only. Every head write is conditional on its `Revision`.
//!
//! A SecureString's value arrives here already sealed and is stored as
//! `SealedValue`; a plain value as `Value`. Values are never logged.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, KeysAndAttributes, Put, TransactWriteItem, WriteRequest,
};
use steward_core::SsmError;
use steward_core::parameters::model::{
    Parameter, ParameterType, ParameterVersion, PolicyRecord, StoredValue, Tier,
};
use steward_core::parameters::{ParameterStore, parent_of};

use crate::Stack;
use crate::internal;
use crate::item::{
    Item, batch_get_all, batch_write_all, conditional, get_f64, get_n, get_str, get_str_map,
    get_u64, n, query_items, query_up_to, s, str_map_av,
};
use crate::revisioned::{self, HEAD, busy, key};

/// `Kind` of every head: the `ByName` index's partition.
pub const KIND: &str = "Parameter";
/// `PolicyShard` of every head with a pending policy.
pub const POLICY_SHARD: &str = "due";
pub const BY_NAME: &str = "ByName";
pub const BY_PARENT: &str = "ByParent";
pub const BY_POLICY_DUE: &str = "ByPolicyDue";

// ---------------------------------------------------------------- codecs

fn bad_item(name: &str, what: &'static str) -> SsmError {
    tracing::error!(parameter = name, what, "parameter item cannot be decoded");
    SsmError::internal()
}

fn policies_av(policies: &[PolicyRecord]) -> AttributeValue {
    AttributeValue::L(
        policies
            .iter()
            .map(|p| {
                AttributeValue::M(HashMap::from([
                    ("PolicyText".into(), s(&p.text)),
                    ("PolicyType".into(), s(&p.policy_type)),
                    ("PolicyStatus".into(), s(&p.status)),
                ]))
            })
            .collect(),
    )
}

fn get_policies(item: &Item) -> Vec<PolicyRecord> {
    let Some(AttributeValue::L(list)) = item.get("Policies") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|v| match v {
            AttributeValue::M(m) => Some(PolicyRecord {
                text: get_str(m, "PolicyText").unwrap_or_default(),
                policy_type: get_str(m, "PolicyType").unwrap_or_default(),
                status: get_str(m, "PolicyStatus").unwrap_or_default(),
            }),
            _ => None,
        })
        .collect()
}

/// The attributes of one version, on its own item and on the head; the
/// caller adds the key.
fn version_attrs(v: &ParameterVersion) -> Item {
    let mut item: Item = HashMap::from([
        ("Name".into(), s(&v.name)),
        ("Type".into(), s(v.parameter_type.as_str())),
        ("Tier".into(), s(v.tier.as_str())),
        ("Policies".into(), policies_av(&v.policies)),
        ("DataType".into(), s(&v.data_type)),
        ("LastModifiedDate".into(), n(v.last_modified_date)),
        ("LastModifiedUser".into(), s(&v.last_modified_user)),
    ]);
    match &v.value {
        StoredValue::Plain(x) => item.insert("Value".into(), s(x)),
        StoredValue::Sealed(x) => item.insert("SealedValue".into(), s(x)),
    };
    for (k, value) in [
        ("KeyId", &v.key_id),
        ("Description", &v.description),
        ("AllowedPattern", &v.allowed_pattern),
    ] {
        if let Some(x) = value {
            item.insert(k.into(), s(x));
        }
    }
    // DynamoDB has no empty sets: no labels, no attribute.
    if !v.labels.is_empty() {
        item.insert(
            "Labels".into(),
            AttributeValue::Ss(v.labels.iter().cloned().collect()),
        );
    }
    item
}

/// A version from its item; on a head, `version` is the latest's number.
fn version_from(item: &Item, version: u64) -> Result<ParameterVersion, SsmError> {
    let name = get_str(item, "Name").ok_or_else(|| bad_item("?", "Name"))?;
    let parameter_type = get_str(item, "Type")
        .and_then(|t| ParameterType::parse(&t).ok())
        .ok_or_else(|| bad_item(&name, "Type"))?;
    let value = match (get_str(item, "SealedValue"), get_str(item, "Value")) {
        (Some(sealed), _) => StoredValue::Sealed(sealed),
        (None, Some(plain)) => StoredValue::Plain(plain),
        (None, None) => return Err(bad_item(&name, "Value")),
    };
    let tier = get_str(item, "Tier")
        .and_then(|t| Tier::parse(&t))
        .ok_or_else(|| bad_item(&name, "Tier"))?;
    let labels: BTreeSet<String> = match item.get("Labels") {
        Some(AttributeValue::Ss(l)) => l.iter().cloned().collect(),
        _ => BTreeSet::new(),
    };
    Ok(ParameterVersion {
        version,
        parameter_type,
        value,
        key_id: get_str(item, "KeyId"),
        description: get_str(item, "Description"),
        allowed_pattern: get_str(item, "AllowedPattern"),
        tier,
        policies: get_policies(item),
        data_type: get_str(item, "DataType").unwrap_or_else(|| "text".into()),
        labels,
        last_modified_date: get_f64(item, "LastModifiedDate"),
        last_modified_user: get_str(item, "LastModifiedUser").unwrap_or_default(),
        name,
    })
}

pub fn version_to_item(v: &ParameterVersion) -> Item {
    let mut item = version_attrs(v);
    item.insert("Version".into(), n(v.version));
    item
}

pub fn version_from_item(item: &Item) -> Result<ParameterVersion, SsmError> {
    let version = get_u64(item, "Version").ok_or_else(|| bad_item("?", "Version"))?;
    version_from(item, version)
}

pub fn head_to_item(p: &Parameter) -> Item {
    let mut item = version_attrs(&p.current);
    item.insert("Version".into(), n(HEAD));
    item.insert("LatestVersion".into(), n(p.current.version));
    item.insert("Kind".into(), s(KIND));
    item.insert("Parent".into(), s(parent_of(p.name())));
    item.insert("OldestVersion".into(), n(p.oldest_version));
    item.insert(
        "LabelVersions".into(),
        AttributeValue::M(p.labels.iter().map(|(l, v)| (l.clone(), n(v))).collect()),
    );
    item.insert("Tags".into(), str_map_av(&p.tags));
    item.insert("Revision".into(), n(p.revision));
    // Only a head with a pending policy is in ByPolicyDue.
    if let Some(due) = p.policy_due {
        item.insert("PolicyShard".into(), s(POLICY_SHARD));
        item.insert("PolicyDue".into(), n(due));
    }
    item
}

pub fn head_from_item(item: &Item) -> Result<Parameter, SsmError> {
    let name = get_str(item, "Name").unwrap_or_default();
    let latest = get_u64(item, "LatestVersion").ok_or_else(|| bad_item(&name, "LatestVersion"))?;
    let labels: BTreeMap<String, u64> = match item.get("LabelVersions") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(l, v)| match v {
                AttributeValue::N(x) => x.parse().ok().map(|v| (l.clone(), v)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(Parameter {
        current: version_from(item, latest)?,
        oldest_version: get_u64(item, "OldestVersion").unwrap_or(1),
        labels,
        tags: get_str_map(item, "Tags"),
        policy_due: get_n(item, "PolicyDue"),
        revision: get_u64(item, "Revision").ok_or_else(|| bad_item(&name, "Revision"))?,
    })
}

// ---------------------------------------------------------------- the store

/// Parameter Store over DynamoDB.
#[derive(Clone, Debug)]
pub struct ParameterTable {
    client: Client,
    table: String,
}

impl ParameterTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.parameters_table.clone(),
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, SsmError> {
        revisioned::transact(&self.client, "parameter", items).await
    }

    fn put_head(
        &self,
        next: &Parameter,
        expected: Option<u64>,
    ) -> Result<TransactWriteItem, SsmError> {
        revisioned::put_head(&self.table, head_to_item(next), expected)
    }

    /// An unconditional Put of a version item: the head's condition already
    /// makes the writer exclusive, and a leftover of a deleted parameter of
    /// the same name must not block it.
    fn put_version_item(&self, v: &ParameterVersion) -> Result<TransactWriteItem, SsmError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(version_to_item(v)))
            .build()
            .map_err(internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Heads from an index Query, in sort-key order, after `start`, at most
    /// `limit`; `true` when at least one more exists. Reads past 1 MB pages
    /// until it knows.
    async fn query_heads(
        &self,
        index: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        names: Vec<(&str, &str)>,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        if limit == 0 {
            return Ok((Vec::new(), false));
        }
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .scan_index_forward(true)
            .set_exclusive_start_key(start);
        for (k, v) in values {
            q = q.expression_attribute_values(k, v);
        }
        for (k, v) in names {
            q = q.expression_attribute_names(k, v);
        }
        let (items, more) = query_up_to(q, limit, |_| true).await?;
        let heads = items.iter().map(head_from_item).collect::<Result<_, _>>()?;
        Ok((heads, more))
    }

    /// Deletes version items, 25 per BatchWriteItem, retrying what DynamoDB
    /// leaves unprocessed.
    async fn delete_versions(
        &self,
        name: &str,
        versions: impl Iterator<Item = u64>,
    ) -> Result<(), SsmError> {
        let requests: Vec<WriteRequest> = versions
            .map(|v| {
                DeleteRequest::builder()
                    .set_key(Some(key(name, v)))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(internal)
            })
            .collect::<Result<_, _>>()?;
        for chunk in requests.chunks(25) {
            if !batch_write_all(&self.client, &self.table, chunk.to_vec()).await? {
                // The head is gone: what is left is garbage no read returns
                // (versions outside a head's range are ignored) and the next
                // parameter of this name overwrites.
                tracing::warn!(
                    parameter = name,
                    "some version items of a deleted parameter remain"
                );
                return Err(busy("parameter"));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ParameterStore for ParameterTable {
    async fn get(&self, name: &str) -> Result<Option<Parameter>, SsmError> {
        crate::item::get_consistent(&self.client, &self.table, key(name, HEAD))
            .await?
            .as_ref()
            .map(head_from_item)
            .transpose()
    }

    async fn get_many(&self, names: &[String]) -> Result<Vec<Parameter>, SsmError> {
        // BatchGetItem refuses a key twice.
        let unique: BTreeSet<&String> = names.iter().collect();
        let unique: Vec<&String> = unique.into_iter().collect();
        let mut out = Vec::new();
        for chunk in unique.chunks(100) {
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|name| key(name, HEAD)).collect()))
                .consistent_read(true)
                .build()
                .map_err(internal)?;
            for item in batch_get_all(&self.client, &self.table, keys, "parameter").await? {
                out.push(head_from_item(&item)?);
            }
        }
        Ok(out)
    }

    async fn get_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Option<ParameterVersion>, SsmError> {
        // Version 0 is the head, not a version.
        if version == HEAD {
            return Ok(None);
        }
        crate::item::get_consistent(&self.client, &self.table, key(name, version))
            .await?
            .as_ref()
            .map(version_from_item)
            .transpose()
    }

    async fn versions(
        &self,
        name: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<ParameterVersion>, SsmError> {
        let from = from.max(1);
        if from > to || limit == 0 {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#n = :n AND #v BETWEEN :from AND :to")
            .expression_attribute_names("#n", "Name")
            .expression_attribute_names("#v", "Version")
            .expression_attribute_values(":n", s(name))
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":to", n(to))
            .consistent_read(true);
        let items = query_items(query, Some(limit), |_| true).await?;
        items.iter().take(limit).map(version_from_item).collect()
    }

    async fn put_version(
        &self,
        next: &Parameter,
        expected_revision: Option<u64>,
        drop_version: Option<u64>,
    ) -> Result<bool, SsmError> {
        let mut items = vec![
            self.put_head(next, expected_revision)?,
            self.put_version_item(&next.current)?,
        ];
        // One transaction may not touch an item twice: the head and the new
        // version are never the dropped one.
        if let Some(v) = drop_version.filter(|v| *v != HEAD && *v != next.version()) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(next.name(), v)))
                .build()
                .map_err(internal)?;
            items.push(TransactWriteItem::builder().delete(delete).build());
        }
        self.transact(items).await
    }

    async fn update(
        &self,
        next: &Parameter,
        expected_revision: u64,
        versions: &[ParameterVersion],
    ) -> Result<bool, SsmError> {
        let mut items = vec![self.put_head(next, Some(expected_revision))?];
        let mut seen = BTreeSet::new();
        for v in versions {
            // The head's revision condition covers the whole parameter; each
            // version item once (a transaction refuses an item twice).
            if v.version != HEAD && seen.insert(v.version) {
                items.push(self.put_version_item(v)?);
            }
        }
        if items.len() > 100 {
            tracing::error!(
                parameter = next.name(),
                count = items.len(),
                "update touches too many versions"
            );
            return Err(SsmError::internal());
        }
        self.transact(items).await
    }

    async fn delete(&self, head: &Parameter, expected_revision: u64) -> Result<bool, SsmError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(head.name(), HEAD)))
            .condition_expression("#rev = :rev")
            .expression_attribute_names("#rev", "Revision")
            .expression_attribute_values(":rev", n(expected_revision))
            .send()
            .await;
        if !conditional(r).map_err(internal)? {
            return Ok(false);
        }
        // The parameter is gone with its head; its versions go after. A
        // crash in between leaves garbage that reads ignore and the next
        // parameter of this name overwrites.
        self.delete_versions(head.name(), head.oldest_version.max(1)..=head.version())
            .await?;
        Ok(true)
    }

    async fn list_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        // A start key outside the key condition is refused by DynamoDB. A
        // name `after` that does not start with `prefix` sorts either before
        // every match (start at the beginning) or after every one (nothing).
        let start = match after {
            Some(a) if a.starts_with(prefix) => Some(a),
            Some(a) if a < prefix => None,
            Some(_) => return Ok((Vec::new(), false)),
            None => None,
        };
        let start = start.map(|a| {
            HashMap::from([
                ("Kind".to_string(), s(KIND)),
                ("Name".to_string(), s(a)),
                ("Version".to_string(), n(HEAD)),
            ])
        });
        // begins_with refuses an empty operand; an empty prefix is every name.
        let (condition, mut values) = if prefix.is_empty() {
            ("#k = :k", Vec::new())
        } else {
            (
                "#k = :k AND begins_with(#n, :prefix)",
                vec![(":prefix", s(prefix))],
            )
        };
        values.push((":k", s(KIND)));
        let mut names = vec![("#k", "Kind")];
        if !prefix.is_empty() {
            names.push(("#n", "Name"));
        }
        self.query_heads(BY_NAME, condition, values, names, start, limit)
            .await
    }

    async fn list_children(
        &self,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        let start = after.map(|a| {
            HashMap::from([
                ("Parent".to_string(), s(parent)),
                ("Name".to_string(), s(a)),
                ("Version".to_string(), n(HEAD)),
            ])
        });
        self.query_heads(
            BY_PARENT,
            "#p = :p",
            vec![(":p", s(parent))],
            vec![("#p", "Parent")],
            start,
            limit,
        )
        .await
    }

    async fn due(&self, now: f64, limit: usize) -> Result<Vec<Parameter>, SsmError> {
        let (heads, _) = self
            .query_heads(
                BY_POLICY_DUE,
                "#sh = :sh AND #due <= :now",
                vec![(":sh", s(POLICY_SHARD)), (":now", n(now))],
                vec![("#sh", "PolicyShard"), ("#due", "PolicyDue")],
                None,
                limit,
            )
            .await?;
        Ok(heads)
    }
}
