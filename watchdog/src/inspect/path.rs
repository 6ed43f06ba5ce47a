//! PATH-TRAVERSAL: paths that climb out of where they start (`../` in every encoding) and paths
//! to credential files, judged after every encoding is undone (bounded).
//!
//! A relative path that stays inside (`./docs/../README.md`), a `..` in prose, a git range
//! (`v1..v2`) and a pattern that names `.env` in order to exclude it are not findings.

use super::argument::{self, ArgKind, Argument};
use super::text::SharedCheck;
use super::text::{Hit, Replacement, Site, TextDetector, TextView};
use super::SubjectMeta;
use crate::alert::Severity;

pub const RULE: &str = "PATH-TRAVERSAL";

const MAX_VALUE: usize = 16 * 1024;
/// Percent-encoding can be stacked (`%252e`); more rounds than this is not a path anyone uses.
const MAX_DECODE_ROUNDS: usize = 4;

/// Undoes one round of percent-encoding, IIS `%uXXXX` escapes and overlong UTF-8 (`%c0%ae`).
fn decode_round(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let mut unicode = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("%u") {
        unicode.push_str(&rest[..at]);
        let hex = rest.get(at + 2..at + 6);
        match hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
        {
            Some(c) => {
                unicode.push(c);
                rest = &rest[at + 6..];
            }
            None => {
                unicode.push_str("%u");
                rest = &rest[at + 2..];
            }
        }
    }
    unicode.push_str(rest);
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&unicode).collect();
    // Overlong forms of ASCII that lenient decoders accept: C0/C1 xx and E0 80 xx.
    let mut fixed = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i..] {
            [b0 @ (0xc0 | 0xc1), b1, ..] if b1 & 0xc0 == 0x80 => {
                fixed.push(((b0 & 0x1f) << 6) | (b1 & 0x3f));
                i += 2;
            }
            [0xe0, b1, b2, ..] if b1 & 0xe0 == 0x80 && b2 & 0xc0 == 0x80 => {
                fixed.push(((b1 & 0x3f) << 6) | (b2 & 0x3f));
                i += 3;
            }
            _ => {
                fixed.push(bytes[i]);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&fixed).into_owned();
    (decoded != s).then_some(decoded)
}

/// Every spelling worth judging: the value, then each decoded round.
fn spellings(s: &str) -> Vec<String> {
    let mut out = vec![s.replace('\\', "/")];
    let mut current = s.to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        match decode_round(&current) {
            Some(next) => {
                out.push(next.replace('\\', "/"));
                current = next;
            }
            None => break,
        }
    }
    out
}

/// Path-like tokens of a value: whitespace, quotes and URL query separators split them; a URL
/// contributes its path.
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || "?&=;,'\"()<>|`".contains(c))
        .filter(|t| !t.is_empty())
        .map(|t| match t.find("://") {
            Some(at) => t[at + 3..].find('/').map_or("", |p| &t[at + 3 + p..]),
            None => t,
        })
}

struct Walk {
    absolute: bool,
    /// Levels climbed above the starting point (0 = stayed inside).
    escapes: usize,
    has_dotdot: bool,
    /// Lexically resolved segments.
    resolved: Vec<String>,
}

fn walk(token: &str) -> Walk {
    let drive = token.len() >= 2
        && token.as_bytes()[1] == b':'
        && token.as_bytes()[0].is_ascii_alphabetic();
    let absolute = token.starts_with('/') || token.starts_with('~') || drive;
    let mut depth: isize = 0;
    let mut lowest: isize = 0;
    let mut resolved: Vec<String> = Vec::new();
    let mut has_dotdot = false;
    for seg in token.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                has_dotdot = true;
                depth -= 1;
                lowest = lowest.min(depth);
                resolved.pop();
            }
            s => {
                depth += 1;
                resolved.push(s.to_string());
            }
        }
    }
    Walk {
        absolute,
        escapes: (-lowest) as usize,
        has_dotdot,
        resolved,
    }
}

/// A credential file or directory in resolved segments, with its severity.
fn credential(segs: &[String]) -> Option<(Severity, String)> {
    let joined = format!("/{}", segs.join("/"));
    let has = |name: &str| segs.iter().any(|s| s == name);
    let after = |dir: &str| {
        segs.iter()
            .position(|s| s == dir)
            .and_then(|i| segs.get(i + 1))
            .map(String::as_str)
    };
    let critical = |what: &str| Some((Severity::Critical, what.to_string()));
    let high = |what: &str| Some((Severity::High, what.to_string()));
    let last = segs.last().map(String::as_str).unwrap_or_default();
    const KEY_NAMES: &[&str] = &[
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
    ];
    if KEY_NAMES.iter().any(|k| {
        last == *k || last.starts_with(&format!("{k}-")) || last.starts_with(&format!("{k}_"))
    }) && !last.ends_with(".pub")
    {
        return critical("SSH private key");
    }
    if has(".ssh") {
        return match after(".ssh") {
            Some(f) if f.ends_with(".pub") || f == "known_hosts" => None,
            Some("config") | None => high("SSH directory"),
            Some(_) => critical("SSH key material"),
        };
    }
    if has(".aws") {
        return match after(".aws") {
            Some("credentials") => critical("AWS credentials"),
            _ => high("AWS configuration"),
        };
    }
    if has(".kube") && after(".kube") == Some("config") {
        return critical("Kubernetes config");
    }
    const SECRET_FILES: &[&str] = &[
        ".git-credentials",
        ".netrc",
        "_netrc",
        ".npmrc",
        ".pypirc",
        ".pgpass",
        ".my.cnf",
        ".vault-token",
        ".dockercfg",
        "secring.gpg",
    ];
    if let Some(f) = SECRET_FILES.iter().find(|f| last == **f) {
        return critical(f);
    }
    if last == ".env"
        || last.strip_prefix(".env.").is_some_and(|v| {
            !matches!(
                v,
                "example" | "sample" | "template" | "dist" | "defaults" | "schema"
            )
        })
    {
        return critical("dotenv file");
    }
    const SECRET_PATHS: &[(&str, &str)] = &[
        ("/.docker/config.json", "Docker credentials"),
        ("/.config/gh/hosts.yml", "GitHub CLI token"),
        ("/.config/gcloud/credentials.db", "gcloud credentials"),
        (
            "/.config/gcloud/application_default_credentials.json",
            "gcloud credentials",
        ),
        ("/.config/gcloud/access_tokens.db", "gcloud credentials"),
        ("/.azure/accesstokens.json", "Azure tokens"),
        ("/.azure/msal_token_cache.json", "Azure tokens"),
        ("/.gnupg/private-keys-v1.d", "GPG private keys"),
        ("/etc/shadow", "password hashes"),
        ("/etc/gshadow", "password hashes"),
        ("/etc/master.passwd", "password hashes"),
        ("/etc/sudoers", "sudoers"),
        (
            "/run/secrets/kubernetes.io/serviceaccount/token",
            "service-account token",
        ),
        ("/windows/system32/config/sam", "Windows SAM"),
    ];
    if let Some((_, what)) = SECRET_PATHS
        .iter()
        .find(|(p, _)| joined.ends_with(p) || joined.contains(&format!("{p}/")))
    {
        return critical(what);
    }
    if segs.first().is_some_and(|s| s == "proc") && last == "environ" {
        return critical("process environment");
    }
    if joined.ends_with("/etc/passwd") {
        return high("/etc/passwd");
    }
    if last.ends_with("_history") && last.starts_with('.') {
        return high("shell history");
    }
    None
}

/// Where an absolute path climbing with `..` lands that no project path needs.
fn system_place(segs: &[String]) -> bool {
    segs.first().is_some_and(|s| {
        matches!(
            s.as_str(),
            "etc" | "root" | "proc" | "sys" | "boot" | "var" | "windows"
        )
    })
}

#[derive(Default)]
struct Verdict {
    severity: Option<Severity>,
    detail: String,
}

impl Verdict {
    fn note(&mut self, severity: Severity, detail: String) {
        if self.severity.is_none_or(|s| severity > s) {
            self.severity = Some(severity);
            self.detail = detail;
        }
    }
}

fn judge(value: &str, arg: &Argument) -> Verdict {
    let mut v = Verdict::default();
    for (round, spelling) in spellings(value).iter().enumerate() {
        let encoded = round > 0;
        for token in tokens(spelling) {
            let w = walk(token);
            if let Some((severity, what)) = credential(&w.resolved) {
                // A shell tool's command may legitimately name keys (`ssh-keygen -f …`).
                let severity = if arg.kind == ArgKind::Command {
                    severity.min(Severity::High)
                } else {
                    severity
                };
                v.note(severity, format!("path to {what}"));
            }
            if token.contains("....//") || token.contains(".../.") {
                v.note(Severity::High, "filter-evading traversal (....//)".into());
            }
            if !w.has_dotdot {
                continue;
            }
            let how = if encoded { "encoded " } else { "" };
            if w.absolute {
                if w.escapes > 0 {
                    v.note(Severity::High, format!("{how}traversal above the root"));
                } else if system_place(&w.resolved) {
                    v.note(
                        Severity::High,
                        format!("{how}traversal into /{}", w.resolved[0]),
                    );
                }
            } else if w.escapes > 0 {
                let severity = match (encoded, w.escapes) {
                    // Nobody percent-encodes `..` by accident.
                    (true, _) => Severity::Critical,
                    (false, 1) => Severity::Medium,
                    (false, _) => Severity::High,
                };
                v.note(severity, format!("{how}traversal {} levels up", w.escapes));
            }
        }
    }
    v
}

pub struct PathTraversal;

impl TextDetector for PathTraversal {
    fn name(&self) -> &'static str {
        "path"
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
            "../../",
            "..\\..\\",
            "....//",
            "..%2f",
            "..%5c",
            "%2e%2e",
            "%252e",
            "%c0%ae",
            "%c1%9c",
            "%e0%80",
            "%u002e",
            ".ssh",
            ".aws",
            ".kube",
            ".git-credentials",
            "netrc",
            ".npmrc",
            ".pypirc",
            ".pgpass",
            ".my.cnf",
            ".vault-token",
            "/.env",
            " .env",
            "id_rsa",
            "id_dsa",
            "id_ecdsa",
            "id_ed25519",
            "/etc/shadow",
            "/etc/gshadow",
            "/etc/sudoers",
            "/etc/passwd",
            "/environ",
            "serviceaccount",
            ".docker/config",
            ".gnupg",
            "gcloud",
            ".azure",
            "_history",
            "config/gh",
            "system32",
        ]
    }

    fn shared_raw_check(&self) -> Option<SharedCheck> {
        Some(SharedCheck::RequestArguments)
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        argument::is_request_argument(meta, site)
            && matches!(
                Argument::of(meta, site).kind,
                ArgKind::Path | ArgKind::Data | ArgKind::Url | ArgKind::Command
            )
    }

    fn scan(&self, text: &TextView<'_>, hits: &mut Vec<Hit>) {
        if text.normalized.text.len() > MAX_VALUE {
            return;
        }
        let arg = Argument::of(text.meta, text.site);
        // The normalized copy is already percent- and entity-decoded; judging the original too
        // keeps the evidence that a `..` was encoded (nobody encodes one by accident).
        let mut verdict = judge(&text.normalized.text, &arg);
        let as_sent = judge(&text.original.to_ascii_lowercase(), &arg);
        if let Some(severity) = as_sent.severity {
            verdict.note(severity, as_sent.detail);
        }
        if let Some(severity) = verdict.severity {
            hits.push(Hit {
                rule: RULE,
                class: "escape",
                severity,
                range: 0..text.original.len(),
                replacement: Replacement::None,
                detail: verdict.detail,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::request_testkit::*;
    use crate::inspect::Outcome;
    use serde_json::json;

    fn read(path: &str) -> Option<Severity> {
        worst(
            &hits(
                Box::new(PathTraversal),
                &call("read_file", json!({ "path": path })),
            ),
            RULE,
        )
    }

    #[test]
    fn credential_files_are_critical() {
        for path in [
            "~/.ssh/id_rsa",
            "/root/.ssh/authorized_keys",
            "/home/bob/.ssh/id_ed25519",
            "/home/bob/.aws/credentials",
            "C:\\Users\\bob\\.aws\\credentials",
            "~/.kube/config",
            ".env",
            "app/.env.production",
            "~/.git-credentials",
            "/etc/shadow",
            "/home/bob/.netrc",
            "~/.npmrc",
            "~/.pypirc",
            "/home/bob/.docker/config.json",
            "/proc/self/environ",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "backup/id_rsa",
            "~/.config/gcloud/application_default_credentials.json",
            "%7e/.ssh/id_rsa",
            "/home/bob/%2essh/id_rsa",
            "~/.SSH/ID_RSA",
        ] {
            assert_eq!(read(path), Some(Severity::Critical), "{path}");
        }
        let r = request(
            "resources/read",
            json!({"uri": "file:///home/bob/.ssh/id_rsa"}),
        );
        let (outcome, _) = through_pipeline(Box::new(PathTraversal), &r);
        assert!(matches!(outcome, Outcome::Block { .. }));
        // In a shell tool's command it is worth an alert, not a block.
        let m = call("bash", json!({"command": "cat ~/.aws/credentials"}));
        assert_eq!(
            worst(&hits(Box::new(PathTraversal), &m), RULE),
            Some(Severity::High)
        );
    }

    #[test]
    fn traversal_in_every_encoding() {
        for path in [
            "../../../../etc/hosts",
            "..\\..\\..\\windows\\win.ini",
            "static/../../../app.py",
            "/var/www/../../../../tmp/x",
            "/srv/app/../../etc/hosts",
            "....//....//etc/hosts",
            "a/..\\..\\..\\b",
        ] {
            assert_eq!(read(path), Some(Severity::High), "{path}");
        }
        for path in [
            "%2e%2e%2f%2e%2e%2fapp.py",
            "..%2f..%2fapp.py",
            "%252e%252e%252fapp.py",
            "%c0%ae%c0%ae/%c0%ae%c0%ae/app.py",
            "%c0%ae%c0%ae%c0%afapp.py",
            "%u002e%u002e/app.py",
            "..%5c..%5capp.py",
            "%2e%2e/%2e%2e/%2e%2e/etc/hosts",
        ] {
            assert_eq!(read(path), Some(Severity::Critical), "{path}");
        }
        assert_eq!(read("../sibling/README.md"), Some(Severity::Medium));
        let fetch = call(
            "fetch",
            json!({"url": "https://files.example/download?file=..%2f..%2f..%2fetc%2fpasswd"}),
        );
        assert!(worst(&hits(Box::new(PathTraversal), &fetch), RULE) >= Some(Severity::High));
        assert_eq!(read("../../etc/passwd"), Some(Severity::High));
    }

    #[test]
    fn paths_that_stay_inside_and_look_alikes_pass() {
        for path in [
            "src/main.rs",
            "./docs/../README.md",
            "a/b/../../c.txt",
            "/home/alice/project/../other/README.md",
            "v1.2.3..v1.2.4",
            "docs/what...next.md",
            ".env.example",
            "config/.env.sample",
            "~/.ssh/id_rsa.pub",
            "~/.ssh/known_hosts",
            "src/environment.rs",
            "docs/aws-setup.md",
            ".github/workflows/ci.yml",
            "C:\\Users\\alice\\Documents\\report.docx",
            "notes/100%25 done.md",
            "/etc/hosts",
        ] {
            assert_eq!(read(path), None, "{path}");
        }
        for (tool, args) in [
            (
                "search_files",
                json!({"path": ".", "pattern": "**/.env", "excludePatterns": [".env", "**/.ssh/**", "id_rsa"]}),
            ),
            (
                "write_file",
                json!({"path": "README.md", "content": "See [guide](../../guide.md) and `~/.ssh/id_rsa`."}),
            ),
            (
                "git_diff",
                json!({"repo_path": ".", "target": "main..feature/x"}),
            ),
            (
                "npm_install",
                json!({"version": ">=1.2.0 <2.0.0", "range": "1.0.0...1.5.0"}),
            ),
            (
                "web_search",
                json!({"query": "how to protect ~/.aws/credentials and ../ traversal"}),
            ),
        ] {
            let found = hits(Box::new(PathTraversal), &call(tool, args.clone()));
            assert!(found.is_empty(), "{tool} {args}: {found:?}");
        }
    }

    #[test]
    fn everyday_calls_pass() {
        assert_quiet_on_everyday_calls(|| Box::new(PathTraversal));
    }

    #[test]
    fn real_server_traffic_passes() {
        assert_silent_on_real_servers(|| Box::new(PathTraversal));
    }
}
