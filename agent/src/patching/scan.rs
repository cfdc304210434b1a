//! Scan: every installed package against the updates apt's lists offer,
//! evaluated with the node's baseline.
//!
//! For each installed package the candidates are the versions the lists
//! offer for it (same name, same architecture or `all`) that are newer
//! than the installed one; pinning and apt preferences are not taken into
//! account. The update is the newest candidate the baseline approves (a
//! security archive's fix is found even when a newer non-security version
//! exists); a candidate's version offered by any security list is a
//! security update. A package's states:
//!
//! - an approved newer candidate: **Missing** at that version, classified
//!   `Security` or `Bugfix`, severity its Priority, at the compliance level
//!   of the rules that approve it;
//! - otherwise the installed version is judged as the baseline would judge
//!   it as an update (its section, priority and whether a security list
//!   offers that very version): **Installed** if approved, **InstalledOther**
//!   if not, and, when its name is in RejectedPatches, **InstalledRejected**
//!   with BLOCK or **InstalledOther** with ALLOW_AS_DEPENDENCY (SSM's
//!   RejectedPatchesAction);
//! - **InstalledPendingReboot** for a package an Install upgraded while the
//!   node still waits for its reboot (see [`super::reboot`]);
//! - **NotApplicable** for each name in ApprovedPatches (without wildcards)
//!   that no installed package has.
//!
//! Release dates: apt's lists carry none per package, so `released` is
//! unknown and approval delays are met at once (as the predefined
//! baselines assume).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use steward_core::patching::report::{PatchEntry, PatchState};
use steward_core::patching::{
    Decision, PatchBaseline, RejectedPatchesAction, UpdateCandidate, evaluate,
};
use time::Date;

use super::dpkg_status::{self, Installed};
use super::{PatchError, apt_lists, version};

/// What a scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// One entry per installed package (and per NotApplicable name).
    pub entries: Vec<PatchEntry>,
    /// The approved updates: what Install installs.
    pub updates: Vec<Update>,
    /// Things the operator should know (lists not read).
    pub warnings: Vec<String>,
    pub installed: usize,
    pub lists: usize,
    /// dpkg's architecture: apt names other architectures' packages.
    pub native_architecture: Option<String>,
}

/// An approved update of an installed package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub architecture: String,
    pub from: String,
    pub version: String,
    /// Its entry in [`Scan::entries`].
    pub entry: usize,
}

impl Update {
    /// How apt-get is asked for it: `name=version`, with `:arch` for a
    /// foreign architecture.
    pub fn apt_spec(&self, native: Option<&str>) -> String {
        if self.architecture == "all" || Some(self.architecture.as_str()) == native {
            format!("{}={}", self.name, self.version)
        } else {
            format!("{}:{}={}", self.name, self.architecture, self.version)
        }
    }
}

/// What the scan needs besides the root.
pub struct ScanInput<'a> {
    pub baseline: &'a PatchBaseline,
    /// PRODUCT, e.g. `Debian12`.
    pub product: &'a str,
    pub today: Date,
    /// Packages an Install upgraded since the node last booted, when a
    /// reboot is still required.
    pub pending_reboot: &'a HashSet<String>,
}

#[derive(Debug, Clone)]
struct Candidate {
    version: String,
    section: String,
    priority: String,
    security: bool,
}

/// Scans the node under `root`.
pub fn scan(root: &Path, input: &ScanInput<'_>) -> Result<Scan, PatchError> {
    let installed = dpkg_status::read(root)?;
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in installed.iter().enumerate() {
        by_name.entry(p.name.as_str()).or_default().push(i);
    }
    let mut newer: Vec<Vec<Candidate>> = vec![Vec::new(); installed.len()];
    // Whether a security list offers the installed version itself.
    let mut installed_from_security = vec![false; installed.len()];
    let (lists, warnings) = apt_lists::find(root)?;
    for list in &lists {
        apt_lists::read(list, |offer| {
            let Some(indices) = by_name.get(offer.name) else {
                return;
            };
            for &i in indices {
                let p = &installed[i];
                if !(offer.architecture == p.architecture
                    || offer.architecture == "all"
                    || p.architecture == "all")
                {
                    continue;
                }
                match version::compare(offer.version, &p.version) {
                    std::cmp::Ordering::Greater => {}
                    std::cmp::Ordering::Equal => {
                        installed_from_security[i] |= offer.security;
                        continue;
                    }
                    std::cmp::Ordering::Less => continue,
                }
                let known = &mut newer[i];
                if let Some(c) = known
                    .iter_mut()
                    .find(|c| version::compare(&c.version, offer.version).is_eq())
                {
                    c.security |= offer.security;
                } else {
                    known.push(Candidate {
                        version: offer.version.to_string(),
                        section: offer.section.to_string(),
                        priority: offer.priority.to_string(),
                        security: offer.security,
                    });
                }
            }
        })?;
    }
    drop(by_name);

    let mut entries = Vec::with_capacity(installed.len());
    let mut updates = Vec::new();
    for (i, p) in installed.iter().enumerate() {
        let mut candidates = std::mem::take(&mut newer[i]);
        candidates.sort_by(|a, b| version::compare(&b.version, &a.version));
        let approved = candidates.iter().find_map(|c| {
            match evaluate(input.baseline, &candidate(p, c, input.product), input.today) {
                Decision::Approved { compliance_level } => Some((c, compliance_level)),
                _ => None,
            }
        });
        if let Some((c, level)) = approved {
            updates.push(Update {
                name: p.name.clone(),
                architecture: p.architecture.clone(),
                from: p.version.clone(),
                version: c.version.clone(),
                entry: entries.len(),
            });
            entries.push(PatchEntry {
                title: format!("{} {}", p.name, c.version),
                kb_id: p.name.clone(),
                classification: classification(c.security).into(),
                severity: c.priority.clone(),
                state: PatchState::Missing,
                installed_time: None,
                compliance_level: Some(level),
            });
            continue;
        }
        entries.push(installed_entry(root, p, installed_from_security[i], input));
    }
    for name in &input.baseline.approved_patches {
        if !name.contains('*') && !installed.iter().any(|p| p.name.eq_ignore_ascii_case(name)) {
            entries.push(PatchEntry {
                title: name.clone(),
                kb_id: name.clone(),
                classification: String::new(),
                severity: String::new(),
                state: PatchState::NotApplicable,
                installed_time: None,
                compliance_level: None,
            });
        }
    }
    Ok(Scan {
        entries,
        updates,
        warnings,
        installed: installed.len(),
        lists: lists.len(),
        native_architecture: dpkg_status::native_architecture(&installed).map(String::from),
    })
}

fn classification(security: bool) -> &'static str {
    if security { "Security" } else { "Bugfix" }
}

fn candidate(p: &Installed, c: &Candidate, product: &str) -> UpdateCandidate {
    UpdateCandidate {
        name: p.name.clone(),
        version: c.version.clone(),
        architecture: p.architecture.clone(),
        section: if c.section.is_empty() {
            p.section.clone()
        } else {
            c.section.clone()
        },
        priority: if c.priority.is_empty() {
            p.priority.clone()
        } else {
            c.priority.clone()
        },
        product: product.to_string(),
        released: None,
        security: c.security,
    }
}

/// The state of an installed package with no approved update.
fn installed_entry(
    root: &Path,
    p: &Installed,
    security: bool,
    input: &ScanInput<'_>,
) -> PatchEntry {
    let own = Candidate {
        version: p.version.clone(),
        section: p.section.clone(),
        priority: p.priority.clone(),
        security,
    };
    let decision = evaluate(
        input.baseline,
        &candidate(p, &own, input.product),
        input.today,
    );
    let (state, level) = match decision {
        Decision::Approved { compliance_level } => (PatchState::Installed, Some(compliance_level)),
        Decision::Rejected {
            action: RejectedPatchesAction::Block,
        } => (PatchState::InstalledRejected, None),
        Decision::Rejected {
            action: RejectedPatchesAction::AllowAsDependency,
        }
        | Decision::NotApproved => (PatchState::InstalledOther, None),
    };
    let state = if input.pending_reboot.contains(&p.name) && state != PatchState::InstalledRejected
    {
        PatchState::InstalledPendingReboot
    } else {
        state
    };
    PatchEntry {
        title: format!("{} {}", p.name, p.version),
        kb_id: p.name.clone(),
        // SSM leaves an installed package unclassified; one the security
        // archive shipped is still a security patch for the counts.
        classification: if security {
            "Security".into()
        } else {
            String::new()
        },
        severity: p.priority.clone(),
        state,
        installed_time: dpkg_status::installed_time(root, p),
        compliance_level: level,
    }
}
