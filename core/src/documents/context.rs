//! What every document operation works with: the context, the helpers
//! several operations share, and the loading of a document's version
//! (built-in or stored) that the reads and SendCommand share.

use serde::Deserialize;
use serde_json::{Value, json};

use super::Document;
use super::builtin::{self, BuiltinDocument};
use super::document_type::{Content, DocumentType};
use super::format::{DocumentFormat, HASH_TYPE};
use super::store::{DocumentHead, DocumentStore, StoredVersion, VersionSummary};
use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::tags::{TagSet, to_list};

/// Conditional writes tried before answering TooManyUpdates.
pub(super) const ATTEMPTS: usize = 5;
/// CreatedDate of the built-in documents (they exist as long as Steward).
pub(super) const BUILTIN_CREATED: f64 = 1_704_067_200.0;

pub struct DocumentContext<'a> {
    pub store: &'a dyn DocumentStore,
    /// Who asks; every document touched is authorized by its ARN.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    /// Epoch seconds.
    pub now: f64,
}

pub(super) fn validation(value: impl std::fmt::Display, field: &str, constraint: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

pub(super) fn too_many_updates(name: &str) -> SsmError {
    SsmError::TooManyUpdates(format!(
        "Document {name} is being changed by other requests; try again."
    ))
}

pub(super) fn required(v: Option<String>, field: &str) -> Result<String, SsmError> {
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

pub(super) fn no_such_document() -> SsmError {
    SsmError::InvalidDocument("The specified document does not exist.".into())
}

pub(super) fn read_only(name: &str) -> SsmError {
    SsmError::InvalidDocumentOperation(format!(
        "Document {name} is owned by Amazon and cannot be changed or deleted; create your own document with CreateDocument."
    ))
}

/// ValidationException naming `field` and SSM's constraint unless `ok`.
pub(super) fn conform(
    ok: bool,
    value: &str,
    field: &str,
    constraint: &str,
) -> Result<(), SsmError> {
    if ok {
        Ok(())
    } else {
        Err(validation(value, field, constraint))
    }
}

pub(super) fn check_version_name(v: &str) -> Result<(), SsmError> {
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

pub(super) fn check_target_type(t: &str) -> Result<(), SsmError> {
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
pub(super) fn check_display_name(n: &str) -> Result<(), SsmError> {
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

pub(super) fn bad_version(v: &str) -> SsmError {
    validation(
        v,
        "documentVersion",
        "Member must satisfy regular expression pattern: ([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)",
    )
}

pub(super) fn missing_version(name: &str, what: &str) -> SsmError {
    SsmError::InvalidDocumentVersion(format!(
        "Document {name} has no version {what}. ListDocumentVersions shows its versions."
    ))
}

/// The version a request names by `DocumentVersion` and/or `VersionName`
/// (neither: the default).
pub(super) fn select(
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
pub(super) struct Shown {
    pub(super) name: String,
    pub(super) document_type: DocumentType,
    pub(super) owner: String,
    pub(super) version: u64,
    pub(super) version_name: Option<String>,
    pub(super) content: String,
    pub(super) format: DocumentFormat,
    pub(super) hash: String,
    pub(super) created_date: f64,
    pub(super) latest: u64,
    pub(super) default: u64,
    pub(super) tags: TagSet,
    pub(super) target_type: Option<String>,
    pub(super) display_name: Option<String>,
}

impl Shown {
    pub(super) fn builtin(b: &BuiltinDocument) -> Self {
        Shown {
            name: b.name.into(),
            document_type: b.document_type,
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

    pub(super) fn stored(head: &DocumentHead, v: StoredVersion) -> Self {
        Shown {
            name: head.name.clone(),
            document_type: DocumentType::stored(&head.document_type),
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

    pub(super) fn content(&self) -> Result<Content, SsmError> {
        Content::parse(self.document_type, &self.content, self.format)
    }

    /// SSM's `DocumentDescription`.
    pub(super) fn description(&self) -> Result<Value, SsmError> {
        let d = self.content()?;
        let params: Vec<Value> = d
            .parameters()
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
            "Description": d.description(),
            "Parameters": params,
            "PlatformTypes": d.platform_types(),
            "DocumentType": self.document_type.as_str(),
            "SchemaVersion": d.schema_version(),
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
    let document = match shown.content()? {
        Content::Command(d) => d,
        Content::Automation(_) => {
            return Err(SsmError::InvalidDocument(format!(
                "Document {} is an Automation runbook: start it with StartAutomationExecution (steward automation start), not SendCommand.",
                shown.name
            )));
        }
        Content::Session(_) => {
            return Err(SsmError::InvalidDocument(format!(
                "Document {} is a Session document: start it with StartSession (steward session start), not SendCommand.",
                shown.name
            )));
        }
    };
    Ok(Runnable {
        document,
        name: shown.name,
        version: shown.version,
        hash: shown.hash,
    })
}

/// A runbook as StartAutomationExecution runs it.
pub struct RunnableRunbook {
    pub name: String,
    pub version: u64,
    pub runbook: crate::automation::Runbook,
}

/// The runbook `DocumentName` and `DocumentVersion` name, with
/// StartAutomationExecution's errors.
pub async fn load_runbook(
    store: &dyn DocumentStore,
    name: &str,
    version: Option<&str>,
) -> Result<RunnableRunbook, SsmError> {
    let shown = load(store, name, version, None).await.map_err(|e| match e {
        SsmError::InvalidDocument(_) => SsmError::AutomationDefinitionNotFoundException(format!(
            "Automation definition {name} does not exist; create it with CreateDocument and DocumentType Automation."
        )),
        SsmError::InvalidDocumentVersion(m) => {
            SsmError::AutomationDefinitionVersionNotFoundException(m)
        }
        other => other,
    })?;
    match shown.content()? {
        Content::Automation(runbook) => Ok(RunnableRunbook {
            name: shown.name,
            version: shown.version,
            runbook,
        }),
        Content::Command(_) => Err(SsmError::AutomationDefinitionNotFoundException(format!(
            "Document {} is a Command document, not an Automation runbook: run it with SendCommand.",
            shown.name
        ))),
        Content::Session(_) => Err(SsmError::AutomationDefinitionNotFoundException(format!(
            "Document {} is a Session document, not an Automation runbook: start it with StartSession.",
            shown.name
        ))),
    }
}

pub(super) async fn load(
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

pub(super) fn summary(
    d: &Content,
    version_name: Option<String>,
    format: DocumentFormat,
) -> VersionSummary {
    VersionSummary {
        version_name,
        schema_version: d.schema_version().into(),
        format,
        platform_types: d.platform_types().iter().map(|s| s.to_string()).collect(),
    }
}

pub(super) fn refuse_unsupported(
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

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct ReadInput {
    pub(super) name: Option<String>,
    pub(super) document_version: Option<String>,
    pub(super) version_name: Option<String>,
    pub(super) document_format: Option<String>,
}

pub(super) async fn read(
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
