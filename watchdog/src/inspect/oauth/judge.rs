//! The verdict on one URL a server hands to the user to open: scheme, transport, redirect
//! parameters, the authorization server's identity, and the scopes it asks for.

use super::scopes::{self, ScopePolicy};
use crate::alert::Severity;
use url::{Host, Url};

/// Query parameters that send the browser somewhere after the authorization server is done.
const REDIRECT_PARAMS: &[&str] = &[
    "redirect_uri",
    "redirect_url",
    "redirect",
    "redirect_to",
    "redirecturi",
    "next",
    "return_to",
    "returnto",
    "return_url",
    "returnurl",
    "continue",
    "goto",
    "callback",
];

/// Path fragments of authorization, sign-in and consent endpoints.
const AUTH_PATHS: &[&str] = &[
    "authoriz", "oauth", "/auth", "login", "signin", "sign-in", "/sso", "consent",
];

/// What one server's authorization URLs are held to.
#[derive(Debug, Clone, Default)]
pub struct ServerAuth {
    /// Host of the configured `oauth.issuer`.
    pub issuer_host: Option<String>,
    pub scopes: ScopePolicy,
    /// Hosts a redirect may go to besides loopback and the authorization server's own site.
    pub redirect_hosts: Vec<String>,
}

/// How the URL reached the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// Handed over to be opened: a URL-mode elicitation, a `-32042` error's elicitation.
    ToOpen,
    /// A `resource_link` block: local `file:` resources are ordinary there.
    ResourceLink,
    /// A markdown link target, or a URL in a line that invites the user to sign in.
    Prompted,
    /// Mentioned in text.
    Mentioned,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub class: &'static str,
    pub severity: Severity,
    pub detail: String,
}

/// Problems with `text` as a URL presented as `how`, worst first; empty when it is fine or not an
/// authorization matter at all. `declared_issuers`: hosts the same message declares as its
/// authorization servers (RFC 8414 / RFC 9728 metadata).
pub fn judge(
    text: &str,
    how: Presented,
    auth: &ServerAuth,
    declared_issuers: &[String],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let url = match Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            if how == Presented::ToOpen {
                problems.push(problem(
                    "malformed authorization URL",
                    Severity::High,
                    format!("the URL to open does not parse ({e})"),
                ));
            }
            return problems;
        }
    };
    let opened = how != Presented::Mentioned;
    match url.scheme() {
        "javascript" | "vbscript" => {
            if opened {
                problems.push(problem(
                    "script URL",
                    Severity::Critical,
                    format!("a {}: URL offered to open runs code", url.scheme()),
                ));
            }
            return problems;
        }
        "data" => {
            if opened {
                let mime = url.path().split([';', ',']).next().unwrap_or("");
                let scripting = ["html", "javascript", "svg", "xml", "ecmascript"]
                    .iter()
                    .any(|m| mime.to_ascii_lowercase().contains(m));
                problems.push(problem(
                    "data URL",
                    if scripting {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    format!("a data: URL ({mime}) offered to open instead of a web page"),
                ));
            }
            return problems;
        }
        "file" => {
            // In text, local links next to sign-in words are too common (notes, READMEs) to judge.
            if how == Presented::ToOpen {
                problems.push(problem(
                    "file URL",
                    Severity::High,
                    "a local file: URL offered as a page to sign in on".into(),
                ));
            }
            return problems;
        }
        "http" | "https" => {}
        _ => return problems,
    }
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    if how != Presented::ToOpen && is_documentation_host(&host) {
        return problems; // RFC 2606 names only appear in examples
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    let has = |k: &str| pairs.iter().any(|(key, _)| key == k);
    let is_auth_request = has("client_id") || has("response_type");
    let path = url.path().to_ascii_lowercase();
    let auth_like = is_auth_request
        || matches!(how, Presented::ToOpen | Presented::Prompted)
        || AUTH_PATHS.iter().any(|p| path.contains(p));
    if !auth_like {
        return problems;
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        problems.push(problem(
            "insecure authorization URL",
            Severity::High,
            format!("authorization over plain http to {host}"),
        ));
    }
    for (key, value) in &pairs {
        if !REDIRECT_PARAMS.contains(&key.as_str()) {
            continue;
        }
        if let Some(p) = judge_redirect(key, value, &url, auth) {
            problems.push(p);
        }
    }
    if is_auth_request {
        let expected: Vec<&str> = auth
            .issuer_host
            .iter()
            .map(String::as_str)
            .chain(declared_issuers.iter().map(String::as_str))
            .collect();
        if !expected.is_empty() && !expected.contains(&host.as_str()) {
            problems.push(problem(
                "issuer mismatch",
                Severity::High,
                format!(
                    "authorization at {host}, but the server's authorization server is {}",
                    expected.join(", ")
                ),
            ));
        }
        if let Some((_, scope)) = pairs.iter().find(|(k, _)| k == "scope") {
            let requested = scopes::split(scope);
            let excessive = scopes::excessive(&requested, &auth.scopes);
            if !excessive.is_empty() {
                problems.push(problem(
                    "excessive scopes",
                    Severity::Medium,
                    format!("asks for {}", excessive.join(" ")),
                ));
            }
        }
    }
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    problems
}

fn judge_redirect(key: &str, value: &str, from: &Url, auth: &ServerAuth) -> Option<Problem> {
    // A relative target stays on the authorization server.
    let target = Url::parse(value).ok()?;
    match target.scheme() {
        "javascript" | "vbscript" | "data" | "file" => Some(problem(
            "open redirect",
            Severity::Critical,
            format!("{key} sends the browser to a {}: URL", target.scheme()),
        )),
        "http" if !is_loopback(&target) => Some(problem(
            "open redirect",
            Severity::High,
            format!(
                "{key} sends the code over plain http to {}",
                target.host_str().unwrap_or("")
            ),
        )),
        "http" => None, // RFC 8252 §7.3: loopback redirects for native apps
        "https" => {
            let to = target.host_str().unwrap_or("").to_ascii_lowercase();
            let from_host = from.host_str().unwrap_or("").to_ascii_lowercase();
            let allowed = is_loopback(&target)
                || same_site(&to, &from_host)
                || auth
                    .issuer_host
                    .as_deref()
                    .is_some_and(|i| same_site(&to, i))
                || auth
                    .redirect_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(&to));
            (!allowed).then(|| {
                problem(
                    "open redirect",
                    Severity::High,
                    format!("{key} sends the browser from {from_host} to {to}"),
                )
            })
        }
        // Custom schemes are how native clients receive codes (RFC 8252 §7.1).
        _ => None,
    }
}

fn problem(class: &'static str, severity: Severity, detail: String) -> Problem {
    Problem {
        class,
        severity,
        detail,
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Names reserved for documentation (RFC 2606, RFC 6761): no one can serve a login page there.
fn is_documentation_host(host: &str) -> bool {
    let site = registrable(host);
    matches!(site, "example.com" | "example.org" | "example.net")
        || host.ends_with(".example")
        || host.ends_with(".test")
        || host.ends_with(".invalid")
}

/// Same registrable domain, approximated without a public suffix list: the last two labels, or
/// three under a two-letter country code with a short second level (`co.uk`, `com.au`).
pub fn same_site(a: &str, b: &str) -> bool {
    registrable(a).eq_ignore_ascii_case(registrable(b))
}

fn registrable(host: &str) -> &str {
    let host = host.trim_end_matches('.');
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() <= 2 {
        return host;
    }
    let n = labels.len();
    let take = if labels[n - 1].len() == 2 && labels[n - 2].len() <= 3 {
        3
    } else {
        2
    };
    let skip: usize = labels[..n - take].iter().map(|l| l.len() + 1).sum();
    &host[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worst(url: &str, how: Presented) -> Option<&'static str> {
        judge(url, how, &ServerAuth::default(), &[])
            .first()
            .map(|p| p.class)
    }

    #[test]
    fn script_data_and_file_urls_offered_to_open() {
        assert_eq!(
            worst("javascript:alert(1)", Presented::ToOpen),
            Some("script URL")
        );
        assert_eq!(
            worst("VBScript:msgbox(1)", Presented::Prompted),
            Some("script URL")
        );
        assert_eq!(
            worst("data:text/html;base64,PHNjcmlwdD4=", Presented::ToOpen),
            Some("data URL")
        );
        assert_eq!(
            worst("file:///tmp/login.html", Presented::ToOpen),
            Some("file URL")
        );
        assert_eq!(
            worst("not a url", Presented::ToOpen),
            Some("malformed authorization URL")
        );
    }

    #[test]
    fn plain_http_and_open_redirects() {
        assert_eq!(
            worst(
                "http://auth.evil.io/authorize?client_id=x",
                Presented::Mentioned
            ),
            Some("insecure authorization URL")
        );
        assert_eq!(
            worst("https://github.com/login/oauth/authorize?client_id=x&redirect_uri=https://attacker.io/cb", Presented::Mentioned),
            Some("open redirect")
        );
        assert_eq!(
            worst("https://accounts.google.com/o/oauth2/v2/auth?client_id=x&redirect_uri=http://collector.io/cb", Presented::Mentioned),
            Some("open redirect")
        );
        assert_eq!(
            worst(
                "https://login.corp.io/sso?next=javascript:alert(1)",
                Presented::Mentioned
            ),
            Some("open redirect")
        );
    }

    #[test]
    fn issuer_mismatch_from_config_or_the_message() {
        let auth = ServerAuth {
            issuer_host: Some("github.com".into()),
            ..Default::default()
        };
        let p = judge(
            "https://github-login.io/login/oauth/authorize?client_id=x",
            Presented::Mentioned,
            &auth,
            &[],
        );
        assert_eq!(p[0].class, "issuer mismatch");
        let p = judge(
            "https://auth.other.io/authorize?client_id=x&response_type=code",
            Presented::Mentioned,
            &ServerAuth::default(),
            &["auth.vendor.io".into()],
        );
        assert_eq!(p[0].class, "issuer mismatch");
    }

    #[test]
    fn excessive_scopes() {
        let p = judge(
            "https://github.com/login/oauth/authorize?client_id=x&scope=repo%20admin:org",
            Presented::Mentioned,
            &ServerAuth::default(),
            &[],
        );
        assert_eq!(p[0].class, "excessive scopes");
        assert!(p[0].detail.contains("repo admin:org"), "{}", p[0].detail);
    }

    #[test]
    fn benign_authorization_urls() {
        let auth = ServerAuth {
            issuer_host: Some("github.com".into()),
            ..Default::default()
        };
        for url in [
            "https://github.com/login/oauth/authorize?client_id=Iv1.abc&redirect_uri=http://127.0.0.1:53682/callback&scope=read:user%20user:email&state=xyz",
            "https://github.com/login/oauth/authorize?client_id=Iv1.abc&redirect_uri=http://localhost:8080/cb&scope=public_repo",
            "https://github.com/login?return_to=%2Flogin%2Foauth%2Fauthorize",
        ] {
            assert!(judge(url, Presented::ToOpen, &auth, &[]).is_empty(), "{url}");
        }
        for url in [
            "https://accounts.google.com/o/oauth2/v2/auth?client_id=1.apps.googleusercontent.com&redirect_uri=http://[::1]:9000/&response_type=code&scope=openid%20email%20https://www.googleapis.com/auth/calendar.readonly&code_challenge=abc&code_challenge_method=S256",
            "https://mcp.vendor.io/connect?elicitationId=550e8400-e29b-41d4-a716-446655440000",
            "http://localhost:3000/authorize?client_id=x&response_type=code",
            "https://app.native/authorize?client_id=x&redirect_uri=com.example.app:/oauth2redirect",
        ] {
            assert!(
                judge(url, Presented::ToOpen, &ServerAuth::default(), &[]).is_empty(),
                "{url}"
            );
        }
    }

    #[test]
    fn mentioned_urls_that_are_not_authorization_are_left_alone() {
        for url in [
            "http://news.site.io/article?next=https://other.io/",
            "javascript:void(0)",
            "data:image/png;base64,AAAA",
            "file:///home/me/notes.md",
            "http://example.com/authorize?client_id=YOUR_CLIENT_ID",
        ] {
            assert_eq!(worst(url, Presented::Mentioned), None, "{url}");
        }
        assert_eq!(worst("file:///srv/data.csv", Presented::ResourceLink), None);
    }

    #[test]
    fn configured_redirect_hosts_are_trusted() {
        let url = "https://github.com/login/oauth/authorize?client_id=x&redirect_uri=https://mcp.vendor.io/cb";
        assert_eq!(worst(url, Presented::ToOpen), Some("open redirect"));
        let auth = ServerAuth {
            redirect_hosts: vec!["mcp.vendor.io".into()],
            ..Default::default()
        };
        assert!(judge(url, Presented::ToOpen, &auth, &[]).is_empty());
    }

    #[test]
    fn sites() {
        assert!(same_site("api.github.com", "github.com"));
        assert!(same_site("a.b.co.uk", "c.b.co.uk"));
        assert!(!same_site("evil.co.uk", "good.co.uk"));
        assert!(!same_site("github.com.evil.io", "github.com"));
    }
}
