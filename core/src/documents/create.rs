//! CreateDocument: a new document's first version.

use serde::Deserialize;
use serde_json::{Value, json};

use super::builtin;
use super::check_new_document_name;
use super::context::{
    DocumentContext, Shown, check_display_name, check_target_type, check_version_name,
    document_arn, refuse_unsupported, required, summary,
};
use super::document_type::{Content, DocumentType};
use super::format::{DocumentFormat, check_size, content_hash};
use super::store::{DocumentHead, StoredVersion};
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::tags::{Tag, validate_tags};

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

pub(super) async fn create_document(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: CreateInput = parse(body)?;
    let name = required(i.name, "name")?;
    let content = required(i.content, "content")?;
    check_new_document_name(&name)?;
    ctx.caller
        .authorize("ssm:CreateDocument", &document_arn(ctx.scope, &name))?;
    let document_type = DocumentType::from_wire(i.document_type.as_deref())?;
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
    let doc = Content::parse(document_type, &content, format)?;
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
        document_type: document_type.as_str().into(),
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
