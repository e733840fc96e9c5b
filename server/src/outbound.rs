//! Every outbound HTTP call Switchyard makes goes through one client builder: rustls with the
//! platform's roots (and Mozilla's, for machines without a CA bundle) plus the CA file the
//! operator names (`outbound.ca_file`), a timeout on every call, and no redirects (a backend
//! that needs them says so; none does today). The adapters, the notifier and the CLI use it.
//!
//! Webhooks that *anyone* can register — public subscribers on the status page — get a stricter
//! client, [`subscriber_client`]: https only (http only for hosts an admin allows), and every
//! address a host resolves to is checked **at connect time**, by the resolver the client itself
//! uses, against loopback, private, link-local (the cloud metadata service), multicast and other
//! non-public ranges. An admin allow-list (`webhooks.allow_hosts`) admits internal hosts.
//! Checking at send time, in the resolver, means a name that resolved to a public address at
//! sign-up and to 127.0.0.1 later (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Extra trusted CA certificates, added by [`trust_ca_file`]. Trust is per process (like the
/// system store): it is only ever added to, so one server's CA never disappears under another.
static EXTRA_ROOTS: RwLock<Vec<reqwest::Certificate>> = RwLock::new(Vec::new());

/// Longest wait for a TCP/TLS connection, whatever the call's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads PEM certificates from `path` and trusts them for every client built afterwards.
pub fn trust_ca_file(path: &Path) -> Result<usize, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let n = certs.len();
    EXTRA_ROOTS.write().unwrap_or_else(std::sync::PoisonError::into_inner).extend(certs);
    Ok(n)
}

/// The shared builder: rustls, platform and Mozilla roots plus the configured CA file, a
/// `timeout` for the whole call (connecting at most 10 s of it), no redirects.
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_native_certs(true)
        .tls_built_in_webpki_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")));
    for cert in EXTRA_ROOTS.read().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
        b = b.add_root_certificate(cert.clone());
    }
    b
}

/// A client from [`builder`]; the error says why it could not be built.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    builder(timeout).build().map_err(|e| format!("cannot build an HTTP client: {e}"))
}

// ---- public webhooks ----------------------------------------------------------------------

/// Which internal hosts an admin lets public webhooks reach, and which may use plain http.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Hosts (names, IPs or CIDR ranges) allowed even though they are not public addresses.
    pub allow_hosts: Vec<HostRule>,
    /// Hosts (as above) that may be reached over `http://`.
    pub allow_http: Vec<HostRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    Name(String),
    Net(IpNet),
}

impl HostRule {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if raw.is_empty() {
            return Err("an empty host".into());
        }
        if let Ok(net) = IpNet::parse(&raw) {
            return Ok(Self::Net(net));
        }
        if raw.contains('/') || raw.contains(':') {
            return Err(format!("{raw:?} is neither a host name, an IP address nor a CIDR range"));
        }
        app::domain::address::HostPort::parse(&format!("{raw}:1"))
            .map(|_| Self::Name(raw.clone()))
            .map_err(|_| format!("{raw:?} is not a host name"))
    }

    fn matches(&self, host: &str, ip: Option<IpAddr>) -> bool {
        match (self, ip) {
            (Self::Name(n), _) => host.trim_end_matches('.').eq_ignore_ascii_case(n),
            (Self::Net(net), Some(ip)) => net.contains(ip),
            (Self::Net(_), None) => false,
        }
    }
}

/// A comma-separated list of [`HostRule`]s (a setting's value).
pub fn parse_host_rules(raw: &str) -> Result<Vec<HostRule>, String> {
    raw.split(',').filter(|s| !s.trim().is_empty()).map(HostRule::parse).collect()
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{raw:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?}: the prefix must be 0–{max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why `ip` is not a public address a stranger's webhook may point at, or `None` if it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified (\"this network\") address")
    } else if a == 169 && b == 254 {
        // 169.254.169.254 is the metadata service of every big cloud.
        Some("a link-local address (where cloud metadata services live)")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT (shared) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("a reserved address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("an IETF protocol assignment address")
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some("a documentation address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (where cloud metadata services live)")
    } else if seg[0] == 0xfd00 && seg[1] == 0x0ec2 {
        // AWS's IPv6 metadata service, fd00:ec2::254.
        Some("a link-local address (where cloud metadata services live)")
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some("a private (unique local) address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("a documentation address")
    } else if seg[0] == 0x0064 && seg[1] == 0xff9b {
        // NAT64 maps IPv4 into this range; the IPv4 inside decides.
        let v4 =
            Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
        non_public_v4(v4)
    } else if seg[0] == 0x2002 {
        let v4 =
            Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8);
        non_public_v4(v4)
    } else {
        None
    }
}

/// Why a public webhook URL may not be sent to, checked before connecting: the scheme, and an
/// address written in the URL itself (which no resolver sees).
pub fn check_webhook_url(url: &str, policy: &WebhookPolicy) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("the URL has no host")?.to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = bare.parse::<IpAddr>().ok();
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http.iter().any(|r| r.matches(bare, ip)) => {}
        "http" => {
            return Err(format!(
                "refused: http://{host} is not encrypted; webhooks must use https (an admin can allow http for a host with webhooks.allow_http)"
            ));
        }
        other => return Err(format!("refused: {other}: is not https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("refused: the URL carries a user name or password".into());
    }
    if let Some(ip) = ip
        && let Some(why) = non_public(ip)
        && !policy.allow_hosts.iter().any(|r| r.matches(bare, Some(ip)))
    {
        return Err(format!(
            "refused: {ip} is {why}; public webhooks may only reach public addresses (an admin can allow an internal host with webhooks.allow_hosts)"
        ));
    }
    Ok(parsed)
}

/// Resolves names for public webhooks and keeps only the addresses they may reach.
struct PublicResolver {
    policy: Arc<WebhookPolicy>,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .collect();
            let mut refused = Vec::new();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match non_public(a.ip()) {
                    None => true,
                    Some(_)
                        if policy.allow_hosts.iter().any(|r| r.matches(&host, Some(a.ip()))) =>
                    {
                        true
                    }
                    Some(why) => {
                        refused.push(format!("{} ({why})", a.ip()));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = if refused.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!(
                        "refused: {host} resolves to {}; public webhooks may only reach public addresses (an admin can allow an internal host with webhooks.allow_hosts)",
                        refused.join(", ")
                    )
                };
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client for webhooks that strangers register: the shared builder, no proxy (a proxy
/// would resolve names where we cannot check them), no redirects, and a resolver that refuses
/// non-public addresses.
pub fn subscriber_client(
    policy: Arc<WebhookPolicy>,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    builder(timeout)
        .no_proxy()
        .dns_resolver(Arc::new(PublicResolver { policy }))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn loopback_private_link_local_multicast_and_metadata_addresses_are_not_public() {
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("fd12:3456::1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("100.64.0.1", "carrier-grade"),
            ("255.255.255.255", "reserved"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:7f00:1::", "loopback"),
        ] {
            let found = non_public(ip(addr)).unwrap_or_else(|| panic!("{addr} is not public"));
            assert!(found.contains(why), "{addr}: {found}");
        }
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700::1111", "172.32.0.1", "100.128.0.1"] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net = IpNet::parse("10.0.0.0/8").expect("net");
        assert!(net.contains(ip("10.200.3.4")) && !net.contains(ip("11.0.0.1")));
        assert!(IpNet::parse("::1").expect("one").contains(ip("::1")));
        assert!(IpNet::parse("0.0.0.0/0").expect("all").contains(ip("8.8.8.8")));
        assert!(IpNet::parse("10.0.0.0/33").is_err() && IpNet::parse("nope/8").is_err());
    }

    #[test]
    fn a_webhook_url_must_be_https_and_not_point_at_an_internal_address() {
        let none = WebhookPolicy::default();
        assert!(check_webhook_url("https://hooks.example.com/x", &none).is_ok());
        let err = check_webhook_url("http://hooks.example.com/x", &none).expect_err("http");
        assert!(err.contains("https"), "{err}");
        assert!(check_webhook_url("ftp://hooks.example.com/x", &none).is_err());
        assert!(check_webhook_url("https://user:pw@hooks.example.com/x", &none).is_err());
        for internal in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://169.254.169.254/latest",
            "https://10.0.0.1/",
        ] {
            let err = check_webhook_url(internal, &none).expect_err(internal);
            assert!(err.contains("webhooks.allow_hosts"), "{err}");
        }
        let admin = WebhookPolicy {
            allow_hosts: parse_host_rules("127.0.0.1, hooks.internal").expect("rules"),
            allow_http: parse_host_rules("127.0.0.0/8").expect("rules"),
        };
        assert!(check_webhook_url("https://127.0.0.1:8443/", &admin).is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/", &admin).is_ok());
        assert!(check_webhook_url("http://hooks.internal/", &admin).is_err(), "http is separate");
        assert!(
            parse_host_rules("a b").is_err() && parse_host_rules("").expect("empty").is_empty()
        );
    }
}
