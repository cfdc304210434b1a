//! What the node says about itself: host name, OS, address.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

#[derive(Debug, Clone)]
pub struct Platform {
    pub hostname: String,
    pub name: String,
    pub version: String,
    pub ip_address: String,
}

impl Platform {
    pub fn detect() -> Self {
        let os = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        let (name, version) = parse_os_release(&os);
        Self {
            hostname: hostname(),
            name,
            version,
            ip_address: first_ipv4().to_string(),
        }
    }
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `NAME` and `VERSION_ID` from os-release (SSM's PlatformName/PlatformVersion).
pub fn parse_os_release(text: &str) -> (String, String) {
    let field = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().trim_matches('"').trim_matches('\'').to_string())
    };
    (
        field("NAME").unwrap_or_else(|| "Linux".into()),
        field("VERSION_ID").unwrap_or_default(),
    )
}

/// The address the kernel would use for outbound traffic: connecting a UDP
/// socket sends nothing, it only picks a route (TEST-NET-1 is never reached).
fn first_ipv4() -> IpAddr {
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip());
    match routed {
        Ok(ip) if !ip.is_loopback() && !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields() {
        let text = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(
            parse_os_release(text),
            ("Debian GNU/Linux".into(), "12".into())
        );
        assert_eq!(parse_os_release(""), ("Linux".into(), String::new()));
    }

    #[test]
    fn detect_gives_an_address() {
        let p = Platform::detect();
        assert!(p.ip_address.parse::<IpAddr>().is_ok());
        assert!(!p.hostname.is_empty());
    }
}
