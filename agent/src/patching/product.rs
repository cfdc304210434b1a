//! The node's PRODUCT, as baselines filter on it (`Debian12`,
//! `Ubuntu22.04`), and its operating system, from `etc/os-release`.

use std::path::Path;

use steward_core::patching::OperatingSystem;

use super::PatchError;

pub const OS_RELEASE: &str = "etc/os-release";

/// The node's system and PRODUCT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub os: OperatingSystem,
    /// `Debian12`, `Ubuntu22.04`: SSM's product names for apt systems.
    pub name: String,
}

pub fn read(root: &Path) -> Result<Product, PatchError> {
    // os-release may be a link to ../usr/lib/os-release: resolve it inside the root.
    let mut path = root.join(OS_RELEASE);
    if let Ok(target) = std::fs::read_link(&path)
        && target.is_absolute()
    {
        path = root.join(target.strip_prefix("/").unwrap_or(&target));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| PatchError::read(&path, e))?;
    parse(&text)
}

pub fn parse(text: &str) -> Result<Product, PatchError> {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        })
    };
    let id = field("ID").unwrap_or_default();
    let version = field("VERSION_ID").unwrap_or_default();
    let (os, family) = match id.as_str() {
        "debian" => (OperatingSystem::Debian, "Debian"),
        "ubuntu" => (OperatingSystem::Ubuntu, "Ubuntu"),
        other => {
            return Err(PatchError::Unsupported(format!(
                "this node runs `{other}` (os-release ID); the patch plugin patches Debian and Ubuntu"
            )));
        }
    };
    if version.is_empty() {
        // Debian testing and unstable have no VERSION_ID.
        return Err(PatchError::Unsupported(format!(
            "this {family} node has no VERSION_ID in os-release (testing or unstable); Patch Manager patches released versions"
        )));
    }
    Ok(Product {
        os,
        name: format!("{family}{version}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_and_ubuntu_products() {
        let d =
            parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
                .unwrap();
        assert_eq!(
            d,
            Product {
                os: OperatingSystem::Debian,
                name: "Debian12".into()
            }
        );
        let u = parse("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"22.04\"\n").unwrap();
        assert_eq!(u.name, "Ubuntu22.04");
        assert_eq!(u.os, OperatingSystem::Ubuntu);
        assert!(parse("ID=fedora\nVERSION_ID=40\n").is_err());
        assert!(parse("ID=debian\n").is_err());
    }

    #[test]
    fn a_linked_os_release_is_read_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("usr/lib/os-release"),
            "ID=debian\nVERSION_ID=12\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/usr/lib/os-release", root.path().join(OS_RELEASE)).unwrap();
        assert_eq!(read(root.path()).unwrap().name, "Debian12");
    }
}
