//! `AWS:Network`: one entry per interface (loopback left out, as SSM's
//! agent does), from getifaddrs for addresses and masks, /sys/class/net
//! for the MAC address, the root's /proc/net/route for the default
//! gateway and its /etc/resolv.conf for DNS servers.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use nix::ifaddrs::getifaddrs;
use steward_core::inventory::Entry;

#[derive(Default)]
struct Interface {
    ipv4: Vec<String>,
    ipv6: Vec<String>,
    mask: Vec<String>,
}

/// Reads the interfaces of the network namespace the agent runs in; the
/// files under `root`.
pub fn read(root: &Path) -> std::io::Result<Vec<Entry>> {
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for a in getifaddrs().map_err(std::io::Error::from)? {
        if a.interface_name == "lo" {
            continue;
        }
        let i = by_name.entry(a.interface_name.clone()).or_default();
        let Some(addr) = a.address else { continue };
        if let Some(v4) = addr.as_sockaddr_in() {
            i.ipv4.push(v4.ip().to_string());
            if let Some(m) = a.netmask.as_ref().and_then(|m| m.as_sockaddr_in()) {
                i.mask.push(m.ip().to_string());
            }
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            i.ipv6.push(v6.ip().to_string());
        }
    }
    let gateways = gateways(root);
    let dns = dns_servers(root);
    Ok(by_name
        .into_iter()
        .map(|(name, i)| {
            let mac =
                std::fs::read_to_string(root.join("sys/class/net").join(&name).join("address"))
                    .or_else(|_| {
                        std::fs::read_to_string(
                            Path::new("/sys/class/net").join(&name).join("address"),
                        )
                    })
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
            let mut e = Entry::new();
            e.insert("Name".into(), name.clone());
            e.insert("MacAddress".into(), mac);
            e.insert("IPV4".into(), i.ipv4.join(","));
            e.insert("IPV6".into(), i.ipv6.join(","));
            e.insert("SubnetMask".into(), i.mask.join(","));
            e.insert(
                "Gateway".into(),
                gateways.get(&name).cloned().unwrap_or_default(),
            );
            e.insert("DNSServer".into(), dns.join(","));
            e.insert("DHCPServer".into(), String::new());
            e
        })
        .collect())
}

/// Default routes by interface, from /proc/net/route (hex, little-endian).
fn gateways(root: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root.join("proc/net/route")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 3 || f[1] != "00000000" {
                return None;
            }
            let g = u32::from_str_radix(f[2], 16).ok()?;
            Some((f[0].to_string(), Ipv4Addr::from(g.swap_bytes()).to_string()))
        })
        .collect()
}

fn dns_servers(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("etc/resolv.conf"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gateways_and_dns_come_from_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("proc/net")).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("proc/net/route"),
            "Iface\tDestination\tGateway\tFlags\n eth0\t00000000\t010200C0\t0003\neth0\t000200C0\t00000000\t0001\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/resolv.conf"),
            "# x\nnameserver 10.0.0.2\nnameserver ::1\n",
        )
        .unwrap();
        assert_eq!(
            gateways(root.path()).get("eth0").map(String::as_str),
            Some("192.0.2.1")
        );
        assert_eq!(dns_servers(root.path()), ["10.0.0.2", "::1"]);
        // The agent's own namespace has interfaces to read.
        let entries = read(root.path()).unwrap();
        assert!(entries.iter().all(|e| e["Name"] != "lo"));
    }
}
