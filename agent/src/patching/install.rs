//! Install: the approved updates, at the versions the scan chose, through
//! apt-get, in one transaction.
//!
//! RejectedPatchesAction BLOCK: a rejected package is never installed, not
//! even as a dependency. apt has no option that refuses a package only
//! when it would come in, so the plan is simulated first (`apt-get -s`);
//! if it would bring in a rejected package, or cannot be simulated, each
//! update is simulated alone and those that would are left out and
//! reported Failed (SSM: "the package being updated is reported as ...
//! FAILED for INSTALL operations"). ALLOW_AS_DEPENDENCY needs no check.
//!
//! An update that apt could not install (the transaction failed, or the
//! version is not installed afterwards) is Failed; the step then fails.

use std::path::Path;

use steward_core::patching::{PatchBaseline, RejectedPatchesAction};
use tokio::sync::watch;

use super::PatchEnv;
use super::apt::{self, AptEnd, AptOutput};
use super::scan::Scan;
use crate::runner::{GroupEnd, Stop};

/// How the install went, before dpkg's database is read again.
#[derive(Debug)]
pub enum InstallEnd {
    /// apt-get ran (or had nothing to do); `blocked` are the indices of the
    /// updates left out, with why.
    Ran {
        exit_code: i32,
        blocked: Vec<(usize, String)>,
    },
    Interrupted(GroupEnd),
    NotStarted(String),
}

pub struct InstallInput<'a> {
    pub env: &'a PatchEnv,
    pub scan: &'a Scan,
    pub baseline: &'a PatchBaseline,
    pub native_arch: Option<&'a str>,
    pub out: &'a AptOutput<'a>,
    /// A scratch file for simulations' output.
    pub simulation: &'a Path,
    pub deadline: tokio::time::Instant,
}

pub async fn install(
    input: &InstallInput<'_>,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> InstallEnd {
    let specs: Vec<String> = input
        .scan
        .updates
        .iter()
        .map(|u| u.apt_spec(input.native_arch))
        .collect();
    if specs.is_empty() {
        return InstallEnd::Ran {
            exit_code: 0,
            blocked: Vec::new(),
        };
    }
    let mut blocked = Vec::new();
    let rejected = &input.baseline.rejected_patches;
    if input.baseline.rejected_patches_action == RejectedPatchesAction::Block
        && !rejected.is_empty()
    {
        match simulate(input, &specs, stop).await {
            Err(end) => return end,
            Ok(Some(found)) if found.is_empty() => {}
            Ok(_) => {
                // Find which updates bring a rejected package in.
                for (i, spec) in specs.iter().enumerate() {
                    match simulate(input, std::slice::from_ref(spec), stop).await {
                        Err(end) => return end,
                        Ok(Some(found)) if found.is_empty() => {}
                        Ok(Some(found)) => blocked.push((
                            i,
                            format!(
                                "{spec}: not installed; it needs {}, which the baseline rejects (RejectedPatchesAction BLOCK)",
                                found.join(", ")
                            ),
                        )),
                        Ok(None) => blocked.push((
                            i,
                            format!("{spec}: not installed; apt cannot plan it (see apt's output)"),
                        )),
                    }
                }
            }
        }
    }
    let chosen: Vec<String> = specs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !blocked.iter().any(|(b, _)| b == i))
        .map(|(_, s)| s)
        .collect();
    if chosen.is_empty() {
        return InstallEnd::Ran {
            exit_code: 0,
            blocked,
        };
    }
    match apt::apt_get(
        input.env,
        &apt::install_args(&chosen, false),
        input.out,
        input.deadline,
        stop,
    )
    .await
    {
        AptEnd::Exited(exit_code) => InstallEnd::Ran { exit_code, blocked },
        AptEnd::Interrupted(end) => InstallEnd::Interrupted(end),
        AptEnd::NotStarted(why) => InstallEnd::NotStarted(why),
    }
}

/// Simulates installing `specs`: Some(the rejected packages it would bring
/// in), None when apt cannot plan it.
async fn simulate(
    input: &InstallInput<'_>,
    specs: &[String],
    stop: &mut watch::Receiver<Option<Stop>>,
) -> Result<Option<Vec<String>>, InstallEnd> {
    let _ = std::fs::remove_file(input.simulation);
    let out = AptOutput {
        stdout: input.simulation,
        stderr: input.out.stderr,
    };
    let end = apt::apt_get(
        input.env,
        &apt::install_args(specs, true),
        &out,
        input.deadline,
        stop,
    )
    .await;
    let text = std::fs::read_to_string(input.simulation).unwrap_or_default();
    // Kept with the rest of apt's output, for the operator.
    append(input.out.stdout, &text);
    match end {
        AptEnd::Exited(0) => Ok(Some(apt::rejected_in(
            &apt::planned(&text),
            &input.baseline.rejected_patches,
        ))),
        AptEnd::Exited(_) => Ok(None),
        AptEnd::Interrupted(end) => Err(InstallEnd::Interrupted(end)),
        AptEnd::NotStarted(why) => Err(InstallEnd::NotStarted(why)),
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot keep apt's simulation output");
    }
}
