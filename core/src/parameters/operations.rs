//! The API's Parameter Store operations by name. Each takes SSM's request
//! body and answers SSM's response body.

use serde_json::Value;

use super::context::ParameterContext;
use super::{delete, get, history, labeling, listing, put, tagging};
use crate::error::SsmError;

/// The tagging operations are shared with managed nodes: they are Parameter
/// Store's when the request's `ResourceType` is `Parameter`.
pub fn claims(op: &str, body: &Value) -> bool {
    match op {
        "AddTagsToResource" | "RemoveTagsFromResource" | "ListTagsForResource" => {
            body.get("ResourceType").and_then(Value::as_str) == Some("Parameter")
        }
        _ => OPERATIONS.contains(&op),
    }
}

pub const OPERATIONS: [&str; 10] = [
    "PutParameter",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "DescribeParameters",
    "GetParameterHistory",
    "LabelParameterVersion",
    "UnlabelParameterVersion",
    "DeleteParameter",
    "DeleteParameters",
];

/// `None`: not a Parameter Store operation (see [`claims`]).
pub async fn handle(
    ctx: &ParameterContext<'_>,
    op: &str,
    body: &Value,
) -> Option<Result<Value, SsmError>> {
    if !claims(op, body) {
        return None;
    }
    Some(match op {
        "PutParameter" => put::put_parameter(ctx, body).await,
        "GetParameter" => get::get_parameter(ctx, body).await,
        "GetParameters" => get::get_parameters(ctx, body).await,
        "GetParametersByPath" => listing::get_parameters_by_path(ctx, body).await,
        "DescribeParameters" => listing::describe_parameters(ctx, body).await,
        "GetParameterHistory" => history::get_parameter_history(ctx, body).await,
        "LabelParameterVersion" => labeling::label_parameter_version(ctx, body).await,
        "UnlabelParameterVersion" => labeling::unlabel_parameter_version(ctx, body).await,
        "DeleteParameter" => delete::delete_parameter(ctx, body).await,
        "DeleteParameters" => delete::delete_parameters(ctx, body).await,
        "AddTagsToResource" => tagging::add_tags(ctx, body).await,
        "RemoveTagsFromResource" => tagging::remove_tags(ctx, body).await,
        "ListTagsForResource" => tagging::list_tags(ctx, body).await,
        _ => return None,
    })
}
