//! Reading an Automation runbook (schemaVersion 0.3) and checking it as SSM
//! does at CreateDocument: every action is one Steward runs, step names are
//! unique, every `nextStep`, `onFailure`/`onCancel` target and branch target
//! is a step of the runbook, and every `{{ step.Output }}` names an output
//! that step declares. A runbook that passes runs: nothing is left to be
//! found unsupported at run time.

use serde::Deserialize;
use serde_json::Value;

use super::actions::{self, ActionKind};
use super::variables::{self, Reference};
use crate::documents::ParameterDefinition;
use crate::documents::format::{DocumentFormat, Ordered, check_size};
use crate::error::SsmError;

/// The one schema version of Automation runbooks.
pub const SCHEMA_VERSION: &str = "0.3";
/// Steps one runbook may have, nested loop steps included (SSM does not
/// say; this bounds an execution's record).
pub const MAX_STEPS: usize = 100;
/// SSM's default and upper bound for a step's `maxAttempts`.
const MAX_ATTEMPTS: u32 = 100;

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "an Automation runbook: an object with schemaVersion 0.3 and mainSteps"
)]
struct RawRunbook {
    schema_version: Option<Value>,
    description: Option<String>,
    assume_role: Option<String>,
    parameters: Option<Ordered<Value>>,
    main_steps: Option<Vec<Value>>,
    outputs: Option<Vec<String>>,
    /// Written by SSM's own runbooks; Steward keeps no files.
    files: Option<Value>,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "a step: an object with name, action and inputs"
)]
struct RawStep {
    name: Option<String>,
    action: Option<String>,
    inputs: Option<Value>,
    outputs: Option<Vec<RawOutput>>,
    on_failure: Option<String>,
    on_cancel: Option<String>,
    is_critical: Option<Value>,
    is_end: Option<Value>,
    next_step: Option<String>,
    max_attempts: Option<Value>,
    timeout_seconds: Option<Value>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(
    rename_all = "PascalCase",
    deny_unknown_fields,
    expecting = "a step output: an object with Name, Selector and Type"
)]
struct RawOutput {
    name: Option<String>,
    selector: Option<String>,
    #[serde(rename = "Type")]
    output_type: Option<String>,
}

/// What a step's output holds (SSM's output types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    String,
    Integer,
    Boolean,
    StringList,
    StringMap,
    MapList,
}

impl OutputType {
    pub const ALL: [OutputType; 6] = [
        OutputType::String,
        OutputType::Integer,
        OutputType::Boolean,
        OutputType::StringList,
        OutputType::StringMap,
        OutputType::MapList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::String => "String",
            OutputType::Integer => "Integer",
            OutputType::Boolean => "Boolean",
            OutputType::StringList => "StringList",
            OutputType::StringMap => "StringMap",
            OutputType::MapList => "MapList",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One declared output of a step: `Selector` is a JSONPath into the step's
/// response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    pub name: String,
    pub selector: String,
    pub output_type: OutputType,
}

/// Where an execution goes when a step fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    /// The execution fails (SSM's default).
    Abort,
    /// The next step runs; the execution's status still reflects the failure
    /// when the step is critical.
    Continue,
    Step(String),
}

/// Where an execution goes when it is cancelled during a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnCancel {
    Abort,
    Step(String),
}

/// One step as the runbook writes it, checked.
#[derive(Debug, Clone)]
pub struct RunbookStep {
    pub name: String,
    pub description: String,
    pub action: ActionKind,
    /// As written, placeholders included; interpolated when the step starts.
    pub inputs: Value,
    /// Declared outputs (an action's own outputs, such as aws:runCommand's
    /// CommandId, are not listed here: [`ActionKind::builtin_outputs`]).
    pub outputs: Vec<StepOutput>,
    pub on_failure: OnFailure,
    pub on_cancel: OnCancel,
    pub is_critical: bool,
    pub is_end: bool,
    pub next_step: Option<String>,
    pub max_attempts: u32,
    pub timeout_seconds: Option<u64>,
    /// aws:loop's `Steps`; empty for every other action.
    pub loop_steps: Vec<RunbookStep>,
}

impl RunbookStep {
    /// The step's inputs without an aws:loop's `Steps` (those are steps of
    /// their own, read and filled each in its turn).
    pub fn own_inputs(&self) -> Value {
        let mut inputs = self.inputs.clone();
        if self.action == ActionKind::Loop
            && let Value::Object(map) = &mut inputs
        {
            map.remove("Steps");
        }
        inputs
    }

    /// Whether `{{ name.output }}` can be read after this step ran.
    pub fn has_output(&self, output: &str) -> bool {
        self.outputs.iter().any(|o| o.name == output)
            || self.action.builtin_outputs().contains(&output)
    }
}

/// An Automation runbook, checked.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub description: String,
    /// Stored and shown; Steward runs every step with the starting caller's
    /// own authority (docs/decisions.md says why).
    pub assume_role: Option<String>,
    /// In the order the runbook declares them.
    pub parameters: Vec<ParameterDefinition>,
    pub steps: Vec<RunbookStep>,
    /// `step.Output` names the execution reports as its outputs.
    pub outputs: Vec<String>,
}

/// A Command step name without '.': in a runbook `{{ step.Output }}` reads
/// a step's output, so a dot in the name would make that ambiguous.
pub fn is_runbook_step_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=128).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

fn content(msg: String) -> SsmError {
    SsmError::InvalidDocumentContent(msg)
}

impl Runbook {
    /// Reads and checks `content_text` as SSM's CreateDocument does for
    /// DocumentType Automation.
    pub fn parse(content_text: &str, format: DocumentFormat) -> Result<Self, SsmError> {
        check_size(content_text)?;
        let raw: RawRunbook = format.read(content_text)?;
        match &raw.schema_version {
            Some(Value::String(s)) if s == SCHEMA_VERSION => {}
            Some(Value::Number(n)) if n.to_string() == SCHEMA_VERSION => {}
            None => {
                return Err(SsmError::InvalidDocumentSchemaVersion(
                    "The runbook has no schemaVersion; an Automation runbook uses schemaVersion 0.3."
                        .into(),
                ));
            }
            Some(other) => {
                let shown = other
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(other.to_string());
                return Err(SsmError::InvalidDocumentSchemaVersion(format!(
                    "Document schema version, {shown}, is not supported for Automation documents. Use 0.3."
                )));
            }
        }
        if raw.files.is_some() {
            return Err(content(
                "files is not supported: Steward runs no scripts from attachments. Use an aws:runCommand step on a node instead.".into(),
            ));
        }
        let mut parameters: Vec<ParameterDefinition> = Vec::new();
        for (name, decl) in raw.parameters.map(|p| p.0).unwrap_or_default() {
            parameters.push(ParameterDefinition::parse(&name, &decl)?);
        }
        let raw_steps = raw.main_steps.unwrap_or_default();
        if raw_steps.is_empty() {
            return Err(content(
                "The runbook has no steps: give mainSteps at least one step, e.g. an aws:runCommand step.".into(),
            ));
        }
        let steps = parse_steps(raw_steps, "mainSteps")?;
        let runbook = Runbook {
            description: raw.description.unwrap_or_default(),
            assume_role: raw.assume_role,
            parameters,
            steps,
            outputs: raw.outputs.unwrap_or_default(),
        };
        runbook.check()?;
        Ok(runbook)
    }

    /// Every step, loop steps included, in document order.
    pub fn all_steps(&self) -> Vec<&RunbookStep> {
        fn collect<'a>(steps: &'a [RunbookStep], out: &mut Vec<&'a RunbookStep>) {
            for s in steps {
                out.push(s);
                collect(&s.loop_steps, out);
            }
        }
        let mut out = Vec::new();
        collect(&self.steps, &mut out);
        out
    }

    pub fn step(&self, name: &str) -> Option<&RunbookStep> {
        self.all_steps().into_iter().find(|s| s.name == name)
    }

    /// The checks across steps: names, targets and references.
    fn check(&self) -> Result<(), SsmError> {
        let all = self.all_steps();
        if all.len() > MAX_STEPS {
            return Err(content(format!(
                "The runbook has {} steps; Steward runs at most {MAX_STEPS}. Split it into several runbooks.",
                all.len()
            )));
        }
        for (i, s) in all.iter().enumerate() {
            if all[..i].iter().any(|t| t.name == s.name) {
                return Err(content(format!(
                    "Step name \"{}\" is used twice: each step needs its own name.",
                    s.name
                )));
            }
        }
        check_targets(&self.steps)?;
        for s in &all {
            for_each_reference(&s.own_inputs(), &mut |r| self.check_reference(&s.name, r))?;
        }
        for out in &self.outputs {
            let found = out
                .split_once('.')
                .and_then(|(step, name)| self.step(step).map(|s| s.has_output(name)))
                .unwrap_or(false);
            if !found {
                return Err(content(format!(
                    "The runbook's outputs name \"{out}\", which no step declares: give step.OutputName of a step's outputs."
                )));
            }
        }
        Ok(())
    }

    fn check_reference(&self, in_step: &str, r: Reference<'_>) -> Result<(), SsmError> {
        match r {
            Reference::Parameter(name) => {
                if self.parameters.iter().any(|p| p.name == name) {
                    Ok(())
                } else {
                    Err(content(format!(
                        "Step \"{in_step}\" refers to {{{{ {name} }}}}, which is neither a parameter of the runbook nor a step output. Declare it under parameters."
                    )))
                }
            }
            Reference::StepOutput { step, output } => match self.step(step) {
                Some(s) if s.has_output(output) => Ok(()),
                Some(_) => Err(content(format!(
                    "Step \"{in_step}\" refers to {{{{ {step}.{output} }}}}, but step \"{step}\" declares no output {output}."
                ))),
                None => Err(content(format!(
                    "Step \"{in_step}\" refers to {{{{ {step}.{output} }}}}, but the runbook has no step \"{step}\"."
                ))),
            },
            Reference::Variable(v) => variables::check_variable(v).map_err(|known| {
                content(format!(
                    "Step \"{in_step}\" refers to {{{{ {v} }}}}, which is not an automation variable: use one of {known}."
                ))
            }),
            // Resolved when the step starts, as in Run Command.
            Reference::ParameterStore(_) => Ok(()),
        }
    }
}

fn for_each_reference<'a>(
    value: &'a Value,
    f: &mut impl FnMut(Reference<'a>) -> Result<(), SsmError>,
) -> Result<(), SsmError> {
    match value {
        Value::String(s) => variables::references(s).into_iter().try_for_each(f),
        Value::Array(items) => items.iter().try_for_each(|v| for_each_reference(v, f)),
        Value::Object(map) => map.values().try_for_each(|v| for_each_reference(v, f)),
        _ => Ok(()),
    }
}

/// `nextStep`, `onFailure`, `onCancel` and branch targets name steps of the
/// same list: a loop's steps jump among themselves, main steps among theirs.
fn check_targets(steps: &[RunbookStep]) -> Result<(), SsmError> {
    let known = |name: &str| steps.iter().any(|s| s.name == name);
    for s in steps {
        let mut targets: Vec<(&str, &str)> = Vec::new();
        if let Some(n) = &s.next_step {
            targets.push(("nextStep", n));
        }
        if let OnFailure::Step(n) = &s.on_failure {
            targets.push(("onFailure", n));
        }
        if let OnCancel::Step(n) = &s.on_cancel {
            targets.push(("onCancel", n));
        }
        let branch_targets = s.action.branch_targets(&s.inputs);
        targets.extend(
            branch_targets
                .iter()
                .map(|t| ("a choice's NextStep", t.as_str())),
        );
        for (field, target) in targets {
            if !known(target) {
                return Err(content(format!(
                    "Step \"{}\": {field} names step \"{target}\", which this runbook does not have here.",
                    s.name
                )));
            }
        }
        check_targets(&s.loop_steps)?;
    }
    Ok(())
}

fn parse_steps(raw: Vec<Value>, field: &str) -> Result<Vec<RunbookStep>, SsmError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, v)| parse_step(i, v, field))
        .collect()
}

fn parse_step(index: usize, raw: Value, field: &str) -> Result<RunbookStep, SsmError> {
    let raw: RawStep =
        serde_json::from_value(raw).map_err(|e| content(format!("{field}[{index}]: {e}.")))?;
    let name = raw.name.ok_or_else(|| {
        content(format!(
            "{field}[{index}] has no name: give every step a name."
        ))
    })?;
    if !is_runbook_step_name(&name) {
        return Err(content(format!(
            "Step name \"{name}\" is not valid: use 1 to 128 letters, digits, '_' and '-', starting with a letter or digit."
        )));
    }
    let at = |msg: String| content(format!("Step \"{name}\": {msg}"));
    let action = raw
        .action
        .ok_or_else(|| at("it has no action; give one, e.g. aws:runCommand.".into()))?;
    let action = ActionKind::parse(&action).map_err(at)?;
    let inputs = raw
        .inputs
        .unwrap_or_else(|| Value::Object(Default::default()));
    action.check_inputs(&inputs).map_err(at)?;
    let mut outputs: Vec<StepOutput> = Vec::new();
    for o in raw.outputs.unwrap_or_default() {
        let out = parse_output(o).map_err(at)?;
        if outputs.iter().any(|p| p.name == out.name)
            || action.builtin_outputs().contains(&out.name.as_str())
        {
            return Err(at(format!("output \"{}\" is declared twice.", out.name)));
        }
        outputs.push(out);
    }
    if !outputs.is_empty() && !action.declares_outputs() {
        return Err(at(format!(
            "{} has no response to select outputs from; remove outputs.",
            action.as_str()
        )));
    }
    let on_failure = match raw.on_failure.as_deref() {
        None | Some("Abort") => OnFailure::Abort,
        Some("Continue") => OnFailure::Continue,
        Some(other) => match other.strip_prefix("step:") {
            Some(target) => OnFailure::Step(target.to_string()),
            None => {
                return Err(at(format!(
                    "onFailure \"{other}\" is not valid; use Abort, Continue or step:<step name>."
                )));
            }
        },
    };
    let on_cancel = match raw.on_cancel.as_deref() {
        None | Some("Abort") => OnCancel::Abort,
        Some(other) => match other.strip_prefix("step:") {
            Some(target) => OnCancel::Step(target.to_string()),
            None => {
                return Err(at(format!(
                    "onCancel \"{other}\" is not valid; use Abort or step:<step name>."
                )));
            }
        },
    };
    let is_critical =
        boolean(raw.is_critical.as_ref(), true).map_err(|e| at(format!("isCritical {e}")))?;
    let is_end = boolean(raw.is_end.as_ref(), false).map_err(|e| at(format!("isEnd {e}")))?;
    let max_attempts = match raw.max_attempts.as_ref().map(integer) {
        None => 1,
        Some(Some(n)) if (1..=MAX_ATTEMPTS as u64).contains(&n) => n as u32,
        Some(_) => {
            return Err(at(format!(
                "maxAttempts must be a whole number from 1 to {MAX_ATTEMPTS}."
            )));
        }
    };
    let timeout_seconds = match raw.timeout_seconds.as_ref().map(integer) {
        None => None,
        Some(Some(n)) if n >= 1 => Some(n),
        Some(_) => {
            return Err(at(
                "timeoutSeconds must be a whole number of seconds, at least 1.".into(),
            ));
        }
    };
    let loop_steps = match action {
        ActionKind::Loop => {
            let steps = inputs
                .get("Steps")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            parse_steps(steps, &format!("step \"{name}\" Steps"))?
        }
        _ => Vec::new(),
    };
    Ok(RunbookStep {
        name,
        description: raw.description.unwrap_or_default(),
        action,
        inputs,
        outputs,
        on_failure,
        on_cancel,
        is_critical,
        is_end,
        next_step: raw.next_step,
        max_attempts,
        timeout_seconds,
        loop_steps,
    })
}

fn parse_output(o: RawOutput) -> Result<StepOutput, String> {
    let name = o.name.ok_or("an output has no Name.")?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "output name \"{name}\" is not valid: use letters, digits and '_'."
        ));
    }
    let selector = o.selector.ok_or_else(|| {
        format!("output \"{name}\" has no Selector; give a JSONPath such as $.Parameter.Value.")
    })?;
    actions::check_selector(&selector).map_err(|e| format!("output \"{name}\": {e}"))?;
    let t = o
        .output_type
        .ok_or_else(|| format!("output \"{name}\" has no Type."))?;
    let output_type = OutputType::parse(&t).ok_or_else(|| {
        format!(
            "output \"{name}\" has Type \"{t}\"; use one of {}.",
            OutputType::ALL.map(OutputType::as_str).join(", ")
        )
    })?;
    Ok(StepOutput {
        name,
        selector,
        output_type,
    })
}

/// SSM accepts `true` and `"true"` alike in its step fields.
fn boolean(v: Option<&Value>, default: bool) -> Result<bool, &'static str> {
    match v {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err("must be true or false."),
    }
}

fn integer(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
#[path = "runbook_tests.rs"]
mod tests;
