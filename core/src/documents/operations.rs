//! The API's document operations by name: CreateDocument, UpdateDocument,
//! DescribeDocument, GetDocument, ListDocuments, ListDocumentVersions,
//! UpdateDocumentDefaultVersion, DeleteDocument. Each takes SSM's request
//! body and answers SSM's response body. Built-in documents come from
//! [`super::builtin`] and are read-only; the others from the [`DocumentStore`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::builtin::{self, BuiltinDocument};
use super::format::{DocumentFormat, HASH_TYPE, check_size, content_hash};
use super::store::{DocumentHead, DocumentStore, MAX_VERSIONS, StoredVersion, VersionSummary};
use super::{Document, check_new_document_name};
use crate::error::SsmError;
use crate::fleet::access::Authorizer;
use crate::fleet::paging::max_results;
use crate::fleet::tags::{Tag, TagSet, to_list, validate_tags};
use crate::parameters::name::ArnScope;

/// The only document type Steward stores and runs.
pub const COMMAND: &str = "Command";
/// Conditional writes tried before answering TooManyUpdates.
const ATTEMPTS: usize = 5;
/// How many store pages one ListDocuments call reads at most.
const MAX_PAGES: usize = 10;
const PAGE: usize = 50;
/// CreatedDate of the built-in documents (they exist as long as Steward).
const BUILTIN_CREATED: f64 = 1_704_067_200.0;

pub struct DocumentContext<'a> {
    pub store: &'a dyn DocumentStore,
    /// Who asks; every document touched is authorized by its ARN.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    /// Epoch seconds.
    pub now: f64,
}

pub const OPERATIONS: [&str; 8] = [
    "CreateDocument",
    "UpdateDocument",
    "DescribeDocument",
    "GetDocument",
    "ListDocuments",
    "ListDocumentVersions",
    "UpdateDocumentDefaultVersion",
    "DeleteDocument",
];

use super::tagging;

/// Tagging is the documents' when it names a `Document`.
const TAGGING: [&str; 3] = [
    "AddTagsToResource",
    "RemoveTagsFromResource",
    "ListTagsForResource",
];

/// Whether `op` with this body is the documents' to answer.
pub fn serves(op: &str, body: &Value) -> bool {
    OPERATIONS.contains(&op)
        || (TAGGING.contains(&op)
            && body.get("ResourceType").and_then(Value::as_str) == Some(tagging::DOCUMENT_RESOURCE))
}

/// `None`: not a document operation.
pub async fn handle(
    ctx: &DocumentContext<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    if !serves(op, body) {
        return None;
    }
    Some(match op {
        "AddTagsToResource" => tagging::add_tags(ctx, body).await,
        "RemoveTagsFromResource" => tagging::remove_tags(ctx, body).await,
        "ListTagsForResource" => tagging::list_tags(ctx, body).await,
        "CreateDocument" => create_document(ctx, body).await,
        "UpdateDocument" => update_document(ctx, body).await,
        "DescribeDocument" => describe_document(ctx, body).await,
        "GetDocument" => get_document(ctx, body).await,
        "ListDocuments" => list_documents(ctx, body).await,
        "ListDocumentVersions" => list_document_versions(ctx, body).await,
        "UpdateDocumentDefaultVersion" => update_default_version(ctx, body).await,
        "DeleteDocument" => delete_document(ctx, body).await,
        _ => return None,
    })
}

// ------------------------------------------------------------------ helpers

use crate::error::parse_request as parse;

fn validation(value: impl std::fmt::Display, field: &str, constraint: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

fn too_many_updates(name: &str) -> SsmError {
    SsmError::TooManyUpdates(format!(
        "Document {name} is being changed by other requests; try again."
    ))
}

fn required(v: Option<String>, field: &str) -> Result<String, SsmError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(validation("null", field, "Member must not be null")),
    }
}

/// The ARN a document is authorized by: the account's own documents have
/// the account in it, Amazon's have none (as SSM writes them).
pub fn document_arn(scope: &ArnScope, name: &str) -> String {
    let account = if builtin::find(name).is_some() {
        ""
    } else {
        scope.account.as_str()
    };
    format!("arn:aws:ssm:{}:{account}:document/{name}", scope.region)
}

/// `Name` as requests give it: a name, or an ARN whose last part names it.
pub fn name_of(given: &str) -> &str {
    if given.starts_with("arn:") {
        given
            .rsplit_once(":document/")
            .map(|(_, n)| n)
            .unwrap_or(given)
    } else {
        given
    }
}

fn no_such_document() -> SsmError {
    SsmError::InvalidDocument("The specified document does not exist.".into())
}

fn read_only(name: &str) -> SsmError {
    SsmError::InvalidDocumentOperation(format!(
        "Document {name} is owned by Amazon and cannot be changed or deleted; create your own document with CreateDocument."
    ))
}

/// ValidationException naming `field` and SSM's constraint unless `ok`.
fn conform(ok: bool, value: &str, field: &str, constraint: &str) -> Result<(), SsmError> {
    if ok {
        Ok(())
    } else {
        Err(validation(value, field, constraint))
    }
}

fn check_version_name(v: &str) -> Result<(), SsmError> {
    let ok = (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    conform(
        ok,
        v,
        "versionName",
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{1,128}$",
    )
}

fn check_target_type(t: &str) -> Result<(), SsmError> {
    let ok = t.len() <= 200
        && t.starts_with('/')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':' | b'/'));
    conform(
        ok,
        t,
        "targetType",
        "Member must satisfy regular expression pattern: ^\\/[\\w\\.\\-\\:\\/]*$",
    )
}

/// SSM's DisplayName: up to 1024 of word characters, `. - : /` and spaces.
fn check_display_name(n: &str) -> Result<(), SsmError> {
    let ok = n.chars().count() <= 1024
        && n.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/' | ' '));
    conform(
        ok,
        n,
        "displayName",
        "Member must satisfy regular expression pattern: ^[\\w\\.\\-\\:\\/ ]*$ and have length less than or equal to 1024",
    )
}

/// `DocumentVersion` in a request: `$LATEST`, `$DEFAULT` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Latest,
    Default,
    Number(u64),
}

impl VersionRef {
    pub fn parse(v: &str) -> Result<Self, SsmError> {
        match v {
            "$LATEST" => Ok(VersionRef::Latest),
            "$DEFAULT" => Ok(VersionRef::Default),
            n if !n.starts_with('0') && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse()
                .map(VersionRef::Number)
                .map_err(|_| bad_version(v)),
            _ => Err(bad_version(v)),
        }
    }
}

fn bad_version(v: &str) -> SsmError {
    validation(
        v,
        "documentVersion",
        "Member must satisfy regular expression pattern: ([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)",
    )
}

fn missing_version(name: &str, what: &str) -> SsmError {
    SsmError::InvalidDocumentVersion(format!(
        "Document {name} has no version {what}. ListDocumentVersions shows its versions."
    ))
}

/// The version a request names by `DocumentVersion` and/or `VersionName`
/// (neither: the default).
fn select(
    head: &DocumentHead,
    version: Option<&str>,
    version_name: Option<&str>,
) -> Result<u64, SsmError> {
    let by_number = version
        .map(VersionRef::parse)
        .transpose()?
        .map(|r| match r {
            VersionRef::Latest => head.latest_version,
            VersionRef::Default => head.default_version,
            VersionRef::Number(n) => n,
        });
    let by_name = match version_name {
        Some(vn) => Some(
            *head
                .version_names
                .get(vn)
                .ok_or_else(|| missing_version(&head.name, &format!("named {vn}")))?,
        ),
        None => None,
    };
    match (by_number, by_name) {
        (Some(a), Some(b)) if a != b => Err(SsmError::InvalidDocumentVersion(format!(
            "Version {a} of document {} is not named {}; give DocumentVersion or VersionName alone, or a matching pair.",
            head.name,
            version_name.unwrap_or_default()
        ))),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b),
        (None, None) => Ok(head.default_version),
    }
}

/// One version of one document, built-in or stored, as the read operations
/// show it.
struct Shown {
    name: String,
    owner: String,
    version: u64,
    version_name: Option<String>,
    content: String,
    format: DocumentFormat,
    hash: String,
    created_date: f64,
    latest: u64,
    default: u64,
    tags: TagSet,
    target_type: Option<String>,
    display_name: Option<String>,
}

impl Shown {
    fn builtin(b: &BuiltinDocument) -> Self {
        Shown {
            name: b.name.into(),
            owner: b.owner().into(),
            version: 1,
            version_name: None,
            content: b.content.into(),
            format: b.format,
            hash: b.hash(),
            created_date: BUILTIN_CREATED,
            latest: 1,
            default: 1,
            tags: TagSet::new(),
            target_type: None,
            display_name: None,
        }
    }

    fn stored(head: &DocumentHead, v: StoredVersion) -> Self {
        Shown {
            name: head.name.clone(),
            owner: head.owner.clone(),
            version: v.version,
            version_name: v.version_name,
            content: v.content,
            format: v.format,
            hash: v.hash,
            created_date: v.created_date,
            latest: head.latest_version,
            default: head.default_version,
            tags: head.tags.clone(),
            target_type: head.target_type.clone(),
            display_name: head.display_name.clone(),
        }
    }

    fn document(&self) -> Result<Document, SsmError> {
        Document::parse(&self.content, self.format)
    }

    /// SSM's `DocumentDescription`.
    fn description(&self) -> Result<Value, SsmError> {
        let d = self.document()?;
        let params: Vec<Value> = d
            .parameters
            .iter()
            .map(|p| {
                let mut v = json!({
                    "Name": p.name,
                    "Type": p.parameter_type.as_str(),
                    "Description": p.description,
                });
                if let Some(def) = &p.default {
                    v["DefaultValue"] = Value::String(def.to_text());
                }
                v
            })
            .collect();
        let mut out = json!({
            "Hash": self.hash,
            "HashType": HASH_TYPE,
            "Name": self.name,
            "Owner": self.owner,
            "CreatedDate": self.created_date,
            "Status": "Active",
            "DocumentVersion": self.version.to_string(),
            "Description": d.description,
            "Parameters": params,
            "PlatformTypes": d.platform_types(),
            "DocumentType": COMMAND,
            "SchemaVersion": d.schema_version.as_str(),
            "LatestVersion": self.latest.to_string(),
            "DefaultVersion": self.default.to_string(),
            "DocumentFormat": self.format.as_str(),
            "Tags": to_list(&self.tags),
        });
        if let Some(vn) = &self.version_name {
            out["VersionName"] = json!(vn);
        }
        if let Some(t) = &self.target_type {
            out["TargetType"] = json!(t);
        }
        if let Some(n) = &self.display_name {
            out["DisplayName"] = json!(n);
        }
        Ok(out)
    }
}

/// A document as SendCommand runs it.
pub struct Runnable {
    pub name: String,
    pub version: u64,
    pub hash: String,
    pub document: Document,
}

/// The document `DocumentName` and `DocumentVersion` of a SendCommand name:
/// a built-in or a stored document, by name or ARN.
pub async fn load_for_run(
    store: &dyn DocumentStore,
    name: &str,
    version: Option<&str>,
) -> Result<Runnable, SsmError> {
    let shown = load(store, name, version, None).await?;
    Ok(Runnable {
        document: shown.document()?,
        name: shown.name,
        version: shown.version,
        hash: shown.hash,
    })
}

async fn load(
    store: &dyn DocumentStore,
    given: &str,
    version: Option<&str>,
    version_name: Option<&str>,
) -> Result<Shown, SsmError> {
    let name = name_of(given);
    if let Some(b) = builtin::find(name) {
        if let Some(v) = version
            && !matches!(
                VersionRef::parse(v)?,
                VersionRef::Latest | VersionRef::Default | VersionRef::Number(1)
            )
        {
            return Err(missing_version(b.name, v));
        }
        if let Some(vn) = version_name {
            return Err(missing_version(b.name, &format!("named {vn}")));
        }
        return Ok(Shown::builtin(b));
    }
    let head = store.head(name).await?.ok_or_else(no_such_document)?;
    let n = select(&head, version, version_name)?;
    let v = store
        .version(name, n)
        .await?
        .ok_or_else(|| missing_version(name, &n.to_string()))?;
    Ok(Shown::stored(&head, v))
}

fn summary(d: &Document, version_name: Option<String>, format: DocumentFormat) -> VersionSummary {
    VersionSummary {
        version_name,
        schema_version: d.schema_version.as_str().into(),
        format,
        platform_types: d.platform_types().iter().map(|s| s.to_string()).collect(),
    }
}

// ----------------------------------------------------------- CreateDocument

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateInput {
    content: Option<String>,
    name: Option<String>,
    document_type: Option<String>,
    document_format: Option<String>,
    version_name: Option<String>,
    target_type: Option<String>,
    tags: Vec<Tag>,
    display_name: Option<String>,
    requires: Option<Value>,
    attachments: Option<Value>,
}

fn check_document_type(t: Option<&str>) -> Result<(), SsmError> {
    match t {
        None | Some(COMMAND) => Ok(()),
        Some(other) => Err(SsmError::InvalidDocumentContent(format!(
            "DocumentType {other} is not supported: Steward stores and runs Command documents only. Give DocumentType Command."
        ))),
    }
}

fn refuse_unsupported(
    requires: &Option<Value>,
    attachments: &Option<Value>,
) -> Result<(), SsmError> {
    if requires.is_some() || attachments.is_some() {
        return Err(SsmError::ValidationException(
            "Requires and Attachments are not supported by Steward: put what the document needs in its steps.".into(),
        ));
    }
    Ok(())
}

async fn create_document(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: CreateInput = parse(body)?;
    let name = required(i.name, "name")?;
    let content = required(i.content, "content")?;
    check_new_document_name(&name)?;
    ctx.caller
        .authorize("ssm:CreateDocument", &document_arn(ctx.scope, &name))?;
    check_document_type(i.document_type.as_deref())?;
    refuse_unsupported(&i.requires, &i.attachments)?;
    if let Some(n) = &i.display_name {
        check_display_name(n)?;
    }
    if let Some(vn) = &i.version_name {
        check_version_name(vn)?;
    }
    if let Some(t) = &i.target_type {
        check_target_type(t)?;
    }
    let tags = validate_tags(&i.tags)?;
    let format = DocumentFormat::from_wire(i.document_format.as_deref())?;
    check_size(&content)?;
    let doc = Document::parse(&content, format)?;
    if builtin::find(&name).is_some() || ctx.store.head(&name).await?.is_some() {
        return Err(already_exists());
    }
    let version = StoredVersion {
        name: name.clone(),
        version: 1,
        version_name: i.version_name.clone(),
        hash: content_hash(&content),
        content,
        format,
        created_date: ctx.now,
    };
    let head = DocumentHead {
        name: name.clone(),
        document_type: COMMAND.into(),
        owner: ctx.scope.account.clone(),
        created_date: ctx.now,
        latest_version: 1,
        default_version: 1,
        last_number: 1,
        version_count: 1,
        version_names: i.version_name.iter().map(|v| (v.clone(), 1)).collect(),
        default_summary: summary(&doc, i.version_name, format),
        tags,
        target_type: i.target_type,
        display_name: i.display_name,
        revision: 1,
    };
    if !ctx.store.put_version(&head, None, &version).await? {
        return Err(already_exists());
    }
    tracing::info!(document = %name, version = 1, "document created");
    let shown = Shown::stored(&head, version);
    Ok(json!({ "DocumentDescription": shown.description()? }))
}

fn already_exists() -> SsmError {
    SsmError::DocumentAlreadyExists("The specified document already exists.".into())
}

// ----------------------------------------------------------- UpdateDocument

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateInput {
    content: Option<String>,
    name: Option<String>,
    document_version: Option<String>,
    document_format: Option<String>,
    version_name: Option<String>,
    target_type: Option<String>,
    display_name: Option<String>,
    attachments: Option<Value>,
}

async fn update_document(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: UpdateInput = parse(body)?;
    let given = required(i.name, "name")?;
    let name = name_of(&given).to_string();
    let content = required(i.content, "content")?;
    ctx.caller
        .authorize("ssm:UpdateDocument", &document_arn(ctx.scope, &name))?;
    if builtin::find(&name).is_some() {
        return Err(read_only(&name));
    }
    refuse_unsupported(&None, &i.attachments)?;
    if let Some(n) = &i.display_name {
        check_display_name(n)?;
    }
    let wanted = i
        .document_version
        .as_deref()
        .map(VersionRef::parse)
        .transpose()?;
    if let Some(vn) = &i.version_name {
        check_version_name(vn)?;
    }
    if let Some(t) = &i.target_type {
        check_target_type(t)?;
    }
    let format = DocumentFormat::from_wire(i.document_format.as_deref())?;
    check_size(&content)?;
    Document::parse(&content, format)?;
    let hash = content_hash(&content);
    for _ in 0..ATTEMPTS {
        let head = ctx.store.head(&name).await?.ok_or_else(no_such_document)?;
        // SSM updates only the latest version.
        match wanted {
            None | Some(VersionRef::Latest) => {}
            Some(VersionRef::Number(n)) if n == head.latest_version => {}
            Some(_) => {
                return Err(SsmError::InvalidDocumentVersion(
                    "The document version is not valid or does not exist.".into(),
                ));
            }
        }
        let latest = ctx.store.version(&name, head.latest_version).await?;
        if latest.is_some_and(|l| l.hash == hash) {
            return Err(SsmError::DuplicateDocumentContent(
                "The content of the association document matches another document. Change the content of the document and try again.".into(),
            ));
        }
        if let Some(vn) = &i.version_name
            && head.version_names.contains_key(vn)
        {
            return Err(SsmError::DuplicateDocumentVersionName(
                "The specified version name is a duplicate.".into(),
            ));
        }
        if head.version_count >= MAX_VERSIONS {
            return Err(SsmError::DocumentVersionLimitExceeded(format!(
                "Document {name} has {MAX_VERSIONS} versions, the limit. Delete old versions with DeleteDocument and DocumentVersion."
            )));
        }
        let number = head.last_number + 1;
        let version = StoredVersion {
            name: name.clone(),
            version: number,
            version_name: i.version_name.clone(),
            content: content.clone(),
            format,
            hash: hash.clone(),
            created_date: ctx.now,
        };
        let mut next = head.clone();
        next.latest_version = number;
        next.last_number = number;
        next.version_count += 1;
        if let Some(vn) = &i.version_name {
            next.version_names.insert(vn.clone(), number);
        }
        if i.target_type.is_some() {
            next.target_type = i.target_type.clone();
        }
        if i.display_name.is_some() {
            next.display_name = i.display_name.clone();
        }
        next.revision += 1;
        if ctx
            .store
            .put_version(&next, Some(head.revision), &version)
            .await?
        {
            tracing::info!(document = %name, version = number, "document version created");
            let shown = Shown::stored(&next, version);
            return Ok(json!({ "DocumentDescription": shown.description()? }));
        }
    }
    Err(too_many_updates(&name))
}

// ------------------------------------------- DescribeDocument, GetDocument

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ReadInput {
    name: Option<String>,
    document_version: Option<String>,
    version_name: Option<String>,
    document_format: Option<String>,
}

async fn read(
    ctx: &DocumentContext<'_>,
    op: &str,
    body: &Value,
) -> Result<(Shown, ReadInput), SsmError> {
    let i: ReadInput = parse(body)?;
    let given = required(i.name.clone(), "name")?;
    let name = name_of(&given);
    ctx.caller
        .authorize(&format!("ssm:{op}"), &document_arn(ctx.scope, name))?;
    let shown = load(
        ctx.store,
        name,
        i.document_version.as_deref(),
        i.version_name.as_deref(),
    )
    .await?;
    Ok((shown, i))
}

async fn describe_document(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let (shown, _) = read(ctx, "DescribeDocument", body).await?;
    Ok(json!({ "Document": shown.description()? }))
}

async fn get_document(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let (shown, i) = read(ctx, "GetDocument", body).await?;
    // SSM answers JSON unless another format is asked for, whatever the
    // document was written in; the content is kept as written when it is
    // already in the format asked for.
    let to = DocumentFormat::from_wire(Some(i.document_format.as_deref().unwrap_or("JSON")))?;
    let (content, format) = if to == shown.format {
        (shown.content.clone(), shown.format)
    } else {
        (
            DocumentFormat::convert(&shown.content, shown.format, to)?,
            to,
        )
    };
    let mut out = json!({
        "Name": shown.name,
        "CreatedDate": shown.created_date,
        "DocumentVersion": shown.version.to_string(),
        "Status": "Active",
        "Content": content,
        "DocumentType": COMMAND,
        "DocumentFormat": format.as_str(),
    });
    if let Some(vn) = &shown.version_name {
        out["VersionName"] = json!(vn);
    }
    Ok(out)
}

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
        let d = b.document()?;
        Ok(Listed {
            name: b.name.into(),
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
            "DocumentType": COMMAND,
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
            Filter::DocumentType(vals) => vals.iter().any(|t| t == COMMAND),
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
        .ok_or_else(crate::fleet::paging::invalid_token)
}

fn encode_cursor<T: Serialize>(c: &T) -> String {
    B64.encode(serde_json::to_vec(c).unwrap_or_default())
}

async fn list_documents(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
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

async fn list_document_versions(
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
                return Err(crate::fleet::paging::invalid_token());
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

// --------------------------------------------- UpdateDocumentDefaultVersion

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DefaultInput {
    name: Option<String>,
    document_version: Option<String>,
}

async fn update_default_version(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: DefaultInput = parse(body)?;
    let given = required(i.name, "name")?;
    let name = name_of(&given).to_string();
    let v = required(i.document_version, "documentVersion")?;
    let number = match VersionRef::parse(&v)? {
        VersionRef::Number(n) => n,
        _ => {
            return Err(validation(
                &v,
                "documentVersion",
                "Member must satisfy regular expression pattern: (^[1-9][0-9]*$)",
            ));
        }
    };
    ctx.caller.authorize(
        "ssm:UpdateDocumentDefaultVersion",
        &document_arn(ctx.scope, &name),
    )?;
    if builtin::find(&name).is_some() {
        return Err(read_only(&name));
    }
    for _ in 0..ATTEMPTS {
        let head = ctx.store.head(&name).await?.ok_or_else(no_such_document)?;
        let version = ctx
            .store
            .version(&name, number)
            .await?
            .ok_or_else(|| missing_version(&name, &number.to_string()))?;
        let doc = Document::parse(&version.content, version.format)?;
        let mut next = head.clone();
        next.default_version = number;
        next.default_summary = summary(&doc, version.version_name.clone(), version.format);
        next.revision += 1;
        if head.default_version == number || ctx.store.update_head(&next, head.revision).await? {
            tracing::info!(document = %name, version = number, "default version set");
            let mut d = json!({ "Name": name, "DefaultVersion": number.to_string() });
            if let Some(vn) = &version.version_name {
                d["DefaultVersionName"] = json!(vn);
            }
            return Ok(json!({ "Description": d }));
        }
    }
    Err(too_many_updates(&name))
}

// ----------------------------------------------------------- DeleteDocument

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DeleteInput {
    name: Option<String>,
    document_version: Option<String>,
    version_name: Option<String>,
    force: Option<bool>,
}

async fn delete_document(ctx: &DocumentContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: DeleteInput = parse(body)?;
    let given = required(i.name, "name")?;
    let name = name_of(&given).to_string();
    ctx.caller
        .authorize("ssm:DeleteDocument", &document_arn(ctx.scope, &name))?;
    if builtin::find(&name).is_some() {
        return Err(read_only(&name));
    }
    // No associations exist in Steward: Force changes nothing.
    let _ = i.force;
    let one = i.document_version.is_some() || i.version_name.is_some();
    for _ in 0..ATTEMPTS {
        let head = ctx.store.head(&name).await?.ok_or_else(no_such_document)?;
        if !one {
            if ctx.store.delete(&head, head.revision).await? {
                tracing::info!(document = %name, "document deleted");
                return Ok(json!({}));
            }
            continue;
        }
        let v = select(
            &head,
            i.document_version.as_deref(),
            i.version_name.as_deref(),
        )?;
        if ctx.store.version(&name, v).await?.is_none() {
            return Err(missing_version(&name, &v.to_string()));
        }
        if v == head.default_version {
            return Err(SsmError::InvalidDocumentOperation(
                "Default version of the document can't be deleted.".into(),
            ));
        }
        let mut next = head.clone();
        if v == head.latest_version {
            next.latest_version = ctx
                .store
                .version_before(&name, v)
                .await?
                .unwrap_or(head.default_version);
        }
        next.version_names.retain(|_, n| *n != v);
        next.version_count = next.version_count.saturating_sub(1);
        next.revision += 1;
        if ctx.store.delete_version(&next, head.revision, v).await? {
            tracing::info!(document = %name, version = v, "document version deleted");
            return Ok(json!({}));
        }
    }
    Err(too_many_updates(&name))
}

#[cfg(test)]
#[path = "operations_tests.rs"]
mod tests;
