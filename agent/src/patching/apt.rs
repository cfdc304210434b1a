//! apt-get, the package manager itself, run as a step's processes are: in
//! a process group of its own, within the step's deadline, stopped by a
//! cancel (the runner's [`run_in_group`]). Its output is appended to the
//! step's apt output files, kept whole.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;

use steward_core::patching::approval::glob_matches;
use tokio::sync::watch;

use super::PatchEnv;
use crate::runner::{GroupEnd, Stop, exit_code, run_in_group};

/// How long apt-get waits for dpkg's lock held by another apt.
pub const LOCK_WAIT_SECONDS: u32 = 300;

/// Where apt's output goes while the step runs.
pub struct AptOutput<'a> {
    pub stdout: &'a Path,
    pub stderr: &'a Path,
}

/// How one apt-get run ended.
#[derive(Debug)]
pub enum AptEnd {
    /// It exited with this code.
    Exited(i32),
    /// The step's deadline passed or it was stopped: the step ends here.
    Interrupted(GroupEnd),
    /// It could not be started.
    NotStarted(String),
}

/// Runs `apt-get args…` non-interactively.
pub async fn apt_get(
    env: &PatchEnv,
    args: &[String],
    out: &AptOutput<'_>,
    deadline: tokio::time::Instant,
    stop: &mut watch::Receiver<Option<Stop>>,
) -> AptEnd {
    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    };
    let (stdout, stderr) = match (open(out.stdout), open(out.stderr)) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            return AptEnd::NotStarted(format!("cannot open apt's output file: {e}"));
        }
    };
    let Some(program) = &env.apt_get else {
        return AptEnd::NotStarted(format!(
            "apt-get is not run on {}: a patch root other than / is only read",
            env.root.display()
        ));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        // apt's output is read by people and by the simulation parser: untranslated.
        .env("LC_ALL", "C")
        .env("PATH", admin_path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    match run_in_group(cmd, deadline, stop, None).await {
        Ok(GroupEnd::Exited(Ok(status))) => AptEnd::Exited(exit_code(status)),
        Ok(GroupEnd::Exited(Err(e))) => AptEnd::NotStarted(format!("cannot wait for apt-get: {e}")),
        Ok(end) => AptEnd::Interrupted(end),
        Err(e) => AptEnd::NotStarted(format!("cannot run {}: {e}", program.display())),
    }
}

/// The agent's PATH with the sbin directories dpkg needs (ldconfig,
/// start-stop-daemon; dpkg refuses to run without them) and where
/// `reboot` is, for an agent started with a user's PATH.
pub fn admin_path() -> std::ffi::OsString {
    let mut path =
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let have: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !have.iter().any(|h| h == Path::new(dir)) {
            path.push(":");
            path.push(dir);
        }
    }
    path
}

/// `apt-get install` of exactly these versions, upgrades only, keeping
/// changed configuration files (dpkg's confold/confdef: no prompt).
pub fn install_args(specs: &[String], simulate: bool) -> Vec<String> {
    let mut args: Vec<String> = ["install", "--only-upgrade", "-y", "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if simulate {
        args.push("-s".into());
    }
    for o in ["--force-confold", "--force-confdef"] {
        args.push("-o".into());
        args.push(format!("Dpkg::Options::={o}"));
    }
    // Another apt (unattended-upgrades, say) may hold dpkg's lock: wait
    // for it rather than fail at once; the step's deadline still bounds it.
    args.push("-o".into());
    args.push(format!("DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}"));
    args.extend(specs.iter().cloned());
    args
}

/// The packages a simulated install would install or upgrade (`Inst name
/// [old] (new …)` lines of `apt-get -s`), without architecture.
pub fn planned(simulation: &str) -> HashSet<String> {
    simulation
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name).to_string())
        .collect()
}

/// The planned packages the baseline rejects.
pub fn rejected_in(plan: &HashSet<String>, rejected: &[String]) -> Vec<String> {
    let mut names: Vec<String> = plan
        .iter()
        .filter(|n| rejected.iter().any(|r| glob_matches(r, n)))
        .cloned()
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulation_names_what_it_would_install() {
        let sim = "Reading package lists...\nInst libfoo1:amd64 [1.0] (1.1 Debian:12/stable-security [amd64])\nInst bar (2.0 Debian:12/stable [all])\nConf bar (2.0 Debian:12/stable [all])\n";
        let plan = planned(sim);
        assert_eq!(
            plan,
            HashSet::from(["libfoo1".to_string(), "bar".to_string()])
        );
        assert_eq!(rejected_in(&plan, &["lib*".into()]), ["libfoo1"]);
        assert!(rejected_in(&plan, &["baz".into()]).is_empty());
    }

    #[test]
    fn the_admin_path_has_the_sbin_directories_once() {
        let path = admin_path();
        let dirs: Vec<_> = std::env::split_paths(&path).collect();
        for d in ["/usr/sbin", "/sbin"] {
            assert_eq!(
                dirs.iter().filter(|p| *p == Path::new(d)).count(),
                1,
                "{path:?}"
            );
        }
    }

    #[test]
    fn install_asks_for_exact_versions_without_prompts() {
        let args = install_args(&["a=1.1".into()], true);
        assert_eq!(
            args.join(" "),
            "install --only-upgrade -y -q -s -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef -o DPkg::Lock::Timeout=300 a=1.1"
        );
    }
}
