//! SSM's `DocumentType`s Steward stores, and a document's content read as
//! its type says: a Command document runs on nodes (SendCommand), an
//! Automation runbook runs in the control plane (StartAutomationExecution).

use super::Document;
use super::declared_parameters::ParameterDefinition;
use super::format::DocumentFormat;
use crate::automation::Runbook;
use crate::error::SsmError;
use crate::sessions::documents::SessionDocument;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Command,
    Automation,
    /// Session Manager's: SSM-SessionManagerRunShell holds the account's
    /// preferences (`crate::sessions::documents`).
    Session,
}

/// SSM's other document types, which Steward does not store.
const OTHERS: [&str; 11] = [
    "Policy",
    "Package",
    "ApplicationConfiguration",
    "ApplicationConfigurationSchema",
    "DeploymentStrategy",
    "ChangeCalendar",
    "Automation.ChangeTemplate",
    "ProblemAnalysis",
    "ProblemAnalysisTemplate",
    "CloudFormation",
    "ConformancePackTemplate",
];

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Command => "Command",
            DocumentType::Automation => "Automation",
            DocumentType::Session => "Session",
        }
    }

    /// CreateDocument's `DocumentType` (absent means Command, as in SSM).
    pub fn from_wire(value: Option<&str>) -> Result<Self, SsmError> {
        match value {
            None | Some("Command") => Ok(DocumentType::Command),
            Some("Automation") => Ok(DocumentType::Automation),
            Some("Session") => Ok(DocumentType::Session),
            Some(other) if OTHERS.contains(&other) || other == "QuickSetup" => {
                Err(SsmError::InvalidDocumentContent(format!(
                    "DocumentType {other} is not supported: Steward stores Command documents, Automation runbooks and Session documents. Give DocumentType Command, Automation or Session."
                )))
            }
            Some(other) => Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'documentType' failed to satisfy constraint: Member must satisfy enum value set: [Command, Policy, Automation, Session, Package, ApplicationConfiguration, ApplicationConfigurationSchema, DeploymentStrategy, ChangeCalendar, Automation.ChangeTemplate, ProblemAnalysis, ProblemAnalysisTemplate, CloudFormation, ConformancePackTemplate, QuickSetup]"
            ))),
        }
    }

    /// A stored head's type; heads written before runbooks existed have
    /// none and are Command documents.
    pub fn stored(value: &str) -> Self {
        match value {
            "Automation" => DocumentType::Automation,
            "Session" => DocumentType::Session,
            _ => DocumentType::Command,
        }
    }
}

/// A document's content, read and checked as its type says.
#[derive(Debug, Clone)]
pub enum Content {
    Command(Document),
    Automation(Runbook),
    Session(SessionDocument),
}

impl Content {
    pub fn parse(t: DocumentType, content: &str, format: DocumentFormat) -> Result<Self, SsmError> {
        match t {
            DocumentType::Command => Document::parse(content, format).map(Content::Command),
            DocumentType::Automation => Runbook::parse(content, format).map(Content::Automation),
            DocumentType::Session => SessionDocument::parse(content, format).map(Content::Session),
        }
    }

    pub fn document_type(&self) -> DocumentType {
        match self {
            Content::Command(_) => DocumentType::Command,
            Content::Automation(_) => DocumentType::Automation,
            Content::Session(_) => DocumentType::Session,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Content::Command(d) => &d.description,
            Content::Automation(r) => &r.description,
            Content::Session(d) => &d.description,
        }
    }

    pub fn parameters(&self) -> &[ParameterDefinition] {
        match self {
            Content::Command(d) => &d.parameters,
            Content::Automation(r) => &r.parameters,
            Content::Session(d) => &d.parameters,
        }
    }

    pub fn schema_version(&self) -> &'static str {
        match self {
            Content::Command(d) => d.schema_version.as_str(),
            Content::Automation(_) => crate::automation::runbook::SCHEMA_VERSION,
            Content::Session(_) => "1.0",
        }
    }

    /// A runbook runs in the control plane, whatever its nodes run: SSM
    /// lists every platform for Automation documents.
    pub fn platform_types(&self) -> Vec<&'static str> {
        match self {
            Content::Command(d) => d.platform_types(),
            Content::Automation(_) | Content::Session(_) => vec!["Windows", "Linux", "MacOS"],
        }
    }
}
