//! What every association operation works with: the context, the ARNs,
//! SSM's errors of the area, and the loading of the document an
//! association runs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::Association;
use super::ports::AssociationStore;
use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::compliance::context::ComplianceContext;
use crate::documents::context::{document_arn, load_for_run, load_runbook, name_of};
use crate::documents::declared_parameters::validate;
use crate::documents::store::DocumentStore;
use crate::error::SsmError;
use crate::run_command::request::output_bucket_refusal;

/// Conditional writes tried before answering TooManyUpdates.
pub(crate) const ATTEMPTS: usize = 5;

pub struct AssociationContext<'a> {
    pub store: &'a dyn AssociationStore,
    pub documents: &'a dyn DocumentStore,
    /// Where the nodes' Association compliance is written.
    pub compliance: ComplianceContext<'a>,
    /// Who asks; every association touched is authorized by its ARN.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    /// The buckets this stack may write command output to (SendCommand's
    /// rule); an OutputLocation naming another is refused when stored.
    pub output_buckets: &'a [String],
    /// Epoch seconds.
    pub now: f64,
}

impl AssociationContext<'_> {
    /// `arn:aws:ssm:<region>:<account>:association/<id>`.
    pub fn association_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:association/{id}",
            self.scope.region, self.scope.account
        )
    }

    pub fn document_arn(&self, name: &str) -> String {
        document_arn(self.scope, name_of(name))
    }

    /// InvalidOutputLocation when `output_location` names a bucket this
    /// stack cannot write: every run's SendCommand would be refused.
    pub fn check_output_location(&self, output_location: Option<&Value>) -> Result<(), SsmError> {
        let bucket = output_location
            .and_then(|o| o.get("S3Location"))
            .and_then(|s3| s3.get("OutputS3BucketName"))
            .and_then(Value::as_str)
            .unwrap_or("");
        match output_bucket_refusal(bucket, self.output_buckets) {
            None => Ok(()),
            Some(why) => Err(SsmError::InvalidOutputLocation(why)),
        }
    }

    /// The IAM user name runs are made as: the last part of the caller's ARN.
    pub fn run_as(&self) -> String {
        let arn = self.caller.user_arn();
        arn.rsplit('/').next().unwrap_or(&arn).to_string()
    }
}

/// The scheduler's own authority: everything it does was authorized when
/// the association was created, and its runs are checked as their user's.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl Authorizer for System {
    fn authorize(&self, _action: &str, _resource: &str) -> Result<(), SsmError> {
        Ok(())
    }

    fn user_arn(&self) -> String {
        "steward-scheduler".into()
    }
}

/// AssociationDoesNotExist.
pub fn does_not_exist() -> SsmError {
    SsmError::AssociationDoesNotExist("The specified association does not exist.".into())
}

/// AssociationAlreadyExists.
pub fn already_exists() -> SsmError {
    SsmError::AssociationAlreadyExists("The specified association already exists.".into())
}

/// InvalidAssociationVersion.
pub fn invalid_version(given: &str) -> SsmError {
    SsmError::InvalidAssociationVersion(format!(
        "The version you specified, {given}, is not valid. Use ListAssociationVersions to view all versions of an association according to the association ID. Or, use the $LATEST parameter to view the latest version of the association."
    ))
}

/// AssociationVersionLimitExceeded.
pub fn version_limit() -> SsmError {
    SsmError::AssociationVersionLimitExceeded(format!(
        "You have reached the maximum number versions allowed for an association. Each association has a limit of {MAX_VERSIONS} versions."
    ))
}

/// AssociationExecutionDoesNotExist.
pub fn execution_does_not_exist() -> SsmError {
    SsmError::AssociationExecutionDoesNotExist(
        "The specified execution ID does not exist. Verify the ID number and try again.".into(),
    )
}

/// Versions one association may have.
pub const MAX_VERSIONS: u32 = 1000;

pub fn validation(value: impl std::fmt::Display, field: &str, constraint: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

pub fn too_many_updates(id: &str) -> SsmError {
    SsmError::TooManyUpdates(format!(
        "Association {id} is being changed by other requests; try again."
    ))
}

/// The document an association runs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    pub name: String,
    pub version: u64,
    pub automation: bool,
}

/// The document `name` (a built-in or a stored one, Command or Automation)
/// at `version`, with `parameters` checked against its declarations.
/// `target_parameter`: the runbook parameter the targets fill.
pub async fn load_document(
    documents: &dyn DocumentStore,
    name: &str,
    version: Option<&str>,
    parameters: &BTreeMap<String, Vec<String>>,
    target_parameter: Option<&str>,
) -> Result<LoadedDocument, SsmError> {
    match load_for_run(documents, name, version).await {
        Ok(doc) => {
            doc.document.validate_parameters(parameters)?;
            return Ok(LoadedDocument {
                name: doc.name,
                version: doc.version,
                automation: false,
            });
        }
        Err(SsmError::InvalidDocument(_)) => {}
        Err(e) => return Err(e),
    }
    let runbook = load_runbook(documents, name, version)
        .await
        .map_err(|e| match e {
            SsmError::AutomationDefinitionNotFoundException(_) => {
                SsmError::InvalidDocument(format!("Document {} does not exist.", name_of(name)))
            }
            SsmError::AutomationDefinitionVersionNotFoundException(m) => {
                SsmError::InvalidDocumentVersion(m)
            }
            other => other,
        })?;
    let mut given = parameters.clone();
    if let Some(p) = target_parameter {
        if !runbook.runbook.parameters.iter().any(|d| d.name == p) {
            return Err(SsmError::InvalidParameters(format!(
                "AutomationTargetParameterName {p} is not a parameter of runbook {}.",
                runbook.name
            )));
        }
        // The targets fill it at each run.
        given
            .entry(p.to_string())
            .or_insert_with(|| vec!["i-0123456789abcdef0".into()]);
    }
    validate(&runbook.runbook.parameters, &given).map_err(|e| match e {
        SsmError::InvalidParameters(m) => SsmError::InvalidParameters(m),
        other => SsmError::InvalidParameters(other.to_string()),
    })?;
    Ok(LoadedDocument {
        name: runbook.name,
        version: runbook.version,
        automation: true,
    })
}

/// The association a request's AssociationId, or Name and InstanceId, names.
pub async fn find(
    ctx: &AssociationContext<'_>,
    association_id: Option<&str>,
    name: Option<&str>,
    instance_id: Option<&str>,
) -> Result<Association, SsmError> {
    if let Some(id) = association_id {
        check_uuid(id, "associationId")?;
        return ctx.store.get(id).await?.ok_or_else(does_not_exist);
    }
    match (name, instance_id) {
        (Some(n), Some(i)) => {
            check_instance_id(i)?;
            let n = name_of(n);
            if let Some(id) = ctx.store.legacy(&super::model::legacy_key(n, i)).await?
                && let Some(a) = ctx.store.get(&id).await?
            {
                return Ok(a);
            }
            // A Targets association that names the node by its id.
            ctx.store
                .list()
                .await?
                .into_iter()
                .find(|a| {
                    a.name == n
                        && a.targets
                            .iter()
                            .any(|t| t.key == "InstanceIds" && t.values.iter().any(|v| v == i))
                })
                .ok_or_else(does_not_exist)
        }
        _ => Err(SsmError::ValidationException(
            "Specify AssociationId, or Name and InstanceId, to name the association.".into(),
        )),
    }
}

/// SSM's AssociationId (and ExecutionId) pattern: a UUID.
pub fn check_uuid(value: &str, field: &str) -> Result<(), SsmError> {
    let groups: Vec<&str> = value.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(validation(
            value,
            field,
            "Member must satisfy regular expression pattern: [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        ))
    }
}

/// A node id as SSM takes it in InstanceId.
pub fn check_instance_id(value: &str) -> Result<(), SsmError> {
    if crate::ids::is_instance_id(value) {
        Ok(())
    } else {
        Err(SsmError::InvalidInstanceId(format!(
            "Instances [[{value}]] not in a valid state for account: an instance id is mi- or i- followed by hex digits."
        )))
    }
}
