//! SSM Command documents: content in JSON or YAML, typed parameters, steps
//! with preconditions, and what a node runs once a command's parameters are
//! known.
//!
//! [`Document::parse`] checks a document as SSM does when it is created;
//! [`Document::validate_parameters`] checks SendCommand's `Parameters`
//! against it; [`Document::steps_for`] gives one node's steps, interpolated,
//! with those a precondition rules out marked skipped. `{{ssm:…}}` and
//! `{{ssm-secure:…}}` references pass through untouched: they are checked and
//! resolved by [`crate::parameters::references`].

pub mod builtin;
mod command_document;
pub mod context;
mod create;
pub mod declared_parameters;
mod delete;
mod describe;
pub mod document_type;
pub mod format;
pub mod interpolate;
pub mod inventory_step;
mod listing;
pub mod nested;
pub mod operations;
pub mod patch_step;
pub mod plugins;
pub mod store;
pub mod tagging;
mod update;

use serde_json::Value;

pub use command_document::{MAX_STEPS, is_step_name};
pub use declared_parameters::{
    GivenParameters, ParamValue, ParameterDefinition, ParameterType, ResolvedParameters,
};
pub use document_type::{Content, DocumentType};
pub use format::{DocumentFormat, HASH_TYPE, MAX_CONTENT_BYTES, content_hash};
pub use inventory_step::SoftwareInventoryStep;
pub use patch_step::PatchBaselineStep;
pub use plugins::{Action, OnFailure, Precondition, RunDocument, ShellScript, StepControl};

use crate::channel::PluginStep;
use crate::error::SsmError;
use crate::patching::step::PatchStepInput;

/// The Command document schema versions SSM accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    V1_2,
    V2_0,
    V2_2,
}

impl SchemaVersion {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "1.2" => Some(SchemaVersion::V1_2),
            "2.0" => Some(SchemaVersion::V2_0),
            "2.2" => Some(SchemaVersion::V2_2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaVersion::V1_2 => "1.2",
            SchemaVersion::V2_0 => "2.0",
            SchemaVersion::V2_2 => "2.2",
        }
    }

    /// Schema 2.2 skips a step whose plugin does not run on the node; older
    /// schemas fail it (SSM's cross-platform rule).
    pub fn is_cross_platform(self) -> bool {
        self == SchemaVersion::V2_2
    }
}

/// One step as the document writes it.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's name (schema 2.x) or the plugin's (schema 1.2): the name
    /// CommandPlugins shows.
    pub name: String,
    pub action: Action,
    pub precondition: Option<Precondition>,
    /// As written, placeholders included.
    pub inputs: Value,
}

/// A Command document, checked.
#[derive(Debug, Clone)]
pub struct Document {
    pub schema_version: SchemaVersion,
    pub description: String,
    /// In the order the document declares them.
    pub parameters: Vec<ParameterDefinition>,
    pub steps: Vec<Step>,
}

/// What becomes of one step on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Run(ShellScript),
    /// A patch Scan or Install; the node's baseline is added at dispatch.
    RunPatchBaseline(PatchBaselineStep),
    /// An inventory gather, run natively by the agent.
    SoftwareInventory(SoftwareInventoryStep),
    /// Runs another document: SendCommand replaces the step with that
    /// document's steps ([`nested::expand`]).
    RunDocument(RunDocument),
    /// Not run; `output` is SSM Agent's message for it.
    Skipped {
        output: String,
    },
    /// Not run, and the step fails with `output` (schema 1.2/2.0 on a
    /// platform the plugin does not run on).
    Failed {
        output: String,
    },
}

/// One step of one command on one node, its inputs interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStep {
    /// The CommandPlugins name.
    pub name: String,
    pub action: Action,
    pub outcome: StepOutcome,
}

/// The StatusDetails SSM Agent reports for a skipped step.
pub const SKIPPED: &str = "Skipped";

impl ResolvedStep {
    /// The step in the agent's current message shape, if it runs.
    pub fn plugin_step(&self) -> Option<PluginStep> {
        match &self.outcome {
            StepOutcome::Run(s) => Some(PluginStep {
                name: self.name.clone(),
                action: self.action.as_str().to_string(),
                run_command: s.run_command.clone(),
                working_directory: s.working_directory.clone(),
                timeout_seconds: s.timeout_seconds,
                patch: None,
                inventory: None,
            }),
            StepOutcome::RunPatchBaseline(p) => Some(PluginStep {
                name: self.name.clone(),
                action: self.action.as_str().to_string(),
                run_command: Vec::new(),
                working_directory: String::new(),
                timeout_seconds: p.timeout_seconds,
                // Completed for each node at dispatch.
                patch: Some(PatchStepInput {
                    operation: p.operation,
                    reboot_option: p.reboot_option,
                    baseline_id: String::new(),
                    baseline: serde_json::Value::Null,
                    patch_group: None,
                    snapshot_id: p.snapshot_id.clone(),
                }),
                inventory: None,
            }),
            StepOutcome::SoftwareInventory(i) => Some(PluginStep {
                name: self.name.clone(),
                action: self.action.as_str().to_string(),
                run_command: Vec::new(),
                working_directory: String::new(),
                timeout_seconds: i.timeout_seconds,
                patch: None,
                inventory: Some(i.gather),
            }),
            _ => None,
        }
    }
}

impl Document {
    /// Reads and checks `content` as SSM does at CreateDocument: well-formed,
    /// a supported schemaVersion, valid parameter declarations, at least one
    /// step, unique step names, runnable actions, every `{{ name }}` declared.
    pub fn parse(content: &str, format: DocumentFormat) -> Result<Document, SsmError> {
        command_document::parse(content, format)
    }

    pub fn parameter(&self, name: &str) -> Option<&ParameterDefinition> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// SendCommand's `Parameters` checked against the declarations, with
    /// the defaults filled in.
    pub fn validate_parameters(
        &self,
        given: &GivenParameters,
    ) -> Result<ResolvedParameters, SsmError> {
        declared_parameters::validate(&self.parameters, given)
    }

    /// The steps for a node of `platform` (`Linux`, `MacOS`, `Windows`), in
    /// order. Every step's inputs are interpolated and checked whatever the
    /// platform, so an error here does not depend on the node: calling it
    /// once at SendCommand validates the command for all of them.
    pub fn steps_for(
        &self,
        params: &ResolvedParameters,
        platform: &str,
    ) -> Result<Vec<ResolvedStep>, SsmError> {
        let v1 = self.schema_version == SchemaVersion::V1_2;
        let mut out = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let inputs = interpolate::interpolate(&step.inputs, &|n: &str| params.get(n));
            let run = match step.action {
                Action::RunShellScript => {
                    StepOutcome::Run(ShellScript::resolve(&step.name, &inputs, v1)?)
                }
                Action::RunDocument => {
                    StepOutcome::RunDocument(RunDocument::resolve(&step.name, &inputs)?)
                }
                Action::RunPatchBaseline => {
                    StepOutcome::RunPatchBaseline(PatchBaselineStep::resolve(&step.name, &inputs)?)
                }
                Action::SoftwareInventory => StepOutcome::SoftwareInventory(
                    SoftwareInventoryStep::resolve(&step.name, &inputs)?,
                ),
                Action::RunPowerShellScript => {
                    // Checked like any step, so a bad value is refused at
                    // SendCommand; no Steward agent runs PowerShell.
                    ShellScript::resolve(&step.name, &inputs, v1)?;
                    StepOutcome::Failed {
                        output: format!(
                            "Steward's agent runs on Linux and macOS and does not run {}. Step name: {}",
                            step.action.as_str(),
                            step.name
                        ),
                    }
                }
            };
            let action = step.action.as_str();
            let outcome = if !step.action.runs_on(platform) {
                if self.schema_version.is_cross_platform() {
                    StepOutcome::Skipped {
                        output: format!(
                            "Step execution skipped due to unsupported plugin: {action}. Step name: {}",
                            step.name
                        ),
                    }
                } else {
                    StepOutcome::Failed {
                        output: format!(
                            "Plugin with name {action} is not supported in current platform. Step name: {}",
                            step.name
                        ),
                    }
                }
            } else if let Some(p) = step
                .precondition
                .as_ref()
                .filter(|p| !p.holds(platform, params))
            {
                StepOutcome::Skipped {
                    output: format!(
                        "Step execution skipped due to unsatisfied preconditions: '{}'. Step name: {}",
                        p.display(),
                        step.name
                    ),
                }
            } else {
                run
            };
            out.push(ResolvedStep {
                name: step.name.clone(),
                action: step.action,
                outcome,
            });
        }
        Ok(out)
    }

    /// DescribeDocument's `PlatformTypes`: where every step's plugin runs.
    pub fn platform_types(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for step in &self.steps {
            for p in step.action.platforms() {
                if !out.contains(p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

/// SSM's pattern for a document name (CreateDocument `Name`).
pub fn is_document_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks a name for a new document: SSM's pattern, and none of the
/// prefixes SSM keeps for its own documents.
pub fn check_new_document_name(name: &str) -> Result<(), SsmError> {
    if !is_document_name(name) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{{3,128}}$"
        )));
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "amazon", "amzn"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(SsmError::ValidationException(format!(
            "Document name {name} is not valid: names that begin with aws, amazon or amzn are reserved. Choose another name."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
