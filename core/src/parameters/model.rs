//! Parameters as Parameter Store keeps them: a head (the latest version plus
//! what belongs to the parameter as a whole) and up to 100 versions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::SsmError;
use crate::tags::TagSet;

/// Versions kept per parameter; the 101st write drops the oldest.
pub const MAX_VERSIONS: u64 = 100;
/// Value limits by tier, in characters (SSM counts characters, not bytes).
pub const STANDARD_VALUE_LIMIT: usize = 4096;
pub const ADVANCED_VALUE_LIMIT: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::SecureString => "SecureString",
        }
    }

    pub fn parse(s: &str) -> Result<Self, SsmError> {
        match s {
            "String" => Ok(ParameterType::String),
            "StringList" => Ok(ParameterType::StringList),
            "SecureString" => Ok(ParameterType::SecureString),
            other => Err(SsmError::UnsupportedParameterType(format!(
                "Parameter type {other} is not supported; use String, StringList or SecureString."
            ))),
        }
    }
}

/// The tier a parameter is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tier {
    Standard,
    Advanced,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "Standard",
            Tier::Advanced => "Advanced",
        }
    }

    pub fn value_limit(self) -> usize {
        match self {
            Tier::Standard => STANDARD_VALUE_LIMIT,
            Tier::Advanced => ADVANCED_VALUE_LIMIT,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Standard" => Some(Tier::Standard),
            "Advanced" => Some(Tier::Advanced),
            _ => None,
        }
    }
}

/// The tier a PutParameter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedTier {
    Standard,
    Advanced,
    IntelligentTiering,
}

/// A value as stored. A SecureString's value is only ever stored sealed
/// (see `secrets`): the base64 envelope is also what a read without
/// `WithDecryption` returns.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredValue {
    Plain(String),
    Sealed(String),
}

impl std::fmt::Debug for StoredValue {
    // A sealed value is safe to print, but a plain one may be large; neither
    // belongs in logs, so Debug shows only the kind.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredValue::Plain(_) => f.write_str("Plain(..)"),
            StoredValue::Sealed(_) => f.write_str("Sealed(..)"),
        }
    }
}

/// One of a parameter's policies, as `GetParameterHistory` and
/// `DescribeParameters` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// The policy's JSON, as the caller wrote it.
    pub text: String,
    /// `Expiration`, `ExpirationNotification` or `NoChangeNotification`.
    pub policy_type: String,
    /// `Pending`, `Finished`, `InProgress` or `Failed`.
    pub status: String,
}

/// One version of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterVersion {
    pub name: String,
    pub version: u64,
    pub parameter_type: ParameterType,
    pub value: StoredValue,
    /// SecureString only: the KMS key as the caller named it (or the stack's key).
    pub key_id: Option<String>,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    pub tier: Tier,
    pub policies: Vec<PolicyRecord>,
    /// Always `text` for now.
    pub data_type: String,
    /// Labels on this version.
    pub labels: BTreeSet<String>,
    /// Epoch seconds.
    pub last_modified_date: f64,
    /// ARN of the access key's user who wrote this version.
    pub last_modified_user: String,
}

/// A parameter: its latest version and what belongs to the whole parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// The latest version, whole (a read of the latest is one item read).
    pub current: ParameterVersion,
    /// The oldest version still kept (versions below it are gone).
    pub oldest_version: u64,
    /// Every label of every kept version: label → version.
    pub labels: BTreeMap<String, u64>,
    pub tags: TagSet,
    /// When the policy scheduler must next look at this parameter (epoch
    /// seconds); `None` when it has no pending policy.
    pub policy_due: Option<f64>,
    /// Bumped by every change of the head; every head write is conditional
    /// on the revision it read.
    pub revision: u64,
}

impl Parameter {
    pub fn name(&self) -> &str {
        &self.current.name
    }

    pub fn version(&self) -> u64 {
        self.current.version
    }
}
