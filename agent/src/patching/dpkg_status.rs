//! The installed packages, from dpkg's database (`var/lib/dpkg/status`).

use std::io::BufReader;
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::PatchError;
use super::stanza::StanzaReader;

pub const STATUS: &str = "var/lib/dpkg/status";

/// One installed package (dpkg state `installed`, whatever its want flag:
/// a held package is installed too).
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    pub name: String,
    pub architecture: String,
    pub version: String,
    pub section: String,
    pub priority: String,
}

/// Reads every installed package under `root`, in the file's order.
pub fn read(root: &Path) -> Result<Vec<Installed>, PatchError> {
    let path = root.join(STATUS);
    let file = std::fs::File::open(&path).map_err(|e| PatchError::read(&path, e))?;
    let mut r = StanzaReader::new(
        BufReader::new(file),
        [
            "Package",
            "Status",
            "Architecture",
            "Version",
            "Section",
            "Priority",
        ],
    );
    let mut out = Vec::new();
    while r.next_stanza().map_err(|e| PatchError::read(&path, e))? {
        let [name, status, arch, version, section, priority] = &r.values;
        // `Status: want flag state`; only `installed` is on the node whole.
        if name.is_empty()
            || version.is_empty()
            || status.split_whitespace().nth(2) != Some("installed")
        {
            continue;
        }
        out.push(Installed {
            name: name.clone(),
            architecture: arch.clone(),
            version: version.clone(),
            section: section.clone(),
            priority: priority.clone(),
        });
    }
    Ok(out)
}

/// The node's own architecture: dpkg's (dpkg is always of the native
/// architecture), without running dpkg.
pub fn native_architecture(installed: &[Installed]) -> Option<&str> {
    installed
        .iter()
        .find(|p| p.name == "dpkg")
        .map(|p| p.architecture.as_str())
}

/// When the package was last installed or upgraded: dpkg rewrites its file
/// list then (dpkg keeps no install time of its own).
pub fn installed_time(root: &Path, p: &Installed) -> Option<f64> {
    let info = root.join("var/lib/dpkg/info");
    [
        format!("{}:{}.list", p.name, p.architecture),
        format!("{}.list", p.name),
    ]
    .iter()
    .find_map(|f| std::fs::metadata(info.join(f)).ok())
    .and_then(|m| m.modified().ok())
    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    .map(|d| d.as_secs() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_are_read() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/dpkg/info")).unwrap();
        std::fs::write(
            root.path().join(STATUS),
            "Package: dpkg\nStatus: install ok installed\nPriority: required\nSection: admin\nArchitecture: amd64\nVersion: 1.21.22\nDescription: x\n y\n\n\
             Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\n\
             Package: held\nStatus: hold ok installed\nArchitecture: all\nVersion: 2.0-1\n\n\
             Package: half\nStatus: install ok half-configured\nArchitecture: amd64\nVersion: 3\n",
        )
        .unwrap();
        std::fs::write(root.path().join("var/lib/dpkg/info/held.list"), "/.\n").unwrap();
        let got = read(root.path()).unwrap();
        let names: Vec<_> = got.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["dpkg", "held"]);
        assert_eq!(got[0].section, "admin");
        assert_eq!(got[1].priority, "");
        assert_eq!(native_architecture(&got), Some("amd64"));
        assert!(installed_time(root.path(), &got[1]).is_some());
        assert!(installed_time(root.path(), &got[0]).is_none());
    }

    #[test]
    fn a_missing_database_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let e = read(root.path()).unwrap_err();
        assert!(e.to_string().contains("var/lib/dpkg/status"), "{e}");
    }
}
