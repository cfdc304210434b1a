//! Runs `aws:runShellScript` steps: the commands as one `/bin/sh` script in
//! its own process group, output to files, a timeout that kills the whole
//! group. [`run_plugin`] routes each step to its plugin: this one, or the
//! patch plugin ([`crate::patching`]) for `aws:runPatchBaseline`.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use steward_core::channel::PluginStep;
use steward_core::clock::now_epoch;
use steward_core::documents::plugins::{
    DEFAULT_EXECUTION_TIMEOUT, RUN_SHELL_SCRIPT as RUN_SHELL_SCRIPT_PLUGIN,
};
use steward_core::output::{STDERR_INLINE_LIMIT, STDOUT_INLINE_LIMIT, lossy, truncate_chars};
use steward_core::patching::step::RUN_PATCH_BASELINE;
use steward_core::run_command::status::InvocationDetail;
use steward_core::secret::Secret;
use tokio::sync::watch;

use crate::patching::{self, PatchContext, PatchEnv, PatchOutcome, ReportSink};

use crate::secure_parameters::{mask_file, mask_text};

/// SSM's exit code for a step that ran out of time on Linux.
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// How long a process group has to exit after SIGTERM before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// Why a running command is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// CancelCommand: report it Cancelled.
    Cancel,
    /// The agent is shutting down: report nothing (a restart reports Failed).
    Shutdown,
}

/// One stream of a step's output, kept whole in a file.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: PathBuf,
    /// Bytes the step wrote.
    pub total: u64,
    /// The start of the output as text, within SSM's inline limit.
    pub inline: String,
}

#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub detail: InvocationDetail,
    pub response_code: i32,
    pub start: f64,
    pub end: f64,
    pub stdout: Captured,
    pub stderr: Captured,
    /// Set when the step was stopped by a cancel or a shutdown.
    pub stopped: Option<Stop>,
}

/// A step that did not run: Failed, with `message` as its error output,
/// masked: it may quote a text the step's `secrets` were written into (a
/// working directory, say).
pub fn refused(dir: &Path, start: f64, message: &str, secrets: &[Secret]) -> StepOutcome {
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let message = mask_text(message, secrets);
    // Best effort: the refusal is also in the report itself.
    let _ = write_private(&err_path, message.as_bytes(), 0o600);
    StepOutcome {
        detail: InvocationDetail::Failed,
        response_code: 1,
        start,
        end: now_epoch(),
        stdout: Captured {
            path: out_path,
            total: 0,
            inline: String::new(),
        },
        stderr: Captured {
            path: err_path,
            total: message.len() as u64,
            inline: truncate_chars(&message, STDERR_INLINE_LIMIT).to_string(),
        },
        stopped: None,
    }
}

/// What a step may need of the daemon besides its inputs.
pub struct StepContext<'a> {
    pub command_id: &'a str,
    pub patch_env: &'a PatchEnv,
    /// Where a patch step's reports go (the spool), before the final update.
    pub report: ReportSink<'a>,
}

/// Runs one step with its plugin; a patch step may ask for a reboot once
/// its reports are spooled.
pub async fn run_plugin(
    step: &PluginStep,
    dir: &Path,
    stop: &mut watch::Receiver<Option<Stop>>,
    secrets: &[Secret],
    ctx: &StepContext<'_>,
) -> PatchOutcome {
    if step.action == RUN_PATCH_BASELINE {
        let patch = PatchContext {
            command_id: ctx.command_id,
            env: ctx.patch_env,
            report: ctx.report,
            secrets,
        };
        return patching::run(step, &patch, dir, stop).await;
    }
    PatchOutcome {
        outcome: run_step(step, dir, stop, secrets).await,
        reboot: None,
    }
}

/// Runs one step in `dir` (created; it holds the script and the output
/// files). `secrets` are the values written into the step (its
/// `{{ssm-secure:…}}` references): each is masked in the output before it
/// is read, and the script holding them is removed when the step ends.
pub async fn run_step(
    step: &PluginStep,
    dir: &Path,
    stop: &mut watch::Receiver<Option<Stop>>,
    secrets: &[Secret],
) -> StepOutcome {
    let start = now_epoch();
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let refuse = |message: String| refused(dir, start, &message, secrets);
    if let Err(e) = std::fs::create_dir_all(dir) {
        return refuse(format!(
            "cannot create the step directory {}: {e}",
            dir.display()
        ));
    }
    if step.action != RUN_SHELL_SCRIPT_PLUGIN {
        return refuse(format!(
            "plugin {} is not supported by this agent; it runs {RUN_SHELL_SCRIPT_PLUGIN} and {RUN_PATCH_BASELINE}",
            step.action
        ));
    }
    let cwd = if step.working_directory.is_empty() {
        dir.to_path_buf()
    } else {
        let wd = PathBuf::from(&step.working_directory);
        if !wd.is_dir() {
            return refuse(format!(
                "working directory {} does not exist or is not a directory; create it or change workingDirectory",
                step.working_directory
            ));
        }
        wd
    };
    let script = dir.join(SCRIPT_FILE);
    let mut text = step.run_command.join("\n");
    text.push('\n');
    // 0600: `sh` reads it; it may hold SecureString values.
    if let Err(e) = write_private(&script, text.as_bytes(), 0o600) {
        let _ = std::fs::remove_file(&script);
        return refuse(format!("cannot write the script {}: {e}", script.display()));
    }
    drop(text);
    let (stdout, stderr) = match (create_output(&out_path), create_output(&err_path)) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            forget_secrets(&script, secrets);
            return refuse(format!(
                "cannot create output files in {}: {e}",
                dir.display()
            ));
        }
    };

    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg(&script)
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    let deadline = tokio::time::Instant::now() + step_timeout(step);
    // The pgid file lets a restarted agent stop what an agent killed
    // mid-command left running.
    let ended = run_in_group(cmd, deadline, stop, Some(&dir.join(PGID_FILE))).await;
    let (detail, response_code, stopped) = match ended {
        Ok(end) => end.outcome(),
        Err(e) => {
            forget_secrets(&script, secrets);
            return refuse(format!("cannot start /bin/sh: {e}"));
        }
    };
    let end = now_epoch();
    forget_secrets(&script, secrets);
    // Before anything reads the output (inline report, upload).
    for path in [&out_path, &err_path] {
        if let Err(e) = mask_file(path, secrets) {
            // Unmasked output must not leave the node: drop it instead.
            tracing::error!(error = %e, file = %path.display(), "cannot mask the step's output; discarding it");
            let _ = std::fs::write(path, b"");
        }
    }
    StepOutcome {
        detail,
        response_code,
        start,
        end,
        stdout: capture(&out_path, STDOUT_INLINE_LIMIT),
        stderr: capture(&err_path, STDERR_INLINE_LIMIT),
        stopped,
    }
}

/// The step's time limit: its timeoutSeconds, or SSM's default.
pub fn step_timeout(step: &PluginStep) -> Duration {
    Duration::from_secs(u64::from(if step.timeout_seconds == 0 {
        DEFAULT_EXECUTION_TIMEOUT
    } else {
        step.timeout_seconds
    }))
}

/// How a process run by [`run_in_group`] ended.
#[derive(Debug)]
pub enum GroupEnd {
    Exited(std::io::Result<std::process::ExitStatus>),
    /// The deadline passed; the group was killed.
    TimedOut,
    /// Cancelled or shut down; the group was killed.
    Stopped(Stop),
}

impl GroupEnd {
    /// The step's detail, exit code (SSM's: 124 for a timeout) and stop.
    pub fn outcome(self) -> (InvocationDetail, i32, Option<Stop>) {
        match self {
            GroupEnd::Exited(Ok(status)) => {
                let code = exit_code(status);
                let detail = if code == 0 {
                    InvocationDetail::Success
                } else {
                    InvocationDetail::Failed
                };
                (detail, code, None)
            }
            GroupEnd::Exited(Err(e)) => {
                tracing::warn!(error = %e, "cannot wait for the step's process");
                (InvocationDetail::Failed, -1, None)
            }
            GroupEnd::TimedOut => (InvocationDetail::ExecutionTimedOut, TIMEOUT_EXIT_CODE, None),
            GroupEnd::Stopped(reason) => (InvocationDetail::Cancelled, -1, Some(reason)),
        }
    }
}

/// A process's exit code; 128 + the signal for one killed by a signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Runs `cmd` in a process group of its own until it exits, `deadline`
/// passes or `stop` says so; in the last two cases the whole group is
/// killed. `pgid_file`, when given, records the group for
/// [`kill_orphaned_step`]. Err: it could not be started.
pub async fn run_in_group(
    mut cmd: tokio::process::Command,
    deadline: tokio::time::Instant,
    stop: &mut watch::Receiver<Option<Stop>>,
    pgid_file: Option<&Path>,
) -> std::io::Result<GroupEnd> {
    cmd.process_group(0);
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    if let (Some(pgid), Some(file)) = (pgid, pgid_file)
        && let Err(e) = write_private(file, pgid.to_string().as_bytes(), 0o600)
    {
        tracing::warn!(error = %e, "cannot record the step's process group");
    }
    let end = tokio::select! {
        status = child.wait() => GroupEnd::Exited(status),
        _ = tokio::time::sleep_until(deadline) => GroupEnd::TimedOut,
        reason = wait_stop(stop) => GroupEnd::Stopped(reason),
    };
    if !matches!(end, GroupEnd::Exited(_))
        && let Some(pgid) = pgid
    {
        kill_group(pgid, &mut child).await;
    }
    Ok(end)
}

async fn wait_stop(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    let seen = stop.wait_for(|s| s.is_some()).await.map(|s| *s);
    match seen {
        Ok(s) => s.unwrap_or(Stop::Shutdown),
        // The sender is gone: nobody can stop us any more.
        Err(_) => std::future::pending().await,
    }
}

/// SIGTERM to the whole group, then SIGKILL to whatever is left after the
/// grace period. The group outlives its leader, so it is killed even when
/// the shell already exited.
/// Where a step records its process group id.
const PGID_FILE: &str = "pgid";
/// The step's commands, as one script.
const SCRIPT_FILE: &str = "script.sh";

/// Kills what a step of an interrupted agent left running: the process group
/// it recorded, but only if that group's leader is still the step's own shell
/// (a pid reused by something else is left alone). Returns whether it killed.
pub fn kill_orphaned_step(step_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(step_dir.join(PGID_FILE)) else {
        return false;
    };
    let Ok(pgid) = text.trim().parse::<i32>() else {
        return false;
    };
    let script = step_dir.join(SCRIPT_FILE);
    let ours = std::fs::read(format!("/proc/{pgid}/cmdline"))
        .map(|cmdline| {
            cmdline
                .split(|b| *b == 0)
                .any(|arg| arg == script.as_os_str().as_encoded_bytes())
        })
        .unwrap_or(false);
    ours && killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

pub async fn kill_group(pgid: Pid, child: &mut tokio::process::Child) {
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + KILL_GRACE;
    loop {
        // Reap the leader so that it does not count as a member.
        let _ = child.try_wait();
        if killpg(pgid, None).is_err() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = killpg(pgid, Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.wait().await;
}

/// Removes the script of a step that held secrets.
fn forget_secrets(script: &Path, secrets: &[Secret]) {
    if !secrets.is_empty()
        && let Err(e) = std::fs::remove_file(script)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(error = %e, file = %script.display(), "cannot remove a script that held SecureString values");
    }
}

pub(crate) fn write_private(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub(crate) fn create_output(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Reads only as much of the file as the inline limit can need (at most
/// four bytes per character).
pub(crate) fn capture(path: &Path, limit_chars: usize) -> Captured {
    use std::io::Read;
    let mut head = Vec::new();
    let total = std::fs::File::open(path)
        .and_then(|f| {
            let total = f.metadata()?.len();
            f.take((limit_chars * 4) as u64).read_to_end(&mut head)?;
            Ok(total)
        })
        .unwrap_or(0);
    let text = lossy(&head);
    Captured {
        path: path.to_path_buf(),
        total,
        inline: truncate_chars(&text, limit_chars).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::{LIMIT, wait_until, within, written};

    fn step(lines: &[&str], wd: &str, timeout: u32) -> PluginStep {
        PluginStep {
            name: RUN_SHELL_SCRIPT_PLUGIN.into(),
            action: RUN_SHELL_SCRIPT_PLUGIN.into(),
            run_command: lines.iter().map(|s| s.to_string()).collect(),
            working_directory: wd.into(),
            timeout_seconds: timeout,
            patch: None,
            inventory: None,
        }
    }

    async fn run(s: &PluginStep, dir: &Path) -> StepOutcome {
        run_masked(s, dir, &[]).await
    }

    /// Runs the step to its end, whatever ends it (the steps here end in
    /// seconds; a few would sleep for minutes if their end were broken).
    async fn run_masked(s: &PluginStep, dir: &Path, secrets: &[Secret]) -> StepOutcome {
        let (_tx, mut rx) = watch::channel(None);
        within("the step to end", LIMIT, run_step(s, dir, &mut rx, secrets))
            .await
            .unwrap()
    }

    /// Waits until process `pid` is gone.
    async fn until_gone(pid: i32, what: &str) {
        let what = format!("{what} (pid {pid}) to die");
        wait_until(&what, LIMIT, || gone(pid)).await.unwrap();
    }

    /// Whether a process is gone (or a zombie nobody reaped yet).
    fn gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn success_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            &step(&["echo hello", "echo oops >&2"], "", 60),
            &dir.path().join("s"),
        )
        .await;
        assert_eq!(o.detail, InvocationDetail::Success);
        assert_eq!(o.response_code, 0);
        assert_eq!(o.stdout.inline, "hello\n");
        assert_eq!(o.stderr.inline, "oops\n");
        assert!(o.start <= o.end);
    }

    #[tokio::test]
    async fn non_zero_exit_fails_with_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let o = run(
            &step(&["echo partial", "exit 3", "echo never"], "", 60),
            dir.path(),
        )
        .await;
        assert_eq!(o.detail, InvocationDetail::Failed);
        assert_eq!(o.response_code, 3);
        assert_eq!(o.stdout.inline, "partial\n");
    }

    #[tokio::test]
    async fn working_directory_is_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("wd");
        std::fs::create_dir(&wd).unwrap();
        let o = run(
            &step(&["pwd"], wd.to_str().unwrap(), 60),
            &dir.path().join("s1"),
        )
        .await;
        assert_eq!(o.detail, InvocationDetail::Success);
        assert_eq!(
            o.stdout.inline.trim_end(),
            wd.canonicalize().unwrap().to_str().unwrap()
        );

        let missing = dir.path().join("missing");
        let o = run(
            &step(&["pwd"], missing.to_str().unwrap(), 60),
            &dir.path().join("s2"),
        )
        .await;
        assert_eq!(o.detail, InvocationDetail::Failed);
        assert!(
            o.stderr.inline.contains("does not exist"),
            "{}",
            o.stderr.inline
        );
        assert_eq!(o.stdout.inline, "");
    }

    #[tokio::test]
    async fn output_is_truncated_inline_but_counted_and_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let s = step(
            &[
                "head -c 30000 /dev/zero | tr '\\0' a",
                "head -c 9000 /dev/zero | tr '\\0' b >&2",
            ],
            "",
            60,
        );
        let o = run(&s, dir.path()).await;
        assert_eq!(o.detail, InvocationDetail::Success);
        assert_eq!(o.stdout.inline.len(), STDOUT_INLINE_LIMIT);
        assert_eq!(o.stderr.inline.len(), STDERR_INLINE_LIMIT);
        assert_eq!(o.stdout.total, 30_000);
        assert_eq!(o.stderr.total, 9_000);
        assert_eq!(std::fs::metadata(&o.stdout.path).unwrap().len(), 30_000);
    }

    #[tokio::test]
    async fn an_orphaned_step_is_killed_and_a_stranger_is_not() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script.sh");
        std::fs::write(&script, "sleep 300 &\necho $! > child\nsleep 300\n").unwrap();
        let mut shell = std::process::Command::new("/bin/sh")
            .arg(&script)
            .current_dir(dir.path())
            .process_group(0)
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join(PGID_FILE), shell.id().to_string()).unwrap();
        let child_file = dir.path().join("child");
        wait_until("the script to write its child's pid", LIMIT, || {
            std::fs::read_to_string(&child_file).is_ok_and(|pid| !pid.trim().is_empty())
        })
        .await
        .unwrap();
        let child: i32 = std::fs::read_to_string(&child_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();

        // Another step directory naming this group is not its owner.
        let stranger = tempfile::tempdir().unwrap();
        std::fs::write(stranger.path().join(PGID_FILE), shell.id().to_string()).unwrap();
        assert!(!kill_orphaned_step(stranger.path()));
        assert!(shell.try_wait().unwrap().is_none());

        assert!(kill_orphaned_step(dir.path()));
        wait_until("the step's shell to exit once killed", LIMIT, || {
            shell.try_wait().unwrap().is_some()
        })
        .await
        .unwrap();
        // The background child went with its group (reaped by init, or a zombie).
        until_gone(child, "the step's background child").await;
        assert!(!kill_orphaned_step(&dir.path().join("missing")));
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let s = step(
            &[
                &format!("sleep 300 & echo $! > {}", pidfile.display()),
                "echo started",
                "sleep 300",
            ],
            "",
            1,
        );
        let o = run(&s, &dir.path().join("s")).await;
        assert_eq!(o.detail, InvocationDetail::ExecutionTimedOut);
        assert_eq!(o.response_code, TIMEOUT_EXIT_CODE);
        assert_eq!(o.stdout.inline, "started\n");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL is delivered but death is asynchronous.
        until_gone(pid, "the timed-out step's background child").await;
    }

    #[tokio::test]
    async fn cancel_stops_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = watch::channel(None);
        let s = step(&["echo running", "sleep 300"], "", 600);
        let d = dir.path().to_path_buf();
        let task = tokio::spawn(async move { run_step(&s, &d, &mut rx, &[]).await });
        // Cancel once the script is surely running.
        written(&dir.path().join("stdout"), LIMIT).await.unwrap();
        tx.send(Some(Stop::Cancel)).unwrap();
        let o = within("the cancelled step to end", LIMIT, task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.detail, InvocationDetail::Cancelled);
        assert_eq!(o.stopped, Some(Stop::Cancel));
    }

    #[tokio::test]
    async fn secrets_are_masked_in_output_and_their_script_is_private_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("s");
        let s = step(
            &[
                "echo the secret is hunter2",
                "stat -c %a script.sh",
                "printf hunter2 >&2",
            ],
            "",
            60,
        );
        let o = run_masked(&s, &d, &[Secret::new("hunter2")]).await;
        assert_eq!(o.detail, InvocationDetail::Success);
        assert_eq!(o.stdout.inline, "the secret is ****\n600\n");
        assert_eq!(o.stderr.inline, "****");
        assert!(!d.join(SCRIPT_FILE).exists());
        for f in std::fs::read_dir(&d).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));
        }
        // Without secrets the script stays for the restart logic, private too.
        let plain = run(&step(&["true"], "", 60), &dir.path().join("p")).await;
        assert_eq!(plain.detail, InvocationDetail::Success);
        assert!(dir.path().join("p").join(SCRIPT_FILE).exists());
    }

    #[tokio::test]
    async fn unknown_plugins_fail() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = step(&["true"], "", 60);
        s.action = "aws:runPowerShellScript".into();
        let o = run(&s, dir.path()).await;
        assert_eq!(o.detail, InvocationDetail::Failed);
        assert!(o.stderr.inline.contains("not supported"));
    }
}
