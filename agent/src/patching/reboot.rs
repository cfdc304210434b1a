//! Reboots after an Install, and what the node remembers until it has
//! rebooted.
//!
//! Debian and Ubuntu packages that need a reboot (a kernel, libc) create
//! `/var/run/reboot-required`. It lives in /run, a tmpfs, so a reboot
//! clears it; the packages an Install upgraded while it exists are kept
//! beside it, in `/var/run/steward-agent-patched`, and go with it. While
//! both exist, a Scan reports those packages InstalledPendingReboot.
//!
//! With NoReboot the Install reports them InstalledPendingReboot and sets
//! LastNoRebootInstallOperationTime. With RebootIfNeeded, once the report
//! is spooled, the daemon writes a resume record into the command's run
//! directory and [`request`] runs `reboot`; the agent is stopped by the
//! reboot (SIGTERM) and leaves the command unfinished in its journal. At
//! its next start the daemon finds the resume record and, as SSM's agent
//! resumes a plugin after a reboot, finishes the step instead of reporting
//! it Failed: a scan with the same baseline reports the final states (the
//! upgraded packages Installed, /run being new) under the snapshot
//! `<snapshot>-rebooted` (a new observation that supersedes the
//! pre-reboot one, whose parts stay under the original snapshot), the step
//! succeeds and any later steps of the command run. The resumed step never
//! reboots again, so a node whose reboot does not clear the flag reports
//! InstalledPendingReboot instead of rebooting in a loop.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::PatchEnv;
use crate::runner::{GroupEnd, Stop, exit_code, run_in_group};

/// Written by packages that need a reboot; gone after one.
pub const REBOOT_REQUIRED: &str = "var/run/reboot-required";
/// The packages Installs upgraded since the node needed its reboot.
pub const PATCHED: &str = "var/run/steward-agent-patched";
/// How long the step waits for the reboot it asked for to stop the agent.
pub const REBOOT_WAIT: Duration = Duration::from_secs(600);

pub fn reboot_required(root: &Path) -> bool {
    root.join(REBOOT_REQUIRED).exists()
}

/// The packages upgraded and still waiting for a reboot.
pub fn pending(root: &Path) -> HashSet<String> {
    if !reboot_required(root) {
        return HashSet::new();
    }
    std::fs::read_to_string(root.join(PATCHED))
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Adds `names` to the packages waiting for the reboot.
pub fn add_pending(root: &Path, names: &[String]) -> std::io::Result<()> {
    let mut all = pending(root);
    all.extend(names.iter().cloned());
    let mut sorted: Vec<String> = all.into_iter().collect();
    sorted.sort();
    let mut text = sorted.join("\n");
    text.push('\n');
    crate::fsutil::write_atomic(&root.join(PATCHED), text.as_bytes(), 0o644)
}

/// What a resumed step needs of the Install that rebooted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RebootPlan {
    pub operation_start_time: f64,
    /// The packages the Install upgraded.
    pub upgraded: Vec<String>,
}

/// How a reboot request ended, when the agent is still running.
#[derive(Debug, PartialEq, Eq)]
pub enum RebootEnd {
    /// The agent is being stopped: the reboot is under way.
    ShuttingDown,
    Cancelled,
    /// The reboot command failed, or the node did not go down in time.
    Failed(String),
}

/// Runs the reboot command, then waits for the agent to be stopped by it.
pub async fn request(env: &PatchEnv, stop: &mut watch::Receiver<Option<Stop>>) -> RebootEnd {
    let Some((program, args)) = env.reboot.split_first() else {
        return RebootEnd::Failed("no reboot command is configured".into());
    };
    tracing::warn!(
        command = env.reboot.join(" "),
        "rebooting the node to finish installing patches"
    );
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("PATH", super::apt::admin_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let deadline = tokio::time::Instant::now() + REBOOT_WAIT;
    match run_in_group(cmd, deadline, stop, None).await {
        Ok(GroupEnd::Exited(Ok(status))) if status.success() => {}
        Ok(GroupEnd::Exited(Ok(status))) => {
            return RebootEnd::Failed(format!(
                "`{}` exited with {}; the node was not rebooted",
                env.reboot.join(" "),
                exit_code(status)
            ));
        }
        Ok(GroupEnd::Exited(Err(e))) | Err(e) => {
            return RebootEnd::Failed(format!("cannot run `{}`: {e}", env.reboot.join(" ")));
        }
        Ok(GroupEnd::Stopped(Stop::Shutdown)) => return RebootEnd::ShuttingDown,
        Ok(GroupEnd::Stopped(Stop::Cancel)) => return RebootEnd::Cancelled,
        Ok(GroupEnd::TimedOut) => {}
    }
    let stopped = tokio::time::timeout_at(deadline, stop.wait_for(|s| s.is_some())).await;
    match stopped.map(|r| r.map(|s| *s)) {
        Ok(Ok(Some(Stop::Cancel))) => RebootEnd::Cancelled,
        Ok(_) => RebootEnd::ShuttingDown,
        Err(_) => RebootEnd::Failed(format!(
            "asked the node to reboot (`{}`), but it was still up {} minutes later",
            env.reboot.join(" "),
            REBOOT_WAIT.as_secs() / 60
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_packages_last_as_long_as_the_reboot_flag() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("var/run")).unwrap();
        assert!(pending(r).is_empty());
        std::fs::write(r.join(REBOOT_REQUIRED), "").unwrap();
        add_pending(r, &["b".into(), "a".into()]).unwrap();
        add_pending(r, &["a".into(), "c".into()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(r.join(PATCHED)).unwrap(),
            "a\nb\nc\n"
        );
        assert_eq!(pending(r).len(), 3);
        // A reboot clears /run: the flag goes, and so does what it covered.
        std::fs::remove_file(r.join(REBOOT_REQUIRED)).unwrap();
        assert!(pending(r).is_empty());
    }
}
