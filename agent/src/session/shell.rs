//! The session's process: whose it is (the run-as user, from the passwd
//! database) and how it starts (a login shell or a command, in a terminal
//! or on pipes), in a session of its own so that its whole process group
//! can be signalled at the end.

use std::ffi::CString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, User};

use super::SessionError;
use super::pty::{self, AsyncIo};

/// The user a session runs as when the agent runs as root and the
/// preferences name none (as SSM's agent does).
pub const DEFAULT_SESSION_USER: &str = "ssm-user";
/// When a shell does not exist on the node.
const FALLBACK_SHELL: &str = "/bin/sh";
const TERM: &str = "xterm-256color";
const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long the process group has after SIGHUP before SIGKILL.
const HANGUP_GRACE: Duration = Duration::from_secs(2);

/// Who the session's process runs as.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
    pub shell: PathBuf,
    /// Set when the agent must switch to this user (it runs as root): the
    /// user's supplementary groups, read before the fork.
    switch_groups: Option<Vec<Gid>>,
}

impl SessionUser {
    /// The user a session runs as: `run_as` when given; otherwise
    /// [`DEFAULT_SESSION_USER`] when the agent is root, else the agent's own
    /// user. Only root can become another user.
    pub fn resolve(run_as: Option<&str>) -> Result<Self, SessionError> {
        let euid = nix::unistd::geteuid();
        let lookup = |name: &str| {
            User::from_name(name).map_err(|e| {
                SessionError::User(format!("cannot read the passwd entry of {name}: {e}"))
            })
        };
        let user = match run_as {
            Some(name) => {
                let user = lookup(name)?.ok_or_else(|| {
                    SessionError::User(format!("the run-as user {name} does not exist on this node"))
                })?;
                if !euid.is_root() && user.uid != euid {
                    return Err(SessionError::User(format!(
                        "the agent does not run as root, so it cannot start a session as {name}; run the agent as root, or as {name}"
                    )));
                }
                user
            }
            None if euid.is_root() => lookup(DEFAULT_SESSION_USER)?.ok_or_else(|| {
                SessionError::User(format!(
                    "the user {DEFAULT_SESSION_USER} does not exist on this node: create it (useradd -m {DEFAULT_SESSION_USER}), or set runAsEnabled and runAsDefaultUser in the Session Manager preferences"
                ))
            })?,
            None => User::from_uid(euid)
                .map_err(|e| {
                    SessionError::User(format!("cannot read the agent's own passwd entry: {e}"))
                })?
                .ok_or_else(|| {
                    SessionError::User(format!("the agent's user (uid {euid}) has no passwd entry"))
                })?,
        };
        let switch_groups = if euid.is_root() {
            let name = CString::new(user.name.clone())
                .map_err(|_| SessionError::User("the user name contains a NUL byte".into()))?;
            let groups = nix::unistd::getgrouplist(&name, user.gid).map_err(|e| {
                SessionError::User(format!("cannot read the groups of {}: {e}", user.name))
            })?;
            Some(groups)
        } else {
            None
        };
        Ok(Self::from_passwd(user, switch_groups))
    }

    /// The agent's own user, never switched to (tests).
    pub fn current() -> Result<Self, SessionError> {
        let user = User::from_uid(nix::unistd::geteuid())
            .map_err(|e| SessionError::User(e.to_string()))?
            .ok_or_else(|| SessionError::User("the agent's user has no passwd entry".into()))?;
        Ok(Self::from_passwd(user, None))
    }

    fn from_passwd(user: User, switch_groups: Option<Vec<Gid>>) -> Self {
        let shell = if user.shell.as_os_str().is_empty() || !user.shell.exists() {
            PathBuf::from(FALLBACK_SHELL)
        } else {
            user.shell
        };
        Self {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
            shell,
            switch_groups,
        }
    }
}

/// What the session runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// The user's login shell in a terminal.
    LoginShell,
    /// `sh -c command`, in a terminal or on plain pipes.
    Command { command: String, terminal: bool },
}

/// The running process and the descriptors the agent talks to it through.
pub struct Process {
    child: tokio::process::Child,
    /// Its process group (it leads a session of its own).
    group: Pid,
    /// Its output: the terminal's master, or the pipe its stdout and
    /// stderr share.
    pub output: Arc<AsyncIo>,
    /// Its input: the same master, or its stdin pipe.
    pub input: Arc<AsyncIo>,
    /// Whether it runs in a terminal (resizes apply).
    pub terminal: bool,
    exited: Option<ExitStatus>,
}

impl Process {
    /// Starts `launch` as `user`.
    pub fn spawn(user: &SessionUser, launch: &Launch) -> io::Result<Self> {
        let (program, args, terminal): (&Path, Vec<&str>, bool) = match launch {
            Launch::LoginShell => (&user.shell, vec!["-l"], true),
            Launch::Command { command, terminal } => {
                (Path::new(FALLBACK_SHELL), vec!["-c", command], *terminal)
            }
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("TERM", TERM)
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .env("SHELL", &user.shell)
            .env(
                "PATH",
                if user.uid.is_root() {
                    ROOT_PATH
                } else {
                    USER_PATH
                },
            )
            .current_dir(if user.home.is_dir() {
                user.home.as_path()
            } else {
                Path::new("/")
            })
            .kill_on_drop(true);
        if let Some(lang) = std::env::var_os("LANG") {
            cmd.env("LANG", lang);
        }
        let (output, input) = if terminal {
            let (master, slave) = pty::open()?;
            cmd.stdin(Stdio::from(slave.try_clone()?))
                .stdout(Stdio::from(slave.try_clone()?))
                .stderr(Stdio::from(slave));
            let master = Arc::new(AsyncIo::new(master)?);
            (Arc::clone(&master), master)
        } else {
            let (out_read, out_write) = pty::pipe()?;
            let (in_read, in_write) = pty::pipe()?;
            cmd.stdin(Stdio::from(in_read))
                .stdout(Stdio::from(out_write.try_clone()?))
                .stderr(Stdio::from(out_write));
            (
                Arc::new(AsyncIo::new(out_read)?),
                Arc::new(AsyncIo::new(in_write)?),
            )
        };
        let switch = user
            .switch_groups
            .clone()
            .map(|groups| (groups, user.gid, user.uid));
        // SAFETY: between fork and exec only async-signal-safe calls
        // (setsid, ioctl, setgroups, setgid, setuid), on data prepared
        // before the fork; nothing allocates.
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(io::Error::from)?;
                if terminal {
                    pty::take_controlling_terminal()?;
                }
                if let Some((groups, gid, uid)) = &switch {
                    nix::unistd::setgroups(groups).map_err(io::Error::from)?;
                    nix::unistd::setgid(*gid).map_err(io::Error::from)?;
                    nix::unistd::setuid(*uid).map_err(io::Error::from)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // Dropping the command closes the agent's copies of the slave (or
        // of the pipes' far ends): the output ends when the process's do.
        drop(cmd);
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| io::Error::other("the process has no id"))?;
        Ok(Self {
            child,
            group: Pid::from_raw(pid),
            output,
            input,
            terminal,
            exited: None,
        })
    }

    /// Waits for the process to exit (cancel-safe).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.exited {
            return Ok(status);
        }
        let status = self.child.wait().await?;
        self.exited = Some(status);
        Ok(status)
    }

    pub fn has_exited(&self) -> bool {
        self.exited.is_some()
    }

    /// Ends the process group: SIGHUP (what a closing terminal sends), then
    /// SIGKILL for whatever is left.
    pub async fn end(&mut self) {
        // ESRCH (nothing left in the group) is the expected case after an exit.
        let _ = killpg(self.group, Signal::SIGHUP);
        if !self.has_exited() {
            let _ = tokio::time::timeout(HANGUP_GRACE, self.wait()).await;
        }
        let _ = killpg(self.group, Signal::SIGKILL);
        if !self.has_exited() {
            let _ = tokio::time::timeout(HANGUP_GRACE, self.wait()).await;
        }
    }
}

/// How an exit is told to people.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("Killed by signal {s}"),
            Err(_) => format!("Killed by signal {signal}"),
        },
        (None, None) => "Exited".to_string(),
    }
}
