//! Parameters as SSM's responses show them, and the value a reader gets.

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::model::{Parameter, ParameterVersion, PolicyRecord, StoredValue};
use super::secrets::Sealer;
use crate::error::SsmError;

/// The value a reader gets: the plain value; for a SecureString, the opened
/// value when `with_decryption` (after `kms:Decrypt` is authorized on the
/// key that sealed it), else the sealed envelope, as SSM returns ciphertext.
pub async fn readable_value(
    ctx: &ParameterContext<'_>,
    v: &ParameterVersion,
    with_decryption: bool,
) -> Result<String, SsmError> {
    match &v.value {
        StoredValue::Plain(s) => Ok(s.clone()),
        StoredValue::Sealed(s) if !with_decryption => Ok(s.clone()),
        StoredValue::Sealed(s) => {
            let key_arn = Sealer::key_arn(s)?;
            ctx.caller.authorize("kms:Decrypt", &key_arn)?;
            let arn = ctx.scope.parameter_arn(&v.name);
            Ok(ctx.sealer.open(&arn, s).await?.expose().to_string())
        }
    }
}

/// SSM's `Parameter` (GetParameter, GetParameters, GetParametersByPath).
pub fn parameter_view(
    v: &ParameterVersion,
    value: &str,
    arn: &str,
    selector: Option<&str>,
) -> Value {
    let mut out = json!({
        "Name": v.name,
        "Type": v.parameter_type.as_str(),
        "Value": value,
        "Version": v.version,
        "LastModifiedDate": v.last_modified_date,
        "ARN": arn,
        "DataType": v.data_type,
    });
    if let Some(s) = selector {
        out["Selector"] = json!(s);
    }
    out
}

/// SSM's `ParameterInlinePolicy` list.
pub fn policies_view(policies: &[PolicyRecord]) -> Value {
    Value::Array(
        policies
            .iter()
            .map(|p| {
                json!({
                    "PolicyText": p.text,
                    "PolicyType": p.policy_type,
                    "PolicyStatus": p.status,
                })
            })
            .collect(),
    )
}

/// The fields ParameterMetadata and ParameterHistory share.
fn common(v: &ParameterVersion) -> Value {
    let mut out = json!({
        "Name": v.name,
        "Type": v.parameter_type.as_str(),
        "LastModifiedDate": v.last_modified_date,
        "LastModifiedUser": v.last_modified_user,
        "Version": v.version,
        "Tier": v.tier.as_str(),
        "Policies": policies_view(&v.policies),
        "DataType": v.data_type,
    });
    if let Some(k) = &v.key_id {
        out["KeyId"] = json!(k);
    }
    if let Some(d) = &v.description {
        out["Description"] = json!(d);
    }
    if let Some(p) = &v.allowed_pattern {
        out["AllowedPattern"] = json!(p);
    }
    out
}

/// SSM's `ParameterMetadata` (DescribeParameters): never a value.
pub fn metadata_view(p: &Parameter, arn: &str) -> Value {
    let mut out = common(&p.current);
    out["ARN"] = json!(arn);
    out
}

/// SSM's `ParameterHistory` (GetParameterHistory).
pub fn history_view(v: &ParameterVersion, value: &str) -> Value {
    let mut out = common(v);
    out["Value"] = json!(value);
    out["Labels"] = json!(v.labels);
    out
}
