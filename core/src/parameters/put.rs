//! PutParameter: create a parameter or write its next version.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::model::{
    ADVANCED_VALUE_LIMIT, MAX_VERSIONS, Parameter, ParameterType, ParameterVersion, PolicyRecord,
    RequestedTier, STANDARD_VALUE_LIMIT, StoredValue, Tier,
};
use super::name;
use super::policies;
use super::requests::{DataType, PutParameterRequest};
use crate::error::SsmError;
use crate::tags;

/// Conditional writes tried before answering TooManyUpdates.
pub const MAX_ATTEMPTS: usize = 5;

pub(crate) fn too_many_updates(name: &str) -> SsmError {
    SsmError::TooManyUpdates(format!(
        "Parameter {name} is being changed by other requests; retry shortly."
    ))
}

/// The tier a write lands in, with SSM's refusals: no downgrade from
/// Advanced, Standard holds 4096 characters and Advanced 8192, policies need
/// Advanced. Intelligent-Tiering picks Advanced when the value or the
/// policies need it (or the parameter is Advanced already), else Standard.
pub fn effective_tier(
    requested: Option<RequestedTier>,
    existing: Option<Tier>,
    value_chars: usize,
    has_policies: bool,
) -> Result<Tier, SsmError> {
    let tier = match requested {
        // SSM's default tier is Standard; an overwrite keeps the parameter's.
        None => existing.unwrap_or(Tier::Standard),
        Some(RequestedTier::Standard) => Tier::Standard,
        Some(RequestedTier::Advanced) => Tier::Advanced,
        Some(RequestedTier::IntelligentTiering) => {
            if existing == Some(Tier::Advanced)
                || value_chars > STANDARD_VALUE_LIMIT
                || has_policies
            {
                Tier::Advanced
            } else {
                Tier::Standard
            }
        }
    };
    if existing == Some(Tier::Advanced) && tier == Tier::Standard {
        return Err(SsmError::ValidationException(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.".into(),
        ));
    }
    if tier == Tier::Standard && value_chars > STANDARD_VALUE_LIMIT {
        return Err(SsmError::ValidationException(format!(
            "Standard tier parameters support a maximum parameter value of {STANDARD_VALUE_LIMIT} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier (Tier Advanced or Intelligent-Tiering)."
        )));
    }
    if value_chars > ADVANCED_VALUE_LIMIT {
        return Err(SsmError::ValidationException(format!(
            "Advanced-tier parameters support a maximum parameter value of {ADVANCED_VALUE_LIMIT} characters; this value has {value_chars}. Store a shorter value."
        )));
    }
    if has_policies && tier == Tier::Standard {
        return Err(SsmError::ValidationException(
            "Parameter policies are supported only for advanced-tier parameters. Use Tier Advanced or Intelligent-Tiering to attach policies.".into(),
        ));
    }
    Ok(tier)
}

/// Compiles an AllowedPattern. SSM's patterns are searched, not anchored:
/// its own examples anchor with `^…$` themselves.
pub fn compile_pattern(pattern: &str) -> Result<regex_lite::Regex, SsmError> {
    regex_lite::Regex::new(pattern).map_err(|_| {
        SsmError::InvalidAllowedPatternException(format!(
            "The request doesn't meet the regular expression requirement: AllowedPattern {pattern} is not a valid regular expression. Fix the pattern, e.g. ^\\d+$."
        ))
    })
}

/// Checks `value` against `pattern` (a StringList as a whole, as SSM does).
/// The message never contains the value.
pub fn check_pattern(pattern: &regex_lite::Regex, value: &str) -> Result<(), SsmError> {
    if pattern.is_match(value) {
        Ok(())
    } else {
        Err(SsmError::ParameterPatternMismatchException(format!(
            "Parameter value, cannot be validated against allowedPattern: {}",
            pattern.as_str()
        )))
    }
}

/// The key SSM names for SecureStrings put without a KeyId; Steward seals
/// them with the stack's data key.
pub const DEFAULT_KEY_ALIAS: &str = "alias/aws/ssm";

/// `ami-` and 8 or 17 hexadecimal digits: the format SSM checks for
/// `aws:ec2:image`. Steward makes no EC2 lookup of the image.
fn is_ami_id(value: &str) -> bool {
    value.strip_prefix("ami-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

/// Everything of the next version that does not depend on sealing.
struct Decided {
    parameter_type: ParameterType,
    key_id: Option<String>,
    description: Option<String>,
    allowed_pattern: Option<String>,
    tier: Tier,
    policies: Vec<PolicyRecord>,
    version: u64,
    oldest_version: u64,
    drop_version: Option<u64>,
}

fn decide(
    req: &PutParameterRequest,
    new_policies: Option<&Vec<PolicyRecord>>,
    existing: Option<&Parameter>,
) -> Result<Decided, SsmError> {
    let name = &req.name;
    let cur = existing.map(|p| &p.current);
    if existing.is_some() && !req.overwrite {
        return Err(SsmError::ParameterAlreadyExists(
            "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
                .into(),
        ));
    }
    let parameter_type = match (req.parameter_type, cur) {
        (Some(t), Some(c)) if t != c.parameter_type => {
            return Err(SsmError::HierarchyTypeMismatchException(format!(
                "Parameter Store doesn't support changing a parameter type: {name} is a {} and this request gives {}. Delete it and create it again, or use a new name.",
                c.parameter_type.as_str(),
                t.as_str()
            )));
        }
        (Some(t), _) => t,
        (None, Some(c)) => c.parameter_type,
        (None, None) => {
            return Err(SsmError::ValidationException(
                "A parameter type is required when you create a parameter.".into(),
            ));
        }
    };
    if req.data_type == DataType::Ec2Image {
        if parameter_type != ParameterType::String {
            return Err(SsmError::ValidationException(
                "The data type aws:ec2:image is only supported for parameters of type String."
                    .into(),
            ));
        }
        if !is_ami_id(&req.value) {
            return Err(SsmError::ValidationException(
                "Parameter value must be in the format ami-12345abcdeEXAMPLE for the aws:ec2:image data type.".into(),
            ));
        }
    }
    if req.key_id.is_some() && parameter_type != ParameterType::SecureString {
        return Err(SsmError::ValidationException(
            "KeyId is required for SecureString type parameter only. Omit KeyId or use Type SecureString.".into(),
        ));
    }
    let key_id = if parameter_type == ParameterType::SecureString {
        req.key_id
            .clone()
            .or_else(|| cur.and_then(|c| c.key_id.clone()))
            .or_else(|| Some(DEFAULT_KEY_ALIAS.to_string()))
    } else {
        None
    };
    let allowed_pattern = req
        .allowed_pattern
        .clone()
        .or_else(|| cur.and_then(|c| c.allowed_pattern.clone()));
    if let Some(p) = &allowed_pattern {
        check_pattern(&compile_pattern(p)?, &req.value)?;
    }
    // Policies given replace the parameter's; not given, the parameter's
    // carry over to the new version, Pending again.
    let policies = match (new_policies, cur) {
        (Some(p), _) => p.clone(),
        (None, Some(c)) => policies::renewed(&c.policies),
        (None, None) => Vec::new(),
    };
    let tier = effective_tier(
        req.tier,
        cur.map(|c| c.tier),
        req.value.chars().count(),
        !policies.is_empty(),
    )?;
    let (version, oldest_version, drop_version) = match existing {
        None => (1, 1, None),
        Some(p) => {
            let next = p.version() + 1;
            if next > MAX_VERSIONS && p.oldest_version <= next - MAX_VERSIONS {
                let drop = next - MAX_VERSIONS;
                if p.labels.values().any(|v| *v == drop) {
                    return Err(SsmError::ParameterMaxVersionLimitExceeded(format!(
                        "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {drop}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again."
                    )));
                }
                (next, drop + 1, Some(drop))
            } else {
                (next, p.oldest_version, None)
            }
        }
    };
    Ok(Decided {
        parameter_type,
        key_id,
        description: req
            .description
            .clone()
            .or_else(|| cur.and_then(|c| c.description.clone())),
        allowed_pattern,
        tier,
        policies,
        version,
        oldest_version,
        drop_version,
    })
}

pub async fn put_parameter(ctx: &ParameterContext<'_>, body: &Value) -> Result<Value, SsmError> {
    let req = PutParameterRequest::from_json(body)?;
    let name = req.name.as_str();
    name::validate(name, ctx.scope)?;
    let arn = ctx.scope.parameter_arn(name);
    ctx.caller.authorize("ssm:PutParameter", &arn)?;
    let new_policies = req
        .policies
        .as_deref()
        .map(|p| policies::parse_policies(p, ctx.now))
        .transpose()?;
    let new_tags = if req.tags.is_empty() {
        Default::default()
    } else {
        tags::validate_tags(&req.tags)?
    };
    let mut sealed: Option<(String, String)> = None;
    for _ in 0..MAX_ATTEMPTS {
        let existing = ctx.store.find(name).await?;
        // An existing parameter keeps the name it was created with.
        let name = existing.as_ref().map_or(name, |p| p.name());
        let d = decide(&req, new_policies.as_ref(), existing.as_ref())?;
        let value = match (&d.key_id, d.parameter_type) {
            (Some(key), ParameterType::SecureString) => {
                // Sealed once per key: a retry under the same key reuses it.
                if sealed.as_ref().is_none_or(|(k, _)| k != key) {
                    // SSM's default key is `alias/aws/ssm`; here it is the
                    // stack's own key.
                    let kms_key = if key == DEFAULT_KEY_ALIAS {
                        ctx.default_key_id
                    } else {
                        key.as_str()
                    };
                    let s = ctx.sealer.seal(kms_key, &arn, &req.value).await?;
                    sealed = Some((key.clone(), s));
                }
                StoredValue::Sealed(sealed.as_ref().map(|(_, s)| s.clone()).unwrap_or_default())
            }
            _ => StoredValue::Plain(req.value.clone()),
        };
        let current = ParameterVersion {
            name: name.to_string(),
            version: d.version,
            parameter_type: d.parameter_type,
            value,
            key_id: d.key_id,
            description: d.description,
            allowed_pattern: d.allowed_pattern,
            tier: d.tier,
            policies: d.policies,
            data_type: req.data_type.as_str().into(),
            labels: BTreeSet::new(),
            last_modified_date: ctx.now,
            last_modified_user: ctx.caller.user_arn(),
        };
        let mut next = Parameter {
            current,
            oldest_version: d.oldest_version,
            labels: existing
                .as_ref()
                .map(|p| p.labels.clone())
                .unwrap_or_default(),
            tags: existing
                .as_ref()
                .map_or_else(|| new_tags.clone(), |p| p.tags.clone()),
            policy_due: None,
            revision: existing.as_ref().map_or(1, |p| p.revision + 1),
        };
        next.policy_due = policies::next_due(&next);
        let expected = existing.as_ref().map(|p| p.revision);
        if ctx
            .store
            .put_version(&next, expected, d.drop_version)
            .await?
        {
            // Its event follows from the table's stream.
            return Ok(json!({
                "Version": next.version(),
                "Tier": next.current.tier.as_str(),
            }));
        }
    }
    Err(too_many_updates(name))
}
