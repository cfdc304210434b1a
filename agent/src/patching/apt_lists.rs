//! The updates apt knows of: the `*_Packages` files apt keeps under
//! `var/lib/apt/lists` (plain, or LZ4 as apt stores them with
//! `Acquire::GzipIndexes`), each with its repository's `InRelease` or
//! `Release` file, which says whether it is a security archive.
//!
//! A list is a security list when its Release file's Suite or Codename
//! ends in `-security` (Debian's `bookworm-security`, Ubuntu's
//! `jammy-security`) or its Label does (`Debian-Security`); without a
//! Release file, when its file name names such a suite.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::PatchError;
use super::stanza::StanzaReader;

pub const LISTS: &str = "var/lib/apt/lists";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Lz4,
}

/// One Packages file and what its repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageList {
    pub path: PathBuf,
    pub security: bool,
    compression: Compression,
}

/// One package version a list offers, borrowed from the reader.
#[derive(Debug)]
pub struct Offer<'a> {
    pub name: &'a str,
    pub architecture: &'a str,
    pub version: &'a str,
    pub section: &'a str,
    pub priority: &'a str,
    pub security: bool,
}

/// The Packages files under `root`, sorted by name, and a warning for each
/// file that cannot be read (a compression apt may use that is not read
/// here).
pub fn find(root: &Path) -> Result<(Vec<PackageList>, Vec<String>), PatchError> {
    let dir = root.join(LISTS);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        // No lists yet: apt has never updated; nothing is offered.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(PatchError::read(&dir, e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let releases: Vec<&str> = names
        .iter()
        .filter_map(|n| {
            n.strip_suffix("InRelease")
                .or_else(|| n.strip_suffix("Release"))
        })
        .collect();
    let mut lists = Vec::new();
    let mut warnings = Vec::new();
    for name in &names {
        let compression = if name.ends_with("_Packages") {
            Compression::None
        } else if name.ends_with("_Packages.lz4") {
            Compression::Lz4
        } else {
            if name.contains("_Packages.") && !name.contains(".diff") {
                warnings.push(format!(
                    "{name}: this compression of apt's lists is not read; its updates are not counted"
                ));
            }
            continue;
        };
        // The repository whose Release file name is the longest prefix of
        // this list's name (`host_path_dists_suite_` + `main_binary-…`).
        let release = releases
            .iter()
            .filter(|prefix| name.starts_with(**prefix))
            .max_by_key(|prefix| prefix.len());
        let security = match release {
            Some(prefix) => release_is_security(&dir, prefix)?,
            None => name.contains("-security_"),
        };
        lists.push(PackageList {
            path: dir.join(name),
            security,
            compression,
        });
    }
    Ok((lists, warnings))
}

/// Whether the repository whose Release file names start with `prefix`
/// is a security archive (InRelease preferred, as apt does).
fn release_is_security(dir: &Path, prefix: &str) -> Result<bool, PatchError> {
    for file in ["InRelease", "Release"] {
        let path = dir.join(format!("{prefix}{file}"));
        let Ok(f) = File::open(&path) else { continue };
        let mut r = StanzaReader::new(BufReader::new(f), ["Suite", "Codename", "Label"]);
        // A clearsigned file starts with a stanza of its own (`Hash:`).
        while r.next_stanza().map_err(|e| PatchError::read(&path, e))? {
            if r.values.iter().any(|v| !v.is_empty()) {
                return Ok(r
                    .values
                    .iter()
                    .any(|v| v.to_ascii_lowercase().ends_with("-security")));
            }
        }
    }
    Ok(prefix.contains("-security_"))
}

/// Streams every package of `list` to `offer`.
pub fn read(list: &PackageList, mut offer: impl FnMut(&Offer<'_>)) -> Result<(), PatchError> {
    let path = &list.path;
    let file = File::open(path).map_err(|e| PatchError::read(path, e))?;
    let input: Box<dyn BufRead> = match list.compression {
        Compression::None => Box::new(BufReader::new(file)),
        Compression::Lz4 => Box::new(BufReader::new(lz4_flex::frame::FrameDecoder::new(
            BufReader::new(file),
        ))),
    };
    let mut r = StanzaReader::new(
        input,
        ["Package", "Architecture", "Version", "Section", "Priority"],
    );
    while r.next_stanza().map_err(|e| PatchError::read(path, e))? {
        let [name, architecture, version, section, priority] = &r.values;
        if name.is_empty() || version.is_empty() {
            continue;
        }
        offer(&Offer {
            name,
            architecture,
            version,
            section,
            priority,
            security: list.security,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, text: &str) {
        let dir = root.join(LISTS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn lists_take_security_from_their_release_file() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let pkgs = "Package: a\nVersion: 1\nArchitecture: all\nSection: admin\nPriority: important\n\nPackage: b\nVersion: 2\nArchitecture: amd64\n";
        write(
            r,
            "_srv_repo_dists_bookworm_InRelease",
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian\nSuite: bookworm\n",
        );
        write(
            r,
            "_srv_repo_dists_bookworm_main_binary-amd64_Packages",
            pkgs,
        );
        write(
            r,
            "_srv_repo_dists_bookworm-security_Release",
            "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n",
        );
        write(
            r,
            "_srv_repo_dists_bookworm-security_main_binary-amd64_Packages",
            pkgs,
        );
        // Ubuntu names its security suite only in Suite.
        write(
            r,
            "archive.ubuntu.com_ubuntu_dists_jammy-security_InRelease",
            "Origin: Ubuntu\nLabel: Ubuntu\nSuite: jammy-security\n",
        );
        write(
            r,
            "archive.ubuntu.com_ubuntu_dists_jammy-security_main_binary-amd64_Packages",
            pkgs,
        );
        write(
            r,
            "archive.ubuntu.com_ubuntu_dists_jammy_InRelease",
            "Origin: Ubuntu\nLabel: Ubuntu\nSuite: jammy\n",
        );
        write(
            r,
            "archive.ubuntu.com_ubuntu_dists_jammy_main_binary-amd64_Packages",
            pkgs,
        );
        write(r, "x_dists_y_main_binary-amd64_Packages.xz", "");
        write(r, "x_dists_y_main_i18n_Translation-en", "");
        let (lists, warnings) = find(r).unwrap();
        let got: Vec<(String, bool)> = lists
            .iter()
            .map(|l| {
                (
                    l.path.file_name().unwrap().to_string_lossy().into_owned(),
                    l.security,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "_srv_repo_dists_bookworm-security_main_binary-amd64_Packages".to_string(),
                    true
                ),
                (
                    "_srv_repo_dists_bookworm_main_binary-amd64_Packages".to_string(),
                    false
                ),
                (
                    "archive.ubuntu.com_ubuntu_dists_jammy-security_main_binary-amd64_Packages"
                        .to_string(),
                    true
                ),
                (
                    "archive.ubuntu.com_ubuntu_dists_jammy_main_binary-amd64_Packages".to_string(),
                    false
                ),
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let mut seen = Vec::new();
        read(&lists[0], |o| {
            seen.push(format!(
                "{} {} {} {} {} {}",
                o.name, o.architecture, o.version, o.section, o.priority, o.security
            ))
        })
        .unwrap();
        assert_eq!(seen, ["a all 1 admin important true", "b amd64 2   true"]);
    }

    #[test]
    fn lz4_lists_are_read_and_no_lists_is_no_offer() {
        let root = tempfile::tempdir().unwrap();
        let (lists, warnings) = find(root.path()).unwrap();
        assert!(lists.is_empty() && warnings.is_empty());
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut enc, b"Package: z\nVersion: 9\nArchitecture: all\n")
            .unwrap();
        let bytes = enc.finish().unwrap();
        let dir = root.path().join(LISTS);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("h_dists_s-security_main_binary-amd64_Packages.lz4"),
            bytes,
        )
        .unwrap();
        let (lists, _) = find(root.path()).unwrap();
        assert_eq!(lists.len(), 1);
        // No Release file: the name says security.
        assert!(lists[0].security);
        let mut n = 0;
        read(&lists[0], |o| {
            assert_eq!((o.name, o.version), ("z", "9"));
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
