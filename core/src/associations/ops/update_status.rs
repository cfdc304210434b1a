//! UpdateAssociationStatus: records a node's status for the association
//! of Name and InstanceId, as given, and answers the association.

use serde::Deserialize;
use serde_json::{Value, json};

use super::required;
use crate::associations::context::{ATTEMPTS, AssociationContext, find, too_many_updates};
use crate::associations::model::InstanceStatus;
use crate::error::SsmError;
use crate::error::parse_request as parse;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Status {
    date: Option<f64>,
    name: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    name: Option<String>,
    instance_id: Option<String>,
    association_status: Option<Status>,
}

pub(crate) async fn update_status(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: Input = parse(body)?;
    let name = required(&i.name, "name")?;
    let instance_id = required(&i.instance_id, "instanceId")?;
    let Some(status) = i.association_status else {
        return Err(SsmError::ValidationException(
            "1 validation error detected: Value null at 'associationStatus' failed to satisfy constraint: Member must not be null".into(),
        ));
    };
    let state = required(&status.name, "associationStatus.name")?.to_string();
    if !["Pending", "Success", "Failed"].contains(&state.as_str()) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{state}' at 'associationStatus.name' failed to satisfy constraint: Member must satisfy enum value set: [Pending, Success, Failed]"
        )));
    }
    let message = required(&status.message, "associationStatus.message")?.to_string();
    if message.chars().count() > 1024 {
        return Err(SsmError::ValidationException(
            "1 validation error detected: Value at 'associationStatus.message' failed to satisfy constraint: Member must have length less than or equal to 1024".into(),
        ));
    }
    let date = status.date.unwrap_or(ctx.now);
    let mut head = find(ctx, None, Some(name), Some(instance_id)).await?;
    ctx.caller.authorize(
        "ssm:UpdateAssociationStatus",
        &ctx.association_arn(&head.association_id),
    )?;
    ctx.store
        .put_instance_status(&InstanceStatus {
            association_id: head.association_id.clone(),
            instance_id: instance_id.to_string(),
            name: head.name.clone(),
            document_version: head
                .document_version
                .clone()
                .unwrap_or_else(|| "$DEFAULT".into()),
            association_version: head.association_version,
            execution_date: date,
            status: state.clone(),
            detailed_status: state.clone(),
            execution_summary: message.clone(),
            error_code: None,
            output_url: None,
            association_name: head.association_name.clone(),
        })
        .await?;
    for _ in 0..ATTEMPTS {
        let mut next = head.clone();
        next.overview.status = state.clone();
        next.overview.detailed_status = message.clone();
        next.revision += 1;
        if ctx.store.update(&next, head.revision, false).await? {
            return Ok(json!({ "AssociationDescription": next.description() }));
        }
        head = find(ctx, Some(&head.association_id), None, None).await?;
    }
    Err(too_many_updates(&head.association_id))
}
