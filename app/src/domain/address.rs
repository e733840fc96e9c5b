//! `host:port` as a router is told it. Addresses come from environments and, for instances a
//! campaign creates, from providers (a script's output, a webhook's answer): they are parsed
//! here before they reach an HAProxy command or an nginx file, so no `;`, newline, brace or
//! space can pass. The host is an IPv4 address, a bracketed IPv6 address or a DNS name.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: Host,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl HostPort {
    /// Parses `10.0.0.5:8080`, `[2001:db8::1]:443` or `web-1.internal:80`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let shown: String = raw.chars().take(80).collect();
        let bad = |why: &str| format!("{shown:?} is not a host:port address: {why}");
        if raw.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(c) = raw.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(&format!("it contains {c:?}")));
        }
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or_else(|| bad("a '[' without ']'"))?;
            let port = after.strip_prefix(':').ok_or_else(|| bad("no :port after the ]"))?;
            let ip: Ipv6Addr = v6.parse().map_err(|_| bad("not an IPv6 address inside [ ]"))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) =
                raw.rsplit_once(':').ok_or_else(|| bad("no :port (e.g. 10.0.0.5:8080)"))?;
            if host.contains(':') {
                return Err(bad("write an IPv6 address in brackets, e.g. [2001:db8::1]:443"));
            }
            let host = match host.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(dns_name(host).map_err(|why| bad(&why))?),
            };
            (host, port)
        };
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5 {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        Ok(Self { host, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as a DNS record or a URL holds it (IPv6 without brackets).
    pub fn host(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(n) => n.clone(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Host::Ip(ip) => write!(f, "{ip}:{}", self.port),
            Host::Name(n) => write!(f, "{n}:{}", self.port),
        }
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens (an underscore too,
/// as service records use), 1–63 characters each, at most 253 in all.
fn dns_name(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    for label in host.trim_end_matches('.').split('.') {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if label.is_empty() || label.len() > 63 {
            return Err("a host name part is empty or longer than 63 characters".into());
        }
        if let Some(c) = label.chars().find(|c| !ok_char(*c)) {
            return Err(format!("the host contains {c:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a host name part starts or ends with '-'".into());
        }
    }
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_ipv4_bracketed_ipv6_and_dns_names() {
        assert_eq!(HostPort::parse("10.0.0.5:8080").expect("v4").to_string(), "10.0.0.5:8080");
        let v6 = HostPort::parse("[2001:db8:0::1]:443").expect("v6");
        assert_eq!(
            (v6.to_string().as_str(), v6.host().as_str()),
            ("[2001:db8::1]:443", "2001:db8::1")
        );
        let name = HostPort::parse("Web-1.internal:80").expect("name");
        assert_eq!((name.host().as_str(), name.port()), ("web-1.internal", 80));
    }

    #[test]
    fn nothing_a_router_would_read_as_syntax_gets_through() {
        for bad in [
            "",
            "10.0.0.5",
            "10.0.0.5:",
            "10.0.0.5:0",
            "10.0.0.5:65536",
            "10.0.0.5:80x",
            "10.0.0.5:+80",
            "10.0.0.5:80;",
            "10.0.0.5:80; server evil 1.2.3.4:80",
            "10.0.0.5:80\nserver x 1.2.3.4:80",
            "10.0.0.5:80}",
            "{10.0.0.5}:80",
            "a b:80",
            "a\tb:80",
            "evil;host:80",
            "evil$(id):80",
            "evil`id`:80",
            "evil|x:80",
            "-evil:80",
            "2001:db8::1:80",
            "[2001:db8::1]",
            "[zz]:80",
            "[::1]:80]",
            "host/path:80",
            "user@host:80",
            "#host:80",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
