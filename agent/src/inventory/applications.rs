//! `AWS:Application` (and `AWS:AWSComponent`) from dpkg's database,
//! read with the patch plugin's stanza reader: no dpkg-query run.

use std::io::BufReader;
use std::path::Path;
use std::time::UNIX_EPOCH;

use steward_core::inventory::Entry;

use crate::patching::stanza::StanzaReader;

pub const STATUS: &str = "var/lib/dpkg/status";

/// Packages SSM reports as `AWS:AWSComponent` rather than applications.
pub const AWS_COMPONENTS: [&str; 7] = [
    "amazon-ssm-agent",
    "amazon-cloudwatch-agent",
    "amazon-efs-utils",
    "aws-cfn-bootstrap",
    "awscli",
    "ec2-instance-connect",
    "aws-kinesis-agent",
];

const FIELDS: [&str; 8] = [
    "Package",
    "Status",
    "Version",
    "Architecture",
    "Maintainer",
    "Description",
    "Homepage",
    "Section",
];

/// Every installed package under `root` as SSM's attributes: Name,
/// Version (dpkg's, whole), Architecture, Publisher (the Maintainer),
/// Summary (the description's first line), URL, ApplicationType (the
/// section), PackageId (`name_version_arch.deb`, as SSM's agent writes
/// it) and InstalledTime (when dpkg last wrote its file list).
pub fn read(root: &Path) -> std::io::Result<Vec<Entry>> {
    let path = root.join(STATUS);
    let file = std::fs::File::open(&path)?;
    let mut r = StanzaReader::new(BufReader::new(file), FIELDS);
    let mut out = Vec::new();
    while r.next_stanza()? {
        let [
            name,
            status,
            version,
            arch,
            maintainer,
            description,
            homepage,
            section,
        ] = &r.values;
        if name.is_empty()
            || version.is_empty()
            || status.split_whitespace().nth(2) != Some("installed")
        {
            continue;
        }
        let mut e = Entry::new();
        e.insert("Name".into(), name.clone());
        e.insert("Version".into(), version.clone());
        e.insert("Architecture".into(), arch.clone());
        e.insert("Publisher".into(), maintainer.clone());
        e.insert("Summary".into(), description.clone());
        e.insert("ApplicationType".into(), section.clone());
        e.insert("PackageId".into(), format!("{name}_{version}_{arch}.deb"));
        if !homepage.is_empty() {
            e.insert("URL".into(), homepage.clone());
        }
        if let Some(t) = installed_time(root, name, arch) {
            e.insert("InstalledTime".into(), t);
        }
        out.push(e);
    }
    out.sort_by(|a, b| {
        (a.get("Name"), a.get("Architecture")).cmp(&(b.get("Name"), b.get("Architecture")))
    });
    Ok(out)
}

fn installed_time(root: &Path, name: &str, arch: &str) -> Option<String> {
    let info = root.join("var/lib/dpkg/info");
    let secs = [format!("{name}:{arch}.list"), format!("{name}.list")]
        .iter()
        .find_map(|f| std::fs::metadata(info.join(f)).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())?
        .as_secs();
    Some(steward_core::clock::iso8601_seconds(secs as f64))
}

/// Splits the packages into (applications, AWS components).
pub fn split_components(all: Vec<Entry>) -> (Vec<Entry>, Vec<Entry>) {
    all.into_iter().partition(|e| {
        !e.get("Name")
            .is_some_and(|n| AWS_COMPONENTS.contains(&n.as_str()))
    })
}

/// An AWS component keeps the attributes `AWS:AWSComponent` has.
pub fn as_component(mut e: Entry) -> Entry {
    e.retain(|k, _| {
        matches!(
            k.as_str(),
            "Name"
                | "ApplicationType"
                | "Publisher"
                | "Version"
                | "InstalledTime"
                | "Architecture"
                | "URL"
        )
    });
    e
}
