//! Parameter Store requests, with SSM's field names and bounds, parsed and
//! checked before anything is read or written. Nothing here echoes a value.

use serde::Deserialize;
use serde_json::Value;

use super::model::{ParameterType, RequestedTier};
use crate::error::SsmError;
use crate::tags::Tag;

/// At most this many names in GetParameters and DeleteParameters.
pub const MAX_NAMES: usize = 10;
pub const MAX_DESCRIPTION: usize = 1024;
pub const MAX_ALLOWED_PATTERN: usize = 1024;
pub const MAX_KEY_ID: usize = 256;
pub const MAX_NAME: usize = 2048;
/// GetParameterHistory's page bounds.
pub const HISTORY_MAX_RESULTS: i64 = 50;

pub(crate) use crate::error::parse_request as parse;

fn validation(field: &str, constraint: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "1 validation error detected: Value at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

fn required(v: Option<String>, field: &str) -> Result<String, SsmError> {
    v.ok_or_else(|| {
        SsmError::ValidationException(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null. Give {field}."
        ))
    })
}

fn check_name(name: &str) -> Result<(), SsmError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(validation(
            "name",
            &format!("Member must have length between 1 and {MAX_NAME}"),
        ));
    }
    Ok(())
}

fn check_max(v: Option<&str>, field: &str, max: usize) -> Result<(), SsmError> {
    if let Some(s) = v
        && s.chars().count() > max
    {
        return Err(validation(
            field,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

fn check_names(names: &[String]) -> Result<(), SsmError> {
    if names.is_empty() || names.len() > MAX_NAMES {
        return Err(validation(
            "names",
            &format!(
                "Member must have length between 1 and {MAX_NAMES} (this request has {}). Split the names into requests of at most {MAX_NAMES}.",
                names.len()
            ),
        ));
    }
    names.iter().try_for_each(|n| check_name(n))
}

// ----------------------------------------------------------- PutParameter

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PutParameterInput {
    name: Option<String>,
    value: Option<String>,
    #[serde(rename = "Type")]
    parameter_type: Option<String>,
    overwrite: Option<bool>,
    key_id: Option<String>,
    description: Option<String>,
    allowed_pattern: Option<String>,
    tier: Option<String>,
    tags: Option<Vec<Tag>>,
    policies: Option<String>,
    data_type: Option<String>,
}

/// PutParameter's request after the checks that need no stored state.
/// `Debug` is not derived: the value may be a secret.
pub struct PutParameterRequest {
    pub name: String,
    pub value: String,
    pub parameter_type: Option<ParameterType>,
    pub overwrite: bool,
    pub key_id: Option<String>,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    pub tier: Option<RequestedTier>,
    pub tags: Vec<Tag>,
    /// `None`: not given (an overwrite keeps the parameter's policies).
    pub policies: Option<String>,
    pub data_type: DataType,
}

/// PutParameter's DataType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Text,
    /// An AMI id, checked for its format only.
    Ec2Image,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Text => "text",
            DataType::Ec2Image => "aws:ec2:image",
        }
    }
}

impl PutParameterRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        // serde's message may quote the offending JSON value, which here can
        // be the secret itself: say which shape is expected instead.
        let i: PutParameterInput = serde_json::from_value(body.clone()).map_err(|_| {
            SsmError::SerializationException(
                "The request does not match PutParameter's input shape: Name, Value, Type, KeyId, Description, AllowedPattern, Tier, Policies and DataType are strings, Overwrite is a boolean and Tags a list of {Key, Value}."
                    .into(),
            )
        })?;
        let name = required(i.name, "name")?;
        check_name(&name)?;
        let value = required(i.value, "value")?;
        if value.is_empty() {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.".into(),
            ));
        }
        let parameter_type = i
            .parameter_type
            .as_deref()
            .map(ParameterType::parse)
            .transpose()?;
        check_max(i.description.as_deref(), "description", MAX_DESCRIPTION)?;
        check_max(
            i.allowed_pattern.as_deref(),
            "allowedPattern",
            MAX_ALLOWED_PATTERN,
        )?;
        if let Some(k) = &i.key_id
            && (k.is_empty() || k.chars().count() > MAX_KEY_ID)
        {
            return Err(validation(
                "keyId",
                &format!("Member must have length between 1 and {MAX_KEY_ID}"),
            ));
        }
        let tier = match i.tier.as_deref() {
            None => None,
            Some("Standard") => Some(RequestedTier::Standard),
            Some("Advanced") => Some(RequestedTier::Advanced),
            Some("Intelligent-Tiering") => Some(RequestedTier::IntelligentTiering),
            Some(other) => {
                return Err(SsmError::ValidationException(format!(
                    "1 validation error detected: Value '{other}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]"
                )));
            }
        };
        let data_type = match i.data_type.as_deref() {
            None | Some("text") => DataType::Text,
            Some("aws:ec2:image") => DataType::Ec2Image,
            Some(d) => {
                return Err(SsmError::ValidationException(format!(
                    "The following data type is not supported: {d} (Data type names are all lowercase.)"
                )));
            }
        };
        let overwrite = i.overwrite.unwrap_or(false);
        let tags = i.tags.unwrap_or_default();
        if overwrite && !tags.is_empty() {
            return Err(SsmError::ValidationException(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.".into(),
            ));
        }
        Ok(Self {
            name,
            value,
            parameter_type,
            overwrite,
            key_id: i.key_id,
            description: i.description,
            allowed_pattern: i.allowed_pattern,
            tier,
            tags,
            policies: i.policies.filter(|p| !p.trim().is_empty()),
            data_type,
        })
    }
}

// ------------------------------------------------------------------ reads

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct GetParameterInput {
    name: Option<String>,
    with_decryption: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterRequest {
    pub name: String,
    pub with_decryption: bool,
}

impl GetParameterRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: GetParameterInput = parse(body)?;
        let name = required(i.name, "name")?;
        check_name(&name)?;
        Ok(Self {
            name,
            with_decryption: i.with_decryption.unwrap_or(false),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NamesInput {
    names: Option<Vec<String>>,
    with_decryption: Option<bool>,
}

/// GetParameters and DeleteParameters: 1 to 10 names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesRequest {
    pub names: Vec<String>,
    pub with_decryption: bool,
}

impl NamesRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: NamesInput = parse(body)?;
        let names = i.names.unwrap_or_default();
        check_names(&names)?;
        Ok(Self {
            names,
            with_decryption: i.with_decryption.unwrap_or(false),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HistoryInput {
    name: Option<String>,
    with_decryption: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    pub name: String,
    pub with_decryption: bool,
    pub max_results: usize,
    pub next_token: Option<String>,
}

impl HistoryRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: HistoryInput = parse(body)?;
        let name = required(i.name, "name")?;
        check_name(&name)?;
        let max_results =
            crate::paging::max_results(i.max_results, 1, HISTORY_MAX_RESULTS, HISTORY_MAX_RESULTS)?;
        Ok(Self {
            name,
            with_decryption: i.with_decryption.unwrap_or(false),
            max_results,
            next_token: i.next_token.filter(|t| !t.is_empty()),
        })
    }
}

// --------------------------------------------------------------- labels

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct LabelInput {
    name: Option<String>,
    parameter_version: Option<i64>,
    labels: Option<Vec<String>>,
}

/// LabelParameterVersion (version optional) and UnlabelParameterVersion
/// (version required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequest {
    pub name: String,
    pub version: Option<u64>,
    pub labels: Vec<String>,
}

impl LabelRequest {
    pub fn from_json(body: &Value, version_required: bool) -> Result<Self, SsmError> {
        let i: LabelInput = parse(body)?;
        let name = required(i.name, "name")?;
        check_name(&name)?;
        let version = match i.parameter_version {
            None if version_required => {
                return Err(SsmError::ValidationException(
                    "1 validation error detected: Value null at 'parameterVersion' failed to satisfy constraint: Member must not be null. Give ParameterVersion.".into(),
                ));
            }
            None => None,
            Some(v) if v >= 1 => Some(v as u64),
            Some(v) => {
                return Err(SsmError::ValidationException(format!(
                    "1 validation error detected: Value '{v}' at 'parameterVersion' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
        };
        let labels = i.labels.unwrap_or_default();
        super::labels::check_request(&labels)?;
        Ok(Self {
            name,
            version,
            labels,
        })
    }
}

// ------------------------------------------------------------------ name

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NameInput {
    name: Option<String>,
}

/// DeleteParameter: one name.
pub fn name_only(body: &Value) -> Result<String, SsmError> {
    let i: NameInput = parse(body)?;
    let name = required(i.name, "name")?;
    check_name(&name)?;
    Ok(name)
}

// ------------------------------------------------------------------ tags

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TagInput {
    resource_type: Option<String>,
    resource_id: Option<String>,
    tags: Option<Vec<Tag>>,
    tag_keys: Option<Vec<String>>,
}

/// Add/RemoveTagsFromResource and ListTagsForResource for `Parameter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRequest {
    /// The parameter's name (SSM's ResourceId for a parameter).
    pub name: String,
    pub tags: Vec<Tag>,
    pub tag_keys: Vec<String>,
}

/// The resource type this module tags.
pub const PARAMETER_RESOURCE: &str = "Parameter";

impl TagRequest {
    pub fn from_json(body: &Value) -> Result<Self, SsmError> {
        let i: TagInput = parse(body)?;
        let resource_type = required(i.resource_type, "resourceType")?;
        if resource_type != PARAMETER_RESOURCE {
            return Err(SsmError::InvalidResourceType(format!(
                "Resource type {resource_type} is not a parameter; Parameter Store tags resources of type Parameter."
            )));
        }
        let name = required(i.resource_id, "resourceId")?;
        // ResourceId has no length limit in SSM's API; a name longer than a
        // parameter's can name none (and must not reach the store's key).
        if name.chars().count() > MAX_NAME {
            return Err(SsmError::InvalidResourceId(
                "The resource ID is not valid. Verify the ID and try again.".into(),
            ));
        }
        Ok(Self {
            name,
            tags: i.tags.unwrap_or_default(),
            tag_keys: i.tag_keys.unwrap_or_default(),
        })
    }
}
