//! The API's document operations by name: CreateDocument, UpdateDocument,
//! DescribeDocument, GetDocument, ListDocuments, ListDocumentVersions,
//! UpdateDocumentDefaultVersion, DeleteDocument. Each takes SSM's request
//! body and answers SSM's response body. Built-in documents come from
//! [`super::builtin`] and are read-only; the others from the
//! [`DocumentStore`](super::store::DocumentStore).

use super::context::DocumentContext;
use serde_json::Value;

use super::{create, delete, describe, listing, update};
use crate::error::SsmError;

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
        "CreateDocument" => create::create_document(ctx, body).await,
        "UpdateDocument" => update::update_document(ctx, body).await,
        "DescribeDocument" => describe::describe_document(ctx, body).await,
        "GetDocument" => describe::get_document(ctx, body).await,
        "ListDocuments" => listing::list_documents(ctx, body).await,
        "ListDocumentVersions" => listing::list_document_versions(ctx, body).await,
        "UpdateDocumentDefaultVersion" => update::update_default_version(ctx, body).await,
        "DeleteDocument" => delete::delete_document(ctx, body).await,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "operations_tests.rs"]
mod tests;
