//! Errors in SSM's vocabulary: the variant name is the `__type` a client sees.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SsmError {
    #[error("{0}")]
    InvalidInstanceId(String),
    #[error("{0}")]
    InvalidDocument(String),
    /// StartSession to a node that is not online.
    #[error("{0}")]
    TargetNotConnected(String),
    #[error("{0}")]
    InvalidDocumentVersion(String),
    #[error("{0}")]
    InvalidParameters(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InvalidCommandId(String),
    #[error("{0}")]
    InvocationDoesNotExist(String),
    #[error("{0}")]
    InvalidActivation(String),
    #[error("{0}")]
    InvalidActivationId(String),
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidFilterKey(String),
    #[error("{0}")]
    InvalidFilterValue(String),
    #[error("{0}")]
    InvalidInstanceInformationFilterValue(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    InvalidResourceId(String),
    #[error("{0}")]
    InvalidResourceType(String),
    #[error("{0}")]
    InvalidItemContentException(String),
    #[error("{0}")]
    TotalSizeLimitExceededException(String),
    #[error("{0}")]
    ComplianceTypeCountLimitExceededException(String),
    #[error("{0}")]
    InvalidOutputFolder(String),
    /// CreateAssociation/UpdateAssociation: an OutputLocation that cannot be used.
    #[error("{0}")]
    InvalidOutputLocation(String),
    #[error("{0}")]
    TooManyTagsError(String),
    #[error("{0}")]
    DuplicateInstanceId(String),
    #[error("{0}")]
    ValidationException(String),
    #[error("{0}")]
    AccessDeniedException(String),
    #[error("{0}")]
    UnrecognizedClientException(String),
    #[error("{0}")]
    InvalidSignatureException(String),
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    MissingAuthenticationToken(String),
    #[error("{0}")]
    InvalidAction(String),
    #[error("{0}")]
    SerializationException(String),
    #[error("{0}")]
    ThrottlingException(String),
    #[error("{0}")]
    TooManyUpdates(String),
    #[error("{0}")]
    ParameterNotFound(String),
    #[error("{0}")]
    ParameterAlreadyExists(String),
    #[error("{0}")]
    ParameterVersionNotFound(String),
    #[error("{0}")]
    ParameterVersionLabelLimitExceeded(String),
    #[error("{0}")]
    ParameterMaxVersionLimitExceeded(String),
    #[error("{0}")]
    ParameterPatternMismatchException(String),
    #[error("{0}")]
    ParameterLimitExceeded(String),
    #[error("{0}")]
    HierarchyLevelLimitExceededException(String),
    #[error("{0}")]
    HierarchyTypeMismatchException(String),
    #[error("{0}")]
    InvalidAllowedPatternException(String),
    #[error("{0}")]
    InvalidKeyId(String),
    #[error("{0}")]
    UnsupportedParameterType(String),
    #[error("{0}")]
    InvalidPolicyTypeException(String),
    #[error("{0}")]
    InvalidPolicyAttributeException(String),
    #[error("{0}")]
    IncompatiblePolicyException(String),
    #[error("{0}")]
    PoliciesLimitExceededException(String),
    #[error("{0}")]
    InvalidFilterOption(String),
    #[error("{0}")]
    InvalidDocumentContent(String),
    #[error("{0}")]
    InvalidDocumentSchemaVersion(String),
    #[error("{0}")]
    InvalidDocumentType(String),
    #[error("{0}")]
    InvalidDocumentOperation(String),
    #[error("{0}")]
    DocumentAlreadyExists(String),
    #[error("{0}")]
    DuplicateDocumentContent(String),
    #[error("{0}")]
    DuplicateDocumentVersionName(String),
    #[error("{0}")]
    DocumentLimitExceeded(String),
    #[error("{0}")]
    DocumentVersionLimitExceeded(String),
    #[error("{0}")]
    MaxDocumentSizeExceeded(String),
    #[error("{0}")]
    UnsupportedPlatformType(String),
    #[error("{0}")]
    AutomationDefinitionNotFoundException(String),
    #[error("{0}")]
    AutomationDefinitionVersionNotFoundException(String),
    #[error("{0}")]
    InvalidAutomationExecutionParametersException(String),
    #[error("{0}")]
    AutomationExecutionNotFoundException(String),
    #[error("{0}")]
    InvalidAutomationSignalException(String),
    #[error("{0}")]
    InvalidAutomationStatusUpdateException(String),
    #[error("{0}")]
    AutomationExecutionLimitExceededException(String),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    #[error("{0}")]
    UnsupportedOperatingSystem(String),
    #[error("{0}")]
    DoesNotExistException(String),
    #[error("{0}")]
    ResourceInUseException(String),
    #[error("{0}")]
    TargetInUseException(String),
    #[error("{0}")]
    AssociationDoesNotExist(String),
    #[error("{0}")]
    AssociationAlreadyExists(String),
    #[error("{0}")]
    InvalidAssociationVersion(String),
    #[error("{0}")]
    AssociationVersionLimitExceeded(String),
    #[error("{0}")]
    AssociationExecutionDoesNotExist(String),
    #[error("{0}")]
    AlreadyExistsException(String),
    // Inventory.
    #[error("{0}")]
    InvalidTypeNameException(String),
    #[error("{0}")]
    ItemSizeLimitExceededException(String),
    #[error("{0}")]
    CustomSchemaCountLimitExceededException(String),
    #[error("{0}")]
    UnsupportedInventorySchemaVersionException(String),
    #[error("{0}")]
    UnsupportedInventoryItemContextException(String),
    #[error("{0}")]
    ItemContentMismatchException(String),
    #[error("{0}")]
    InvalidAggregatorException(String),
    #[error("{0}")]
    InvalidResultAttributeException(String),
    #[error("{0}")]
    InvalidOptionException(String),
    // State Manager: an association's schedule expression.
    #[error("{0}")]
    InvalidSchedule(String),
    /// A fault of ours, never of the caller's input. The message is generic on
    /// purpose: details go to the log, not to the client.
    #[error("{0}")]
    InternalServerError(String),
}

impl SsmError {
    /// The `__type` of SSM's JSON 1.1 error body.
    pub fn code(&self) -> &'static str {
        use SsmError::*;
        match self {
            InvalidInstanceId(_) => "InvalidInstanceId",
            InvalidDocument(_) => "InvalidDocument",
            TargetNotConnected(_) => "TargetNotConnected",
            InvalidDocumentVersion(_) => "InvalidDocumentVersion",
            InvalidParameters(_) => "InvalidParameters",
            InvalidTarget(_) => "InvalidTarget",
            InvalidCommandId(_) => "InvalidCommandId",
            InvocationDoesNotExist(_) => "InvocationDoesNotExist",
            InvalidActivation(_) => "InvalidActivation",
            InvalidActivationId(_) => "InvalidActivationId",
            InvalidFilter(_) => "InvalidFilter",
            InvalidFilterKey(_) => "InvalidFilterKey",
            InvalidFilterValue(_) => "InvalidFilterValue",
            InvalidInstanceInformationFilterValue(_) => "InvalidInstanceInformationFilterValue",
            InvalidNextToken(_) => "InvalidNextToken",
            InvalidResourceId(_) => "InvalidResourceId",
            InvalidResourceType(_) => "InvalidResourceType",
            InvalidItemContentException(_) => "InvalidItemContentException",
            TotalSizeLimitExceededException(_) => "TotalSizeLimitExceededException",
            ComplianceTypeCountLimitExceededException(_) => {
                "ComplianceTypeCountLimitExceededException"
            }
            InvalidOutputFolder(_) => "InvalidOutputFolder",
            InvalidOutputLocation(_) => "InvalidOutputLocation",
            TooManyTagsError(_) => "TooManyTagsError",
            DuplicateInstanceId(_) => "DuplicateInstanceId",
            ValidationException(_) => "ValidationException",
            AccessDeniedException(_) => "AccessDeniedException",
            UnrecognizedClientException(_) => "UnrecognizedClientException",
            InvalidSignatureException(_) => "InvalidSignatureException",
            IncompleteSignature(_) => "IncompleteSignature",
            MissingAuthenticationToken(_) => "MissingAuthenticationToken",
            InvalidAction(_) => "InvalidAction",
            SerializationException(_) => "SerializationException",
            ThrottlingException(_) => "ThrottlingException",
            TooManyUpdates(_) => "TooManyUpdates",
            ParameterNotFound(_) => "ParameterNotFound",
            ParameterAlreadyExists(_) => "ParameterAlreadyExists",
            ParameterVersionNotFound(_) => "ParameterVersionNotFound",
            ParameterVersionLabelLimitExceeded(_) => "ParameterVersionLabelLimitExceeded",
            ParameterMaxVersionLimitExceeded(_) => "ParameterMaxVersionLimitExceeded",
            ParameterPatternMismatchException(_) => "ParameterPatternMismatchException",
            ParameterLimitExceeded(_) => "ParameterLimitExceeded",
            HierarchyLevelLimitExceededException(_) => "HierarchyLevelLimitExceededException",
            HierarchyTypeMismatchException(_) => "HierarchyTypeMismatchException",
            InvalidAllowedPatternException(_) => "InvalidAllowedPatternException",
            InvalidKeyId(_) => "InvalidKeyId",
            UnsupportedParameterType(_) => "UnsupportedParameterType",
            InvalidPolicyTypeException(_) => "InvalidPolicyTypeException",
            InvalidPolicyAttributeException(_) => "InvalidPolicyAttributeException",
            IncompatiblePolicyException(_) => "IncompatiblePolicyException",
            PoliciesLimitExceededException(_) => "PoliciesLimitExceededException",
            InvalidFilterOption(_) => "InvalidFilterOption",
            InvalidDocumentContent(_) => "InvalidDocumentContent",
            InvalidDocumentSchemaVersion(_) => "InvalidDocumentSchemaVersion",
            InvalidDocumentType(_) => "InvalidDocumentType",
            InvalidDocumentOperation(_) => "InvalidDocumentOperation",
            DocumentAlreadyExists(_) => "DocumentAlreadyExists",
            DuplicateDocumentContent(_) => "DuplicateDocumentContent",
            DuplicateDocumentVersionName(_) => "DuplicateDocumentVersionName",
            DocumentLimitExceeded(_) => "DocumentLimitExceeded",
            DocumentVersionLimitExceeded(_) => "DocumentVersionLimitExceeded",
            MaxDocumentSizeExceeded(_) => "MaxDocumentSizeExceeded",
            UnsupportedPlatformType(_) => "UnsupportedPlatformType",
            AutomationDefinitionNotFoundException(_) => "AutomationDefinitionNotFoundException",
            AutomationDefinitionVersionNotFoundException(_) => {
                "AutomationDefinitionVersionNotFoundException"
            }
            InvalidAutomationExecutionParametersException(_) => {
                "InvalidAutomationExecutionParametersException"
            }
            AutomationExecutionNotFoundException(_) => "AutomationExecutionNotFoundException",
            InvalidAutomationSignalException(_) => "InvalidAutomationSignalException",
            InvalidAutomationStatusUpdateException(_) => "InvalidAutomationStatusUpdateException",
            AutomationExecutionLimitExceededException(_) => {
                "AutomationExecutionLimitExceededException"
            }
            IdempotentParameterMismatch(_) => "IdempotentParameterMismatch",
            UnsupportedOperatingSystem(_) => "UnsupportedOperatingSystem",
            DoesNotExistException(_) => "DoesNotExistException",
            ResourceInUseException(_) => "ResourceInUseException",
            TargetInUseException(_) => "TargetInUseException",
            AssociationDoesNotExist(_) => "AssociationDoesNotExist",
            AssociationAlreadyExists(_) => "AssociationAlreadyExists",
            InvalidAssociationVersion(_) => "InvalidAssociationVersion",
            AssociationVersionLimitExceeded(_) => "AssociationVersionLimitExceeded",
            AssociationExecutionDoesNotExist(_) => "AssociationExecutionDoesNotExist",
            AlreadyExistsException(_) => "AlreadyExistsException",
            InvalidTypeNameException(_) => "InvalidTypeNameException",
            ItemSizeLimitExceededException(_) => "ItemSizeLimitExceededException",
            CustomSchemaCountLimitExceededException(_) => "CustomSchemaCountLimitExceededException",
            UnsupportedInventorySchemaVersionException(_) => {
                "UnsupportedInventorySchemaVersionException"
            }
            UnsupportedInventoryItemContextException(_) => {
                "UnsupportedInventoryItemContextException"
            }
            ItemContentMismatchException(_) => "ItemContentMismatchException",
            InvalidAggregatorException(_) => "InvalidAggregatorException",
            InvalidResultAttributeException(_) => "InvalidResultAttributeException",
            InvalidOptionException(_) => "InvalidOptionException",
            InvalidSchedule(_) => "InvalidSchedule",
            InternalServerError(_) => "InternalServerError",
        }
    }

    /// The HTTP status SSM answers with for this error.
    pub fn http_status(&self) -> u16 {
        use SsmError::*;
        match self {
            InternalServerError(_) => 500,
            // SSM (a JSON 1.1 "Coral" service) answers authentication and
            // authorization failures with 400, not 403.
            _ => 400,
        }
    }

    pub fn internal() -> Self {
        SsmError::InternalServerError(
            "An internal error occurred; retry the request. If it persists, check the control plane logs."
                .into(),
        )
    }
}

/// Reads an operation's request body into its input shape. Serde's message
/// names the field and type that do not fit; SSM answers such bodies with
/// SerializationException.
pub fn parse_request<T: serde::de::DeserializeOwned>(
    body: &serde_json::Value,
) -> Result<T, SsmError> {
    serde_json::from_value(body.clone()).map_err(|e| {
        SsmError::SerializationException(format!(
            "The request does not match the operation's input shape: {e}"
        ))
    })
}
