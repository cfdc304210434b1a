//! What every baseline operation works with: the context, the ids and
//! ARNs of baselines, and the reading of a `BaselineId` (an account
//! baseline's id, or a predefined one's id or ARN).

use super::baseline::{OperatingSystem, PatchBaseline};
use super::ports::{PatchBaselineStore, StoredBaseline};
use super::predefined;
use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::error::SsmError;

/// Conditional writes tried before answering TooManyUpdates.
pub(super) const ATTEMPTS: usize = 5;

pub struct PatchingContext<'a> {
    pub store: &'a dyn PatchBaselineStore,
    /// Who asks; every baseline touched is authorized by its ARN.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
    /// Epoch seconds.
    pub now: f64,
}

/// A baseline a request names.
#[derive(Debug, Clone, PartialEq)]
pub enum Named {
    /// One of AWS's, read-only.
    Predefined {
        id: String,
        baseline: PatchBaseline,
    },
    Stored(StoredBaseline),
}

impl Named {
    pub fn baseline(&self) -> &PatchBaseline {
        match self {
            Named::Predefined { baseline, .. } => baseline,
            Named::Stored(s) => &s.baseline,
        }
    }
}

impl PatchingContext<'_> {
    /// An account baseline's ARN.
    pub fn baseline_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:patchbaseline/{id}",
            self.scope.region, self.scope.account
        )
    }

    /// The id SSM shows for a baseline: a predefined one's is its ARN, as
    /// SSM shows AWS's baselines (no account of this stack owns them).
    pub fn shown_id(&self, id: &str) -> String {
        if predefined::find_id(id).is_some() {
            predefined_arn(&self.scope.region, id)
        } else {
            id.to_string()
        }
    }

    /// The ARN a baseline is authorized by.
    pub fn authorized_arn(&self, id: &str) -> String {
        if predefined::find_id(id).is_some() {
            predefined_arn(&self.scope.region, id)
        } else {
            self.baseline_arn(id)
        }
    }
}

/// A predefined baseline's ARN: AWS's, with no account, as SSM writes the
/// ARNs of what AWS owns in this stack (documents too).
pub fn predefined_arn(region: &str, id: &str) -> String {
    format!("arn:aws:ssm:{region}::patchbaseline/{id}")
}

/// `pb-` and 17 lowercase hex digits.
pub fn is_baseline_id(id: &str) -> bool {
    id.strip_prefix("pb-").is_some_and(|hex| {
        hex.len() == 17
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// A new baseline id.
pub fn new_baseline_id() -> String {
    let hex: String = uuid::Uuid::new_v4().simple().to_string();
    format!("pb-{}", &hex[..17])
}

/// `BaselineId` as requests give it → the id: an ARN of a patch baseline
/// (any account, as SSM's own examples give AWS's) stands for its id.
pub fn id_of(given: &str) -> &str {
    if given.starts_with("arn:") {
        given
            .rsplit_once(":patchbaseline/")
            .map(|(_, id)| id)
            .unwrap_or(given)
    } else {
        given
    }
}

/// SSM's answer for a baseline id it does not hold.
pub fn does_not_exist() -> SsmError {
    SsmError::DoesNotExistException("Patch Baseline to be retrieved does not exist.".into())
}

/// The answer for a `BaselineId` of no baseline's form.
pub fn invalid_id(given: &str) -> SsmError {
    SsmError::InvalidResourceId(format!(
        "BaselineId {given} is not a patch baseline id: give pb- and 17 hex digits, or a patch baseline's ARN."
    ))
}

/// The baseline `given` names, authorized for `action`.
pub async fn named(
    ctx: &PatchingContext<'_>,
    action: &str,
    given: &str,
) -> Result<Named, SsmError> {
    let id = id_of(given);
    ctx.caller.authorize(action, &ctx.authorized_arn(id))?;
    if let Some(p) = predefined::find_id(id) {
        return Ok(Named::Predefined {
            id: p.id.to_string(),
            baseline: p.baseline,
        });
    }
    if !is_baseline_id(id) {
        return Err(invalid_id(given));
    }
    ctx.store
        .get(id)
        .await?
        .map(Named::Stored)
        .ok_or_else(does_not_exist)
}

/// The default baseline of a system: the registered one, else the
/// predefined one.
pub async fn default_id(
    store: &dyn PatchBaselineStore,
    os: OperatingSystem,
) -> Result<String, SsmError> {
    Ok(store
        .default_for(os)
        .await?
        .unwrap_or_else(|| predefined::default_id(os).to_string()))
}

pub(super) fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, SsmError> {
    match v.as_deref() {
        Some(s) => Ok(s),
        None => Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

pub(super) fn too_many_updates(id: &str) -> SsmError {
    SsmError::TooManyUpdates(format!(
        "Patch baseline {id} is being changed by other requests; try again."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_arns_are_read_as_ssm_gives_them() {
        for _ in 0..20 {
            assert!(is_baseline_id(&new_baseline_id()));
        }
        assert!(!is_baseline_id("pb-0123456789abcdef"));
        assert!(!is_baseline_id("pb-0123456789ABCDEF0"));
        assert_eq!(
            id_of("arn:aws:ssm:us-east-2:733109147000:patchbaseline/pb-0e392de35e7c563b7"),
            "pb-0e392de35e7c563b7"
        );
        assert_eq!(id_of("pb-0e392de35e7c563b7"), "pb-0e392de35e7c563b7");
        assert_eq!(
            id_of("arn:aws:ssm:x:y:document/z"),
            "arn:aws:ssm:x:y:document/z"
        );
    }
}
