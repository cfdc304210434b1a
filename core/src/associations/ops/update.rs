//! UpdateAssociation: a new version. As in SSM, optional settings the
//! request leaves out are cleared (Parameters, DocumentVersion,
//! ScheduleExpression, OutputLocation, …); Name, Targets (or InstanceId)
//! and AssociationName are kept when left out. AssociationVersion, when
//! given, must be the current one (`$LATEST` is always). A change to what
//! runs (document, version, parameters, targets, schedule) runs the
//! association at the next tick unless ApplyOnlyAtCronInterval.

use serde_json::{Value, json};

use super::required;
use crate::associations::context::{
    ATTEMPTS, AssociationContext, MAX_VERSIONS, check_uuid, does_not_exist, invalid_version,
    load_document, too_many_updates, version_limit,
};
use crate::associations::model::Association;
use crate::associations::request::{AssociationInput, check_targets, slot_after};
use crate::documents::context::name_of;
use crate::error::SsmError;
use crate::error::parse_request as parse;

pub(crate) async fn update(ctx: &AssociationContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let i: AssociationInput = parse(body)?;
    let id = required(&i.association_id, "associationId")?.to_string();
    check_uuid(&id, "associationId")?;
    let settings = i.run_settings()?;
    ctx.check_output_location(settings.output_location.as_ref())?;
    let association_name = i.checked_name()?;
    if let Some(t) = &i.targets
        && !t.is_empty()
    {
        check_targets(t)?;
    }
    if i.tags.is_some() {
        return Err(SsmError::ValidationException(
            "UpdateAssociation takes no Tags; use AddTagsToResource.".into(),
        ));
    }
    ctx.caller
        .authorize("ssm:UpdateAssociation", &ctx.association_arn(&id))?;
    for _ in 0..ATTEMPTS {
        let head = ctx.store.get(&id).await?.ok_or_else(does_not_exist)?;
        if let Some(v) = i.association_version.as_deref()
            && v != "$LATEST"
            && v != head.association_version.to_string()
        {
            return Err(invalid_version(v));
        }
        if head.association_version >= MAX_VERSIONS {
            return Err(version_limit());
        }
        let name = i
            .name
            .as_deref()
            .map(|n| name_of(n).to_string())
            .unwrap_or_else(|| head.name.clone());
        if head.instance_id.is_some() && name != head.name {
            // Its Name+InstanceId is what names it (and is unique).
            return Err(SsmError::InvalidDocument(format!(
                "Association {id} was created for document {} and InstanceId {}: its document cannot change; create a new association.",
                head.name,
                head.instance_id.clone().unwrap_or_default()
            )));
        }
        ctx.caller
            .authorize("ssm:UpdateAssociation", &ctx.document_arn(&name))?;
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
        let targets = match &i.targets {
            Some(t) if !t.is_empty() && head.instance_id.is_some() => {
                return Err(SsmError::InvalidTarget(format!(
                    "Association {id} was created for InstanceId {}: it takes no Targets.",
                    head.instance_id.clone().unwrap_or_default()
                )));
            }
            Some(t) if !t.is_empty() => t.clone(),
            _ => head.targets.clone(),
        };
        let now = ctx.now.floor() as i64;
        let schedule_changed = settings.schedule_expression != head.schedule_expression
            || settings.schedule_offset != head.schedule_offset
            || settings.apply_only_at_cron_interval != head.apply_only_at_cron_interval;
        let runs_changed = schedule_changed
            || doc.name != head.name
            || settings.document_version != head.document_version
            || settings.parameters != head.parameters
            || targets != head.targets;
        let mut next = Association {
            association_version: head.association_version + 1,
            name: doc.name,
            document_version: settings.document_version.clone(),
            targets,
            parameters: settings.parameters.clone(),
            schedule_expression: settings.schedule_expression.clone(),
            apply_only_at_cron_interval: settings.apply_only_at_cron_interval,
            schedule_offset: settings.schedule_offset,
            max_concurrency: settings.max_concurrency.clone(),
            max_errors: settings.max_errors.clone(),
            compliance_severity: settings.compliance_severity.clone(),
            sync_compliance: settings.sync_compliance.clone(),
            association_name: association_name.clone().or(head.association_name.clone()),
            output_location: settings.output_location.clone(),
            automation_target_parameter_name: settings.automation_target_parameter_name.clone(),
            automation: doc.automation,
            last_update: ctx.now,
            revision: head.revision + 1,
            ..head.clone()
        };
        if schedule_changed {
            next.slot = slot_after(
                next.schedule_expression.as_deref(),
                next.schedule_offset,
                next.apply_only_at_cron_interval,
                now,
                head.date.floor() as i64,
            );
        }
        if runs_changed && !next.apply_only_at_cron_interval {
            next.run_now = true;
        }
        next.set_next_due(ctx.now);
        if ctx.store.update(&next, head.revision, true).await? {
            tracing::info!(association_id = %id, version = next.association_version, "association updated");
            return Ok(json!({ "AssociationDescription": next.description() }));
        }
    }
    Err(too_many_updates(&id))
}
