//! DescribeInstanceInformation and its filters.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::ids;

use super::MAX_ROUNDS;
use crate::fleet::FleetContext;
use crate::fleet::node::{Node, ResourceType};
use crate::paging::{self, Cursor};
use crate::targets::TargetDirectory;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeInstanceInformationRequest {
    #[serde(default)]
    instance_information_filter_list: Vec<LegacyFilter>,
    #[serde(default)]
    filters: Vec<StringFilter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LegacyFilter {
    key: String,
    #[serde(rename = "valueSet", default)]
    value_set: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StringFilter {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

/// Filters of DescribeInstanceInformation, parsed: every present filter must
/// match (AND); any value of one filter may match (OR).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NodeFilter {
    pub instance_ids: Option<BTreeSet<String>>,
    pub tags: Vec<(String, Vec<String>)>,
    pub tag_keys: Option<Vec<String>>,
    pub agent_versions: Option<BTreeSet<String>>,
    pub ping_statuses: Option<BTreeSet<String>>,
    pub platform_types: Option<BTreeSet<String>>,
    pub activation_ids: Option<BTreeSet<String>>,
    pub iam_roles: Option<BTreeSet<String>>,
    pub resource_types: Option<BTreeSet<String>>,
    /// No association runs yet: any AssociationStatus filter matches nothing.
    pub association_status: bool,
}

fn and_set(slot: &mut Option<BTreeSet<String>>, values: &[String]) {
    let v: BTreeSet<String> = values.iter().cloned().collect();
    *slot = Some(match slot.take() {
        None => v,
        Some(prev) => prev.intersection(&v).cloned().collect(),
    });
}

impl NodeFilter {
    fn add(&mut self, key: &str, values: &[String]) -> Result<(), SsmError> {
        if values.is_empty() {
            return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                "Filter {key} has no values; give at least one."
            )));
        }
        match key {
            "InstanceIds" => {
                if let Some(bad) = values.iter().find(|v| !ids::is_instance_id(v)) {
                    return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                        "{bad} is not a valid instance id (mi- or i- followed by hex digits)."
                    )));
                }
                and_set(&mut self.instance_ids, values)
            }
            "AgentVersion" => and_set(&mut self.agent_versions, values),
            "PingStatus" => {
                if let Some(bad) = values
                    .iter()
                    .find(|v| !["Online", "ConnectionLost", "Inactive"].contains(&v.as_str()))
                {
                    return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                        "PingStatus {bad} is not valid; use Online, ConnectionLost or Inactive."
                    )));
                }
                and_set(&mut self.ping_statuses, values)
            }
            "PlatformTypes" => and_set(&mut self.platform_types, values),
            "ActivationIds" => and_set(&mut self.activation_ids, values),
            "IamRole" => and_set(&mut self.iam_roles, values),
            "ResourceType" => {
                if let Some(bad) = values.iter().find(|v| ResourceType::parse(v).is_none()) {
                    return Err(SsmError::InvalidInstanceInformationFilterValue(format!(
                        "ResourceType {bad} is not valid; use ManagedInstance or EC2Instance."
                    )));
                }
                and_set(&mut self.resource_types, values)
            }
            "AssociationStatus" => self.association_status = true,
            "tag-key" => self
                .tag_keys
                .get_or_insert_with(Vec::new)
                .extend(values.iter().cloned()),
            k => match k.strip_prefix("tag:") {
                Some(tk) if !tk.is_empty() => self.tags.push((tk.to_string(), values.to_vec())),
                _ => {
                    return Err(SsmError::InvalidFilterKey(format!(
                        "Filter key {k} is not supported; use InstanceIds, AgentVersion, PingStatus, PlatformTypes, ActivationIds, IamRole, ResourceType, AssociationStatus, tag:<key> or tag-key."
                    )));
                }
            },
        }
        Ok(())
    }

    pub fn matches(&self, n: &Node, now: f64, lost_after: u64) -> bool {
        let has = |s: &Option<BTreeSet<String>>, v: &str| s.as_ref().is_none_or(|s| s.contains(v));
        !self.association_status
            && has(&self.instance_ids, &n.instance_id)
            && has(&self.agent_versions, &n.agent_version)
            && has(&self.ping_statuses, n.ping_status(now, lost_after).as_str())
            && has(&self.platform_types, &n.platform_type)
            && has(&self.activation_ids, &n.activation_id)
            && has(&self.iam_roles, &n.iam_role)
            && has(&self.resource_types, n.resource_type.as_str())
            && self
                .tags
                .iter()
                .all(|(k, vs)| n.tags.get(k).is_some_and(|v| vs.contains(v)))
            && self
                .tag_keys
                .as_ref()
                .is_none_or(|ks| ks.iter().any(|k| n.tags.contains_key(k)))
    }

    /// The candidate ids when ids or tags narrow the search, sorted.
    async fn candidates(
        &self,
        dir: &dyn TargetDirectory,
    ) -> Result<Option<BTreeSet<String>>, SsmError> {
        let mut set: Option<BTreeSet<String>> = self.instance_ids.clone();
        let narrow = |s: &mut Option<BTreeSet<String>>, found: BTreeSet<String>| {
            *s = Some(match s.take() {
                None => found,
                Some(prev) => prev.intersection(&found).cloned().collect(),
            });
        };
        for (k, vs) in &self.tags {
            let mut found = BTreeSet::new();
            for v in vs {
                found.extend(dir.nodes_with_tag(k, v).await?);
            }
            narrow(&mut set, found);
        }
        if let Some(keys) = &self.tag_keys {
            let mut found = BTreeSet::new();
            for k in keys {
                found.extend(dir.nodes_with_tag_key(k).await?);
            }
            narrow(&mut set, found);
        }
        Ok(set)
    }
}

pub async fn describe_instance_information(
    ctx: &FleetContext<'_>,
    body: &Value,
    now: f64,
) -> Result<Value, SsmError> {
    let lost_after = ctx.connection_lost_seconds;
    let req: DescribeInstanceInformationRequest = parse(body)?;
    if !req.instance_information_filter_list.is_empty() && !req.filters.is_empty() {
        return Err(SsmError::InvalidInstanceInformationFilterValue(
            "Use either InstanceInformationFilterList or Filters, not both (Filters is the current one).".into(),
        ));
    }
    let max = paging::max_results(req.max_results, 5, 50, 50)?;
    let mut filter = NodeFilter::default();
    for f in &req.instance_information_filter_list {
        if f.key.starts_with("tag") {
            return Err(SsmError::InvalidFilterKey(format!(
                "{} is not a key of InstanceInformationFilterList; filter by tags with Filters.",
                f.key
            )));
        }
        filter.add(&f.key, &f.value_set)?;
    }
    for f in &req.filters {
        filter.add(&f.key, &f.values)?;
    }
    let cursor = req.next_token.as_deref().map(paging::decode).transpose()?;
    let mut out = Vec::new();
    let mut next = None;
    match filter.candidates(ctx.directory).await? {
        Some(ids) => {
            let after = match cursor {
                None => None,
                Some(Cursor::Id { after }) => Some(after),
                Some(_) => return Err(paging::invalid_token()),
            };
            let pending: Vec<String> = ids
                .into_iter()
                .filter(|id| after.as_ref().is_none_or(|a| id > a))
                .collect();
            let mut start = 0;
            while start < pending.len() && out.len() < max {
                let end = (start + (max - out.len())).min(pending.len());
                let chunk = &pending[start..end];
                let mut found = ctx.nodes.get_many(chunk).await?;
                found.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
                out.extend(
                    found
                        .into_iter()
                        .filter(|n| filter.matches(n, now, lost_after)),
                );
                start = end;
            }
            if start < pending.len() {
                next = Some(Cursor::Id {
                    after: pending[start - 1].clone(),
                });
            }
        }
        None => {
            let mut after = match cursor {
                None => None,
                Some(Cursor::Node { after }) => Some(after),
                Some(_) => return Err(paging::invalid_token()),
            };
            for _ in 0..MAX_ROUNDS {
                let (page, more) = ctx.nodes.list(after.as_deref(), max - out.len()).await?;
                if let Some(last) = page.last() {
                    after = Some(last.instance_id.clone());
                }
                out.extend(
                    page.into_iter()
                        .filter(|n| filter.matches(n, now, lost_after)),
                );
                if !more {
                    after = None;
                    break;
                }
                if out.len() >= max {
                    break;
                }
            }
            next = after.map(|after| Cursor::Node { after });
        }
    }
    let list: Vec<_> = out.iter().map(|n| n.information(now, lost_after)).collect();
    let mut resp = json!({ "InstanceInformationList": list });
    if let Some(c) = next {
        resp["NextToken"] = json!(paging::encode(&c));
    }
    Ok(resp)
}
