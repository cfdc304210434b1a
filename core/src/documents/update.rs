//! UpdateDocument (a new latest version) and UpdateDocumentDefaultVersion.

use serde::Deserialize;
use serde_json::{Value, json};

use super::builtin;
use super::context::{
    ATTEMPTS, DocumentContext, Shown, VersionRef, check_display_name, check_target_type,
    check_version_name, document_arn, missing_version, name_of, no_such_document, read_only,
    refuse_unsupported, required, summary, too_many_updates, validation,
};
use super::document_type::{Content, DocumentType};
use super::format::{DocumentFormat, check_size, content_hash};
use super::store::{MAX_VERSIONS, StoredVersion};
use crate::error::SsmError;
use crate::error::parse_request as parse;

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

pub(super) async fn update_document(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
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
    // A document keeps its type: the new content is read as the type the
    // document was created with.
    let head = ctx.store.head(&name).await?.ok_or_else(no_such_document)?;
    Content::parse(DocumentType::stored(&head.document_type), &content, format)?;
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

// --------------------------------------------- UpdateDocumentDefaultVersion

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DefaultInput {
    name: Option<String>,
    document_version: Option<String>,
}

pub(super) async fn update_default_version(
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
        let doc = Content::parse(
            DocumentType::stored(&head.document_type),
            &version.content,
            version.format,
        )?;
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
