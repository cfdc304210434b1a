//! The plugin's collection from a fixture root, its memory of what was
//! sent, and its packing into reports.

use std::path::Path;

use steward_core::inventory::step::GatherInventory;

use super::*;

const STATUS_TEXT: &str = "\
Package: bash
Status: install ok installed
Priority: required
Section: shells
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Version: 5.2.15-2+b2
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: amazon-ssm-agent
Status: install ok installed
Section: admin
Maintainer: Amazon.com, Inc. <ec2-ssm-feedback@amazon.com>
Architecture: amd64
Version: 3.3.0.0-1
Description: Amazon SSM Agent

Package: libc6
Status: install ok installed
Section: libs
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
";

fn fixture() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in [
        "var/lib/dpkg/info",
        "lib/systemd/system",
        "etc/systemd/system/multi-user.target.wants",
        "custom",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), STATUS_TEXT).unwrap();
    std::fs::write(r.join("var/lib/dpkg/info/bash.list"), "/bin/bash\n").unwrap();
    std::fs::write(
        r.join("lib/systemd/system/ssh.service"),
        "[Unit]\nDescription=OpenBSD Secure Shell server\nRequires=network.target\n[Service]\nType=notify\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    std::fs::write(
        r.join("lib/systemd/system/cron.service"),
        "[Unit]\nDescription=cron\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    std::fs::write(
        r.join("lib/systemd/system/static.service"),
        "[Unit]\nDescription=Static\n",
    )
    .unwrap();
    std::fs::write(
        r.join("lib/systemd/system/getty@.service"),
        "[Unit]\nDescription=template\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/ssh.service",
        r.join("etc/systemd/system/multi-user.target.wants/ssh.service"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/null", r.join("etc/systemd/system/cron.service")).unwrap();
    std::fs::write(
        r.join("custom/rack.json"),
        r#"{"SchemaVersion": "1.0", "TypeName": "Custom:RackInfo", "Content": {"Location": "Rack 7", "Slot": 3}}"#,
    )
    .unwrap();
    std::fs::write(
        r.join("custom/disks.json"),
        r#"{"SchemaVersion": "1.1", "TypeName": "Custom:Disks", "Content": [{"Id": "a"}, {"Id": "b"}]}"#,
    )
    .unwrap();
    std::fs::write(r.join("custom/bad.json"), r#"{"TypeName": "Rack"}"#).unwrap();
    std::fs::write(r.join("custom/notes.txt"), "not read").unwrap();
    root
}

fn facts() -> NodeFacts {
    NodeFacts {
        instance_id: "mi-0123456789abcdef0".into(),
        agent_version: "1.2.3".into(),
        computer_name: "node1".into(),
        ip_address: "10.0.0.5".into(),
        platform_name: "Debian GNU/Linux".into(),
        platform_version: "12".into(),
    }
}

fn env(root: &Path) -> InventoryEnv {
    InventoryEnv {
        root: root.to_path_buf(),
        custom_dir: Some(root.join("custom")),
    }
}

fn content<'a>(g: &'a Gathered, t: &str) -> &'a [Entry] {
    g.items
        .iter()
        .find(|i| i.type_name == t)
        .and_then(|i| i.content.as_deref())
        .unwrap_or_else(|| panic!("{t} not gathered"))
}

#[test]
fn applications_components_and_instance_information_are_read_from_the_root() {
    let root = fixture();
    let g = gather(
        &GatherInventory::default(),
        &env(root.path()),
        &facts(),
        "2026-12-01T10:00:00Z",
    );
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    let apps = content(&g, "AWS:Application");
    let names: Vec<_> = apps.iter().map(|e| e["Name"].as_str()).collect();
    assert_eq!(names, ["bash", "libc6"]);
    let bash = &apps[0];
    assert_eq!(bash["Version"], "5.2.15-2+b2");
    assert_eq!(bash["Architecture"], "amd64");
    assert_eq!(bash["Publisher"], "Matthias Klose <doko@debian.org>");
    assert_eq!(bash["Summary"], "GNU Bourne Again SHell");
    assert_eq!(bash["PackageId"], "bash_5.2.15-2+b2_amd64.deb");
    assert_eq!(bash["ApplicationType"], "shells");
    assert!(bash["InstalledTime"].ends_with('Z'));
    assert!(!apps[1].contains_key("InstalledTime"));
    let components = content(&g, "AWS:AWSComponent");
    assert_eq!(components.len(), 1);
    assert_eq!(components[0]["Name"], "amazon-ssm-agent");
    assert!(!components[0].contains_key("PackageId"));
    let info = &content(&g, "AWS:InstanceInformation")[0];
    assert_eq!(info["InstanceId"], "mi-0123456789abcdef0");
    assert_eq!(info["ResourceType"], "ManagedInstance");
    assert_eq!(info["PlatformType"], "Linux");
    // Every AWS type's attributes are the schema's.
    for i in &g.items {
        if let Some(t) = aws_type(&i.type_name) {
            for e in i.content.as_ref().unwrap() {
                for k in e.keys() {
                    assert!(t.attributes.contains(&k.as_str()), "{} has {k}", t.name);
                }
            }
        }
    }
}

#[test]
fn services_are_read_from_unit_files_without_systemd() {
    let root = fixture();
    let g = gather(
        &GatherInventory::default(),
        &env(root.path()),
        &facts(),
        "2026-12-01T10:00:00Z",
    );
    let services = content(&g, "AWS:Service");
    let by_name = |n: &str| services.iter().find(|e| e["Name"] == n).unwrap();
    assert_eq!(services.len(), 3, "the template is left out");
    let ssh = by_name("ssh.service");
    assert_eq!(ssh["StartType"], "Enabled");
    assert_eq!(ssh["DisplayName"], "OpenBSD Secure Shell server");
    assert_eq!(ssh["ServiceType"], "notify");
    assert_eq!(ssh["ServicesDependedOn"], "network.target");
    assert_eq!(ssh["Status"], "", "systemd does not run in the fixture");
    assert_eq!(by_name("cron.service")["StartType"], "Masked");
    assert_eq!(by_name("static.service")["StartType"], "Static");
    // With systemd running, an invocation marks a running unit.
    std::fs::create_dir_all(root.path().join("run/systemd/system")).unwrap();
    std::fs::create_dir_all(root.path().join("run/systemd/units")).unwrap();
    std::fs::write(
        root.path().join("run/systemd/units/invocation:ssh.service"),
        "x",
    )
    .unwrap();
    let s = services::read(root.path()).unwrap();
    let status = |n: &str| s.iter().find(|e| e["Name"] == n).unwrap()["Status"].clone();
    assert_eq!(status("ssh.service"), "Running");
    assert_eq!(status("static.service"), "Stopped");
}

#[test]
fn custom_files_are_read_as_ssm_reads_them() {
    let root = fixture();
    let g = gather(
        &GatherInventory::default(),
        &env(root.path()),
        &facts(),
        "2026-12-01T10:00:00Z",
    );
    let rack = g
        .items
        .iter()
        .find(|i| i.type_name == "Custom:RackInfo")
        .unwrap();
    assert_eq!(rack.schema_version, "1.0");
    assert_eq!(rack.content.as_ref().unwrap()[0]["Slot"], "3");
    assert_eq!(content(&g, "Custom:Disks").len(), 2);
    assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
    assert!(g.warnings[0].contains("bad.json"));
    // SSM's folder by default, under the root.
    let none = InventoryEnv {
        root: root.path().to_path_buf(),
        custom_dir: None,
    };
    let g = gather(
        &GatherInventory::default(),
        &none,
        &facts(),
        "2026-12-01T10:00:00Z",
    );
    assert!(!g.items.iter().any(|i| i.type_name.starts_with("Custom:")));
    let ssm_dir = custom::default_dir(root.path(), "mi-0123456789abcdef0");
    std::fs::create_dir_all(&ssm_dir).unwrap();
    std::fs::copy(
        root.path().join("custom/rack.json"),
        ssm_dir.join("rack.json"),
    )
    .unwrap();
    let g = gather(
        &GatherInventory::default(),
        &none,
        &facts(),
        "2026-12-01T10:00:00Z",
    );
    assert!(g.items.iter().any(|i| i.type_name == "Custom:RackInfo"));
}

#[test]
fn only_what_is_turned_on_is_gathered() {
    let root = fixture();
    let only_apps = GatherInventory {
        applications: true,
        aws_components: false,
        network_config: false,
        services: false,
        custom_inventory: false,
    };
    let g = gather(
        &only_apps,
        &env(root.path()),
        &facts(),
        "2026-12-01T10:00:00Z",
    );
    let types: Vec<_> = g.items.iter().map(|i| i.type_name.as_str()).collect();
    assert_eq!(types, ["AWS:InstanceInformation", "AWS:Application"]);
    let missing = InventoryEnv {
        root: root.path().join("nowhere"),
        custom_dir: None,
    };
    let g = gather(&only_apps, &missing, &facts(), "2026-12-01T10:00:00Z");
    assert!(
        g.errors[0].contains("var/lib/dpkg/status"),
        "{:?}",
        g.errors
    );
}

#[test]
fn unchanged_types_are_not_sent_again_until_a_day_has_passed() {
    let root = fixture();
    let state = tempfile::tempdir().unwrap();
    let e = env(root.path());
    let first = gather(
        &GatherInventory::default(),
        &e,
        &facts(),
        "2026-12-01T10:00:00Z",
    )
    .items;
    let mut memory = SentHashes::load(state.path());
    let changed = memory.changed(first.clone(), 1000.0);
    assert_eq!(changed.len(), first.len());
    memory.record(&changed, 1000.0);
    memory.save(state.path()).unwrap();
    // Nothing changed: nothing to send, whatever the capture time.
    let memory = SentHashes::load(state.path());
    let again = gather(
        &GatherInventory::default(),
        &e,
        &facts(),
        "2026-12-01T10:30:00Z",
    )
    .items;
    assert!(memory.changed(again.clone(), 2800.0).is_empty());
    // A changed custom file: that type only.
    std::fs::write(
        root.path().join("custom/rack.json"),
        r#"{"SchemaVersion": "1.0", "TypeName": "Custom:RackInfo", "Content": {"Location": "Rack 8"}}"#,
    )
    .unwrap();
    let third = gather(
        &GatherInventory::default(),
        &e,
        &facts(),
        "2026-12-01T11:00:00Z",
    )
    .items;
    let changed: Vec<_> = memory
        .changed(third, 4600.0)
        .into_iter()
        .map(|i| i.type_name)
        .collect();
    assert_eq!(changed, ["Custom:RackInfo"]);
    // A day on, everything goes again.
    assert_eq!(
        memory
            .changed(again.clone(), 1000.0 + FULL_RESEND_SECONDS)
            .len(),
        again.len()
    );
}

/// Text that does not compress: hex of a simple generator's output.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from_digit(((x >> 60) & 0xf) as u32, 16).unwrap_or('0')
        })
        .collect()
}

#[test]
fn reports_are_compressed_and_split_by_type_below_the_message_size() {
    let item = |name: &str, n: usize, random: bool| InventoryItem {
        type_name: name.into(),
        schema_version: "1.0".into(),
        capture_time: "2026-12-01T10:00:00Z".into(),
        content_hash: Some("h".into()),
        content: Some(
            (0..n)
                .map(|i| {
                    let v = if random {
                        noise(i as u64, 100)
                    } else {
                        format!("package-{i} 1.0-1 amd64 a summary")
                    };
                    Entry::from([("Id".to_string(), v)])
                })
                .collect(),
        ),
        context: BTreeMap::new(),
    };
    // A thousand packages' worth of repetitive text: one small report.
    let (reports, too_large) = split(
        "c",
        vec![
            item("AWS:Application", 3000, false),
            item("Custom:B", 10, false),
        ],
    );
    assert!(too_large.is_empty());
    assert_eq!(reports.len(), 1);
    let json = serde_json::to_vec(&reports[0].0).unwrap().len();
    assert!(json < 60 * 1024, "{json} bytes");
    let back = reports[0].0.all_items(4 << 20).unwrap();
    assert_eq!(back, reports[0].1);
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].content.as_ref().unwrap().len(), 3000);
    // Incompressible types of ~110 KB each: one per report, each below the limit.
    let (reports, too_large) = split(
        "c",
        vec![
            item("Custom:A", 1000, true),
            item("Custom:C", 1000, true),
            item("Custom:D", 10, true),
        ],
    );
    assert!(too_large.is_empty());
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1].0.all_items(4 << 20).unwrap().len(), 2);
    for (r, _) in &reports {
        assert!(serde_json::to_vec(r).unwrap().len() <= MAX_REPORT_BYTES);
    }
    let (reports, too_large) = split("c", vec![item("Custom:Huge", 3000, true)]);
    assert!(reports.is_empty());
    assert_eq!(too_large[0].type_name, "Custom:Huge");
}
