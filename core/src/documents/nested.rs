//! `aws:runDocument` steps, expanded at SendCommand: each is replaced by the
//! steps of the document it names, loaded and checked here, so a missing
//! child, a bad child parameter or a cycle dispatches nothing and the agent
//! only ever sees plain steps.

use std::future::Future;
use std::pin::Pin;

use super::command_document::MAX_STEPS;
use super::context::load_for_run;
use super::store::DocumentStore;
use super::{Document, GivenParameters, ResolvedParameters, ResolvedStep, StepOutcome};
use crate::error::SsmError;

/// How many documents deep `aws:runDocument` may nest below the one
/// SendCommand names.
pub const MAX_DEPTH: usize = 3;

/// SSM's bound on a step name, which the composed names keep.
const MAX_STEP_NAME: usize = 128;

/// A document's steps with every `aws:runDocument` step expanded.
#[derive(Debug, Default)]
pub struct Expanded {
    /// In run order; a child's steps are named `<parentStep>.<childStep>`.
    pub steps: Vec<ResolvedStep>,
    /// The parameters each nested document was given, so SendCommand
    /// checks their `{{ssm:…}}` references against the caller too.
    pub nested_parameters: Vec<GivenParameters>,
}

/// `doc` (named `name`) for a node of `platform`, nested documents inlined.
pub async fn expand(
    store: &dyn DocumentStore,
    name: &str,
    doc: &Document,
    params: &ResolvedParameters,
    platform: &str,
) -> Result<Expanded, SsmError> {
    let mut out = Expanded::default();
    let mut chain = vec![name.to_string()];
    expand_into(
        store,
        doc,
        params,
        platform,
        String::new(),
        &mut chain,
        &mut out,
    )
    .await?;
    if out.steps.len() > MAX_STEPS {
        return Err(SsmError::InvalidDocumentContent(format!(
            "Document {name} has {} steps once its aws:runDocument steps are expanded; Steward runs at most {MAX_STEPS}.",
            out.steps.len()
        )));
    }
    for (i, s) in out.steps.iter().enumerate() {
        if out.steps[..i].iter().any(|t| t.name == s.name) {
            return Err(SsmError::InvalidDocumentContent(format!(
                "Step name \"{}\" is used twice once aws:runDocument steps are expanded: rename one of the steps.",
                s.name
            )));
        }
    }
    Ok(out)
}

type Pending<'a> = Pin<Box<dyn Future<Output = Result<(), SsmError>> + Send + 'a>>;

fn expand_into<'a>(
    store: &'a dyn DocumentStore,
    doc: &'a Document,
    params: &'a ResolvedParameters,
    platform: &'a str,
    prefix: String,
    chain: &'a mut Vec<String>,
    out: &'a mut Expanded,
) -> Pending<'a> {
    Box::pin(async move {
        for step in doc.steps_for(params, platform)? {
            let name = format!("{prefix}{}", step.name);
            // Not `is_step_name`: a schema 1.2 child's steps are named after
            // their plugin (`aws:runShellScript`).
            if name.len() > MAX_STEP_NAME {
                return Err(SsmError::InvalidDocumentContent(format!(
                    "Step name \"{name}\" (a nested document's step under its aws:runDocument step) is longer than 128 characters: shorten the step names."
                )));
            }
            let StepOutcome::RunDocument(rd) = step.outcome else {
                out.steps.push(ResolvedStep { name, ..step });
                continue;
            };
            if chain.len() > MAX_DEPTH {
                return Err(SsmError::InvalidDocumentContent(format!(
                    "Step \"{name}\" runs document {} more than {MAX_DEPTH} documents deep ({}): run fewer documents inside one another.",
                    rd.document,
                    chain.join(" > ")
                )));
            }
            let child = load_for_run(store, &rd.document, rd.version.as_deref()).await?;
            if chain.contains(&child.name) {
                return Err(SsmError::InvalidDocumentContent(format!(
                    "Step \"{name}\" runs document {}, which is already running ({} > {}): a document can't run itself.",
                    child.name,
                    chain.join(" > "),
                    child.name
                )));
            }
            let child_params = child
                .document
                .validate_parameters(&rd.parameters)
                .map_err(|e| match e {
                    SsmError::InvalidParameters(m) => SsmError::InvalidParameters(format!(
                        "Step \"{name}\" runs document {}: {m}",
                        child.name
                    )),
                    other => other,
                })?;
            out.nested_parameters.push(rd.parameters);
            chain.push(child.name.clone());
            expand_into(
                store,
                &child.document,
                &child_params,
                platform,
                format!("{name}."),
                chain,
                out,
            )
            .await?;
            chain.pop();
        }
        Ok(())
    })
}

#[cfg(test)]
#[path = "nested_tests.rs"]
mod tests;
