//! DescribeDocument and GetDocument: one version of a document, built-in or
//! stored.

use serde_json::{Value, json};

use super::context::{DocumentContext, read};
use super::format::DocumentFormat;
use crate::error::SsmError;

pub(super) async fn describe_document(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let (shown, _) = read(ctx, "DescribeDocument", body).await?;
    Ok(json!({ "Document": shown.description()? }))
}

pub(super) async fn get_document(
    ctx: &DocumentContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
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
        "DocumentType": shown.document_type.as_str(),
        "DocumentFormat": format.as_str(),
    });
    if let Some(vn) = &shown.version_name {
        out["VersionName"] = json!(vn);
    }
    Ok(out)
}
