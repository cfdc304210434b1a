//! Reading a Command document: schema 2.2 (and 2.0) `mainSteps`, schema
//! 1.2 `runtimeConfig`, checked as SSM checks them when the document is
//! created.

use serde::Deserialize;
use serde_json::Value;

use super::declared_parameters::ParameterDefinition;
use super::format::{DocumentFormat, Ordered, check_size};
use super::interpolate::names_in;
use super::inventory_step::SoftwareInventoryStep;
use super::patch_step::PatchBaselineStep;
use super::plugins::{Action, Precondition, RunDocument, ShellScript};
use super::{Document, SchemaVersion, Step};
use crate::error::SsmError;

/// Steps one document may have (SSM does not say; this bounds the work a
/// command costs).
pub const MAX_STEPS: usize = 100;

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "a Command document: an object with schemaVersion"
)]
struct RawDocument {
    schema_version: Option<Value>,
    description: Option<String>,
    parameters: Option<Ordered<Value>>,
    main_steps: Option<Vec<RawStep>>,
    runtime_config: Option<Ordered<RawPlugin>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a step: an object with action, name and inputs"
)]
struct RawStep {
    action: Option<String>,
    name: Option<String>,
    precondition: Option<Value>,
    inputs: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a plugin: an object with properties")]
struct RawPlugin {
    properties: Option<Value>,
}

fn content(msg: String) -> SsmError {
    SsmError::InvalidDocumentContent(msg)
}

/// SSM's step names are the names of directories and S3 keys on the node.
pub fn is_step_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=128).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

pub(super) fn parse(content_text: &str, format: DocumentFormat) -> Result<Document, SsmError> {
    check_size(content_text)?;
    let raw: RawDocument = format.read(content_text)?;
    let schema_version = match &raw.schema_version {
        None => {
            return Err(SsmError::InvalidDocumentSchemaVersion(
                "The document has no schemaVersion; a Command document uses schemaVersion 2.2 (or 1.2, 2.0).".into(),
            ));
        }
        // `schemaVersion: 2.2` unquoted in YAML is a number; SSM's own
        // YAML examples quote it, but the intent is plain.
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(SsmError::InvalidDocumentSchemaVersion(format!(
                "schemaVersion {other} is not a version; a Command document uses \"2.2\" (or \"1.2\", \"2.0\")."
            )));
        }
    };
    let schema_version = SchemaVersion::parse(&schema_version).ok_or_else(|| {
        SsmError::InvalidDocumentSchemaVersion(format!(
            "Document schema version, {schema_version}, is not supported for Command documents. Use 2.2 (or 1.2, 2.0)."
        ))
    })?;

    let mut parameters: Vec<ParameterDefinition> = Vec::new();
    for (name, decl) in raw.parameters.map(|p| p.0).unwrap_or_default() {
        parameters.push(ParameterDefinition::parse(&name, &decl)?);
    }
    let type_of = |n: &str| {
        parameters
            .iter()
            .find(|d| d.name == n)
            .map(|d| d.parameter_type)
    };
    let declared = |n: &str| type_of(n).is_some();

    let steps = match schema_version {
        SchemaVersion::V1_2 => {
            if raw.main_steps.is_some() {
                return Err(content(
                    "A schemaVersion 1.2 document has runtimeConfig, not mainSteps: use schemaVersion 2.2 for mainSteps.".into(),
                ));
            }
            let plugins = raw.runtime_config.map(|r| r.0).unwrap_or_default();
            plugins
                .into_iter()
                .map(|(plugin, p)| v1_step(plugin, p, &type_of))
                .collect::<Result<Vec<_>, _>>()?
        }
        SchemaVersion::V2_0 | SchemaVersion::V2_2 => {
            if raw.runtime_config.is_some() {
                return Err(content(format!(
                    "A schemaVersion {} document has mainSteps, not runtimeConfig: use schemaVersion 1.2 for runtimeConfig.",
                    schema_version.as_str()
                )));
            }
            let mut steps = Vec::new();
            for (i, s) in raw.main_steps.unwrap_or_default().into_iter().enumerate() {
                let step = v2_step(i, s, schema_version, &type_of, &declared)?;
                if steps.iter().any(|t: &Step| t.name == step.name) {
                    return Err(content(format!(
                        "Step name \"{}\" is used twice: each step in mainSteps needs its own name.",
                        step.name
                    )));
                }
                steps.push(step);
            }
            steps
        }
    };
    if steps.is_empty() {
        return Err(content(match schema_version {
            SchemaVersion::V1_2 => "The document has no plugins: give runtimeConfig at least one plugin, e.g. aws:runShellScript.".into(),
            _ => "The document has no steps: give mainSteps at least one step, e.g. an aws:runShellScript step.".into(),
        }));
    }
    if steps.len() > MAX_STEPS {
        return Err(content(format!(
            "The document has {} steps; Steward runs at most {MAX_STEPS}.",
            steps.len()
        )));
    }
    for step in &steps {
        for name in names_in(&step.inputs) {
            if !declared(name) {
                return Err(content(format!(
                    "Parameter \"{name}\" is not declared. Step \"{}\" refers to {{{{ {name} }}}}: declare it under parameters, or remove the reference.",
                    step.name
                )));
            }
        }
    }
    Ok(Document {
        schema_version,
        description: raw.description.unwrap_or_default(),
        parameters,
        steps,
    })
}

fn v2_step(
    index: usize,
    raw: RawStep,
    schema_version: SchemaVersion,
    type_of: &dyn Fn(&str) -> Option<super::declared_parameters::ParameterType>,
    declared: &dyn Fn(&str) -> bool,
) -> Result<Step, SsmError> {
    let name = raw.name.ok_or_else(|| {
        content(format!(
            "Step {} of mainSteps has no name: give each step a name.",
            index + 1
        ))
    })?;
    if !is_step_name(&name) {
        return Err(content(format!(
            "Step name \"{name}\" is not valid: use 1 to 128 letters, digits, _ - and ., starting with a letter or digit."
        )));
    }
    let action = raw.action.ok_or_else(|| {
        content(format!(
            "Step \"{name}\" has no action: give the plugin it runs, e.g. aws:runShellScript."
        ))
    })?;
    let action = Action::parse(&name, &action)?;
    let precondition = match raw.precondition {
        None => None,
        Some(_) if schema_version != SchemaVersion::V2_2 => {
            return Err(content(format!(
                "Step \"{name}\": precondition is supported from schemaVersion 2.2; change the document's schemaVersion to 2.2."
            )));
        }
        Some(p) => Some(Precondition::parse(&name, &p, declared)?),
    };
    let inputs = raw.inputs.ok_or_else(|| {
        content(format!(
            "Step \"{name}\" has no inputs: an aws:runShellScript step needs runCommand."
        ))
    })?;
    match action {
        Action::RunShellScript | Action::RunPowerShellScript => {
            ShellScript::check_template(&name, &inputs, false, type_of)?
        }
        Action::RunDocument => RunDocument::check_template(&name, &inputs)?,
        Action::RunPatchBaseline => PatchBaselineStep::check_template(&name, &inputs)?,
        Action::SoftwareInventory => SoftwareInventoryStep::check_template(&name, &inputs)?,
    }
    Ok(Step {
        name,
        action,
        precondition,
        inputs,
    })
}

/// A schema 1.2 plugin: it runs as one step named after the plugin, as
/// SSM's CommandPlugins name it.
fn v1_step(
    plugin: String,
    raw: RawPlugin,
    type_of: &dyn Fn(&str) -> Option<super::declared_parameters::ParameterType>,
) -> Result<Step, SsmError> {
    let action = Action::parse(&plugin, &plugin)?;
    if action == Action::RunDocument {
        return Err(content(format!(
            "Plugin \"{plugin}\" needs schemaVersion 2.2: write it as a mainSteps step."
        )));
    }
    let inputs = match raw.properties {
        Some(Value::Array(mut items)) if items.len() == 1 => items.remove(0),
        Some(Value::Array(items)) if items.len() > 1 => {
            return Err(content(format!(
                "Plugin \"{plugin}\" has {} properties entries; Steward runs one per plugin: merge their runCommand lists.",
                items.len()
            )));
        }
        Some(obj @ Value::Object(_)) => obj,
        _ => {
            return Err(content(format!(
                "Plugin \"{plugin}\" needs properties: a list with one object holding runCommand."
            )));
        }
    };
    match action {
        Action::RunShellScript | Action::RunPowerShellScript => {
            ShellScript::check_template(&plugin, &inputs, true, type_of)?
        }
        Action::RunDocument => {}
        Action::RunPatchBaseline => PatchBaselineStep::check_template(&plugin, &inputs)?,
        // SSM: schema 2.0 or later.
        Action::SoftwareInventory => {
            return Err(SsmError::InvalidDocumentContent(format!(
                "Plugin \"{plugin}\": {} needs schemaVersion 2.0 or later.",
                action.as_str()
            )));
        }
    }
    Ok(Step {
        name: plugin,
        action,
        precondition: None,
        inputs,
    })
}
