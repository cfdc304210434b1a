//! ListDocuments (built-in and stored documents in name order, filtered)
//! and ListDocumentVersions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::builtin::{self, BuiltinDocument};
use super::context::{
    BUILTIN_CREATED, DocumentContext, document_arn, name_of, no_such_document, required, summary,
};
use super::document_type::DocumentType;
use super::store::{DocumentHead, StoredVersion, VersionSummary};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::max_results;
use crate::tags::{TagSet, to_list};

/// How many store pages one ListDocuments call reads at most.
const MAX_PAGES: usize = 10;
const PAGE: usize = 50;

// ------------------------------------------------------------ ListDocuments

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegacyFilter {
    key: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct KeyValues {
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ListInput {
    document_filter_list: Option<Vec<LegacyFilter>>,
    filters: Option<Vec<KeyValues>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// One filter of ListDocuments: a document passes when it matches every filter.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    /// Self/Private, Amazon/Public, All, or an account id: any of them.
    Owner(Vec<String>),
    DocumentType(Vec<String>),
    /// Names beginning with any of them.
    Name(Vec<String>),
    PlatformTypes(Vec<String>),
    /// Names containing any of them (case-insensitive).
    SearchKeyword(Vec<String>),
    TargetType(Vec<String>),
    /// `tag:<key>`: the tag with one of the values (no values: the key).
    Tag(String, Vec<String>),
    /// `TagKeys`: every key listed.
    TagKeys(Vec<String>),
}

/// What a listing needs of a document, built-in or stored.
struct Listed {
    name: String,
    document_type: DocumentType,
    owner: String,
    amazon: bool,
    default_version: u64,
    summary: VersionSummary,
    tags: TagSet,
    target_type: Option<String>,
    display_name: Option<String>,
    created_date: f64,
}

impl Listed {
    fn builtin(b: &BuiltinDocument) -> Result<Self, SsmError> {
        let d = b.content()?;
        Ok(Listed {
            name: b.name.into(),
            document_type: b.document_type,
            owner: b.owner().into(),
            amazon: true,
            default_version: 1,
            summary: summary(&d, None, b.format),
            tags: TagSet::new(),
            target_type: None,
            display_name: None,
            created_date: BUILTIN_CREATED,
        })
    }

    fn stored(h: DocumentHead) -> Self {
        Listed {
            document_type: DocumentType::stored(&h.document_type),
            name: h.name,
            owner: h.owner,
            amazon: false,
            default_version: h.default_version,
            summary: h.default_summary,
            tags: h.tags,
            target_type: h.target_type,
            display_name: h.display_name,
            created_date: h.created_date,
        }
    }

    fn identifier(&self) -> Value {
        let mut v = json!({
            "Name": self.name,
            "CreatedDate": self.created_date,
            "Owner": self.owner,
            "PlatformTypes": self.summary.platform_types,
            "DocumentVersion": self.default_version.to_string(),
            "DocumentType": self.document_type.as_str(),
            "SchemaVersion": self.summary.schema_version,
            "DocumentFormat": self.summary.format.as_str(),
            "Tags": to_list(&self.tags),
        });
        if let Some(vn) = &self.summary.version_name {
            v["VersionName"] = json!(vn);
        }
        if let Some(t) = &self.target_type {
            v["TargetType"] = json!(t);
        }
        if let Some(n) = &self.display_name {
            v["DisplayName"] = json!(n);
        }
        v
    }

    fn matches(&self, f: &Filter) -> bool {
        match f {
            Filter::Owner(vals) => vals.iter().any(|o| match o.as_str() {
                "Self" | "Private" => !self.amazon,
                "Amazon" | "Public" => self.amazon,
                "All" => true,
                other => other == self.owner,
            }),
            Filter::DocumentType(vals) => vals.iter().any(|t| t == self.document_type.as_str()),
            Filter::Name(vals) => vals.iter().any(|n| self.name.starts_with(n.as_str())),
            Filter::PlatformTypes(vals) => vals
                .iter()
                .any(|p| self.summary.platform_types.iter().any(|q| q == p)),
            Filter::SearchKeyword(vals) => {
                let lower = self.name.to_lowercase();
                vals.iter().any(|k| lower.contains(&k.to_lowercase()))
            }
            Filter::TargetType(vals) => self
                .target_type
                .as_ref()
                .is_some_and(|t| vals.iter().any(|v| v == t)),
            Filter::Tag(key, vals) => self
                .tags
                .get(key)
                .is_some_and(|v| vals.is_empty() || vals.contains(v)),
            Filter::TagKeys(keys) => keys.iter().all(|k| self.tags.contains_key(k)),
        }
    }
}

fn filter_of(key: &str, values: Vec<String>) -> Result<Filter, SsmError> {
    if let Some(tag) = key.strip_prefix("tag:") {
        if tag.is_empty() {
            return Err(SsmError::InvalidFilterKey(
                "A tag filter names its key: tag:<key>.".into(),
            ));
        }
        return Ok(Filter::Tag(tag.to_string(), values));
    }
    let needs_values = |f: Filter| -> Result<Filter, SsmError> {
        if values.is_empty() {
            Err(SsmError::InvalidFilterValue(format!(
                "Filter {key} needs at least one value."
            )))
        } else {
            Ok(f)
        }
    };
    match key.to_ascii_lowercase().as_str() {
        "owner" => needs_values(Filter::Owner(values.clone())),
        "documenttype" => needs_values(Filter::DocumentType(values.clone())),
        "name" => needs_values(Filter::Name(values.clone())),
        "platformtypes" => needs_values(Filter::PlatformTypes(values.clone())),
        "searchkeyword" => needs_values(Filter::SearchKeyword(values.clone())),
        "targettype" => needs_values(Filter::TargetType(values.clone())),
        "tagkeys" => needs_values(Filter::TagKeys(values.clone())),
        _ => Err(SsmError::InvalidFilterKey(format!(
            "Filter key {key} is not supported; use Owner, DocumentType, Name, PlatformTypes, SearchKeyword, TargetType, TagKeys or tag:<key>."
        ))),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    after: String,
}

fn decode_cursor<T: DeserializeOwned>(token: &str) -> Result<T, SsmError> {
    B64.decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(crate::paging::invalid_token)
}

fn encode_cursor<T: Serialize>(c: &T) -> String {
    B64.encode(serde_json::to_vec(c).unwrap_or_default())
}

pub(super) async fn list_documents(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: ListInput = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let mut filters = Vec::new();
    match (i.document_filter_list, i.filters) {
        (Some(_), Some(_)) => {
            return Err(SsmError::ValidationException(
                "Give DocumentFilterList or Filters, not both.".into(),
            ));
        }
        (Some(list), None) => {
            for f in list {
                filters.push(filter_of(&f.key, vec![f.value])?);
            }
        }
        (None, Some(list)) => {
            for f in list {
                filters.push(filter_of(&f.key, f.values)?);
            }
        }
        (None, None) => {}
    }
    let mut after: Option<String> = match &i.next_token {
        Some(t) => Some(decode_cursor::<ListCursor>(t)?.after),
        None => None,
    };
    let mut out: Vec<Value> = Vec::new();
    for _ in 0..MAX_PAGES {
        let (heads, more) = ctx.store.list(after.as_deref(), PAGE).await?;
        // The built-ins fall in name order between the stored pages.
        let upper = if more {
            heads.last().map(|h| h.name.clone())
        } else {
            None
        };
        let mut batch: Vec<Listed> = heads.into_iter().map(Listed::stored).collect();
        for b in builtin::ALL.iter() {
            let above = after.as_deref().is_none_or(|a| b.name > a);
            let below = upper.as_deref().is_none_or(|u| b.name <= u);
            if above && below {
                batch.push(Listed::builtin(b)?);
            }
        }
        batch.sort_by(|a, b| a.name.cmp(&b.name));
        let total = batch.len();
        for (idx, d) in batch.into_iter().enumerate() {
            if !filters.iter().all(|f| d.matches(f)) {
                continue;
            }
            out.push(d.identifier());
            if out.len() == limit {
                let rest = idx + 1 < total || more;
                let mut answer = json!({ "DocumentIdentifiers": out });
                if rest {
                    answer["NextToken"] = json!(encode_cursor(&ListCursor { after: d.name }));
                }
                return Ok(answer);
            }
        }
        match upper {
            Some(u) => after = Some(u),
            None => return Ok(json!({ "DocumentIdentifiers": out })),
        }
    }
    let mut answer = json!({ "DocumentIdentifiers": out });
    if let Some(a) = after {
        answer["NextToken"] = json!(encode_cursor(&ListCursor { after: a }));
    }
    Ok(answer)
}

// ----------------------------------------------------- ListDocumentVersions

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VersionsInput {
    name: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionsCursor {
    name: String,
    after: u64,
}

fn version_entry(name: &str, v: &StoredVersion, default: u64) -> Value {
    let mut out = json!({
        "Name": name,
        "DocumentVersion": v.version.to_string(),
        "CreatedDate": v.created_date,
        "IsDefaultVersion": v.version == default,
        "DocumentFormat": v.format.as_str(),
        "Status": "Active",
    });
    if let Some(vn) = &v.version_name {
        out["VersionName"] = json!(vn);
    }
    out
}

pub(super) async fn list_document_versions(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: VersionsInput = parse(body)?;
    let given = required(i.name, "name")?;
    let name = name_of(&given).to_string();
    ctx.caller
        .authorize("ssm:ListDocumentVersions", &document_arn(ctx.scope, &name))?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let after = match &i.next_token {
        Some(t) => {
            let c: VersionsCursor = decode_cursor(t)?;
            if c.name != name {
                return Err(crate::paging::invalid_token());
            }
            c.after
        }
        None => 0,
    };
    if let Some(b) = builtin::find(&name) {
        let v = StoredVersion {
            name: b.name.into(),
            version: 1,
            version_name: None,
            content: String::new(),
            format: b.format,
            hash: b.hash(),
            created_date: BUILTIN_CREATED,
        };
        let list = if after == 0 {
            vec![version_entry(b.name, &v, 1)]
        } else {
            vec![]
        };
        return Ok(json!({ "DocumentVersions": list }));
    }
    let head = ctx.store.head(&name).await?.ok_or_else(no_such_document)?;
    let (versions, more) = ctx.store.versions(&name, after, limit).await?;
    let list: Vec<Value> = versions
        .iter()
        .map(|v| version_entry(&name, v, head.default_version))
        .collect();
    let mut out = json!({ "DocumentVersions": list });
    if more && let Some(last) = versions.last() {
        out["NextToken"] = json!(encode_cursor(&VersionsCursor {
            name: name.clone(),
            after: last.version,
        }));
    }
    Ok(out)
}
