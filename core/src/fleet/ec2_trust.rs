//! Whom the control plane believes when an EC2 instance registers: the
//! certificates its identity document must be signed under, and the accounts
//! whose instances may join.

use std::collections::BTreeSet;

use super::instance_identity::{IdentityCertificates, IdentityDocument, IdentityError};
use crate::error::SsmError;

/// The stack's EC2 trust, from its settings.
#[derive(Debug, Clone)]
pub struct Ec2Trust {
    /// A configured bundle that does not parse is kept as its error, so every
    /// EC2 registration says what is wrong rather than the function failing
    /// to start for the activation-registered fleet too.
    certificates: Result<IdentityCertificates, IdentityError>,
    allowed_accounts: BTreeSet<String>,
    region: String,
}

impl Ec2Trust {
    /// `certificates_pem` replaces AWS's published certificates when it is
    /// not blank; `allowed_accounts` are 12-digit account ids.
    pub fn new(certificates_pem: &str, region: &str, allowed_accounts: &[String]) -> Self {
        let certificates = if certificates_pem.trim().is_empty() {
            IdentityCertificates::published(region)
        } else {
            IdentityCertificates::from_pem(certificates_pem)
        };
        Self::with_certificates(certificates, region, allowed_accounts)
    }

    pub fn with_certificates(
        certificates: Result<IdentityCertificates, IdentityError>,
        region: &str,
        allowed_accounts: &[String],
    ) -> Self {
        Self {
            certificates,
            allowed_accounts: allowed_accounts
                .iter()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
            region: region.to_string(),
        }
    }

    /// The document, once its signature verifies, it is this region's and its
    /// account is allowed.
    pub fn admit(&self, document: &str, signature_b64: &str) -> Result<IdentityDocument, SsmError> {
        let certificates = self.certificates.as_ref().map_err(|e| {
            SsmError::AccessDeniedException(format!(
                "This Steward cannot verify EC2 instance identities: {e}. Set the stack's Ec2IdentityCertificates parameter to AWS's RSA certificate for {}.",
                self.region
            ))
        })?;
        let doc = certificates
            .verify(document, signature_b64)
            .map_err(|e| match e {
                IdentityError::Malformed(why) => SsmError::ValidationException(format!(
                    "The instance identity document is not one IMDS serves: {why}."
                )),
                _ => SsmError::InvalidSignatureException(format!(
                    "The instance identity document's signature does not verify against AWS's certificate for {}. Send the document and the signature exactly as IMDS served them.",
                    self.region
                )),
            })?;
        if doc.region != self.region {
            return Err(SsmError::ValidationException(format!(
                "The instance identity document is for region {}; this Steward runs in {}. Register the instance with the Steward in its own region.",
                doc.region, self.region
            )));
        }
        if !self.allowed_accounts.contains(&doc.account_id) {
            return Err(SsmError::AccessDeniedException(format!(
                "Account {} is not allowed to register EC2 instances with this Steward; add it to the stack's AllowedAccountIds parameter.",
                doc.account_id
            )));
        }
        if !crate::ids::is_instance_id(&doc.instance_id) || !doc.instance_id.starts_with("i-") {
            return Err(SsmError::ValidationException(
                "The instance identity document's instanceId is not an EC2 instance id (i- followed by hex digits).".into(),
            ));
        }
        Ok(doc)
    }
}
