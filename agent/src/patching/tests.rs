//! The plugin against fixture roots: dpkg status and apt lists written by
//! the tests, and a fake apt-get (a shell script) that rewrites the
//! fixture's dpkg status as an install would. Nothing here runs the
//! machine's apt or dpkg.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};
use steward_core::channel::PluginStep;
use steward_core::patching::ComplianceLevel;
use steward_core::patching::report::{PatchEntry, PatchReport, PatchState};
use steward_core::patching::step::{
    PatchOperation, PatchStepInput, RUN_PATCH_BASELINE, RebootOption,
};
use steward_core::run_command::status::InvocationDetail;
use time::macros::date;
use tokio::sync::watch;

use super::*;
use crate::wait::{LIMIT, within};

const SECURITY_LIST: &str = "_srv_repo_dists_bookworm-security_main_binary-amd64_Packages";
const MAIN_LIST: &str = "_srv_repo_dists_bookworm_main_binary-amd64_Packages";

/// A node's root: os-release, dpkg status, apt lists, and the fake apt-get.
pub(crate) struct Node {
    dir: tempfile::TempDir,
}

fn stanza(name: &str, version: &str, arch: &str, section: &str, priority: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nSection: {section}\nPriority: {priority}\nDescription: {name}\n long text\n\n"
    )
}

fn installed(name: &str, version: &str, arch: &str, section: &str, priority: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: {arch}\nSection: {section}\nPriority: {priority}\n\n"
    )
}

impl Node {
    pub(crate) fn new(status: &[String], security: &[String], main: &[String]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in [
            "etc",
            "var/lib/dpkg/info",
            "var/lib/apt/lists",
            "var/run",
            "bin",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        let mut s = installed("dpkg", "1.21.22", "amd64", "admin", "required");
        s.extend(status.iter().map(String::as_str));
        std::fs::write(r.join(dpkg_status::STATUS), s).unwrap();
        let lists = r.join(apt_lists::LISTS);
        std::fs::write(
            lists.join("_srv_repo_dists_bookworm-security_Release"),
            "Origin: Debian\nLabel: Debian-Security\nSuite: bookworm-security\n",
        )
        .unwrap();
        std::fs::write(
            lists.join("_srv_repo_dists_bookworm_InRelease"),
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian\nSuite: bookworm\n",
        )
        .unwrap();
        std::fs::write(lists.join(SECURITY_LIST), security.concat()).unwrap();
        std::fs::write(lists.join(MAIN_LIST), main.concat()).unwrap();
        let node = Node { dir };
        node.fake_apt_get();
        node
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// apt-get as far as the plugin uses it: `update` (fails if the file
    /// `update-fails` exists, sleeps if `update-sleeps`), `install -s`
    /// (prints an Inst line per package asked for, plus the lines of
    /// `deps-<name>`), `install` (sets each package's version in dpkg's
    /// status, unless `fail-<name>` exists; `reboot-<name>` makes it ask
    /// for a reboot). Every call is logged to `apt.log`.
    fn fake_apt_get(&self) {
        let r = self.root().display();
        let script = format!(
            r#"#!/bin/sh
R='{r}'
echo "$DEBIAN_FRONTEND $*" >> "$R/apt.log"
case "$1" in
update)
  [ -e "$R/update-sleeps" ] && sleep 300
  [ -e "$R/update-fails" ] && {{ echo "E: repository unreachable" >&2; exit 100; }}
  echo "Reading package lists..."; exit 0 ;;
install) ;;
*) exit 64 ;;
esac
sim=no
for a in "$@"; do [ "$a" = -s ] && sim=yes; done
status=0
for a in "$@"; do
  case "$a" in *=*) ;; *) continue ;; esac
  case "$a" in Dpkg::*|DPkg::*) continue ;; esac
  name=${{a%%=*}}; name=${{name%%:*}}; ver=${{a#*=}}
  if [ $sim = yes ]; then
    echo "Inst $name [old] ($ver Debian:12/stable [all])"
    [ -e "$R/deps-$name" ] && cat "$R/deps-$name"
    continue
  fi
  if [ -e "$R/fail-$name" ]; then echo "E: cannot install $name" >&2; status=100; continue; fi
  awk -v p="$name" -v v="$ver" '/^Package: /{{m=($2==p)}} m && /^Version: /{{$0="Version: " v}} {{print}}' "$R/var/lib/dpkg/status" > "$R/status.new"
  mv "$R/status.new" "$R/var/lib/dpkg/status"
  echo "Setting up $name ($ver) ..."
  [ -e "$R/reboot-$name" ] && touch "$R/var/run/reboot-required"
done
exit $status
"#
        );
        let path = self.apt_get();
        std::fs::write(&path, script).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&path).unwrap().permissions(),
            0o755,
        );
        let mut p = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&path, p).unwrap();
        let reboot = self.root().join("bin/reboot");
        std::fs::write(
            &reboot,
            format!("#!/bin/sh\necho \"reboot $*\" >> '{r}/reboots'\n"),
        )
        .unwrap();
        let mut p = std::fs::metadata(&reboot).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&reboot, p).unwrap();
    }

    fn apt_get(&self) -> PathBuf {
        self.root().join("bin/apt-get")
    }

    pub(crate) fn env(&self) -> PatchEnv {
        PatchEnv {
            root: self.root().to_path_buf(),
            apt_get: Some(self.apt_get()),
            reboot: vec![self.root().join("bin/reboot").display().to_string()],
        }
    }

    pub(crate) fn touch(&self, name: &str, text: &str) {
        std::fs::write(self.root().join(name), text).unwrap();
    }

    fn apt_log(&self) -> String {
        std::fs::read_to_string(self.root().join("apt.log")).unwrap_or_default()
    }

    pub(crate) fn installed_version(&self, name: &str) -> Option<String> {
        dpkg_status::read(self.root())
            .unwrap()
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.version)
    }
}

/// Security updates of every priority, at once (AWS-DebianDefaultPatchBaseline's rule).
pub(crate) fn baseline(extra: Value) -> Value {
    let mut b = json!({
        "Name": "steward-test",
        "OperatingSystem": "DEBIAN",
        "ApprovalRules": {"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required", "Important", "Standard", "Optional", "Extra"]}]},
            "ComplianceLevel": "HIGH",
            "ApproveAfterDays": 0
        }]},
        // ALLOW_AS_DEPENDENCY unless a test says otherwise: rej's update is
        // never one the plugin installs.
        "RejectedPatches": ["rej"]
    });
    if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

pub(crate) fn step(
    operation: PatchOperation,
    reboot: RebootOption,
    baseline: Value,
    timeout: u32,
) -> PluginStep {
    PluginStep {
        name: "PatchLinux".into(),
        action: RUN_PATCH_BASELINE.into(),
        run_command: Vec::new(),
        working_directory: String::new(),
        timeout_seconds: timeout,
        patch: Some(PatchStepInput {
            operation,
            reboot_option: reboot,
            baseline_id: "pb-0123456789abcdef0".into(),
            baseline,
            patch_group: Some("web".into()),
            snapshot_id: "cmd-1".into(),
        }),
        inventory: None,
    }
}

struct Ran {
    outcome: PatchOutcome,
    reports: Vec<PatchReport>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn entries(&self) -> Vec<PatchEntry> {
        self.reports
            .iter()
            .flat_map(|r| r.patches.clone())
            .collect()
    }
    fn state(&self, name: &str) -> PatchState {
        let e = self.entries();
        e.iter()
            .find(|e| e.kb_id == name)
            .unwrap_or_else(|| panic!("no entry for {name}: {e:?}"))
            .state
    }
}

async fn run_on(node: &Node, step: &PluginStep) -> Ran {
    let (_tx, mut rx) = watch::channel(None);
    run_with(node, step, &mut rx).await
}

async fn run_with(node: &Node, step: &PluginStep, stop: &mut watch::Receiver<Option<Stop>>) -> Ran {
    let reports = Mutex::new(Vec::new());
    let sink = |r: PatchReport| {
        reports.lock().unwrap().push(r);
        Ok(())
    };
    let env = node.env();
    let ctx = PatchContext {
        command_id: "cmd-1",
        env: &env,
        report: &sink,
        secrets: &[],
    };
    let dir = node.root().join("step");
    let outcome = within("the patch step to end", LIMIT, run(step, &ctx, &dir, stop))
        .await
        .unwrap();
    Ran {
        stdout: std::fs::read_to_string(&outcome.outcome.stdout.path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&outcome.outcome.stderr.path).unwrap_or_default(),
        outcome,
        reports: reports.into_inner().unwrap(),
    }
}

/// The node most tests use: one package of each kind.
pub(crate) fn mixed_node() -> Node {
    Node::new(
        &[
            installed("sec", "1.0", "amd64", "admin", "important"),
            installed("two", "1.0-1", "all", "utils", "optional"),
            installed("bug", "1.0", "amd64", "utils", "optional"),
            installed("secok", "2.0", "amd64", "net", "standard"),
            installed("rej", "1.0", "all", "utils", "optional"),
            installed("libx", "1.0", "amd64", "libs", "optional"),
            installed("newer", "3.0", "amd64", "utils", "optional"),
        ],
        &[
            stanza("sec", "1.1", "amd64", "admin", "important"),
            stanza("two", "1.0-1+deb12u1", "all", "utils", "optional"),
            stanza("secok", "2.0", "amd64", "net", "standard"),
            stanza("rej", "1.1", "all", "utils", "optional"),
            stanza("libx", "1.1", "i386", "libs", "optional"),
            stanza("newer", "2.0", "amd64", "utils", "optional"),
            stanza("notinstalled", "9.0", "amd64", "utils", "optional"),
        ],
        &[
            stanza("two", "1.2-1", "all", "utils", "optional"),
            stanza("bug", "1.1", "amd64", "utils", "optional"),
        ],
    )
}

#[test]
fn scan_states_follow_the_baseline() {
    let node = mixed_node();
    let b = CreatePatchBaselineRequest::parse(&baseline(json!({
        "RejectedPatches": ["rej"], "RejectedPatchesAction": "BLOCK",
        "ApprovedPatches": ["absent-pkg", "lib*"], "ApprovedPatchesComplianceLevel": "CRITICAL"
    })))
    .unwrap()
    .baseline;
    let s = scan::scan(
        node.root(),
        &ScanInput {
            baseline: &b,
            product: "Debian12",
            today: date!(2026 - 01 - 01),
            pending_reboot: &HashSet::new(),
        },
    )
    .unwrap();
    let by = |n: &str| s.entries.iter().find(|e| e.kb_id == n).unwrap().clone();
    // An approved security update: Missing, with what the report needs.
    let sec = by("sec");
    assert_eq!(sec.state, PatchState::Missing);
    assert_eq!(sec.title, "sec 1.1");
    assert_eq!(sec.classification, "Security");
    assert_eq!(sec.severity, "important");
    assert_eq!(sec.compliance_level, Some(ComplianceLevel::High));
    // The newest approved candidate: the security fix, not main's newer release.
    assert_eq!(by("two").title, "two 1.0-1+deb12u1");
    assert_eq!(by("two").state, PatchState::Missing);
    // A non-security update is not approved: the installed version is judged.
    assert_eq!(by("bug").state, PatchState::InstalledOther);
    assert_eq!(by("bug").title, "bug 1.0");
    // Installed at the security archive's version: approved, Installed.
    assert_eq!(by("secok").state, PatchState::Installed);
    // Rejected with BLOCK and installed: InstalledRejected, never Missing.
    assert_eq!(by("rej").state, PatchState::InstalledRejected);
    // Another architecture's update is not this package's.
    assert_eq!(by("libx").state, PatchState::InstalledOther);
    // An older version in a list is no update.
    assert_eq!(by("newer").state, PatchState::InstalledOther);
    // ApprovedPatches naming nothing installed.
    assert_eq!(by("absent-pkg").state, PatchState::NotApplicable);
    assert!(
        !s.entries
            .iter()
            .any(|e| e.kb_id == "notinstalled" || e.kb_id == "lib*")
    );
    assert_eq!(s.installed, 8);
    assert_eq!(s.lists, 2);
    let names: Vec<_> = s
        .updates
        .iter()
        .map(|u| (u.name.as_str(), u.version.as_str()))
        .collect();
    assert_eq!(names, [("sec", "1.1"), ("two", "1.0-1+deb12u1")]);
    assert_eq!(s.updates[0].apt_spec(Some("amd64")), "sec=1.1");
    assert_eq!(s.updates[1].apt_spec(Some("amd64")), "two=1.0-1+deb12u1");

    // ALLOW_AS_DEPENDENCY: an installed rejected package is InstalledOther.
    let b = CreatePatchBaselineRequest::parse(&baseline(json!({"RejectedPatches": ["rej"]})))
        .unwrap()
        .baseline;
    let s = scan::scan(
        node.root(),
        &ScanInput {
            baseline: &b,
            product: "Debian12",
            today: date!(2026 - 01 - 01),
            pending_reboot: &HashSet::from(["secok".to_string()]),
        },
    )
    .unwrap();
    let by = |n: &str| s.entries.iter().find(|e| e.kb_id == n).unwrap().clone();
    assert_eq!(by("rej").state, PatchState::InstalledOther);
    assert_eq!(by("secok").state, PatchState::InstalledPendingReboot);
}

#[test]
fn the_product_filter_sees_the_nodes_release() {
    let node = mixed_node();
    let b = CreatePatchBaselineRequest::parse(&baseline(json!({
        "GlobalFilters": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["Debian11"]}]}
    })))
    .unwrap()
    .baseline;
    let none = HashSet::new();
    let input = |product| ScanInput {
        baseline: &b,
        product,
        today: date!(2026 - 01 - 01),
        pending_reboot: &none,
    };
    assert!(
        scan::scan(node.root(), &input("Debian12"))
            .unwrap()
            .updates
            .is_empty()
    );
    assert_eq!(
        scan::scan(node.root(), &input("Debian11"))
            .unwrap()
            .updates
            .len(),
        2
    );
}

#[tokio::test]
async fn a_scan_refreshes_the_lists_reports_and_changes_nothing() {
    let node = mixed_node();
    let r = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(
        r.outcome.outcome.detail,
        InvocationDetail::Success,
        "{}",
        r.stderr
    );
    assert_eq!(r.outcome.outcome.response_code, 0);
    assert!(r.outcome.reboot.is_none());
    assert_eq!(node.apt_log(), "noninteractive update -q\n");
    assert_eq!(r.reports.len(), 1);
    let rep = &r.reports[0];
    assert_eq!(rep.operation, PatchOperation::Scan);
    assert_eq!(rep.snapshot_id, "cmd-1");
    assert_eq!(rep.baseline_id, "pb-0123456789abcdef0");
    assert_eq!(rep.patch_group.as_deref(), Some("web"));
    assert_eq!(rep.counts.missing, 2);
    assert_eq!(rep.counts.installed, 1);
    assert_eq!(rep.counts.installed_other, 5);
    assert!(rep.operation_start_time <= rep.operation_end_time);
    assert_eq!(rep.last_no_reboot_install_operation_time, None);
    assert_eq!(r.state("sec"), PatchState::Missing);
    assert_eq!(node.installed_version("sec").as_deref(), Some("1.0"));
    assert!(
        r.stdout.starts_with(
            "Patch Scan with baseline pb-0123456789abcdef0 (steward-test) on Debian12\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Missing                 2\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Compliance: NON_COMPLIANT"),
        "{}",
        r.stdout
    );
    // apt's output follows the summary.
    assert!(
        r.stdout.contains("Reading package lists..."),
        "{}",
        r.stdout
    );
    assert_eq!(r.outcome.outcome.stdout.inline, r.stdout);
}

#[tokio::test]
async fn install_installs_only_approved_updates_at_their_versions() {
    let node = mixed_node();
    let r = run_on(
        &node,
        &step(
            PatchOperation::Install,
            RebootOption::RebootIfNeeded,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(
        r.outcome.outcome.detail,
        InvocationDetail::Success,
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    let log = node.apt_log();
    assert_eq!(
        log.lines().nth(1),
        Some(
            "noninteractive install --only-upgrade -y -q -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef -o DPkg::Lock::Timeout=300 sec=1.1 two=1.0-1+deb12u1"
        ),
        "{log}"
    );
    assert_eq!(node.installed_version("sec").as_deref(), Some("1.1"));
    assert_eq!(
        node.installed_version("two").as_deref(),
        Some("1.0-1+deb12u1")
    );
    assert_eq!(node.installed_version("bug").as_deref(), Some("1.0"));
    assert_eq!(r.state("sec"), PatchState::Installed);
    assert_eq!(r.state("two"), PatchState::Installed);
    let rep = &r.reports[0];
    assert_eq!(rep.operation, PatchOperation::Install);
    assert_eq!(
        (rep.counts.installed, rep.counts.missing, rep.counts.failed),
        (3, 0, 0)
    );
    assert!(rep.counts.compliant());
    // Nothing asked for a reboot: none.
    assert!(r.outcome.reboot.is_none());
    assert!(!node.root().join("reboots").exists());
}

#[tokio::test]
async fn an_update_apt_does_not_install_is_failed_and_fails_the_step() {
    let node = mixed_node();
    node.touch("fail-two", "");
    let r = run_on(
        &node,
        &step(
            PatchOperation::Install,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Failed);
    assert_eq!(r.outcome.outcome.response_code, 1);
    assert_eq!(r.state("sec"), PatchState::Installed);
    assert_eq!(r.state("two"), PatchState::Failed);
    let two = r.entries().into_iter().find(|e| e.kb_id == "two").unwrap();
    assert_eq!(two.title, "two 1.0-1+deb12u1");
    assert_eq!(r.reports[0].counts.failed, 1);
    assert!(
        r.stderr.contains("apt-get install failed (exit code 100)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("E: cannot install two"), "{}", r.stderr);
}

#[tokio::test]
async fn block_keeps_out_updates_that_bring_a_rejected_package() {
    let node = mixed_node();
    // Installing sec would pull in rej's new version.
    node.touch("deps-sec", "Inst rej [1.0] (1.1 Debian:12/stable [all])\n");
    let block = baseline(json!({"RejectedPatches": ["rej"], "RejectedPatchesAction": "BLOCK"}));
    let r = run_on(
        &node,
        &step(PatchOperation::Install, RebootOption::NoReboot, block, 60),
    )
    .await;
    assert_eq!(node.installed_version("sec").as_deref(), Some("1.0"));
    assert_eq!(
        node.installed_version("two").as_deref(),
        Some("1.0-1+deb12u1")
    );
    assert_eq!(node.installed_version("rej").as_deref(), Some("1.0"));
    assert_eq!(r.state("sec"), PatchState::Failed);
    assert_eq!(r.state("two"), PatchState::Installed);
    assert_eq!(r.state("rej"), PatchState::InstalledRejected);
    assert!(
        r.stderr.contains("sec=1.1: not installed; it needs rej"),
        "{}",
        r.stderr
    );
    let installs: Vec<_> = node
        .apt_log()
        .lines()
        .filter(|l| l.contains("install") && !l.contains(" -s "))
        .map(String::from)
        .collect();
    assert_eq!(installs.len(), 1, "{installs:?}");
    assert!(installs[0].ends_with(" two=1.0-1+deb12u1"), "{installs:?}");

    // ALLOW_AS_DEPENDENCY: no simulation, both installed.
    let node = mixed_node();
    node.touch("deps-sec", "Inst rej [1.0] (1.1 Debian:12/stable [all])\n");
    let allow = baseline(json!({"RejectedPatches": ["rej"]}));
    let r = run_on(
        &node,
        &step(PatchOperation::Install, RebootOption::NoReboot, allow, 60),
    )
    .await;
    assert!(!node.apt_log().contains(" -s "));
    assert_eq!(r.state("sec"), PatchState::Installed);
}

#[tokio::test]
async fn no_reboot_leaves_the_installed_packages_pending_and_a_later_scan_says_so() {
    let node = mixed_node();
    node.touch("reboot-sec", "");
    let r = run_on(
        &node,
        &step(
            PatchOperation::Install,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Success);
    assert!(r.outcome.reboot.is_none());
    assert!(!node.root().join("reboots").exists());
    // Everything this Install installed waits for the reboot.
    assert_eq!(r.state("sec"), PatchState::InstalledPendingReboot);
    assert_eq!(r.state("two"), PatchState::InstalledPendingReboot);
    let rep = &r.reports[0];
    assert_eq!(rep.counts.installed_pending_reboot, 2);
    assert!(!rep.counts.compliant());
    assert_eq!(
        rep.last_no_reboot_install_operation_time,
        Some(rep.operation_end_time)
    );
    assert!(r.stdout.contains("a reboot is pending"), "{}", r.stdout);

    let scan = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(scan.state("sec"), PatchState::InstalledPendingReboot);
    // The reboot clears /run: then they are Installed.
    std::fs::remove_file(node.root().join(reboot::REBOOT_REQUIRED)).unwrap();
    let scan = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(scan.state("sec"), PatchState::Installed);
}

#[tokio::test]
async fn reboot_if_needed_asks_for_the_reboot_and_the_resumed_step_reports_installed() {
    let node = mixed_node();
    node.touch("reboot-sec", "");
    let s = step(
        PatchOperation::Install,
        RebootOption::RebootIfNeeded,
        baseline(json!({})),
        60,
    );
    let r = run_on(&node, &s).await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Success);
    let plan = r.outcome.reboot.clone().expect("a reboot is asked for");
    assert_eq!(plan.upgraded, ["sec", "two"]);
    assert_eq!(plan.operation_start_time, r.reports[0].operation_start_time);
    // Reported before the reboot.
    assert_eq!(r.state("sec"), PatchState::InstalledPendingReboot);
    assert_eq!(r.reports[0].last_no_reboot_install_operation_time, None);
    assert!(r.stdout.contains("rebooting"), "{}", r.stdout);

    // The reboot command runs, then the step waits to be stopped by it.
    let env = node.env();
    let (tx, mut rx) = watch::channel(None);
    let wait = tokio::spawn(async move { reboot::request(&env, &mut rx).await });
    crate::wait::wait_until("the reboot to be asked for", LIMIT, || {
        node.root().join("reboots").exists()
    })
    .await
    .unwrap();
    tx.send(Some(Stop::Shutdown)).unwrap();
    assert_eq!(
        within("the reboot wait", LIMIT, wait)
            .await
            .unwrap()
            .unwrap(),
        reboot::RebootEnd::ShuttingDown
    );

    // The node comes back with a new /run; the step resumes.
    std::fs::remove_file(node.root().join(reboot::REBOOT_REQUIRED)).unwrap();
    std::fs::remove_file(node.root().join(reboot::PATCHED)).unwrap();
    let reports = Mutex::new(Vec::new());
    let sink = |r: PatchReport| {
        reports.lock().unwrap().push(r);
        Ok(())
    };
    let env = node.env();
    let ctx = PatchContext {
        command_id: "cmd-1",
        env: &env,
        report: &sink,
        secrets: &[],
    };
    let before = node.apt_log();
    let o = resume(&s, &ctx, &node.root().join("step"), &plan).await;
    assert_eq!(o.detail, InvocationDetail::Success);
    assert_eq!(node.apt_log(), before, "a resumed step runs no apt-get");
    // The new summary, then what the step said before the reboot.
    let stdout = std::fs::read_to_string(&o.stdout.path).unwrap();
    let (after, earlier) = stdout.split_once("Reboot: the node rebooted\n").unwrap();
    assert!(after.contains("Installed               3\n"), "{stdout}");
    assert!(earlier.contains("Setting up sec (1.1)"), "{stdout}");
    let reports = reports.into_inner().unwrap();
    let rep = &reports[0];
    assert_eq!(rep.snapshot_id, "cmd-1-rebooted");
    assert_eq!(rep.operation, PatchOperation::Install);
    assert_eq!(rep.operation_start_time, plan.operation_start_time);
    let sec = rep.patches.iter().find(|e| e.kb_id == "sec").unwrap();
    assert_eq!(sec.state, PatchState::Installed);
    assert!(rep.counts.compliant());
    assert_eq!(
        std::fs::read_to_string(node.root().join("reboots"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

/// A patch root other than / (the agent's patch-root setting) is scanned
/// as it is and never changed: no apt-get, no Install.
#[tokio::test]
async fn a_root_other_than_slash_is_only_read() {
    let node = mixed_node();
    let env = PatchEnv::for_root(node.root());
    assert_eq!(env.apt_get, None);
    assert!(env.reboot.is_empty());
    assert_eq!(PatchEnv::for_root(Path::new("/")), PatchEnv::default());
    let reports = Mutex::new(Vec::new());
    let sink = |r: PatchReport| {
        reports.lock().unwrap().push(r);
        Ok(())
    };
    let (_tx, mut rx) = watch::channel(None);
    for (operation, want) in [
        (PatchOperation::Scan, InvocationDetail::Success),
        (PatchOperation::Install, InvocationDetail::Failed),
    ] {
        let ctx = PatchContext {
            command_id: "c",
            env: &env,
            report: &sink,
            secrets: &[],
        };
        let s = step(
            operation,
            RebootOption::RebootIfNeeded,
            baseline(json!({})),
            60,
        );
        let o = run(&s, &ctx, &node.root().join("step"), &mut rx).await;
        assert_eq!(o.outcome.detail, want, "{}", o.outcome.stderr.inline);
        assert!(o.reboot.is_none());
    }
    assert_eq!(node.apt_log(), "");
    assert_eq!(node.installed_version("sec").as_deref(), Some("1.0"));
    let reports = reports.into_inner().unwrap();
    assert_eq!(reports.len(), 1, "the Scan reported, the Install did not");
    assert_eq!(reports[0].counts.missing, 2);
}

#[tokio::test]
async fn a_failed_refresh_fails_the_step_without_a_report() {
    let node = mixed_node();
    node.touch("update-fails", "");
    let r = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Failed);
    assert!(r.reports.is_empty());
    assert!(
        r.stderr.contains("apt-get update failed (exit code 100)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("E: repository unreachable"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn the_step_timeout_and_cancel_stop_apt() {
    let node = mixed_node();
    node.touch("update-sleeps", "");
    let r = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            1,
        ),
    )
    .await;
    assert_eq!(
        r.outcome.outcome.detail,
        InvocationDetail::ExecutionTimedOut
    );
    assert_eq!(
        r.outcome.outcome.response_code,
        crate::runner::TIMEOUT_EXIT_CODE
    );
    assert!(r.reports.is_empty());

    let (tx, mut rx) = watch::channel(None);
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = tx.send(Some(Stop::Cancel));
        tx
    });
    let r = run_with(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            600,
        ),
        &mut rx,
    )
    .await;
    let _tx = canceller.await.unwrap();
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Cancelled);
    assert_eq!(r.outcome.outcome.stopped, Some(Stop::Cancel));
    assert!(r.reports.is_empty());
}

#[tokio::test]
async fn steps_without_inputs_or_for_another_system_fail_in_words() {
    let node = mixed_node();
    let mut s = step(
        PatchOperation::Scan,
        RebootOption::NoReboot,
        baseline(json!({})),
        60,
    );
    s.patch = None;
    let r = run_on(&node, &s).await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Failed);
    assert!(
        r.stderr.contains("without its patch inputs"),
        "{}",
        r.stderr
    );

    let r = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({"OperatingSystem": "UBUNTU"})),
            60,
        ),
    )
    .await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Failed);
    assert!(
        r.stderr
            .contains("is for UBUNTU, and this node runs Debian12"),
        "{}",
        r.stderr
    );
    assert_eq!(node.apt_log(), "", "nothing ran");

    let r = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            json!({"Name": "x"}),
            60,
        ),
    )
    .await;
    assert_eq!(r.outcome.outcome.detail, InvocationDetail::Failed);
    assert!(r.stderr.contains("is not valid"), "{}", r.stderr);
}

#[tokio::test]
async fn a_large_report_goes_in_parts() {
    let status: Vec<String> = (0..950)
        .map(|i| installed(&format!("p{i:04}"), "1.0", "amd64", "utils", "optional"))
        .collect();
    let security: Vec<String> = (0..950)
        .step_by(2)
        .map(|i| stanza(&format!("p{i:04}"), "1.1", "amd64", "utils", "optional"))
        .collect();
    let node = Node::new(&status, &security, &[]);
    let r = run_on(
        &node,
        &step(
            PatchOperation::Scan,
            RebootOption::NoReboot,
            baseline(json!({})),
            60,
        ),
    )
    .await;
    assert_eq!(r.reports.len(), 3);
    assert!(
        r.reports
            .iter()
            .all(|p| p.parts == 3 && p.counts.missing == 475)
    );
    assert_eq!(r.entries().len(), 951);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn version() -> impl Strategy<Value = String> {
        (0u8..2, 0u8..4, 0u8..4, proptest::option::of("[a-z~+]{1,2}"))
            .prop_map(|(a, b, c, tail)| format!("{a}.{b}.{c}{}", tail.unwrap_or_default()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// With a security-only baseline, a package's update is the newest
        /// version a security list offers above the installed one, whatever
        /// else the lists hold; with none, the package is not Missing.
        #[test]
        fn the_update_is_the_newest_newer_security_version(
            installed_version in version(),
            offers in proptest::collection::vec((version(), any::<bool>()), 0..6),
        ) {
            let security: Vec<String> = offers.iter().filter(|(_, s)| *s)
                .map(|(v, _)| stanza("pkg", v, "amd64", "utils", "optional")).collect();
            let main: Vec<String> = offers.iter().filter(|(_, s)| !*s)
                .map(|(v, _)| stanza("pkg", v, "amd64", "utils", "optional")).collect();
            let node = Node::new(&[installed("pkg", &installed_version, "amd64", "utils", "optional")], &security, &main);
            let b = CreatePatchBaselineRequest::parse(&baseline(json!({}))).unwrap().baseline;
            let none = HashSet::new();
            let s = scan::scan(node.root(), &ScanInput {
                baseline: &b, product: "Debian12", today: date!(2026 - 01 - 01), pending_reboot: &none,
            }).unwrap();
            let want = offers.iter()
                .filter(|(v, sec)| *sec && version::compare(v, &installed_version).is_gt())
                .map(|(v, _)| v.clone())
                .max_by(|a, b| version::compare(a, b));
            let got = s.updates.iter().find(|u| u.name == "pkg").map(|u| u.version.clone());
            match (&got, &want) {
                (Some(g), Some(w)) => prop_assert!(version::compare(g, w).is_eq(), "{} vs {}", g, w),
                (None, None) => {}
                _ => prop_assert!(false, "update {:?}, expected {:?}", got, want),
            }
            let entry = s.entries.iter().find(|e| e.kb_id == "pkg").unwrap();
            prop_assert_eq!(entry.state == PatchState::Missing, want.is_some());
            let c = steward_core::patching::report::PatchCounts::of(&s.entries);
            let total = c.installed + c.installed_other + c.installed_pending_reboot + c.installed_rejected + c.missing + c.failed + c.not_applicable;
            prop_assert_eq!(total as usize, s.entries.len());
        }
    }
}
