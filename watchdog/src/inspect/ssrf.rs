//! SSRF: request arguments that point a server at internal targets — cloud metadata endpoints,
//! loopback and private addresses in every spelling, names that resolve to them, and schemes that
//! turn a fetcher into a raw socket.
//!
//! URLs are parsed by the `url` crate (WHATWG), which already folds IPv4 spellings in hosts of
//! special schemes (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) into one address and maps
//! IPv6 forms to one `Ipv6Addr`. Bare hosts and hosts of other schemes (`gopher://2130706433/`) go
//! through the same WHATWG host parser (`url::Host::parse`). What is left for this file is the
//! judgement: which addresses and names are internal.

use super::argument::{self, ArgKind, Argument};
use super::text::SharedCheck;
use super::text::{Hit, Replacement, TextDetector, TextView};
use super::SubjectMeta;
use crate::alert::Severity;
use crate::inspect::text::Site;
use regex::Regex;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;
use url::{Host, Url};

pub const RULE: &str = "SSRF";

/// A whole value longer than this is not a URL or host.
const MAX_VALUE: usize = 4096;
/// Embedded URLs are looked for in this much of a longer string.
const MAX_SCAN: usize = 64 * 1024;

/// Schemes that make a fetcher speak raw protocols or read local files.
const CRITICAL_SCHEMES: &[&str] = &["file", "gopher", "dict"];
const RISKY_SCHEMES: &[&str] = &[
    "ldap", "ldaps", "jar", "netdoc", "tftp", "phar", "expect", "sftp", "smb", "telnet",
];
/// Schemes that mark a value as a URL even without `//` (`file:/etc/passwd`).
const URL_SCHEMES: &[&str] = &[
    "http", "https", "ws", "wss", "ftp", "file", "gopher", "dict", "ldap", "ldaps", "jar",
    "netdoc", "tftp", "phar", "expect", "sftp", "smb", "telnet",
];

/// Instance metadata services: credentials of the machine the server runs on.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task credentials
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS pod identity
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(168, 63, 129, 16),   // Azure wire server
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud classic
];
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), // AWS IMDS over IPv6
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),  // AWS EKS pod identity
];
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
];
/// Public wildcard-DNS names that resolve to 127.0.0.1, with every subdomain.
const LOOPBACK_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "localho.st",
    "lacolhost.com",
    "kubernetes.default",
    "kubernetes.default.svc",
];
/// Wildcard DNS that answers with the address spelled in the name (`10.0.0.1.nip.io`,
/// `app-10-0-0-1.sslip.io`, `7f000001.nip.io`, `--1.sslip.io`).
const EMBEDDING_SUFFIXES: &[&str] = &["nip.io", "sslip.io", "xip.io", "traefik.me", "nip.direct"];
/// Names that only resolve inside a network (RFC 6762, RFC 8375, ICANN `.internal`).
const INTERNAL_SUFFIXES: &[&str] = &[
    "internal",
    "local",
    "localdomain",
    "home.arpa",
    "intranet",
    "corp",
    "lan",
    "cluster.local",
    "svc",
];

static EMBEDDED_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:https?|ftp|gopher|dict|file|ldaps?|tftp|netdoc)://[^\s'"<>`|;)]+"#)
        .expect("embedded URL regex")
});

/// One judgement of a URL or host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub class: &'static str,
    pub detail: String,
}

fn finding(severity: Severity, class: &'static str, detail: String) -> Option<Finding> {
    Some(Finding {
        severity,
        class,
        detail,
    })
}

fn worse(a: Option<Finding>, b: Option<Finding>) -> Option<Finding> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.severity > a.severity { b } else { a }),
        (a, b) => a.or(b),
    }
}

pub fn classify_v4(ip: Ipv4Addr) -> Option<Finding> {
    if METADATA_V4.contains(&ip) {
        return finding(
            Severity::Critical,
            "cloud metadata",
            format!("cloud metadata address {ip}"),
        );
    }
    let [a, b, ..] = ip.octets();
    let what = if ip.is_loopback() {
        "loopback"
    } else if a == 0 {
        // 0.0.0.0/8 reaches the local host on Linux.
        "this-host"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier-grade NAT)"
    } else if ip.is_broadcast() {
        "broadcast"
    } else {
        return None;
    };
    finding(
        Severity::High,
        "internal target",
        format!("{what} address {ip}"),
    )
}

/// The IPv4 address an IPv6 address carries: mapped, compatible, NAT64, 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated); `::` and `::1` are themselves.
    if s[..6] == [0; 6] && u32::from(low) > 1 {
        return Some(low);
    }
    // NAT64 well-known and local-use prefixes (RFC 6052, RFC 8215).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) {
        return Some(low);
    }
    // 6to4 (2002:AABB:CCDD::/48).
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

pub fn classify_v6(ip: Ipv6Addr) -> Option<Finding> {
    if METADATA_V6.contains(&ip) {
        return finding(
            Severity::Critical,
            "cloud metadata",
            format!("cloud metadata address {ip}"),
        );
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4).map(|f| Finding {
            detail: format!("{} (inside IPv6 {ip})", f.detail),
            ..f
        });
    }
    let s0 = ip.segments()[0];
    let what = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s0 & 0xfe00 == 0xfc00 {
        "unique-local"
    } else if s0 & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s0 & 0xffc0 == 0xfec0 {
        "site-local"
    } else {
        return None;
    };
    finding(
        Severity::High,
        "internal target",
        format!("{what} address {ip}"),
    )
}

fn is_or_under(name: &str, suffix: &str) -> bool {
    name == suffix
        || name
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// The address spelled inside a wildcard-DNS label set (`a.10.0.0.1`, `a-10-0-0-1`, `0a000001`).
fn spelled_address(prefix: &str) -> Option<Host> {
    let labels: Vec<&str> = prefix.split('.').filter(|l| !l.is_empty()).collect();
    if labels.len() >= 4 {
        let quad = labels[labels.len() - 4..].join(".");
        if let Ok(ip) = quad.parse::<Ipv4Addr>() {
            return Some(Host::Ipv4(ip));
        }
    }
    let last = *labels.last()?;
    if last.contains("--") {
        if let Ok(ip) = last.replace('-', ":").parse::<Ipv6Addr>() {
            return Some(Host::Ipv6(ip));
        }
    }
    let dashed: Vec<&str> = last.split('-').collect();
    if dashed.len() >= 4 {
        if let Ok(ip) = dashed[dashed.len() - 4..].join(".").parse::<Ipv4Addr>() {
            return Some(Host::Ipv4(ip));
        }
    }
    let tail = dashed.last()?;
    if tail.len() == 8 {
        if let Ok(n) = u32::from_str_radix(tail, 16) {
            return Some(Host::Ipv4(Ipv4Addr::from(n)));
        }
    }
    None
}

pub fn classify_host(host: &Host) -> Option<Finding> {
    match host {
        Host::Ipv4(ip) => classify_v4(*ip),
        Host::Ipv6(ip) => classify_v6(*ip),
        Host::Domain(name) => classify_name(name),
    }
}

fn classify_name(name: &str) -> Option<Finding> {
    let name = name.trim_end_matches('.');
    if METADATA_NAMES.contains(&name) {
        return finding(
            Severity::Critical,
            "cloud metadata",
            format!("cloud metadata name {name}"),
        );
    }
    if let Some(base) = LOOPBACK_NAMES.iter().find(|s| is_or_under(name, s)) {
        return finding(
            Severity::High,
            "internal target",
            format!("{name} resolves to loopback ({base})"),
        );
    }
    for suffix in EMBEDDING_SUFFIXES {
        if let Some(prefix) = name.strip_suffix(suffix).and_then(|p| p.strip_suffix('.')) {
            return spelled_address(prefix)
                .as_ref()
                .and_then(classify_host)
                .map(|f| Finding {
                    detail: format!("{} via wildcard DNS {name}", f.detail),
                    ..f
                });
        }
    }
    if let Some(suffix) = INTERNAL_SUFFIXES.iter().find(|s| is_or_under(name, s)) {
        return finding(
            Severity::Medium,
            "internal target",
            format!("internal-only name {name} (.{suffix})"),
        );
    }
    None
}

/// Judges a parsed URL.
pub fn classify_url(url: &Url, arg: &Argument, depth: u8) -> Option<Finding> {
    let scheme = url.scheme();
    let by_scheme = if CRITICAL_SCHEMES.contains(&scheme) && !(scheme == "file" && arg.resource_uri)
    {
        finding(
            Severity::Critical,
            "dangerous scheme",
            format!("{scheme}: URL"),
        )
    } else if RISKY_SCHEMES.contains(&scheme) {
        finding(Severity::High, "dangerous scheme", format!("{scheme}: URL"))
    } else {
        None
    };
    let by_host = match url.host() {
        // Hosts of non-special schemes stay opaque: parse them as a fetcher would.
        Some(Host::Domain(d)) => Host::parse(d)
            .ok()
            .as_ref()
            .and_then(classify_host)
            .or_else(|| classify_name(d)),
        Some(Host::Ipv4(ip)) => classify_v4(ip),
        Some(Host::Ipv6(ip)) => classify_v6(ip),
        None if depth == 0 && matches!(scheme, "jar" | "netdoc") => {
            // `jar:http://10.0.0.1/x.jar!/` wraps another URL.
            let inner = url.path().split("!/").next().unwrap_or_default();
            Url::parse(inner)
                .ok()
                .and_then(|u| classify_url(&u, arg, depth + 1))
        }
        None => None,
    };
    worse(by_scheme, by_host)
}

/// Splits `host`, `host:port`, `[v6]:port`, bare IPv6 (with zone) and `host:port/path`.
fn host_of(value: &str) -> Option<Host> {
    let value = value.split(['/', '?', '#']).next()?;
    let value = value.rsplit('@').next()?;
    if value.starts_with('[') {
        let end = value.find(']')?;
        return Host::parse(&value[..=end]).ok();
    }
    if value.matches(':').count() > 1 {
        let bare = value.split('%').next()?;
        return bare.parse::<Ipv6Addr>().ok().map(Host::Ipv6);
    }
    let host = match value.split_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => value,
    };
    Host::parse(host).ok()
}

fn scheme_of(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once(':')?;
    let ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b));
    ok.then_some(scheme)
}

/// Judges one whole argument value (no whitespace) by what the argument is meant to be.
pub fn classify_value(value: &str, arg: &Argument) -> Option<Finding> {
    let is_url =
        value.contains("://") || scheme_of(value).is_some_and(|s| URL_SCHEMES.contains(&s));
    if is_url {
        return Url::parse(value)
            .ok()
            .and_then(|u| classify_url(&u, arg, 0));
    }
    match arg.kind {
        // A fetcher prepends `http://` to a bare `169.254.169.254/latest/meta-data`.
        ArgKind::Url if !arg.resource_uri => Url::parse(&format!("http://{value}"))
            .ok()
            .and_then(|u| classify_url(&u, arg, 0)),
        ArgKind::Host => host_of(value).as_ref().and_then(classify_host),
        _ => None,
    }
}

pub struct Ssrf;

impl TextDetector for Ssrf {
    fn name(&self) -> &'static str {
        "ssrf"
    }

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
    }

    /// Judges what the client sends to servers.
    fn direction(&self) -> Option<crate::alert::Direction> {
        Some(crate::alert::Direction::ClientToServer)
    }

    fn triggers(&self) -> &'static [&'static str] {
        &[
            "169.254",
            "metadata.g",
            "instance-data",
            "/latest/meta-data",
            "100.100.100.200",
            "168.63.129.16",
            "fd00:ec2",
            "gopher://",
            "dict://",
            "file:/",
            "netdoc:",
        ]
    }

    fn shared_raw_check(&self) -> Option<SharedCheck> {
        Some(SharedCheck::RequestArguments)
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        argument::is_request_argument(meta, site) && Argument::of(meta, site).is_operational()
    }

    fn scan(&self, text: &TextView<'_>, hits: &mut Vec<Hit>) {
        let arg = Argument::of(text.meta, text.site);
        let value = text.normalized.text.trim();
        if value.is_empty() {
            return;
        }
        let mut push = |f: Finding, range| {
            hits.push(Hit {
                rule: RULE,
                class: f.class,
                severity: f.severity,
                range,
                replacement: Replacement::None,
                detail: f.detail,
            })
        };
        if value.len() <= MAX_VALUE && !value.contains(char::is_whitespace) {
            if let Some(f) = classify_value(value, &arg) {
                push(f, 0..text.original.len());
            }
            return;
        }
        // URLs inside longer strings (a shell command's `curl …`): only what is never routine.
        let normalized = &text.normalized.text;
        let mut end = normalized.len().min(MAX_SCAN);
        while !normalized.is_char_boundary(end) {
            end -= 1;
        }
        for m in EMBEDDED_URL.find_iter(&normalized[..end]) {
            if let Some(f) = classify_value(m.as_str(), &arg) {
                if f.severity == Severity::Critical {
                    push(f, text.normalized.original_range(m.range()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::request_testkit::*;
    use crate::inspect::Outcome;
    use serde_json::json;

    fn fetch(url: &str) -> Option<Severity> {
        worst(
            &hits(Box::new(Ssrf), &call("fetch", json!({ "url": url }))),
            RULE,
        )
    }

    fn host(key: &str, value: &str) -> Option<Severity> {
        worst(
            &hits(Box::new(Ssrf), &call("connect", json!({ key: value }))),
            RULE,
        )
    }

    #[test]
    fn cloud_metadata_is_critical_in_every_spelling() {
        for url in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://2852039166/latest/meta-data/",
            "http://0xa9fea9fe/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
            "http://100.100.100.200/latest/meta-data/",
            "http://169.254.170.2/v2/credentials/abc",
            "http://user:pw@169.254.169.254/",
            "http://evil.example@169.254.169.254/",
            "169.254.169.254/latest/meta-data",
            "http://169.254.169.254.nip.io/",
            "http://a9fea9fe.nip.io/",
            // Fullwidth digits and dots: NFKC (and a browser's IDNA) fold them.
            "http://１６９．２５４．１６９．２５４/",
        ] {
            assert_eq!(fetch(url), Some(Severity::Critical), "{url}");
        }
        assert_eq!(host("host", "169.254.169.254:80"), Some(Severity::Critical));
        assert_eq!(host("endpoint", "metadata.goog"), Some(Severity::Critical));
    }

    #[test]
    fn loopback_and_private_ranges_are_high_in_every_spelling() {
        for url in [
            "http://127.0.0.1:8080/admin",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.000.000.001/",
            "http://10.1/",
            "http://0/",
            "http://0.0.0.0:6379/",
            "http://192.168.1.1/",
            "http://172.16.0.5/",
            "http://[::1]:3000/",
            "http://[::]/",
            "http://[fc00::1]/",
            "http://[fd12:3456::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::10.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://localhost:5432/",
            "http://LOCALHOST/",
            "http://api.localhost/",
            "http://localtest.me/",
            "http://anything.localtest.me/",
            "http://lvh.me:3000/",
            "http://10.0.0.1.nip.io/",
            "http://app.192.168.0.1.sslip.io/",
            "http://app-127-0-0-1.nip.io/",
            "http://7f000001.xip.io/",
            "http://--1.sslip.io/",
            "ws://127.0.0.1:9222/devtools/browser",
            "ftp://10.0.0.8/pub/",
            "http://loc\u{200b}alhost/",
        ] {
            assert_eq!(fetch(url), Some(Severity::High), "{url}");
        }
        for (key, value) in [
            ("host", "127.1"),
            ("hostname", "0x7f000001"),
            ("host", "localhost:8080"),
            ("address", "[::1]:22"),
            ("ip", "::1"),
            ("ip", "fe80::1%eth0"),
            ("server", "10.0.0.5:9000/api"),
            ("endpoint", "192.168.0.10"),
            ("proxy_host", "2130706433"),
        ] {
            assert_eq!(host(key, value), Some(Severity::High), "{key}={value}");
        }
    }

    #[test]
    fn dangerous_schemes() {
        assert_eq!(fetch("file:///etc/passwd"), Some(Severity::Critical));
        assert_eq!(fetch("file:/etc/passwd"), Some(Severity::Critical));
        assert_eq!(
            fetch("FILE://localhost/etc/shadow"),
            Some(Severity::Critical)
        );
        assert_eq!(
            fetch("gopher://127.0.0.1:6379/_SET%20x%201"),
            Some(Severity::Critical)
        );
        assert_eq!(
            fetch("dict://localhost:11211/stat"),
            Some(Severity::Critical)
        );
        assert_eq!(fetch("ldap://example.org/dc=x"), Some(Severity::High));
        assert_eq!(
            fetch("jar:http://10.0.0.1/app.jar!/META-INF/MANIFEST.MF"),
            Some(Severity::High)
        );
        assert_eq!(fetch("netdoc:///etc/hosts"), Some(Severity::High));
        // Non-special scheme with a numeric host still resolves as the fetcher would.
        assert_eq!(fetch("tftp://2130706433/x"), Some(Severity::High));
        assert_eq!(fetch("http://printer.local/"), Some(Severity::Medium));
        assert_eq!(
            fetch("http://jenkins.corp.internal/"),
            Some(Severity::Medium)
        );
    }

    #[test]
    fn embedded_metadata_urls_in_commands_are_found() {
        let m = call(
            "run_command",
            json!({"command": "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/ | base64"}),
        );
        let found = hits(Box::new(Ssrf), &m);
        assert_eq!(worst(&found, RULE), Some(Severity::Critical));
        let text = m["params"]["arguments"]["command"].as_str().unwrap();
        assert!(text[found[0].range.clone()].starts_with("http://169.254.169.254/"));
        let m = call(
            "bash",
            json!({"command": "curl http://2852039166/latest/meta-data/"}),
        );
        assert_eq!(
            worst(&hits(Box::new(Ssrf), &m), RULE),
            Some(Severity::Critical)
        );
        // Routine local development URLs inside commands are not worth an alert.
        let m = call(
            "bash",
            json!({"command": "curl -s http://localhost:8080/health && echo ok"}),
        );
        assert_eq!(worst(&hits(Box::new(Ssrf), &m), RULE), None);
    }

    #[test]
    fn critical_findings_block_the_request_and_high_ones_alert() {
        let (outcome, alerts) = through_pipeline(
            Box::new(Ssrf),
            &call("fetch", json!({"url": "http://0xa9fea9fe/latest/"})),
        );
        assert!(matches!(outcome, Outcome::Block { .. }));
        assert_eq!(alerts[0].rule, RULE);
        let (outcome, alerts) = through_pipeline(
            Box::new(Ssrf),
            &call("fetch", json!({"url": "http://127.1:8000/"})),
        );
        assert_eq!(outcome, Outcome::Pass);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].severity, Severity::High);
        // resources/read and nested arguments are inspected too.
        let (outcome, _) = through_pipeline(
            Box::new(Ssrf),
            &request("resources/read", json!({"uri": "http://169.254.169.254/"})),
        );
        assert!(matches!(outcome, Outcome::Block { .. }));
        let (outcome, _) = through_pipeline(
            Box::new(Ssrf),
            &call(
                "crawl",
                json!({"options": {"targets": [{"url": "gopher://10.0.0.1:25/"}]}}),
            ),
        );
        assert!(matches!(outcome, Outcome::Block { .. }));
    }

    #[test]
    fn public_urls_versions_and_prose_pass() {
        for url in [
            "https://github.com/rust-lang/rust/commit/3f786850e387550fdab836ed7e6dc881de23001b",
            "https://api.openai.com/v1/chat/completions",
            "https://8.8.8.8/dns-query",
            "http://93.184.216.34/",
            "https://[2606:4700:4700::1111]/dns-query",
            "https://1.1.1.1.nip.io/",
            "https://localhost.example.com/",
            "https://metadata.example.com/v1",
            "https://docs.local-first.dev/",
            "https://mylocalhost.com/",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "mailto:someone@example.com",
            "https://example.com/?next=http://127.0.0.1/",
        ] {
            assert_eq!(fetch(url), None, "{url}");
        }
        for (tool, args) in [
            (
                "connect",
                json!({"version": "1.2.3.4", "build": "10.1", "tag": "127.1"}),
            ),
            ("git_diff", json!({"repo_path": ".", "target": "10.1"})),
            (
                "web_search",
                json!({"query": "http://127.0.0.1 vs localhost, and 169.254.169.254"}),
            ),
            (
                "write_file",
                json!({"path": "docker-compose.yml", "content": "services:\n  db:\n    url: http://localhost:5432\n    meta: http://169.254.169.254/\n"}),
            ),
            ("echo", json!({"message": "http://169.254.169.254"})),
            (
                "get_forecast",
                json!({"location": "Paris", "latitude": "48.8566"}),
            ),
        ] {
            assert_eq!(
                worst(&hits(Box::new(Ssrf), &call(tool, args.clone())), RULE),
                None,
                "{tool} {args}"
            );
        }
        let read = request(
            "resources/read",
            json!({"uri": "file:///home/alice/notes.md"}),
        );
        assert_eq!(worst(&hits(Box::new(Ssrf), &read), RULE), None);
    }

    #[test]
    fn the_url_crate_folds_ipv4_spellings_as_documented() {
        // What this detector relies on: WHATWG host parsing in special-scheme URLs.
        for (spelling, ip) in [
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("017700000001", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("10.1", "10.0.0.1"),
            ("0", "0.0.0.0"),
        ] {
            let u = Url::parse(&format!("http://{spelling}/")).unwrap();
            assert_eq!(u.host_str(), Some(ip), "{spelling}");
        }
        // Non-special schemes keep the host opaque; this file re-parses it.
        let u = Url::parse("gopher://2130706433/").unwrap();
        assert_eq!(u.host(), Some(Host::Domain("2130706433")));
    }

    #[test]
    fn everyday_calls_pass() {
        assert_quiet_on_everyday_calls(|| Box::new(Ssrf));
    }

    #[test]
    fn real_server_traffic_passes() {
        assert_silent_on_real_servers(|| Box::new(Ssrf));
    }
}
