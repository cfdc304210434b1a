//! Hybrid activations: an id and a code that let up to `RegistrationLimit`
//! nodes register until `ExpirationDate`. Only a SHA-256 of the code is kept.

use serde::{Deserialize, Serialize};

use crate::error::SsmError;
use crate::ids;

use crate::tags::{self, Tag, TagSet};

/// SSM: an activation expires after 24 hours unless told otherwise…
pub const DEFAULT_EXPIRY_SECONDS: f64 = 24.0 * 3600.0;
/// …and at most 30 days ahead.
pub const MAX_EXPIRY_SECONDS: f64 = 30.0 * 24.0 * 3600.0;
pub const DEFAULT_REGISTRATION_LIMIT: u32 = 1;
pub const MAX_REGISTRATION_LIMIT: u32 = 1000;

/// An activation as stored (`ActivationsTable`).
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub activation_id: String,
    pub code_hash: String,
    pub description: String,
    pub default_instance_name: String,
    pub iam_role: String,
    pub registration_limit: u32,
    pub registrations_count: u32,
    pub expiration_date: f64,
    pub created_date: f64,
    pub tags: TagSet,
}

/// SSM's `CreateActivation` request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateActivationRequest {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub default_instance_name: Option<String>,
    #[serde(default)]
    pub iam_role: Option<String>,
    #[serde(default)]
    pub registration_limit: Option<i64>,
    #[serde(default)]
    pub expiration_date: Option<f64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// SSM's `Activation` as DescribeActivations returns it (never the code).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivationView {
    pub activation_id: String,
    pub description: String,
    pub default_instance_name: String,
    pub iam_role: String,
    pub registration_limit: u32,
    pub registrations_count: u32,
    pub expiration_date: f64,
    pub expired: bool,
    pub created_date: f64,
    pub tags: Vec<Tag>,
}

fn name_ok(s: &str) -> bool {
    s.chars().all(|c| {
        c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
    })
}

impl Activation {
    /// Validates a request and builds the activation and its code (returned
    /// once to the caller, never stored).
    pub fn create(req: &CreateActivationRequest, now: f64) -> Result<(Self, String), SsmError> {
        let description = req.description.clone().unwrap_or_default();
        if description.chars().count() > 256 {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256".into(),
            ));
        }
        let default_instance_name = req.default_instance_name.clone().unwrap_or_default();
        if default_instance_name.chars().count() > 256 || !name_ok(&default_instance_name) {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value at 'defaultInstanceName' failed to satisfy constraint: at most 256 letters, digits, spaces and _.:/=+-@".into(),
            ));
        }
        let iam_role = req.iam_role.clone().unwrap_or_default();
        if iam_role.chars().count() > 64 {
            return Err(SsmError::ValidationException(
                "1 validation error detected: Value at 'iamRole' failed to satisfy constraint: Member must have length less than or equal to 64".into(),
            ));
        }
        let limit = req
            .registration_limit
            .unwrap_or(DEFAULT_REGISTRATION_LIMIT as i64);
        if !(1..=MAX_REGISTRATION_LIMIT as i64).contains(&limit) {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{limit}' at 'registrationLimit' failed to satisfy constraint: Member must have value between 1 and {MAX_REGISTRATION_LIMIT}"
            )));
        }
        let expiration_date = match req.expiration_date {
            None => now + DEFAULT_EXPIRY_SECONDS,
            Some(t) if t <= now => {
                return Err(SsmError::InvalidParameters(
                    "ExpirationDate is in the past; give a date up to 30 days ahead, or none for 24 hours.".into(),
                ));
            }
            Some(t) if t > now + MAX_EXPIRY_SECONDS => {
                return Err(SsmError::InvalidParameters(
                    "ExpirationDate is more than 30 days ahead; an activation can last at most 30 days.".into(),
                ));
            }
            Some(t) => t,
        };
        let tags = tags::validate_tags(&req.tags)?;
        let code = ids::new_activation_code();
        Ok((
            Self {
                activation_id: ids::new_activation_id(),
                code_hash: code_hash(&code),
                description,
                default_instance_name,
                iam_role,
                registration_limit: limit as u32,
                registrations_count: 0,
                expiration_date,
                created_date: now,
                tags,
            },
            code,
        ))
    }

    pub fn is_expired(&self, now: f64) -> bool {
        now >= self.expiration_date
    }

    pub fn view(&self, now: f64) -> ActivationView {
        ActivationView {
            activation_id: self.activation_id.clone(),
            description: self.description.clone(),
            default_instance_name: self.default_instance_name.clone(),
            iam_role: self.iam_role.clone(),
            registration_limit: self.registration_limit,
            registrations_count: self.registrations_count,
            expiration_date: self.expiration_date,
            expired: self.is_expired(now),
            created_date: self.created_date,
            tags: tags::to_list(&self.tags),
        }
    }

    /// Whether `code` opens this activation now; the reason otherwise, in
    /// words that say what to do.
    pub fn admits(&self, code: &str, now: f64) -> Result<(), SsmError> {
        use subtle_eq::ct_eq;
        if !ct_eq(self.code_hash.as_bytes(), code_hash(code).as_bytes()) {
            return Err(invalid_activation());
        }
        if self.is_expired(now) {
            return Err(SsmError::InvalidActivation(format!(
                "Activation {} expired; create a new activation (aws ssm create-activation) and register with its id and code.",
                self.activation_id
            )));
        }
        if self.registrations_count >= self.registration_limit {
            return Err(SsmError::InvalidActivation(format!(
                "Activation {} reached its registration limit of {}; create a new activation with a higher --registration-limit.",
                self.activation_id, self.registration_limit
            )));
        }
        Ok(())
    }
}

/// The one answer for an unknown id or a wrong code: nothing tells which.
pub fn invalid_activation() -> SsmError {
    SsmError::InvalidActivation(
        "The activation id or code is not valid, or the activation expired or reached its registration limit. Check both values, or create a new activation (aws ssm create-activation).".into(),
    )
}

pub fn code_hash(code: &str) -> String {
    ids::sha256_hex(code.as_bytes())
}

mod subtle_eq {
    /// Equality without an early exit.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> CreateActivationRequest {
        CreateActivationRequest {
            default_instance_name: Some("web".into()),
            iam_role: Some("SSMServiceRole".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_ssm() {
        let (a, code) = Activation::create(&req(), 1000.0).unwrap();
        assert_eq!(a.registration_limit, 1);
        assert_eq!(a.expiration_date, 1000.0 + 86400.0);
        assert_eq!(code.len(), 20);
        assert_ne!(a.code_hash, code);
        assert!(a.admits(&code, 1001.0).is_ok());
        assert_eq!(
            a.admits("wrong", 1001.0).unwrap_err().code(),
            "InvalidActivation"
        );
        assert_eq!(
            a.admits(&code, 1000.0 + 86400.0).unwrap_err().code(),
            "InvalidActivation"
        );
        let full = Activation {
            registrations_count: 1,
            ..a.clone()
        };
        assert!(
            full.admits(&code, 1001.0)
                .unwrap_err()
                .to_string()
                .contains("registration limit")
        );
        assert!(!a.view(1001.0).expired);
        assert!(a.view(1e12).expired);
    }

    #[test]
    fn bounds_are_enforced() {
        let over = CreateActivationRequest {
            registration_limit: Some(1001),
            ..req()
        };
        assert_eq!(
            Activation::create(&over, 0.0).unwrap_err().code(),
            "ValidationException"
        );
        let zero = CreateActivationRequest {
            registration_limit: Some(0),
            ..req()
        };
        assert_eq!(
            Activation::create(&zero, 0.0).unwrap_err().code(),
            "ValidationException"
        );
        let max = CreateActivationRequest {
            registration_limit: Some(1000),
            ..req()
        };
        assert!(Activation::create(&max, 0.0).is_ok());
        let far = CreateActivationRequest {
            expiration_date: Some(31.0 * 86400.0),
            ..req()
        };
        assert_eq!(
            Activation::create(&far, 0.0).unwrap_err().code(),
            "InvalidParameters"
        );
        let past = CreateActivationRequest {
            expiration_date: Some(5.0),
            ..req()
        };
        assert_eq!(
            Activation::create(&past, 10.0).unwrap_err().code(),
            "InvalidParameters"
        );
        let bad_name = CreateActivationRequest {
            default_instance_name: Some("a|b".into()),
            ..req()
        };
        assert_eq!(
            Activation::create(&bad_name, 0.0).unwrap_err().code(),
            "ValidationException"
        );
    }
}
