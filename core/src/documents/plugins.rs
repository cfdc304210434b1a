//! The actions (plugins) a Command document's steps name, the inputs of the
//! ones Steward runs (`aws:runShellScript`, and `aws:runDocument`, which
//! SendCommand expands into the named document's steps), and step
//! preconditions.
//!
//! `aws:runPowerShellScript` is accepted and checked as SSM checks it, but
//! it is a Windows plugin and Steward's agent runs on Linux and macOS: on
//! them SSM skips such a step (schema 2.2) or fails it (1.2), and so does
//! Steward. This is what lets SSM's cross-platform documents run unmodified.
//!
//! Every other SSM plugin is refused when the document is read, naming the
//! step: a document whose steps Steward would not run must not look as if
//! it ran.

use serde_json::{Map, Value};

use super::declared_parameters::{GivenParameters, ParameterType, ResolvedParameters};
use super::interpolate::{interpolate_text, placeholders, whole_placeholder};
use super::is_document_name;
use crate::error::SsmError;
use crate::parameters::references;

pub const RUN_SHELL_SCRIPT: &str = "aws:runShellScript";
/// SSM's default and bounds for a step's `timeoutSeconds` / `executionTimeout`.
pub const DEFAULT_EXECUTION_TIMEOUT: u32 = 3600;
pub const MAX_EXECUTION_TIMEOUT: u32 = 172_800;
pub const RUN_DOCUMENT: &str = "aws:runDocument";
pub const RUN_POWERSHELL_SCRIPT: &str = "aws:runPowerShellScript";
pub use crate::inventory::step::SOFTWARE_INVENTORY;
pub use crate::patching::step::RUN_PATCH_BASELINE;

/// SSM's Command document plugins that Steward does not run yet.
pub const NOT_RUN_YET: [&str; 12] = [
    "aws:applications",
    "aws:cloudWatch",
    "aws:configureDocker",
    "aws:configurePackage",
    "aws:domainJoin",
    "aws:downloadContent",
    "aws:psModule",
    "aws:refreshAssociation",
    "aws:runDockerAction",
    "aws:updateAgent",
    "aws:updateSsmAgent",
    "aws:configureContainers",
];

/// The platform types SSM knows (`PlatformType`).
pub const PLATFORM_TYPES: [&str; 3] = ["Windows", "Linux", "MacOS"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    RunShellScript,
    RunDocument,
    /// Windows only: checked, never run by a Steward agent.
    RunPowerShellScript,
    /// Patch Manager's Scan or Install, run natively by the agent (apt).
    RunPatchBaseline,
    /// Inventory, gathered natively by the agent.
    SoftwareInventory,
}

impl Action {
    /// The action a step names, if Steward runs it.
    pub fn parse(step: &str, action: &str) -> Result<Self, SsmError> {
        if action == RUN_SHELL_SCRIPT {
            return Ok(Action::RunShellScript);
        }
        if action == RUN_DOCUMENT {
            return Ok(Action::RunDocument);
        }
        if action == RUN_POWERSHELL_SCRIPT {
            return Ok(Action::RunPowerShellScript);
        }
        if action == RUN_PATCH_BASELINE {
            return Ok(Action::RunPatchBaseline);
        }
        if action == SOFTWARE_INVENTORY {
            return Ok(Action::SoftwareInventory);
        }
        if NOT_RUN_YET.contains(&action) {
            return Err(SsmError::InvalidDocumentContent(format!(
                "Step \"{step}\" uses {action}, which Steward does not run yet. Steward runs {RUN_SHELL_SCRIPT} and {RUN_DOCUMENT} steps only: rewrite the step as a shell script, or remove it."
            )));
        }
        Err(SsmError::InvalidDocumentContent(format!(
            "Step \"{step}\" uses action \"{action}\", which is not a Command document plugin. Steward runs {RUN_SHELL_SCRIPT} steps."
        )))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::RunShellScript => RUN_SHELL_SCRIPT,
            Action::RunDocument => RUN_DOCUMENT,
            Action::RunPowerShellScript => RUN_POWERSHELL_SCRIPT,
            Action::RunPatchBaseline => RUN_PATCH_BASELINE,
            Action::SoftwareInventory => SOFTWARE_INVENTORY,
        }
    }

    /// The platform types the plugin runs on (SSM: Linux and macOS).
    pub fn platforms(self) -> &'static [&'static str] {
        match self {
            Action::RunShellScript => &["Linux", "MacOS"],
            // Expanded at SendCommand: the child's steps decide.
            Action::RunDocument => &PLATFORM_TYPES,
            Action::RunPowerShellScript => &["Windows"],
            // Through apt: Debian and Ubuntu nodes.
            Action::RunPatchBaseline => &["Linux"],
            // dpkg, systemd units and /sys: Linux nodes.
            Action::SoftwareInventory => &["Linux"],
        }
    }

    pub fn runs_on(self, platform: &str) -> bool {
        self.platforms()
            .iter()
            .any(|p| p.eq_ignore_ascii_case(platform))
    }
}

/// What a step's `onFailure` / `onSuccess` / `finallyStep` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepControl {
    pub on_failure: Option<OnFailure>,
    pub on_success_exit: bool,
    pub finally_step: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the document; the step stays failed.
    Exit,
    /// Stop the document; the step is reported successful.
    SuccessAndExit,
}

/// An `aws:runShellScript` step's inputs, interpolated and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellScript {
    pub run_command: Vec<String>,
    pub working_directory: String,
    pub timeout_seconds: u32,
    pub control: StepControl,
}

/// Reads inputs either as written (`Template`: a string holding a
/// placeholder is checked once its value is known) or once interpolated.
#[derive(Clone, Copy)]
pub(crate) enum Mode<'a> {
    Template {
        types: &'a dyn Fn(&str) -> Option<ParameterType>,
    },
    Resolved,
}

const SHARED_INPUTS: [&str; 3] = ["onFailure", "onSuccess", "finallyStep"];

impl ShellScript {
    /// Checks the inputs as written in the document (errors are
    /// InvalidDocumentContent). `v1` for a schema 1.2 `properties` entry.
    pub(crate) fn check_template(
        step: &str,
        inputs: &Value,
        v1: bool,
        types: &dyn Fn(&str) -> Option<ParameterType>,
    ) -> Result<(), SsmError> {
        Self::read(step, inputs, v1, Mode::Template { types })
            .map(|_| ())
            .map_err(SsmError::InvalidDocumentContent)
    }

    /// The inputs once interpolated (errors come from parameter values:
    /// InvalidParameters).
    pub(crate) fn resolve(step: &str, inputs: &Value, v1: bool) -> Result<Self, SsmError> {
        Self::read(step, inputs, v1, Mode::Resolved).map_err(SsmError::InvalidParameters)
    }

    fn read(step: &str, inputs: &Value, v1: bool, mode: Mode) -> Result<Self, String> {
        let Value::Object(map) = inputs else {
            return Err(format!(
                "Step \"{step}\": inputs must be an object with runCommand (and optionally workingDirectory and timeoutSeconds)."
            ));
        };
        for key in map.keys() {
            let known = matches!(
                key.as_str(),
                "runCommand" | "workingDirectory" | "timeoutSeconds"
            ) || (v1 && key == "id")
                || (!v1 && SHARED_INPUTS.contains(&key.as_str()));
            if !known {
                let shared = if v1 {
                    ""
                } else {
                    ", onFailure, onSuccess, finallyStep"
                };
                return Err(format!(
                    "Step \"{step}\": a script step has no input \"{key}\"; it takes runCommand, workingDirectory, timeoutSeconds{shared}."
                ));
            }
        }
        // A lone placeholder must name a parameter of a type the input takes
        // (SSM refuses the document otherwise).
        let typed = |input: &str, s: &str, allowed: &[ParameterType]| -> Result<bool, String> {
            let Mode::Template { types } = mode else {
                return Ok(false);
            };
            if let Some(name) = whole_placeholder(s) {
                let t = types(name).ok_or_else(|| {
                    format!("Step \"{step}\": parameter \"{name}\" is not declared.")
                })?;
                if !allowed.contains(&t) {
                    return Err(format!(
                        "Step \"{step}\": {input} takes {}, but parameter \"{name}\" is {}.",
                        allowed
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(" or "),
                        t.as_str()
                    ));
                }
                return Ok(true);
            }
            Ok(!placeholders(s).is_empty())
        };

        let mut run_command = Vec::new();
        match map.get("runCommand") {
            None => {
                return Err(format!(
                    "Step \"{step}\": runCommand is required: give the shell commands to run."
                ));
            }
            Some(v) => flatten(step, v, &mut run_command, &typed)?,
        }
        if run_command.is_empty() && matches!(mode, Mode::Template { .. }) {
            return Err(format!(
                "Step \"{step}\": runCommand is empty: give the shell commands to run."
            ));
        }

        let working_directory = match map.get("workingDirectory") {
            None => String::new(),
            Some(Value::String(s)) => {
                typed("workingDirectory", s, &[ParameterType::String])?;
                s.clone()
            }
            Some(_) => {
                return Err(format!(
                    "Step \"{step}\": workingDirectory must be a string."
                ));
            }
        };

        let timeout_seconds = match map.get("timeoutSeconds") {
            None => DEFAULT_EXECUTION_TIMEOUT,
            Some(Value::String(s))
                if typed(
                    "timeoutSeconds",
                    s,
                    &[ParameterType::String, ParameterType::Integer],
                )? =>
            {
                DEFAULT_EXECUTION_TIMEOUT
            }
            Some(v) => timeout_seconds(step, v)?,
        };

        let mut control = StepControl::default();
        let word = |key: &str, allowed: &[&str]| -> Result<Option<String>, String> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) if typed(key, s, &[ParameterType::String])? => Ok(None),
                Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
                Some(v) => Err(format!(
                    "Step \"{step}\": {key} {v} is not valid; use {}.",
                    allowed.join(" or ")
                )),
            }
        };
        control.on_failure = match word("onFailure", &["exit", "successAndExit"])?.as_deref() {
            Some("exit") => Some(OnFailure::Exit),
            Some(_) => Some(OnFailure::SuccessAndExit),
            None => None,
        };
        control.on_success_exit = word("onSuccess", &["exit"])?.is_some();
        control.finally_step = match map.get("finallyStep") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if typed("finallyStep", s, &[ParameterType::Boolean])? => false,
            Some(v) => {
                return Err(format!(
                    "Step \"{step}\": finallyStep {v} is not valid; use true or false."
                ));
            }
        };
        Ok(ShellScript {
            run_command,
            working_directory,
            timeout_seconds,
            control,
        })
    }
}

/// A step's `timeoutSeconds` value (a number, or a string of one): a whole
/// number of seconds from 1 to SSM's maximum, written without sign or
/// leading zero.
pub(crate) fn timeout_seconds(step: &str, v: &Value) -> Result<u32, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_EXECUTION_TIMEOUT).contains(&n) && !text.starts_with(['0', '+']) => Ok(n),
        _ => Err(format!(
            "Step \"{step}\": timeoutSeconds {v} is not a whole number of seconds from 1 to {MAX_EXECUTION_TIMEOUT}."
        )),
    }
}

/// Checks a string input as written: `Ok(true)` when it holds a placeholder.
type InputCheck<'a> = dyn Fn(&str, &str, &[ParameterType]) -> Result<bool, String> + 'a;

/// runCommand as lines: a string, or a list whose items may themselves be
/// lists (a StringList placed as a whole item), flattened in order.
fn flatten(step: &str, v: &Value, out: &mut Vec<String>, typed: &InputCheck) -> Result<(), String> {
    match v {
        Value::String(s) => {
            typed(
                "runCommand",
                s,
                &[ParameterType::String, ParameterType::StringList],
            )?;
            out.push(s.clone());
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|i| flatten(step, i, out, typed)),
        other => Err(format!(
            "Step \"{step}\": runCommand must be a string or a list of strings, not {other}."
        )),
    }
}

/// An `aws:runDocument` step's inputs: the stored or built-in Command
/// document it runs (`documentType: SSMDocument`, `documentPath` a name or
/// ARN with an optional `:version`) and that document's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDocument {
    pub document: String,
    pub version: Option<String>,
    pub parameters: GivenParameters,
}

const SSM_DOCUMENT: &str = "SSMDocument";

impl RunDocument {
    /// Checks the inputs as written (errors are InvalidDocumentContent).
    pub(crate) fn check_template(step: &str, inputs: &Value) -> Result<(), SsmError> {
        Self::read(step, inputs, true)
            .map(|_| ())
            .map_err(SsmError::InvalidDocumentContent)
    }

    /// The inputs once interpolated (errors come from parameter values:
    /// InvalidParameters).
    pub(crate) fn resolve(step: &str, inputs: &Value) -> Result<Self, SsmError> {
        Self::read(step, inputs, false).map_err(SsmError::InvalidParameters)
    }

    fn read(step: &str, inputs: &Value, template: bool) -> Result<Self, String> {
        let Value::Object(map) = inputs else {
            return Err(format!(
                "Step \"{step}\": inputs must be an object with documentType, documentPath and optionally documentParameters."
            ));
        };
        // A string still holding a placeholder is checked once its value is known.
        let pending = |s: &str| template && !placeholders(s).is_empty();
        for key in map.keys() {
            match key.as_str() {
                "documentType" | "documentPath" | "documentParameters" => {}
                "sourceType" | "sourceInfo" | "documentSourceType" => {
                    return Err(format!(
                        "Step \"{step}\": {key} is not supported yet: Steward runs documents stored with CreateDocument (documentType {SSM_DOCUMENT}), not from S3 or GitHub."
                    ));
                }
                k if SHARED_INPUTS.contains(&k) => {
                    return Err(format!(
                        "Step \"{step}\": {k} is not supported yet on {RUN_DOCUMENT} steps: put it on the steps of the document it runs."
                    ));
                }
                _ => {
                    return Err(format!(
                        "Step \"{step}\": {RUN_DOCUMENT} has no input \"{key}\"; it takes documentType, documentPath, documentParameters."
                    ));
                }
            }
        }
        match map.get("documentType") {
            Some(Value::String(t)) if t == SSM_DOCUMENT || pending(t) => {}
            Some(Value::String(t)) if t == "LocalPath" => {
                return Err(format!(
                    "Step \"{step}\": documentType LocalPath is not supported yet: store the document with CreateDocument and use documentType {SSM_DOCUMENT}."
                ));
            }
            Some(v) => {
                return Err(format!(
                    "Step \"{step}\": documentType {v} is not valid; use {SSM_DOCUMENT}."
                ));
            }
            None => {
                return Err(format!(
                    "Step \"{step}\": documentType is required: use {SSM_DOCUMENT}."
                ));
            }
        }
        let (document, version) = match map.get("documentPath") {
            Some(Value::String(p)) if pending(p) => (p.clone(), None),
            Some(Value::String(p)) => {
                let (name, version) = split_path(p);
                if !is_document_name(super::context::name_of(name)) {
                    return Err(format!(
                        "Step \"{step}\": documentPath \"{p}\" is not a document name or ARN (optionally followed by :version)."
                    ));
                }
                (name.to_string(), version.map(str::to_string))
            }
            Some(v) => {
                return Err(format!(
                    "Step \"{step}\": documentPath must be a string, not {v}."
                ));
            }
            None => {
                return Err(format!(
                    "Step \"{step}\": documentPath is required: give the name of the document to run."
                ));
            }
        };
        let parameters = match map.get("documentParameters") {
            None => GivenParameters::new(),
            Some(Value::String(s)) if pending(s) => GivenParameters::new(),
            Some(Value::String(s)) if s.trim().is_empty() => GivenParameters::new(),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => given_of(step, &m)?,
                _ => {
                    return Err(format!(
                        "Step \"{step}\": documentParameters is not a JSON object: give a map of parameter names to values."
                    ));
                }
            },
            Some(Value::Object(m)) => given_of(step, m)?,
            Some(v) => {
                return Err(format!(
                    "Step \"{step}\": documentParameters must be a map of parameter names to values, not {v}."
                ));
            }
        };
        Ok(RunDocument {
            document,
            version,
            parameters,
        })
    }
}

/// `name`, `arn:…:document/name`, either followed by `:version`.
fn split_path(path: &str) -> (&str, Option<&str>) {
    match path.rsplit_once(':') {
        Some((name, v)) if !v.contains('/') && !name.is_empty() && name != "arn" => (name, Some(v)),
        _ => (path, None),
    }
}

/// Values as SendCommand's `Parameters` carry them: a list is its items
/// (maps as JSON text), a map its JSON text, a number or boolean its text.
fn given_of(step: &str, m: &Map<String, Value>) -> Result<GivenParameters, String> {
    let text = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Err(format!(
            "Step \"{step}\": documentParameters has a null value; give a value or leave the parameter out."
        )),
        other => Ok(other.to_string()),
    };
    let mut out = GivenParameters::new();
    for (k, v) in m {
        let values = match v {
            Value::Array(items) => items.iter().map(text).collect::<Result<Vec<_>, _>>()?,
            other => vec![text(other)?],
        };
        out.insert(k.clone(), values);
    }
    Ok(out)
}

/// A step's `precondition`: `{"StringEquals": [a, b]}`, the only operator
/// SSM has. One side is `platformType` and the other a platform, or one
/// side holds a document parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    pub left: String,
    pub right: String,
}

const PLATFORM_TYPE: &str = "platformType";

impl Precondition {
    pub(crate) fn parse(
        step: &str,
        v: &Value,
        declared: &dyn Fn(&str) -> bool,
    ) -> Result<Self, SsmError> {
        let err = |m: &str| {
            SsmError::InvalidDocumentContent(format!("Step \"{step}\": precondition {m}"))
        };
        let Value::Object(map) = v else {
            return Err(err(
                "must be an object such as {\"StringEquals\": [\"platformType\", \"Linux\"]}.",
            ));
        };
        if map.len() != 1 {
            return Err(err("takes exactly one operator, StringEquals."));
        }
        let (op, args) = map.iter().next().ok_or_else(|| err("is empty."))?;
        if op != "StringEquals" {
            return Err(err(&format!(
                "operator \"{op}\" is not supported; use StringEquals."
            )));
        }
        let [Value::String(left), Value::String(right)] =
            args.as_array().map(Vec::as_slice).unwrap_or_default()
        else {
            return Err(err("StringEquals takes exactly 2 string arguments."));
        };
        if left == right {
            return Err(err("StringEquals arguments can't be identical."));
        }
        for a in [left, right] {
            if !references::find(a).is_empty() {
                return Err(err("arguments can't contain Parameter Store references."));
            }
            for p in placeholders(a) {
                if !declared(p.name) {
                    return Err(err(&format!(
                        "uses parameter \"{}\", which is not declared.",
                        p.name
                    )));
                }
            }
        }
        let other = if left == PLATFORM_TYPE {
            Some(right)
        } else if right == PLATFORM_TYPE {
            Some(left)
        } else {
            None
        };
        match other {
            Some(platform) => {
                if !placeholders(platform).is_empty() {
                    return Err(err(
                        "the platformType value can't contain document parameters.",
                    ));
                }
                if !PLATFORM_TYPES
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(platform))
                {
                    return Err(err(&format!(
                        "platformType \"{platform}\" is not a platform; use {}.",
                        PLATFORM_TYPES.join(", ")
                    )));
                }
            }
            None => {
                if placeholders(left).is_empty() && placeholders(right).is_empty() {
                    return Err(err(
                        "compares two constants: one argument must be platformType or hold a document parameter.",
                    ));
                }
            }
        }
        Ok(Self {
            left: left.clone(),
            right: right.clone(),
        })
    }

    /// Whether the step runs on `platform` with these parameters.
    pub fn holds(&self, platform: &str, params: &ResolvedParameters) -> bool {
        if self.left == PLATFORM_TYPE {
            return self.right.eq_ignore_ascii_case(platform);
        }
        if self.right == PLATFORM_TYPE {
            return self.left.eq_ignore_ascii_case(platform);
        }
        let text = |s: &str| interpolate_text(s, &|n: &str| params.get(n));
        text(&self.left) == text(&self.right)
    }

    /// As SSM Agent writes it in the skip message: `"StringEquals": [a, b]`.
    pub fn display(&self) -> String {
        format!("\"StringEquals\": [{}, {}]", self.left, self.right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types(name: &str) -> Option<ParameterType> {
        match name {
            "s" => Some(ParameterType::String),
            "l" => Some(ParameterType::StringList),
            "n" => Some(ParameterType::Integer),
            "b" => Some(ParameterType::Boolean),
            _ => None,
        }
    }

    fn template(inputs: Value) -> Result<(), SsmError> {
        ShellScript::check_template("st", &inputs, false, &types)
    }

    fn template_err(inputs: Value) -> String {
        let e = template(inputs).unwrap_err();
        assert_eq!(e.code(), "InvalidDocumentContent");
        e.to_string()
    }

    #[test]
    fn actions() {
        assert_eq!(
            Action::parse("a", "aws:runShellScript").unwrap(),
            Action::RunShellScript
        );
        assert_eq!(
            Action::parse("a", "aws:runPowerShellScript").unwrap(),
            Action::RunPowerShellScript
        );
        assert!(Action::RunPowerShellScript.runs_on("Windows"));
        assert!(!Action::RunPowerShellScript.runs_on("Linux"));
        for a in ["aws:downloadContent", "aws:configurePackage"] {
            let e = Action::parse("stepOne", a).unwrap_err();
            assert_eq!(e.code(), "InvalidDocumentContent");
            assert!(e.to_string().contains("Step \"stepOne\""), "{e}");
            assert!(e.to_string().contains("does not run yet"), "{e}");
        }
        let e = Action::parse("x", "aws:teleport").unwrap_err();
        assert!(
            e.to_string().contains("not a Command document plugin"),
            "{e}"
        );
        assert!(Action::RunShellScript.runs_on("linux"));
        assert!(Action::RunShellScript.runs_on("MacOS"));
        assert!(!Action::RunShellScript.runs_on("Windows"));
    }

    #[test]
    fn inputs_as_written() {
        template(json!({"runCommand": ["ls", "{{ l }}", "echo {{n}}"], "workingDirectory": "{{s}}", "timeoutSeconds": "{{ n }}"})).unwrap();
        template(json!({"runCommand": "{{ s }}", "timeoutSeconds": 60, "onFailure": "exit", "onSuccess": "exit", "finallyStep": true})).unwrap();
        assert!(template_err(json!([])).contains("must be an object"));
        assert!(template_err(json!({})).contains("runCommand is required"));
        assert!(template_err(json!({"runCommand": []})).contains("runCommand is empty"));
        assert!(template_err(json!({"runCommand": [1]})).contains("string or a list of strings"));
        assert!(
            template_err(json!({"runCommand": "ls", "commands": "x"}))
                .contains("no input \"commands\"")
        );
        assert!(template_err(json!({"runCommand": "ls", "id": "0.x"})).contains("no input \"id\""));
        assert!(
            template_err(json!({"runCommand": "{{ n }}"}))
                .contains("runCommand takes String or StringList, but parameter \"n\" is Integer")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "workingDirectory": "{{ l }}"}))
                .contains("is StringList")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "workingDirectory": 3}))
                .contains("must be a string")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "timeoutSeconds": "0"}))
                .contains("from 1 to 172800")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "timeoutSeconds": 172801}))
                .contains("from 1 to 172800")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "timeoutSeconds": "{{ b }}"}))
                .contains("is Boolean")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "onFailure": "retry"}))
                .contains("use exit or successAndExit")
        );
        assert!(
            template_err(json!({"runCommand": "ls", "finallyStep": "yes"}))
                .contains("true or false")
        );
        assert!(template_err(json!({"runCommand": "{{ zz }}"})).contains("\"zz\" is not declared"));
        // Schema 1.2 properties carry an id and no shared inputs.
        ShellScript::check_template(
            "p",
            &json!({"id": "0.aws:runShellScript", "runCommand": "ls"}),
            true,
            &types,
        )
        .unwrap();
        let e = ShellScript::check_template(
            "p",
            &json!({"runCommand": "ls", "onFailure": "exit"}),
            true,
            &types,
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidDocumentContent");
        assert_eq!(
            e.to_string(),
            "Step \"p\": a script step has no input \"onFailure\"; it takes runCommand, workingDirectory, timeoutSeconds."
        );
    }

    #[test]
    fn inputs_once_resolved() {
        let s = ShellScript::resolve(
            "st",
            &json!({"runCommand": [["a", "b"], "c"], "workingDirectory": "/tmp", "timeoutSeconds": "60", "onFailure": "successAndExit"}),
            false,
        )
        .unwrap();
        assert_eq!(s.run_command, ["a", "b", "c"]);
        assert_eq!(
            (s.working_directory.as_str(), s.timeout_seconds),
            ("/tmp", 60)
        );
        assert_eq!(s.control.on_failure, Some(OnFailure::SuccessAndExit));
        let s = ShellScript::resolve("st", &json!({"runCommand": "ls"}), false).unwrap();
        assert_eq!(
            (s.timeout_seconds, s.control),
            (3600, StepControl::default())
        );
        let e = ShellScript::resolve(
            "st",
            &json!({"runCommand": "ls", "timeoutSeconds": "abc"}),
            false,
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        let e = ShellScript::resolve("st", &json!({"runCommand": ["ls", 5]}), false).unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
    }

    #[test]
    fn preconditions() {
        let declared = |n: &str| n == "s";
        let p = |v: Value| Precondition::parse("st", &v, &declared);
        let linux = p(json!({"StringEquals": ["platformType", "Linux"]})).unwrap();
        assert!(linux.holds("Linux", &ResolvedParameters::default()));
        assert!(linux.holds("linux", &ResolvedParameters::default()));
        assert!(!linux.holds("Windows", &ResolvedParameters::default()));
        assert_eq!(linux.display(), "\"StringEquals\": [platformType, Linux]");
        let reversed = p(json!({"StringEquals": ["Windows", "platformType"]})).unwrap();
        assert!(reversed.holds("Windows", &ResolvedParameters::default()));
        p(json!({"StringEquals": ["{{ s }}", "yes"]})).unwrap();
        let err = |v: Value| {
            let e = p(v).unwrap_err();
            assert_eq!(e.code(), "InvalidDocumentContent");
            e.to_string()
        };
        assert!(err(json!("Linux")).contains("must be an object"));
        assert!(
            err(json!({"StringLike": ["platformType", "Linux"]}))
                .contains("\"StringLike\" is not supported")
        );
        assert!(err(json!({"StringEquals": ["platformType"]})).contains("exactly 2"));
        assert!(
            err(json!({"StringEquals": ["platformType", "Linux"], "Or": []}))
                .contains("exactly one operator")
        );
        assert!(
            err(json!({"StringEquals": ["platformType", "Solaris"]})).contains("not a platform")
        );
        assert!(
            err(json!({"StringEquals": ["platformType", "platformType"]})).contains("identical")
        );
        assert!(err(json!({"StringEquals": ["a", "b"]})).contains("two constants"));
        assert!(err(json!({"StringEquals": ["{{ssm:/x}}", "b"]})).contains("Parameter Store"));
        assert!(err(json!({"StringEquals": ["{{ t }}", "b"]})).contains("not declared"));
        assert!(
            err(json!({"StringEquals": ["platformType", "{{ s }}"]}))
                .contains("can't contain document parameters")
        );
    }
}
