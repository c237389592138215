//! Which webhook URLs and addresses the server may send to: the SSRF policy.
//!
//! A webhook URL comes from whoever may create subscriptions, and the server POSTs to it from
//! inside the operator's network. Unless the server runs with `--allow-private-webhooks`, only
//! public unicast addresses are reachable: loopback, private, link-local, unique-local,
//! unspecified, shared (CGNAT), multicast, documentation and reserved ranges are refused, and
//! so are the IPv6 forms that embed such an IPv4 address (`::ffff:127.0.0.1`).
//!
//! [`non_public_reason`] classifies one address; the dispatcher applies it to every address a
//! host name resolves to, at connect time. [`validate_webhook_url`] is the check a subscription
//! `PUT` makes: the URL's shape, and its host when that is a literal address. Numeric forms
//! (`http://2130706433/`, `http://0x7f.1/`, `http://127.1/`) are literal addresses too: they
//! are parsed the way browsers and HTTP clients parse them (WHATWG URL), so they are caught.
//!
//! ```
//! use buzzer_types::webhook_url::{non_public_reason, validate_webhook_url};
//!
//! assert_eq!(non_public_reason("10.1.2.3".parse().unwrap()), Some("private"));
//! assert_eq!(non_public_reason("::ffff:127.0.0.1".parse().unwrap()), Some("loopback"));
//! assert_eq!(non_public_reason("93.184.215.14".parse().unwrap()), None);
//! assert!(validate_webhook_url("http://0x7f.1/hook", false).is_err());
//! assert!(validate_webhook_url("http://0x7f.1/hook", true).is_ok());
//! assert!(validate_webhook_url("https://example.com/hook", false).is_ok());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::Invalid;

/// The longest webhook URL accepted.
pub const WEBHOOK_URL_MAX_LEN: usize = 2048;

/// Why `ip` is no public unicast address (`"loopback"`, `"private"`, …), or `None` when a
/// webhook may be sent to it.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, 0, 0) if ip.is_unspecified() => "unspecified",
        (0, ..) => "\"this network\" (0.0.0.0/8)",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared address space (CGNAT, 100.64.0.0/10)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that carry an IPv4 address reach that address: judge it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    if s[..6] == [0; 6] {
        // IPv4-compatible (::a.b.c.d), deprecated and never routed.
        return Some(v4_reason(embedded_v4(s[6], s[7])).unwrap_or("IPv4-compatible (::/96)"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96): the gateway connects to the embedded address.
        return v4_reason(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16): the relay connects to the embedded address.
        return v4_reason(embedded_v4(s[1], s[2]));
    }
    match s[0] {
        0xfc00..=0xfdff => return Some("unique-local"),
        0xfe80..=0xfebf => return Some("link-local"),
        0xfec0..=0xfeff => return Some("site-local"),
        0xff00..=0xffff => return Some("multicast"),
        // Global unicast is 2000::/3; everything else is reserved (or NAT64 local use,
        // 64:ff9b:1::/48, and the discard prefix 100::/64).
        0x2000..=0x3fff => {}
        _ => return Some("reserved"),
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x3fff && s[1] < 0x1000 {
        return Some("documentation");
    }
    if s[0] == 0x2001 && s[1] < 0x0200 {
        // Teredo (2001::/32, which hides an IPv4 address), ORCHID and other special uses.
        return Some("IETF protocol assignments (2001::/23)");
    }
    None
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// The address a URL's host names literally (`http://127.1/`, `http://[::1]/`), if it does.
pub fn literal_host_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// Parses a webhook URL: `http` or `https`, with a host, at most [`WEBHOOK_URL_MAX_LEN`] bytes.
pub fn parse_webhook_url(url: &str) -> Result<Url, String> {
    if url.len() > WEBHOOK_URL_MAX_LEN {
        return Err(format!("must be at most {WEBHOOK_URL_MAX_LEN} bytes"));
    }
    let parsed = Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, not {}:",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    Ok(parsed)
}

/// Why the server must not send to this URL's host, known without resolving it: a literal
/// non-public address (`http://127.1/` names 127.0.0.1, a loopback address), or `localhost`,
/// which always names loopback (RFC 6761). Other host names are judged when resolved.
pub fn literal_host_problem(url: &Url) -> Option<String> {
    let (named, reason) = match url.host()? {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name != "localhost" && !name.ends_with(".localhost") {
                return None;
            }
            (name, "loopback")
        }
        _ => {
            let ip = literal_host_ip(url)?;
            (ip.to_string(), non_public_reason(ip)?)
        }
    };
    Some(format!(
        "{url} names {named}, a {reason} address; webhooks may only reach public addresses \
         unless the server runs with --allow-private-webhooks"
    ))
}

/// The check a subscription `PUT` makes on `webhook.url`: the URL's shape, and, unless
/// `allow_private`, that a literal address in it is public. A host name passes here; the
/// dispatcher checks what it resolves to on every delivery.
pub fn validate_webhook_url(url: &str, allow_private: bool) -> Result<(), Invalid> {
    let parsed = parse_webhook_url(url).map_err(|m| Invalid::new("webhook.url", m))?;
    if !allow_private && let Some(problem) = literal_host_problem(&parsed) {
        return Err(Invalid::new("webhook.url", problem));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ip: &str) -> Option<&'static str> {
        non_public_reason(ip.parse().unwrap())
    }

    #[test]
    fn non_public_ipv4_ranges_are_refused() {
        for (ip, why) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "\"this network\" (0.0.0.0/8)"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared address space (CGNAT, 100.64.0.0/10)"),
            (
                "100.127.255.254",
                "shared address space (CGNAT, 100.64.0.0/10)",
            ),
            ("169.254.169.254", "link-local"),
            ("192.0.0.8", "IETF protocol assignments (192.0.0.0/24)"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
        ] {
            assert_eq!(reason(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_passes() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn non_public_ipv6_ranges_and_embedded_ipv4_are_refused() {
        for (ip, why) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:7f00:1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::127.0.0.1", "loopback"),
            ("::8.8.8.8", "IPv4-compatible (::/96)"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("64:ff9b:1::1", "reserved"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("100::1", "reserved"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "IETF protocol assignments (2001::/23)"),
        ] {
            assert_eq!(reason(ip), Some(why), "{ip}");
        }
    }

    #[test]
    fn public_ipv6_passes() {
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(reason(ip), None, "{ip}");
        }
    }

    #[test]
    fn numeric_url_forms_are_literal_addresses() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]:8080/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:127.0.0.1]/",
            "https://0.0.0.0/",
            "http://[::]/",
            "http://10.0.0.5/",
            "http://172.16.3.4/",
            "http://192.168.0.10/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://100.64.0.1/",
        ] {
            let err = validate_webhook_url(url, false).unwrap_err();
            assert_eq!(err.field, "webhook.url");
            assert!(
                err.message.contains("--allow-private-webhooks"),
                "{url}: {err:?}"
            );
            assert!(validate_webhook_url(url, true).is_ok(), "{url}");
        }
    }

    #[test]
    fn url_shape_is_checked() {
        assert!(validate_webhook_url("https://hooks.example.com/x?y=1", false).is_ok());
        assert!(validate_webhook_url("http://localhost:9000/", false).is_err());
        assert!(validate_webhook_url("http://api.LOCALHOST./", false).is_err());
        assert!(validate_webhook_url("http://localhost.example.com/", false).is_ok());
        for url in [
            "",
            "nope",
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://",
        ] {
            let err = validate_webhook_url(url, true).unwrap_err();
            assert_eq!(err.field, "webhook.url", "{url}");
        }
        let long = format!("https://example.com/{}", "a".repeat(WEBHOOK_URL_MAX_LEN));
        assert!(validate_webhook_url(&long, true).is_err());
    }
}
