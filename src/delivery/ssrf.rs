//! SSRF guard (DESIGN §5): which endpoint URLs and addresses herald may send to.
//! `check_url` catches what the URL alone reveals; the connector must still call
//! `check_ip` on the address it actually connects to, or DNS rebinding walks around it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// `10.0.0.0/8`, `::1/128`, or a bare address (that host alone). Host bits after the
/// prefix are dropped, so `10.1.2.3/8` means `10.0.0.0/8`.
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = match s.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            format!(
                "invalid network {s:?}: not an IP address, nor an address/prefix length \
                 (0 to 32 for IPv4, 0 to 128 for IPv6)"
            )
        })?,
    };
    Ok(net.trunc())
}

/// Comma-separated networks; blank entries are skipped so a trailing comma is harmless.
pub fn parse_cidr_list(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',').map(str::trim).filter(|item| !item.is_empty()).map(parse_cidr).collect()
}

/// An IPv4-mapped IPv6 address is the same host as its IPv4 address, so it is in IPv4
/// networks too (ipnet compares only addresses of the network's own family).
fn network_contains(net: &IpNet, ip: IpAddr) -> bool {
    let mapped = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    [Some(ip), mapped].into_iter().flatten().any(|ip| net.contains(&ip))
}

/// Table rows: `net4(10, 0, 0, 0, 8)` is 10.0.0.0/8.
const fn net4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

/// `net6(0x2001, 0xdb8, 32)` is 2001:db8::/32.
const fn net6(first: u16, second: u16, prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(first, second, 0, 0, 0, 0, 0, 0), prefix)
}

const NON_PUBLIC_V4: [Ipv4Net; 15] = [
    net4(0, 0, 0, 0, 8),
    net4(10, 0, 0, 0, 8),
    net4(100, 64, 0, 0, 10),
    net4(127, 0, 0, 0, 8),
    net4(169, 254, 0, 0, 16),
    net4(172, 16, 0, 0, 12),
    net4(192, 0, 0, 0, 24),
    net4(192, 0, 2, 0, 24),
    net4(192, 88, 99, 0, 24),
    net4(192, 168, 0, 0, 16),
    net4(198, 18, 0, 0, 15),
    net4(198, 51, 100, 0, 24),
    net4(203, 0, 113, 0, 24),
    net4(224, 0, 0, 0, 4),
    net4(240, 0, 0, 0, 4),
];

/// Special-purpose blocks inside global unicast space 2000::/3: protocol assignments
/// (Teredo among them) and the two documentation prefixes. 6to4 (2002::/16) is not here
/// because `embedded_v4` judges it by the IPv4 address inside.
const NON_PUBLIC_V6: [Ipv6Net; 3] = [net6(0x2001, 0, 23), net6(0x2001, 0xdb8, 32), net6(0x3fff, 0, 20)];

const GLOBAL_UNICAST: Ipv6Net = net6(0x2000, 0, 3);
const NAT64: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
const SIX_TO_FOUR: Ipv6Net = net6(0x2002, 0, 16);

/// The IPv4 address an IPv6 one leads to: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96)
/// and 6to4 (2002:AABB:CCDD::). A gateway would carry the request to it, so it is what counts.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if NAT64.contains(&v6) {
        Some(Ipv4Addr::from(bits as u32))
    } else if SIX_TO_FOUR.contains(&v6) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

/// Whether `ip` is an ordinary Internet address. For IPv6 only global unicast space
/// (2000::/3) qualifies, which also rules out loopback, unique-local (fc00::/7),
/// link-local, site-local (fec0::/10), multicast and the deprecated IPv4-compatible form.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !NON_PUBLIC_V4.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => GLOBAL_UNICAST.contains(&v6) && !NON_PUBLIC_V6.iter().any(|net| net.contains(&v6)),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// `http` or `https`, lower-cased.
    pub scheme: String,
    /// Lower-cased; an IPv6 literal without its brackets.
    pub host: String,
    pub port: u16,
    pub ip_literal: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_insecure: bool,
    pub allowed_networks: Vec<IpNet>,
}

impl UrlPolicy {
    /// Strict on purpose: anything another URL parser might read differently (backslashes,
    /// user info, percent-escapes or shorthand numbers in the host) is refused, so the host
    /// checked here is the host the HTTP client connects to.
    pub fn check_url(&self, url: &str) -> Result<TargetUrl, String> {
        if url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
            return Err("endpoint URL must not contain spaces, control characters or backslashes".into());
        }
        let (scheme, rest) =
            url.split_once("://").ok_or("endpoint URL must be absolute, like https://host/path")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" if self.allow_insecure => 80,
            _ if !self.allow_insecure => return Err("endpoint URL must use https".into()),
            _ => return Err("endpoint URL must use http or https".into()),
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.contains('@') {
            return Err("endpoint URL must not contain a user name or password".into());
        }
        let (host, port, ip_literal) = split_authority(authority)?;
        let port = match port {
            None => default_port,
            // Digits only: u16's parser would also take "+80".
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("endpoint URL has an invalid port {p:?}"))?,
        };
        match ip_literal {
            Some(ip) => self.check_ip(ip)?,
            // localhost is loopback by definition (RFC 6761), so the answer is known already.
            None if host == "localhost" || host.ends_with(".localhost") => {
                let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
                if !loopback.iter().any(|ip| self.check_ip(*ip).is_ok()) {
                    return Err(format!("host {host} is not public"));
                }
            }
            None => {}
        }
        Ok(TargetUrl { scheme, host, port, ip_literal })
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if is_public(ip) || self.allowed_networks.iter().any(|net| network_contains(net, ip)) {
            Ok(())
        } else {
            Err(format!("address {ip} is not public"))
        }
    }
}

type Authority<'a> = (String, Option<&'a str>, Option<IpAddr>);

fn split_authority(authority: &str) -> Result<Authority<'_>, String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("endpoint URL has an unclosed [ in its host")?;
        let ip: Ipv6Addr =
            inside.parse().map_err(|_| format!("endpoint URL host [{inside}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or("endpoint URL has text after its ] that is not a port")?),
        };
        return Ok((ip.to_string(), port, Some(IpAddr::V6(ip))));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err("endpoint URL has no host".into());
    }
    if !host.is_ascii() {
        return Err("endpoint URL host must be ASCII (use its xn-- form)".into());
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok((host, port, Some(IpAddr::V4(v4))));
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(&host).split('.').collect();
    let valid_label =
        |l: &&str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if host.len() > 253 || !labels.iter().all(valid_label) {
        return Err(format!("endpoint URL host {host:?} is not a valid host name"));
    }
    // Browsers and resolvers read `127.1` or `0x7f.1` as IPv4 addresses; no real domain
    // ends in a numeric label, so such a host is refused rather than guessed at.
    let last = labels[labels.len() - 1];
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return Err(format!("endpoint URL host {host:?} is not a valid IPv4 address"));
    }
    Ok((host, port, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn strict() -> UrlPolicy {
        UrlPolicy::default()
    }

    fn local_dev() -> UrlPolicy {
        UrlPolicy { allow_insecure: true, allowed_networks: parse_cidr_list("127.0.0.0/8,::1/128").unwrap() }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let has = |net: &str, addr: &str| network_contains(&parse_cidr(net).unwrap(), ip(addr));
        assert!(has("127.0.0.0/8", "127.255.0.1") && !has("127.0.0.0/8", "128.0.0.1"));
        assert!(has("127.0.0.0/8", "::ffff:127.0.0.1"), "mapped IPv6 is the same host");
        assert!(!has("127.0.0.0/8", "::1"));
        assert_eq!(parse_cidr(" 10.1.2.3 ").unwrap().to_string(), "10.1.2.3/32");
        assert!(has("10.1.2.3", "10.1.2.3") && !has("10.1.2.3", "10.1.2.4"));
        assert_eq!(parse_cidr("10.9.9.9/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(has("fd00::/8", "fd12::1") && !has("fd00::/8", "fe80::1") && !has("fd00::/8", "10.0.0.1"));
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert!(has("0.0.0.0/0", "8.8.8.8"));
        assert!(has("::/0", "2001:db8::1"));
        assert!(has("::ffff:0:0/96", "::ffff:1.2.3.4"));
    }

    #[test]
    fn bad_cidrs_are_explained() {
        assert!(parse_cidr("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(parse_cidr("::/129").unwrap_err().contains("0 to 128"));
        assert!(parse_cidr("10.0.0.0/").unwrap_err().contains("prefix length"));
        assert!(parse_cidr("/8").unwrap_err().contains("not an IP address"));
        assert!(parse_cidr("localhost").unwrap_err().contains("not an IP address"));
        assert!(parse_cidr("10.0.0.0/-1").is_err());
    }

    #[test]
    fn cidr_lists() {
        assert_eq!(parse_cidr_list("").unwrap(), vec![]);
        assert_eq!(parse_cidr_list(" , ").unwrap(), vec![]);
        let list = parse_cidr_list("127.0.0.0/8, ::1/128,").unwrap();
        assert_eq!(list.iter().map(ToString::to_string).collect::<Vec<_>>(), ["127.0.0.0/8", "::1/128"]);
        assert!(parse_cidr_list("127.0.0.0/8,nope").unwrap_err().contains("\"nope\""));
    }

    #[test]
    fn public_addresses() {
        for a in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2001:4860:4860::8888"] {
            assert!(is_public(ip(a)), "{a}");
        }
        for a in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_public(ip(a)), "{a} leads to 8.8.8.8");
        }
    }

    #[test]
    fn non_public_addresses() {
        let addresses = concat!(
            "0.1.2.3 10.0.0.1 100.64.0.1 100.127.255.255 127.0.0.1 169.254.169.254 172.16.0.1 ",
            "172.31.255.255 192.0.0.8 192.0.2.1 192.88.99.1 192.168.1.1 198.18.0.1 198.19.255.255 ",
            "198.51.100.7 203.0.113.9 224.0.0.1 239.1.1.1 240.0.0.1 255.255.255.255 0.0.0.0 :: ::1 ",
            "::127.0.0.1 fe80::1 febf::1 fec0::1 fc00::1 fd12:3456::1 ff02::1 100::1 2001:db8::1 2001::1 ",
            "3fff::1 ::ffff:127.0.0.1 ::ffff:10.0.0.1 64:ff9b::a9fe:a9fe 64:ff9b::7f00:1 2002:7f00:1::1 ",
            "64:ff9b:1::1 ",
        );
        for a in addresses.split_whitespace() {
            assert!(!is_public(ip(a)), "{a}");
        }
        assert!(is_public(ip("172.32.0.1")) && is_public(ip("100.128.0.1")) && is_public(ip("198.20.0.1")));
    }

    #[test]
    fn private_addresses_are_refused_by_scheme_then_by_address() {
        assert_eq!(strict().check_url("http://10.0.0.1").unwrap_err(), "endpoint URL must use https");
        let insecure = UrlPolicy { allow_insecure: true, allowed_networks: vec![] };
        assert_eq!(insecure.check_url("http://10.0.0.1").unwrap_err(), "address 10.0.0.1 is not public");
        assert_eq!(
            insecure.check_url("http://169.254.169.254/latest/meta-data").unwrap_err(),
            "address 169.254.169.254 is not public"
        );
        assert_eq!(insecure.check_url("http://[::1]:8080/").unwrap_err(), "address ::1 is not public");
        assert_eq!(
            strict().check_url("https://[::ffff:127.0.0.1]/x").unwrap_err(),
            "address ::ffff:127.0.0.1 is not public"
        );
        assert_eq!(insecure.check_url("http://localhost:3000").unwrap_err(), "host localhost is not public");
        assert!(strict().check_url("https://api.localhost/").is_err());
    }

    #[test]
    fn allowed_networks_open_the_guard() {
        let p = local_dev();
        let t = p.check_url("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!((t.scheme.as_str(), t.host.as_str(), t.port), ("http", "127.0.0.1", 9000));
        assert_eq!(t.ip_literal, Some(ip("127.0.0.1")));
        let t = p.check_url("http://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.ip_literal), ("::1", 80, Some(ip("::1"))));
        assert!(p.check_url("https://[::ffff:127.0.0.1]/x").is_ok());
        assert!(p.check_url("http://localhost:3000/x").is_ok());
        assert_eq!(p.check_url("http://10.0.0.1").unwrap_err(), "address 10.0.0.1 is not public");
        assert!(p.check_ip(ip("127.0.0.53")).is_ok() && p.check_ip(ip("8.8.8.8")).is_ok());
        assert_eq!(strict().check_ip(ip("127.0.0.1")).unwrap_err(), "address 127.0.0.1 is not public");
    }

    #[test]
    fn public_urls_parse() {
        let t = strict().check_url("https://example.com:8443/path?q").unwrap();
        let expected =
            TargetUrl { scheme: "https".into(), host: "example.com".into(), port: 8443, ip_literal: None };
        assert_eq!(t, expected);
        let t = strict().check_url("HTTPS://API.Example.COM").unwrap();
        assert_eq!((t.scheme.as_str(), t.host.as_str(), t.port), ("https", "api.example.com", 443));
        assert_eq!(
            strict().check_url("https://hooks.example.com.?a=b#c").unwrap().host,
            "hooks.example.com."
        );
        assert_eq!(strict().check_url("https://8.8.8.8/x").unwrap().ip_literal, Some(ip("8.8.8.8")));
        assert_eq!(local_dev().check_url("http://example.com/").unwrap().port, 80);
        assert_eq!(strict().check_url("https://a_b.example.com/x@y").unwrap().host, "a_b.example.com");
    }

    #[test]
    fn malformed_urls_are_refused() {
        let err = |url: &str| strict().check_url(url).unwrap_err();
        assert!(err("https://user:pw@example.com/").contains("user name or password"));
        assert!(err("https://evil.com@127.0.0.1/").contains("user name or password"));
        assert!(err("ftp://example.com/").contains("https"));
        assert_eq!(
            local_dev().check_url("ftp://example.com/").unwrap_err(),
            "endpoint URL must use http or https"
        );
        assert!(err("example.com/hook").contains("absolute"));
        assert!(err("").contains("absolute"));
        assert!(err("https:///path").contains("no host"));
        assert!(err("https://:443/").contains("no host"));
        assert!(err("https://example.com:0/").contains("invalid port"));
        assert!(err("https://example.com:65536/").contains("invalid port"));
        assert!(err("https://example.com:/").contains("invalid port"));
        assert!(err("https://example.com:+443/").contains("invalid port"));
        assert!(err("https://example.com:1:2/").contains("invalid port"));
        assert!(err("https://[::1/").contains("unclosed"));
        assert!(err("https://[fe80::1%25eth0]/").contains("not an IPv6 address"));
        assert!(err("https://[127.0.0.1]/").contains("not an IPv6 address"));
        assert!(err("https://[2606:4700::1111]x/").contains("not a port"));
        assert!(err("https://example .com/").contains("spaces"));
        assert!(err("https://example.com\\@127.0.0.1/").contains("backslashes"));
        assert!(err("https://exa%6dple.com/").contains("valid host name"));
        assert!(err("https://a..b/").contains("valid host name"));
        assert!(err("https://bücher.de/").contains("ASCII"));
        for numeric in ["https://127.1/", "https://2130706433/", "https://0x7f.0.0.1/", "https://1.2.3.4.5/"]
        {
            assert!(err(numeric).contains("not a valid IPv4 address"), "{numeric}");
        }
    }
}
