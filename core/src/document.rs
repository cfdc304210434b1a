//! Documents. For now the built-in `AWS-RunShellScript`, with SSM's own
//! parameters and rules; the general document model grows here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SsmError;

pub const RUN_SHELL_SCRIPT: &str = "AWS-RunShellScript";
pub const RUN_SHELL_SCRIPT_PLUGIN: &str = "aws:runShellScript";

/// SSM's default and bounds for `executionTimeout` (seconds).
pub const DEFAULT_EXECUTION_TIMEOUT: u32 = 3600;
pub const MAX_EXECUTION_TIMEOUT: u32 = 172_800;

/// SendCommand's `Parameters`: name → values.
pub type Parameters = BTreeMap<String, Vec<String>>;

/// One step the agent runs, with its inputs already interpolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStep {
    /// The name shown in CommandPlugins (`aws:runShellScript`).
    pub name: String,
    /// The plugin that runs it.
    pub action: String,
    pub run_command: Vec<String>,
    pub working_directory: String,
    pub timeout_seconds: u32,
}

/// A document resolved against SendCommand parameters: what the agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDocument {
    pub document_name: String,
    pub document_version: String,
    pub steps: Vec<PluginStep>,
}

/// Names the documents that exist. `AWS-RunShellScript` is built in.
pub fn resolve(
    name: &str,
    version: Option<&str>,
    params: &Parameters,
) -> Result<ResolvedDocument, SsmError> {
    // SSM accepts the ARN form for Amazon-owned documents too.
    let short = name.rsplit('/').next().unwrap_or(name);
    if short != RUN_SHELL_SCRIPT {
        return Err(SsmError::InvalidDocument(format!(
            "Document {name} does not exist; built-in documents: {RUN_SHELL_SCRIPT}."
        )));
    }
    match version {
        None | Some("$DEFAULT") | Some("$LATEST") | Some("1") => {}
        Some(v) => {
            return Err(SsmError::InvalidDocumentVersion(format!(
                "Document {RUN_SHELL_SCRIPT} has no version {v}; it has version 1."
            )));
        }
    }
    let step = run_shell_script_step(params)?;
    Ok(ResolvedDocument {
        document_name: RUN_SHELL_SCRIPT.into(),
        document_version: "1".into(),
        steps: vec![step],
    })
}

fn run_shell_script_step(params: &Parameters) -> Result<PluginStep, SsmError> {
    for key in params.keys() {
        if !matches!(
            key.as_str(),
            "commands" | "workingDirectory" | "executionTimeout"
        ) {
            return Err(SsmError::InvalidParameters(format!(
                "Parameter \"{key}\" is not defined by {RUN_SHELL_SCRIPT}; it takes commands, workingDirectory and executionTimeout."
            )));
        }
    }
    let commands = params.get("commands").cloned().unwrap_or_default();
    if commands.is_empty() {
        return Err(SsmError::InvalidParameters(
            "Parameter \"commands\" is required: give the shell commands to run.".into(),
        ));
    }
    let single = |key: &str| -> Result<Option<&String>, SsmError> {
        match params.get(key).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([one]) => Ok(Some(one)),
            Some(_) => Err(SsmError::InvalidParameters(format!(
                "Parameter \"{key}\" takes a single value."
            ))),
        }
    };
    let working_directory = single("workingDirectory")?.cloned().unwrap_or_default();
    let timeout_seconds = match single("executionTimeout")? {
        None => DEFAULT_EXECUTION_TIMEOUT,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_EXECUTION_TIMEOUT).contains(&n) && !s.starts_with('0') => n,
            _ => {
                return Err(SsmError::InvalidParameters(format!(
                    "Parameter \"executionTimeout\" value \"{s}\" is not a whole number of seconds from 1 to {MAX_EXECUTION_TIMEOUT}."
                )));
            }
        },
    };
    Ok(PluginStep {
        name: RUN_SHELL_SCRIPT_PLUGIN.into(),
        action: RUN_SHELL_SCRIPT_PLUGIN.into(),
        run_command: commands,
        working_directory,
        timeout_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &[&str])]) -> Parameters {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn run_shell_script_defaults() {
        let d = resolve(
            RUN_SHELL_SCRIPT,
            None,
            &params(&[("commands", &["uname -a"])]),
        )
        .unwrap();
        assert_eq!(d.steps.len(), 1);
        assert_eq!(d.steps[0].run_command, vec!["uname -a"]);
        assert_eq!(d.steps[0].timeout_seconds, 3600);
        assert_eq!(d.steps[0].working_directory, "");
    }

    #[test]
    fn parameters_are_checked() {
        let code = |p: Parameters| resolve(RUN_SHELL_SCRIPT, None, &p).unwrap_err().code();
        assert_eq!(code(params(&[])), "InvalidParameters");
        assert_eq!(
            code(params(&[("commands", &["x"]), ("color", &["red"])])),
            "InvalidParameters"
        );
        assert_eq!(
            code(params(&[
                ("commands", &["x"]),
                ("executionTimeout", &["0"])
            ])),
            "InvalidParameters"
        );
        assert_eq!(
            code(params(&[
                ("commands", &["x"]),
                ("executionTimeout", &["172801"])
            ])),
            "InvalidParameters"
        );
        assert_eq!(
            code(params(&[
                ("commands", &["x"]),
                ("workingDirectory", &["/a", "/b"])
            ])),
            "InvalidParameters"
        );
        let d = resolve(
            RUN_SHELL_SCRIPT,
            None,
            &params(&[
                ("commands", &["x"]),
                ("executionTimeout", &["5"]),
                ("workingDirectory", &["/tmp"]),
            ]),
        )
        .unwrap();
        assert_eq!(d.steps[0].timeout_seconds, 5);
        assert_eq!(d.steps[0].working_directory, "/tmp");
    }

    #[test]
    fn unknown_documents_and_versions() {
        let p = params(&[("commands", &["x"])]);
        assert_eq!(
            resolve("Nope", None, &p).unwrap_err().code(),
            "InvalidDocument"
        );
        assert_eq!(
            resolve(RUN_SHELL_SCRIPT, Some("7"), &p).unwrap_err().code(),
            "InvalidDocumentVersion"
        );
        assert!(
            resolve(
                "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
                Some("$LATEST"),
                &p
            )
            .is_ok()
        );
    }
}
