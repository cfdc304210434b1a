//! DeleteDocument: the whole document, or one version of it.

use serde::Deserialize;
use serde_json::{Value, json};

use super::builtin;
use super::context::{
    ATTEMPTS, DocumentContext, document_arn, missing_version, name_of, no_such_document, read_only,
    required, select, too_many_updates,
};
use crate::error::SsmError;
use crate::error::parse_request as parse;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DeleteInput {
    name: Option<String>,
    document_version: Option<String>,
    version_name: Option<String>,
    force: Option<bool>,
}

pub(super) async fn delete_document(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
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
