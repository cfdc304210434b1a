//! `AWS:Service` on Linux: the systemd service units installed under the
//! root (`lib/systemd/system`, `usr/lib/systemd/system`,
//! `etc/systemd/system`, the last overriding), read as files, so it works
//! whether or not systemd runs (a container, a chroot).
//!
//! StartType: `Masked` (the unit links to /dev/null), `Enabled` (a
//! `*.wants` directory links it), `Static` (no `[Install]` section), else
//! `Disabled`. Status: `Running` when systemd runs and has an invocation
//! of the unit (`run/systemd/units/invocation:<unit>`), `Stopped` when
//! systemd runs and has none, empty when systemd is not running: what is
//! running cannot be known from files then, and nothing is guessed.

use std::collections::BTreeMap;
use std::path::Path;

use steward_core::inventory::Entry;

const UNIT_DIRS: [&str; 3] = [
    "lib/systemd/system",
    "usr/lib/systemd/system",
    "etc/systemd/system",
];

pub fn read(root: &Path) -> std::io::Result<Vec<Entry>> {
    // Later directories override earlier ones, as systemd's search path.
    let mut units: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for dir in UNIT_DIRS {
        let Ok(list) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for f in list.flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            // Templates (`foo@.service`) are not services until instantiated.
            if name.ends_with(".service") && !name.contains("@.") {
                units.insert(name, f.path());
            }
        }
    }
    let enabled = wanted(root);
    let systemd_runs = root.join("run/systemd/system").is_dir();
    Ok(units
        .into_iter()
        .map(|(name, path)| {
            let masked = std::fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null"));
            let text = if masked {
                String::new()
            } else {
                std::fs::read_to_string(&path).unwrap_or_default()
            };
            let section = |sec: &str, key: &str| -> Vec<String> {
                let mut inside = false;
                let mut out = Vec::new();
                for l in text.lines().map(str::trim) {
                    if l.starts_with('[') {
                        inside = l == format!("[{sec}]");
                    } else if inside
                        && let Some((k, v)) = l.split_once('=')
                        && k.trim() == key
                    {
                        out.extend(v.split_whitespace().map(str::to_string));
                    }
                }
                out
            };
            let has_install = text.lines().any(|l| l.trim() == "[Install]");
            let start_type = if masked {
                "Masked"
            } else if enabled.contains_key(&name) {
                "Enabled"
            } else if !has_install {
                "Static"
            } else {
                "Disabled"
            };
            let status = if !systemd_runs {
                ""
            } else if root
                .join("run/systemd/units")
                .join(format!("invocation:{name}"))
                .exists()
            {
                "Running"
            } else {
                "Stopped"
            };
            let description = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Description="))
                .next()
                .unwrap_or_default()
                .to_string();
            let mut e = Entry::new();
            e.insert("Name".into(), name.clone());
            e.insert("DisplayName".into(), description);
            e.insert(
                "ServiceType".into(),
                section("Service", "Type").join(",").if_empty("simple"),
            );
            e.insert("Status".into(), status.into());
            e.insert("StartType".into(), start_type.into());
            e.insert(
                "ServicesDependedOn".into(),
                section("Unit", "Requires").join(","),
            );
            e.insert(
                "DependentServices".into(),
                section("Install", "RequiredBy").join(","),
            );
            e
        })
        .collect())
}

trait IfEmpty {
    fn if_empty(self, default: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, default: &str) -> String {
        if self.is_empty() {
            default.to_string()
        } else {
            self
        }
    }
}

/// Units linked from a `*.wants` directory under etc/systemd/system.
fn wanted(root: &Path) -> BTreeMap<String, ()> {
    let mut out = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(root.join("etc/systemd/system")) else {
        return out;
    };
    for d in dirs.flatten() {
        if !d.file_name().to_string_lossy().ends_with(".wants") {
            continue;
        }
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            out.insert(f.file_name().to_string_lossy().to_string(), ());
        }
    }
    out
}
