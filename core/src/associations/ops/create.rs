//! CreateAssociation and CreateAssociationBatch: checked as SSM checks
//! them (document, parameters, targets, schedule; and an output bucket this
//! stack can write), stored, and due at the next tick unless
//! ApplyOnlyAtCronInterval.

use serde::Deserialize;
use serde_json::{Value, json};

use super::required;
use crate::associations::context::{AssociationContext, already_exists, load_document};
use crate::associations::model::{Association, Overview};
use crate::associations::request::{AssociationInput, slot_after};
use crate::documents::context::name_of;
use crate::error::SsmError;
use crate::error::parse_request as parse;

/// A new association from a request, checked and authorized.
async fn build(
    ctx: &AssociationContext<'_>,
    i: &AssociationInput,
    action: &str,
) -> Result<Association, SsmError> {
    let name = name_of(required(&i.name, "name")?).to_string();
    let settings = i.run_settings()?;
    ctx.check_output_location(settings.output_location.as_ref())?;
    let (instance_id, targets) = i.placement()?;
    let association_name = i.checked_name()?;
    let tags = i.checked_tags()?;
    let id = uuid::Uuid::new_v4().to_string();
    ctx.caller.authorize(action, &ctx.association_arn(&id))?;
    ctx.caller.authorize(action, &ctx.document_arn(&name))?;
    let doc = load_document(
        ctx.documents,
        &name,
        settings.document_version.as_deref(),
        &settings.parameters,
        settings.automation_target_parameter_name.as_deref(),
    )
    .await?;
    if settings.automation_target_parameter_name.is_some() && !doc.automation {
        return Err(SsmError::InvalidParameters(format!(
            "AutomationTargetParameterName applies to Automation runbooks; {name} is a Command document."
        )));
    }
    let now = ctx.now.floor() as i64;
    let mut a = Association {
        association_id: id,
        association_version: 1,
        name: doc.name,
        document_version: settings.document_version,
        instance_id,
        targets,
        parameters: settings.parameters,
        slot: slot_after(
            settings.schedule_expression.as_deref(),
            settings.schedule_offset,
            settings.apply_only_at_cron_interval,
            now,
            now,
        ),
        schedule_expression: settings.schedule_expression,
        run_now: !settings.apply_only_at_cron_interval,
        apply_only_at_cron_interval: settings.apply_only_at_cron_interval,
        schedule_offset: settings.schedule_offset,
        max_concurrency: settings.max_concurrency,
        max_errors: settings.max_errors,
        compliance_severity: settings.compliance_severity,
        sync_compliance: settings.sync_compliance,
        association_name,
        output_location: settings.output_location,
        automation_target_parameter_name: settings.automation_target_parameter_name,
        automation: doc.automation,
        tags,
        date: ctx.now,
        last_update: ctx.now,
        overview: Overview::pending(),
        last_execution_date: None,
        last_successful_execution_date: None,
        run_as: ctx.run_as(),
        next_due: None,
        revision: 1,
    };
    a.set_next_due(ctx.now);
    Ok(a)
}

async fn create_one(
    ctx: &AssociationContext<'_>,
    i: &AssociationInput,
    action: &str,
) -> Result<Association, SsmError> {
    let a = build(ctx, i, action).await?;
    let key = a.legacy_key();
    if !ctx.store.create(&a, key.as_deref()).await? {
        return Err(already_exists());
    }
    tracing::info!(association_id = %a.association_id, document = %a.name, "association created");
    Ok(a)
}

pub(crate) async fn create(ctx: &AssociationContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: AssociationInput = parse(body)?;
    let a = create_one(ctx, &i, "ssm:CreateAssociation").await?;
    Ok(json!({ "AssociationDescription": a.description() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchInput {
    entries: Option<Vec<Value>>,
}

/// Entries one batch may carry (SSM's model).
const MAX_ENTRIES: usize = 10;

pub(crate) async fn create_batch(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let b: BatchInput = parse(body)?;
    let entries = b.entries.unwrap_or_default();
    if entries.is_empty() {
        return Err(SsmError::ValidationException(
            "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ));
    }
    if entries.len() > MAX_ENTRIES {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to {MAX_ENTRIES}"
        )));
    }
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    for entry in entries {
        let outcome = match parse::<AssociationInput>(&entry) {
            Ok(i) if i.tags.is_some() => Err(SsmError::ValidationException(
                "A CreateAssociationBatch entry takes no Tags; tag the association afterwards."
                    .into(),
            )),
            Ok(i) => create_one(ctx, &i, "ssm:CreateAssociationBatch").await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(a) => successful.push(a.description()),
            Err(e) => {
                let fault = if matches!(e, SsmError::InternalServerError(_)) {
                    "Server"
                } else {
                    "Client"
                };
                failed.push(json!({ "Entry": entry, "Message": e.to_string(), "Fault": fault }));
            }
        }
    }
    Ok(json!({ "Successful": successful, "Failed": failed }))
}
