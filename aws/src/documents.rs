//! Documents (`DocumentsTable`) over DynamoDB: the [`DocumentStore`]
//! (docs/internals.md, "Documents").
//!
//! Per document, one head item (`Version` 0: latest and default versions,
//! version names, tags and the default version's summary) and one item per
//! version (`Version` n ≥ 1, the content as given). Only heads carry `Kind`,
//! so the `ByName` index lists documents without their versions. Every head
//! write is conditional on its `Revision` (or its absence).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use steward_core::SsmError;
use steward_core::documents::DocumentFormat;
use steward_core::documents::store::{DocumentHead, DocumentStore, StoredVersion, VersionSummary};

use crate::Stack;
use crate::internal;
use crate::item::{
    Item, get_f64, get_str, get_str_list, get_str_map, get_u64, kind_listing, n, query_up_to, s,
    str_list_av, str_map_av,
};
use crate::revisioned::{self, HEAD, key};

/// `Kind` of every head: the `ByName` index's partition.
pub const KIND: &str = "Document";
pub const BY_NAME: &str = "ByName";

fn bad_item(name: &str, what: &'static str) -> SsmError {
    tracing::error!(document = name, what, "document item cannot be decoded");
    SsmError::internal()
}

fn format_of(name: &str, item: &Item) -> Result<DocumentFormat, SsmError> {
    match get_str(item, "DocumentFormat").as_deref() {
        Some("JSON") => Ok(DocumentFormat::Json),
        Some("YAML") => Ok(DocumentFormat::Yaml),
        _ => Err(bad_item(name, "DocumentFormat")),
    }
}

fn head_to_item(h: &DocumentHead) -> Item {
    let mut item = key(&h.name, HEAD);
    item.insert("Kind".into(), s(KIND));
    item.insert("DocumentType".into(), s(&h.document_type));
    item.insert("Owner".into(), s(&h.owner));
    item.insert("CreatedDate".into(), n(h.created_date));
    item.insert("LatestVersion".into(), n(h.latest_version));
    item.insert("DefaultVersion".into(), n(h.default_version));
    item.insert("LastNumber".into(), n(h.last_number));
    item.insert("VersionCount".into(), n(h.version_count));
    item.insert(
        "VersionNames".into(),
        AttributeValue::M(
            h.version_names
                .iter()
                .map(|(k, v)| (k.clone(), n(v)))
                .collect(),
        ),
    );
    let d = &h.default_summary;
    if let Some(vn) = &d.version_name {
        item.insert("DefaultVersionName".into(), s(vn));
    }
    item.insert("SchemaVersion".into(), s(&d.schema_version));
    item.insert("DocumentFormat".into(), s(d.format.as_str()));
    item.insert("PlatformTypes".into(), str_list_av(&d.platform_types));
    item.insert("Tags".into(), str_map_av(&h.tags));
    if let Some(t) = &h.target_type {
        item.insert("TargetType".into(), s(t));
    }
    if let Some(n) = &h.display_name {
        item.insert("DisplayName".into(), s(n));
    }
    item.insert("Revision".into(), n(h.revision));
    item
}

fn head_from_item(item: &Item) -> Result<DocumentHead, SsmError> {
    let name = get_str(item, "Name").ok_or_else(|| bad_item("?", "Name"))?;
    let num = |k: &'static str| get_u64(item, k).ok_or_else(|| bad_item(&name, k));
    let version_names: BTreeMap<String, u64> = match item.get("VersionNames") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::N(x) => x.parse().ok().map(|x| (k.clone(), x)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let platform_types = get_str_list(item, "PlatformTypes");
    Ok(DocumentHead {
        document_type: get_str(item, "DocumentType").unwrap_or_else(|| "Command".into()),
        owner: get_str(item, "Owner").unwrap_or_default(),
        created_date: get_f64(item, "CreatedDate"),
        latest_version: num("LatestVersion")?,
        default_version: num("DefaultVersion")?,
        last_number: num("LastNumber")?,
        version_count: num("VersionCount")?,
        version_names,
        default_summary: VersionSummary {
            version_name: get_str(item, "DefaultVersionName"),
            schema_version: get_str(item, "SchemaVersion").unwrap_or_default(),
            format: format_of(&name, item)?,
            platform_types,
        },
        tags: get_str_map(item, "Tags"),
        target_type: get_str(item, "TargetType"),
        display_name: get_str(item, "DisplayName"),
        revision: num("Revision")?,
        name,
    })
}

fn version_to_item(v: &StoredVersion) -> Item {
    let mut item = key(&v.name, v.version);
    if let Some(vn) = &v.version_name {
        item.insert("VersionName".into(), s(vn));
    }
    item.insert("Content".into(), s(&v.content));
    item.insert("DocumentFormat".into(), s(v.format.as_str()));
    item.insert("Hash".into(), s(&v.hash));
    item.insert("CreatedDate".into(), n(v.created_date));
    item
}

fn version_from_item(item: &Item) -> Result<StoredVersion, SsmError> {
    let name = get_str(item, "Name").ok_or_else(|| bad_item("?", "Name"))?;
    Ok(StoredVersion {
        version: get_u64(item, "Version").ok_or_else(|| bad_item(&name, "Version"))?,
        version_name: get_str(item, "VersionName"),
        content: get_str(item, "Content").ok_or_else(|| bad_item(&name, "Content"))?,
        format: format_of(&name, item)?,
        hash: get_str(item, "Hash").unwrap_or_default(),
        created_date: get_f64(item, "CreatedDate"),
        name,
    })
}

/// Documents over DynamoDB.
#[derive(Clone, Debug)]
pub struct DocumentTable {
    client: Client,
    table: String,
}

impl DocumentTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.documents_table.clone(),
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, SsmError> {
        revisioned::transact(&self.client, "document", items).await
    }

    fn put_head(
        &self,
        next: &DocumentHead,
        expected: Option<u64>,
    ) -> Result<TransactWriteItem, SsmError> {
        revisioned::put_head(&self.table, head_to_item(next), expected)
    }

    async fn query_versions(
        &self,
        name: &str,
        condition: &str,
        bound: u64,
        forward: bool,
        limit: usize,
    ) -> Result<(Vec<StoredVersion>, bool), SsmError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("#n = :n AND {condition}"))
            .expression_attribute_names("#n", "Name")
            .expression_attribute_names("#v", "Version")
            .expression_attribute_values(":n", s(name))
            .expression_attribute_values(":v", n(bound))
            .scan_index_forward(forward)
            .consistent_read(true);
        // The head shares the partition; it is no version.
        let (items, more) =
            query_up_to(query, limit, |item| get_u64(item, "Version") != Some(HEAD)).await?;
        let versions = items
            .iter()
            .map(version_from_item)
            .collect::<Result<_, _>>()?;
        Ok((versions, more))
    }
}

#[async_trait::async_trait]
impl DocumentStore for DocumentTable {
    async fn head(&self, name: &str) -> Result<Option<DocumentHead>, SsmError> {
        crate::item::get_consistent(&self.client, &self.table, key(name, HEAD))
            .await?
            .as_ref()
            .map(head_from_item)
            .transpose()
    }

    async fn version(&self, name: &str, version: u64) -> Result<Option<StoredVersion>, SsmError> {
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
        after: u64,
        limit: usize,
    ) -> Result<(Vec<StoredVersion>, bool), SsmError> {
        self.query_versions(name, "#v > :v", after, true, limit)
            .await
    }

    async fn version_before(&self, name: &str, before: u64) -> Result<Option<u64>, SsmError> {
        let (v, _) = self
            .query_versions(name, "#v < :v", before, false, 1)
            .await?;
        Ok(v.first().map(|v| v.version))
    }

    async fn put_version(
        &self,
        next: &DocumentHead,
        expected_revision: Option<u64>,
        version: &StoredVersion,
    ) -> Result<bool, SsmError> {
        // The version item is written unconditionally: the head's condition
        // makes the writer exclusive, and a leftover of a deleted document of
        // the same name must not block it.
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(version_to_item(version)))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            self.put_head(next, expected_revision)?,
            TransactWriteItem::builder().put(put).build(),
        ])
        .await
    }

    async fn update_head(
        &self,
        next: &DocumentHead,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        self.transact(vec![self.put_head(next, Some(expected_revision))?])
            .await
    }

    async fn delete_version(
        &self,
        next: &DocumentHead,
        expected_revision: u64,
        version: u64,
    ) -> Result<bool, SsmError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&next.name, version)))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            self.put_head(next, Some(expected_revision))?,
            TransactWriteItem::builder().delete(delete).build(),
        ])
        .await
    }

    async fn delete(&self, head: &DocumentHead, expected_revision: u64) -> Result<bool, SsmError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(&head.name, HEAD)))
            .condition_expression("#rev = :rev")
            .expression_attribute_names("#rev", "Revision")
            .expression_attribute_values(":rev", n(expected_revision))
            .build()
            .map_err(internal)?;
        if !self
            .transact(vec![TransactWriteItem::builder().delete(delete).build()])
            .await?
        {
            return Ok(false);
        }
        // The head is gone, so no read reaches these; a version left by a
        // crash here is overwritten by the next document of this name.
        let mut after = HEAD;
        loop {
            let (page, more) = self.versions(&head.name, after, 100).await?;
            for v in &page {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(&head.name, v.version)))
                    .send()
                    .await
                    .map_err(internal)?;
            }
            match page.last() {
                Some(last) if more => after = last.version,
                _ => break,
            }
        }
        Ok(true)
    }

    async fn list(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DocumentHead>, bool), SsmError> {
        let q = kind_listing(&self.client, &self.table, BY_NAME, KIND, "Name", after);
        let (items, more) = query_up_to(q, limit, |_| true).await?;
        let heads = items.iter().map(head_from_item).collect::<Result<_, _>>()?;
        Ok((heads, more))
    }
}

/// The documents' adapters, built once per process;
/// [`DocumentAdapters::context`] gives one request's context.
#[derive(Clone, Debug)]
pub struct DocumentAdapters {
    pub store: DocumentTable,
    pub scope: steward_core::arn::ArnScope,
}

impl DocumentAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: DocumentTable::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    pub fn context<'a>(
        &'a self,
        caller: &'a dyn steward_core::access::Authorizer,
        now: f64,
    ) -> steward_core::documents::context::DocumentContext<'a> {
        steward_core::documents::context::DocumentContext {
            store: &self.store,
            caller,
            scope: &self.scope,
            now,
        }
    }
}
