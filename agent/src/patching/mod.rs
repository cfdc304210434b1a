//! The `aws:runPatchBaseline` plugin for apt systems (Debian, Ubuntu),
//! native: no script, no Python. It refreshes apt's lists with
//! `apt-get update` (as SSM's scan does: without it, a Scan reports against
//! whatever lists the node last fetched and misses every update since),
//! reads dpkg's database and apt's lists itself ([`scan`]), evaluates each
//! update with the baseline sent in the step (core's `approval`), installs
//! the approved ones through apt-get for an Install ([`install`]), and
//! reports every package with SSM's states in parts
//! (`Uplink::PatchReport`), spooled before the invocation's final update.
//! Reboots: [`reboot`].
//!
//! The step's output is a summary in the manner of SSM's (operation,
//! baseline, counts, times) followed by apt's whole output; the step exits
//! 0 when every approved update it tried is installed (a Scan: when it
//! could scan), else 1. A failure to refresh the lists fails the step with
//! no report: a report from stale lists would claim compliance it has not
//! checked.
//!
//! Memory: the lists are streamed one stanza at a time and only the newer
//! versions of installed packages are kept, so a scan holds the installed
//! packages and little else, whatever the size of the archive.

pub mod apt;
pub mod apt_lists;
pub mod dpkg_status;
pub mod install;
pub mod product;
pub mod reboot;
pub mod scan;
pub mod stanza;
pub mod version;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use steward_core::channel::PluginStep;
use steward_core::clock::now_epoch;
use steward_core::output::{STDERR_INLINE_LIMIT, STDOUT_INLINE_LIMIT};
use steward_core::patching::report::{PatchCounts, PatchEntry, PatchReport, PatchState};
use steward_core::patching::step::{PatchOperation, PatchStepInput, RebootOption};
use steward_core::patching::{CreatePatchBaselineRequest, PatchBaseline};
use steward_core::run_command::status::InvocationDetail;
use steward_core::secret::Secret;
use thiserror::Error;
use tokio::sync::watch;

use crate::runner::{self, StepOutcome, Stop};
use apt::{AptEnd, AptOutput};
use install::{InstallEnd, InstallInput};
use reboot::RebootPlan;
use scan::{Scan, ScanInput};

#[derive(Debug, Error)]
pub enum PatchError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

impl PatchError {
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        PatchError::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where the plugin works: the root it reads (`/` on a node), and the
/// commands it runs. Tests give a fixture root and fake commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchEnv {
    pub root: PathBuf,
    /// None: the root is read as it is and never changed (no refresh, no
    /// Install, no reboot).
    pub apt_get: Option<PathBuf>,
    /// The reboot command and its arguments.
    pub reboot: Vec<String>,
}

impl Default for PatchEnv {
    fn default() -> Self {
        PatchEnv {
            root: PathBuf::from("/"),
            apt_get: Some(PathBuf::from("apt-get")),
            reboot: vec!["reboot".into()],
        }
    }
}

impl PatchEnv {
    /// The node's own apt-get and reboot act on `/` only: any other root
    /// (the agent's patch-root setting) is scanned read-only.
    pub fn for_root(root: &Path) -> Self {
        if root == Path::new("/") {
            return PatchEnv::default();
        }
        PatchEnv {
            root: root.to_path_buf(),
            apt_get: None,
            reboot: Vec::new(),
        }
    }
}

/// Where a step's patch reports go: the daemon's spool.
pub type ReportSink<'a> = &'a (dyn Fn(PatchReport) -> std::io::Result<()> + Send + Sync);

/// What the plugin needs of the daemon.
pub struct PatchContext<'a> {
    pub command_id: &'a str,
    pub env: &'a PatchEnv,
    pub report: ReportSink<'a>,
    /// Values to mask in the step's output (a command's SecureStrings).
    pub secrets: &'a [Secret],
}

/// A step's end, and the reboot it asks for once its reports are spooled.
#[derive(Debug)]
pub struct PatchOutcome {
    pub outcome: StepOutcome,
    pub reboot: Option<RebootPlan>,
}

/// Scratch files in the step directory.
const APT_OUT: &str = "apt.stdout";
const APT_ERR: &str = "apt.stderr";
const SIMULATION: &str = "apt.simulation";

/// Runs one `aws:runPatchBaseline` step in `dir`.
pub async fn run(
    step: &PluginStep,
    ctx: &PatchContext<'_>,
    dir: &Path,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> PatchOutcome {
    let start = now_epoch();
    let refuse = |message: String| PatchOutcome {
        outcome: runner::refused(dir, start, &message, ctx.secrets),
        reboot: None,
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return refuse(format!(
            "cannot create the step directory {}: {e}",
            dir.display()
        ));
    }
    let Some(input) = step.patch.as_ref() else {
        return refuse(format!(
            "the {} step came without its patch inputs (operation, baseline); the control plane must send them",
            step.action
        ));
    };
    let (baseline, product) = match prepare(input, &ctx.env.root) {
        Ok(p) => p,
        Err(message) => return refuse(message),
    };
    let deadline = tokio::time::Instant::now() + runner::step_timeout(step);
    let (apt_out, apt_err) = (dir.join(APT_OUT), dir.join(APT_ERR));
    for p in [&apt_out, &apt_err] {
        let _ = std::fs::remove_file(p);
    }
    let out = AptOutput {
        stdout: &apt_out,
        stderr: &apt_err,
    };
    let mut log = Log::default();

    if ctx.env.apt_get.is_none() {
        if input.operation == PatchOperation::Install {
            log.error(format!(
                "this agent's patch root is {}, which it only reads: Install needs the node's own root",
                ctx.env.root.display()
            ));
            return fail((dir, ctx, start), &log);
        }
        log.warn(format!(
            "the package lists under {} were not refreshed (a patch root other than / is only read)",
            ctx.env.root.display()
        ));
    }
    let refreshed = match &ctx.env.apt_get {
        None => AptEnd::Exited(0),
        Some(_) => {
            apt::apt_get(
                ctx.env,
                &["update".into(), "-q".into()],
                &out,
                deadline,
                stop,
            )
            .await
        }
    };
    match refreshed {
        AptEnd::Exited(0) => {}
        AptEnd::Exited(code) => {
            log.error(format!(
                "apt-get update failed (exit code {code}); not scanning against stale package lists. apt's output follows."
            ));
            return fail((dir, ctx, start), &log);
        }
        AptEnd::Interrupted(end) => return interrupted(dir, ctx, start, &log, end),
        AptEnd::NotStarted(why) => {
            log.error(why);
            return fail((dir, ctx, start), &log);
        }
    }
    let root = &ctx.env.root;
    let today = time::OffsetDateTime::now_utc().date();
    let do_scan = |pending: &HashSet<String>| {
        scan::scan(
            root,
            &ScanInput {
                baseline: &baseline,
                product: &product.name,
                today,
                pending_reboot: pending,
            },
        )
    };
    let mut first = match do_scan(&reboot::pending(root)) {
        Ok(s) => s,
        Err(e) => {
            log.error(format!("cannot scan: {e}"));
            return fail((dir, ctx, start), &log);
        }
    };
    for w in &first.warnings {
        log.warn(w.clone());
    }

    let mut failed = false;
    let mut upgraded: Vec<String> = Vec::new();
    let entries = match input.operation {
        PatchOperation::Scan => std::mem::take(&mut first.entries),
        PatchOperation::Install => {
            let simulation = dir.join(SIMULATION);
            let end = install::install(
                &InstallInput {
                    env: ctx.env,
                    scan: &first,
                    baseline: &baseline,
                    native_arch: first.native_architecture.as_deref(),
                    out: &out,
                    simulation: &simulation,
                    deadline,
                },
                stop,
            )
            .await;
            let _ = std::fs::remove_file(&simulation);
            let blocked = match end {
                InstallEnd::Ran { exit_code, blocked } => {
                    if exit_code != 0 {
                        // Even with every update in, dpkg may have left a
                        // package unconfigured: the step fails.
                        failed = true;
                        log.error(format!(
                            "apt-get install failed (exit code {exit_code}); apt's output follows."
                        ));
                    }
                    blocked
                }
                InstallEnd::Interrupted(end) => return interrupted(dir, ctx, start, &log, end),
                InstallEnd::NotStarted(why) => {
                    failed = true;
                    log.error(why);
                    Vec::new()
                }
            };
            for (_, why) in &blocked {
                log.error(why.clone());
            }
            match settle(root, &first, &mut upgraded, |pending| do_scan(pending)) {
                Ok((entries, any_failed)) => {
                    failed |= any_failed;
                    entries
                }
                Err(e) => {
                    log.error(format!(
                        "cannot read the node's packages after installing: {e}"
                    ));
                    return fail((dir, ctx, start), &log);
                }
            }
        }
    };
    drop(first);

    let end = now_epoch();
    let pending_reboot = entries
        .iter()
        .any(|e| e.state == PatchState::InstalledPendingReboot);
    let rebooting = input.operation == PatchOperation::Install
        && input.reboot_option == RebootOption::RebootIfNeeded
        && pending_reboot
        && reboot::reboot_required(root);
    let no_reboot_time = (input.operation == PatchOperation::Install
        && input.reboot_option == RebootOption::NoReboot
        && !upgraded.is_empty())
    .then_some(end);
    let header = header(
        ctx.command_id,
        input,
        &input.snapshot_id,
        start,
        end,
        no_reboot_time,
    );
    let summary = Summary {
        input,
        baseline: &baseline,
        product: &product.name,
        counts: PatchCounts::of(&entries),
        start,
        end,
        reboot: if rebooting {
            "the node is rebooting to finish the install (RebootIfNeeded)"
        } else if pending_reboot {
            "a reboot is pending (NoReboot): the packages installed wait for it"
        } else {
            "no reboot needed"
        },
    };
    if let Err(e) = send(ctx, header, entries) {
        log.error(format!("cannot spool the patch report: {e}"));
        return finish(
            (dir, ctx, start),
            &log,
            Some(&summary),
            InvocationDetail::Failed,
            1,
            None,
        );
    }
    let (detail, code) = if failed {
        (InvocationDetail::Failed, 1)
    } else {
        (InvocationDetail::Success, 0)
    };
    let plan = rebooting.then_some(RebootPlan {
        operation_start_time: start,
        upgraded,
    });
    finish((dir, ctx, start), &log, Some(&summary), detail, code, plan)
}

/// Finishes a step whose Install rebooted the node: a scan reports the
/// final states (see [`reboot`]); no apt-get, no reboot.
pub async fn resume(
    step: &PluginStep,
    ctx: &PatchContext<'_>,
    dir: &Path,
    plan: &RebootPlan,
) -> StepOutcome {
    let start = plan.operation_start_time;
    let Some(input) = step.patch.as_ref() else {
        return runner::refused(
            dir,
            start,
            "the resumed patch step has no patch inputs",
            ctx.secrets,
        );
    };
    let _ = std::fs::create_dir_all(dir);
    // The output before the reboot (its summary, apt's output) follows the
    // new summary.
    for (before, kept) in [("stdout", APT_OUT), ("stderr", APT_ERR)] {
        let _ = std::fs::rename(dir.join(before), dir.join(kept));
    }
    let mut log = Log::default();
    let (baseline, product) = match prepare(input, &ctx.env.root) {
        Ok(p) => p,
        Err(message) => return runner::refused(dir, start, &message, ctx.secrets),
    };
    let root = &ctx.env.root;
    let pending = reboot::pending(root);
    let scanned = scan::scan(
        root,
        &ScanInput {
            baseline: &baseline,
            product: &product.name,
            today: time::OffsetDateTime::now_utc().date(),
            pending_reboot: &pending,
        },
    );
    let mut entries = match scanned {
        Ok(s) => s.entries,
        Err(e) => {
            log.error(format!("cannot scan after the reboot: {e}"));
            return fail((dir, ctx, start), &log).outcome;
        }
    };
    for e in &mut entries {
        // What this Install upgraded is its patch, approved: Installed once rebooted.
        if plan.upgraded.contains(&e.kb_id) && matches!(e.state, PatchState::InstalledOther) {
            e.state = PatchState::Installed;
        }
    }
    let end = now_epoch();
    let still_pending = entries
        .iter()
        .any(|e| e.state == PatchState::InstalledPendingReboot);
    let summary = Summary {
        input,
        baseline: &baseline,
        product: &product.name,
        counts: PatchCounts::of(&entries),
        start,
        end,
        reboot: if still_pending {
            "the node restarted, and still asks for a reboot (reboot-required is there); not rebooting again"
        } else {
            "the node rebooted"
        },
    };
    let snapshot = format!("{}-rebooted", input.snapshot_id);
    let header = header(ctx.command_id, input, &snapshot, start, end, None);
    if let Err(e) = send(ctx, header, entries) {
        log.error(format!("cannot spool the patch report: {e}"));
        return finish(
            (dir, ctx, start),
            &log,
            Some(&summary),
            InvocationDetail::Failed,
            1,
            None,
        )
        .outcome;
    }
    finish(
        (dir, ctx, start),
        &log,
        Some(&summary),
        InvocationDetail::Success,
        0,
        None,
    )
    .outcome
}

/// The baseline sent with the step, checked as CreatePatchBaseline checks
/// it, and the node's product, which it must be for.
fn prepare(
    input: &PatchStepInput,
    root: &Path,
) -> Result<(PatchBaseline, product::Product), String> {
    let baseline = CreatePatchBaselineRequest::parse(&input.baseline)
        .map(|c| c.baseline)
        .map_err(|e| {
            format!(
                "the baseline {} sent with the command is not valid: {e}",
                input.baseline_id
            )
        })?;
    let product = product::read(root).map_err(|e| e.to_string())?;
    if product.os != baseline.operating_system {
        return Err(format!(
            "the baseline {} is for {}, and this node runs {}",
            input.baseline_id, baseline.operating_system, product.name
        ));
    }
    Ok((baseline, product))
}

/// After apt-get: the node scanned again, with the updates this Install
/// tried marked Installed (InstalledPendingReboot while the node needs a
/// reboot) or Failed. Returns the entries and whether any failed;
/// `upgraded` gets the packages now at their update's version.
fn settle(
    root: &Path,
    first: &Scan,
    upgraded: &mut Vec<String>,
    rescan: impl Fn(&HashSet<String>) -> Result<Scan, PatchError>,
) -> Result<(Vec<PatchEntry>, bool), PatchError> {
    let now: Vec<dpkg_status::Installed> = dpkg_status::read(root)?;
    for u in &first.updates {
        let done = now.iter().any(|p| {
            p.name == u.name
                && p.architecture == u.architecture
                && version::compare(&p.version, &u.version).is_ge()
        });
        if done {
            upgraded.push(u.name.clone());
        }
    }
    drop(now);
    let needs_reboot = reboot::reboot_required(root);
    if needs_reboot && !upgraded.is_empty() {
        // Best effort: without it a later Scan reports them Installed early.
        if let Err(e) = reboot::add_pending(root, upgraded) {
            tracing::warn!(error = %e, "cannot record the packages waiting for a reboot");
        }
    }
    let mut pending = reboot::pending(root);
    if needs_reboot {
        pending.extend(upgraded.iter().cloned());
    }
    let mut entries = rescan(&pending)?.entries;
    let mut failed = false;
    for u in &first.updates {
        let wanted = &first.entries[u.entry];
        let state = if upgraded.contains(&u.name) {
            if needs_reboot {
                PatchState::InstalledPendingReboot
            } else {
                PatchState::Installed
            }
        } else {
            failed = true;
            PatchState::Failed
        };
        let entry = PatchEntry {
            state,
            installed_time: None,
            ..wanted.clone()
        };
        match entries.iter_mut().find(|e| e.kb_id == u.name) {
            Some(e) => {
                let installed_time = e.installed_time;
                *e = PatchEntry {
                    installed_time: if state == PatchState::Failed {
                        None
                    } else {
                        installed_time
                    },
                    ..entry
                };
            }
            None => entries.push(entry),
        }
    }
    Ok((entries, failed))
}

fn header(
    command_id: &str,
    input: &PatchStepInput,
    snapshot: &str,
    start: f64,
    end: f64,
    no_reboot_time: Option<f64>,
) -> PatchReport {
    PatchReport {
        command_id: command_id.to_string(),
        snapshot_id: snapshot.to_string(),
        baseline_id: input.baseline_id.clone(),
        patch_group: input.patch_group.clone(),
        operation: input.operation,
        reboot_option: input.reboot_option,
        operation_start_time: start,
        operation_end_time: end,
        last_no_reboot_install_operation_time: no_reboot_time,
        counts: PatchCounts::default(),
        part: 0,
        parts: 0,
        patches: Vec::new(),
    }
}

fn send(
    ctx: &PatchContext<'_>,
    header: PatchReport,
    entries: Vec<PatchEntry>,
) -> std::io::Result<()> {
    for part in PatchReport::into_parts(header, entries) {
        (ctx.report)(part)?;
    }
    Ok(())
}

/// What the step says besides apt's output.
#[derive(Default)]
struct Log {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Log {
    fn error(&mut self, m: String) {
        tracing::warn!(message = m, "patch step");
        self.errors.push(m);
    }
    fn warn(&mut self, m: String) {
        self.warnings.push(m);
    }
}

struct Summary<'a> {
    input: &'a PatchStepInput,
    baseline: &'a PatchBaseline,
    product: &'a str,
    counts: PatchCounts,
    start: f64,
    end: f64,
    reboot: &'static str,
}

impl Summary<'_> {
    fn text(&self) -> String {
        let c = &self.counts;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Patch {} with baseline {} ({}) on {}",
            self.input.operation.as_str(),
            self.input.baseline_id,
            self.baseline.name,
            self.product
        );
        if let Some(g) = &self.input.patch_group {
            let _ = writeln!(s, "Patch group: {g}");
        }
        let _ = writeln!(s, "RebootOption: {}", self.input.reboot_option.as_str());
        let _ = writeln!(s, "Operation start: {}", rfc3339(self.start));
        let _ = writeln!(s, "Operation end:   {}", rfc3339(self.end));
        for (name, n) in [
            ("Installed", c.installed),
            ("InstalledOther", c.installed_other),
            ("InstalledPendingReboot", c.installed_pending_reboot),
            ("InstalledRejected", c.installed_rejected),
            ("Missing", c.missing),
            ("Failed", c.failed),
            ("NotApplicable", c.not_applicable),
        ] {
            let _ = writeln!(s, "{name:<24}{n}");
        }
        let _ = writeln!(
            s,
            "Compliance: {}",
            if c.compliant() {
                "COMPLIANT"
            } else {
                "NON_COMPLIANT"
            }
        );
        let _ = writeln!(s, "Reboot: {}", self.reboot);
        s
    }
}

fn rfc3339(epoch: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{epoch}"))
}

/// The step stopped by its deadline or a cancel (or the agent's shutdown):
/// no report; apt's output is kept.
fn interrupted(
    dir: &Path,
    ctx: &PatchContext<'_>,
    start: f64,
    log: &Log,
    end: runner::GroupEnd,
) -> PatchOutcome {
    let (detail, code, stopped) = end.outcome();
    let mut out = finish((dir, ctx, start), log, None, detail, code, None);
    out.outcome.stopped = stopped;
    out
}

/// A step that failed before it had anything to report.
fn fail(at: (&Path, &PatchContext<'_>, f64), log: &Log) -> PatchOutcome {
    finish(at, log, None, InvocationDetail::Failed, 1, None)
}

/// Writes the step's stdout (summary, then apt's output) and stderr (the
/// step's errors and warnings, then apt's), masked, and returns the outcome.
fn finish(
    (dir, ctx, start): (&Path, &PatchContext<'_>, f64),
    log: &Log,
    summary: Option<&Summary<'_>>,
    detail: InvocationDetail,
    response_code: i32,
    reboot: Option<RebootPlan>,
) -> PatchOutcome {
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut head = summary.map(Summary::text).unwrap_or_default();
    if !head.is_empty() {
        head.push('\n');
    }
    let mut err_head = String::new();
    for e in &log.errors {
        let _ = writeln!(err_head, "{e}");
    }
    for w in &log.warnings {
        let _ = writeln!(err_head, "warning: {w}");
    }
    for (path, head, apt) in [(&out_path, &head, APT_OUT), (&err_path, &err_head, APT_ERR)] {
        let written = runner::create_output(path).and_then(|mut f| {
            f.write_all(head.as_bytes())?;
            if let Ok(mut a) = std::fs::File::open(dir.join(apt)) {
                std::io::copy(&mut a, &mut f)?;
            }
            f.sync_all()
        });
        let _ = std::fs::remove_file(dir.join(apt));
        if let Err(e) = written {
            tracing::warn!(error = %e, file = %path.display(), "cannot write the patch step's output");
        }
        if let Err(e) = crate::secure_parameters::mask_file(path, ctx.secrets) {
            tracing::error!(error = %e, file = %path.display(), "cannot mask the step's output; discarding it");
            let _ = std::fs::write(path, b"");
        }
    }
    PatchOutcome {
        outcome: StepOutcome {
            detail,
            response_code,
            start,
            end: now_epoch(),
            stdout: runner::capture(&out_path, STDOUT_INLINE_LIMIT),
            stderr: runner::capture(&err_path, STDERR_INLINE_LIMIT),
            stopped: None,
        },
        reboot,
    }
}
