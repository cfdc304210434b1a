//! Errors in IAM's vocabulary: the variant name is the `<Code>` a client
//! sees in IAM's `ErrorResponse`.

use thiserror::Error;

use crate::error::SsmError;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    ValidationError(String),
    #[error("{0}")]
    ConcurrentModification(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidClientTokenId(String),
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    MissingAuthenticationToken(String),
    #[error("{0}")]
    InvalidAction(String),
    #[error("{0}")]
    Throttling(String),
    /// A fault of ours; the message is generic, details go to the log.
    #[error("{0}")]
    ServiceFailure(String),
}

impl IamError {
    pub fn code(&self) -> &'static str {
        use IamError::*;
        match self {
            NoSuchEntity(_) => "NoSuchEntity",
            EntityAlreadyExists(_) => "EntityAlreadyExists",
            MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            LimitExceeded(_) => "LimitExceeded",
            DeleteConflict(_) => "DeleteConflict",
            ValidationError(_) => "ValidationError",
            ConcurrentModification(_) => "ConcurrentModification",
            AccessDenied(_) => "AccessDenied",
            InvalidClientTokenId(_) => "InvalidClientTokenId",
            SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
            IncompleteSignature(_) => "IncompleteSignature",
            MissingAuthenticationToken(_) => "MissingAuthenticationToken",
            InvalidAction(_) => "InvalidAction",
            Throttling(_) => "Throttling",
            ServiceFailure(_) => "ServiceFailure",
        }
    }

    /// IAM's HTTP status for the code.
    pub fn http_status(&self) -> u16 {
        use IamError::*;
        match self {
            NoSuchEntity(_) => 404,
            EntityAlreadyExists(_)
            | LimitExceeded(_)
            | DeleteConflict(_)
            | ConcurrentModification(_) => 409,
            AccessDenied(_)
            | InvalidClientTokenId(_)
            | SignatureDoesNotMatch(_)
            | MissingAuthenticationToken(_) => 403,
            MalformedPolicyDocument(_)
            | ValidationError(_)
            | IncompleteSignature(_)
            | InvalidAction(_)
            | Throttling(_) => 400,
            ServiceFailure(_) => 500,
        }
    }

    /// `Sender` (the request is at fault) or `Receiver` (we are).
    pub fn fault(&self) -> &'static str {
        match self {
            IamError::ServiceFailure(_) => "Receiver",
            _ => "Sender",
        }
    }

    pub fn service_failure() -> Self {
        IamError::ServiceFailure(
            "The request processing has failed because of an unknown error, exception or failure."
                .into(),
        )
    }

    pub fn no_such_user(name: &str) -> Self {
        IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
    }

    pub fn concurrent_modification() -> Self {
        IamError::ConcurrentModification(
            "The request was rejected because multiple requests to change this object were submitted simultaneously. Wait a few minutes and submit your request again.".into(),
        )
    }
}

/// The authenticator and authorizer speak SSM's errors; IAM answers with
/// its own codes for the same refusals.
impl From<SsmError> for IamError {
    fn from(e: SsmError) -> Self {
        match e {
            SsmError::AccessDeniedException(m) => IamError::AccessDenied(m),
            SsmError::UnrecognizedClientException(m) => IamError::InvalidClientTokenId(m),
            SsmError::InvalidSignatureException(m) => IamError::SignatureDoesNotMatch(m),
            SsmError::IncompleteSignature(m) => IamError::IncompleteSignature(m),
            SsmError::MissingAuthenticationToken(m) => IamError::MissingAuthenticationToken(m),
            SsmError::ThrottlingException(m) => IamError::Throttling(m),
            SsmError::InternalServerError(_) => IamError::service_failure(),
            other => IamError::ValidationError(other.to_string()),
        }
    }
}

/// For the authenticator, which reads users through the identity store.
impl From<IamError> for SsmError {
    fn from(e: IamError) -> Self {
        match e {
            IamError::Throttling(m) => SsmError::ThrottlingException(m),
            IamError::AccessDenied(m) => SsmError::AccessDeniedException(m),
            _ => SsmError::internal(),
        }
    }
}
