//! OAUTH: authorization URLs a server hands the user to open, judged before the client sees them.
//!
//! Where they travel over stdio: URL-mode elicitations (`elicitation/create` with `mode: "url"`),
//! the `-32042` URL-elicitation-required error's `data.elicitations`, `resource_link` blocks, and
//! free text in results, errors and log notifications. A bad URL in text or a link is cut out
//! (the rest goes on); a bad URL-mode elicitation is declined on the user's behalf.

pub mod find;
pub mod judge;
pub mod scopes;

use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction};
use crate::jsonrpc::Kind;
use crate::policy::{Action, Policy};
use aho_corasick::AhoCorasick;
use find::{find_urls, may_hold_urls};
use judge::{judge, Presented, Problem, ServerAuth};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const OAUTH: &str = "OAUTH";

const ELICITATION_CREATE: &str = "elicitation/create";
const LOG_MESSAGE: &str = "notifications/message";
/// JSON-RPC error code of URLElicitationRequiredError (MCP 2025-11-25).
const URL_ELICITATION_REQUIRED: i64 = -32042;
/// What a removed URL becomes.
const REMOVED: &str = "[link removed by mcp-watchdog]";
/// Alerts per message; the rest are summed up in the last one.
const MAX_ALERTS: usize = 8;
/// Strings and depth walked per message: bounded work on hostile input.
const MAX_STRINGS: usize = 20_000;
const MAX_DEPTH: usize = 64;

/// Literals without which a message holds nothing this inspector judges (ASCII case-insensitive;
/// `\u00` catches JSON-escaped spellings). Words common in code (`return`, `scope`, `data: {`,
/// `file:`) are triggers only in the spelling a URL gives them; `file:` URLs matter only where a URL
/// is handed over to open (`"url"`).
const TRIGGERS: &[&str] = &[
    "javascript:",
    "vbscript:",
    "data:text",
    "data:app",
    "data:image/svg",
    "data:,",
    "data:;",
    "\\u00",
    "redirect",
    "return_",
    "returnto",
    "returnurl",
    "next=",
    "continue=",
    "goto=",
    "callback=",
    "client_id",
    "response_type",
    "scope=",
    "authori",
    "authenti",
    "oauth",
    "login",
    "log in",
    "log-in",
    "signin",
    "sign in",
    "sign-in",
    "consent",
    "\"url\"",
    "issuer",
];

pub struct OAuth {
    servers: HashMap<String, ServerAuth>,
    fallback: ServerAuth,
    triggers: AhoCorasick,
}

impl OAuth {
    /// `servers`: server name → what its authorization URLs are held to.
    pub fn new(servers: HashMap<String, ServerAuth>) -> Self {
        OAuth {
            servers,
            fallback: ServerAuth::default(),
            // A DFA: scanned over every response, it must cost about a byte a cycle.
            triggers: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .build(TRIGGERS)
                .expect("literals build"),
        }
    }

    pub fn for_settings(settings: &crate::config::Settings) -> Self {
        OAuth::new(
            settings
                .servers
                .iter()
                .map(|s| (s.name.clone(), server_auth(&s.oauth)))
                .collect(),
        )
    }
}

/// A server's `oauth` settings as the judge uses them.
pub fn server_auth(c: &crate::config::OAuthConfig) -> ServerAuth {
    let issuer_host = c.issuer.as_deref().map(|i| {
        url::Url::parse(i)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| i.trim_end_matches('/').to_owned())
            .to_ascii_lowercase()
    });
    ServerAuth {
        issuer_host,
        scopes: scopes::ScopePolicy {
            allowed: (!c.allowed_scopes.is_empty())
                .then(|| c.allowed_scopes.iter().cloned().collect()),
            read_only: c.read_only,
        },
        redirect_hosts: c.redirect_hosts.clone(),
    }
}

/// A change to make at a JSON pointer.
enum Fix {
    /// Cut these byte ranges out of the string.
    Ranges(Vec<std::ops::Range<usize>>),
    /// Replace the whole value (a `resource_link` block) with a text block saying why.
    Block,
    /// Remove these elements of the array.
    Elements(Vec<usize>),
}

/// One bad URL.
struct Finding {
    url: String,
    problem: Problem,
}

impl Inspector for OAuth {
    fn name(&self) -> &'static str {
        OAUTH
    }

    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool {
        meta.direction == Direction::ServerToClient
            && match meta.kind {
                Kind::Result | Kind::Error => true,
                Kind::Request => meta.method == Some(ELICITATION_CREATE),
                Kind::Notification => meta.method == Some(LOG_MESSAGE),
            }
            && policy.action(OAUTH) != Action::Off
    }

    fn prefilter(&self, _meta: &SubjectMeta<'_>, raw: &[u8]) -> bool {
        self.triggers.is_match(raw)
    }

    fn literals(&self, direction: Direction) -> Option<Vec<String>> {
        (direction == Direction::ServerToClient)
            .then(|| TRIGGERS.iter().map(|t| t.to_string()).collect())
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let auth = self
            .servers
            .get(subject.meta.server)
            .unwrap_or(&self.fallback);
        let strip = policy.action(OAUTH) >= Action::Strip;
        let kind = subject.meta.kind;
        let Some(message) = subject.json() else {
            return;
        };
        let declared = declared_issuers(message);
        let mut found: Vec<Finding> = Vec::new();
        let mut fixes: Vec<(String, Fix)> = Vec::new();

        if kind == Kind::Request {
            let params = &message["params"];
            if params["mode"] == "url" {
                let url = params["url"].as_str().unwrap_or("");
                let problems = judge(url, Presented::ToOpen, auth, &declared);
                if let Some(worst) = problems.into_iter().next() {
                    let taken = if strip {
                        ActionTaken::Blocked
                    } else {
                        ActionTaken::Alerted
                    };
                    findings.alert(alert(&worst, url, taken, " in a URL-mode elicitation"));
                    if strip {
                        findings.answer_instead(
                            format!("URL-mode elicitation: {}", worst.class),
                            json!({"action": "decline"}),
                        );
                    }
                    return;
                }
            }
            walk(
                &params["message"],
                "/params/message",
                auth,
                &declared,
                &mut found,
                &mut fixes,
                0,
                &mut 0,
            );
        } else {
            let region = match kind {
                Kind::Result => "/result",
                Kind::Error => "/error",
                _ => "/params",
            };
            if let (Kind::Error, Some(list)) = (
                kind,
                message
                    .pointer("/error/data/elicitations")
                    .and_then(Value::as_array)
                    .filter(|_| message["error"]["code"] == URL_ELICITATION_REQUIRED),
            ) {
                let mut bad = Vec::new();
                for (i, e) in list.iter().enumerate() {
                    let url = e["url"].as_str().unwrap_or("");
                    if let Some(p) = judge(url, Presented::ToOpen, auth, &declared)
                        .into_iter()
                        .next()
                    {
                        found.push(Finding {
                            url: url.to_owned(),
                            problem: p,
                        });
                        bad.push(i);
                    }
                }
                if !bad.is_empty() {
                    fixes.push(("/error/data/elicitations".into(), Fix::Elements(bad)));
                }
            }
            if let Some(v) = message.pointer(region) {
                walk(
                    v, region, auth, &declared, &mut found, &mut fixes, 0, &mut 0,
                );
            }
        }
        if found.is_empty() {
            return;
        }
        // The elicitations' URLs are also strings of the region: report each URL once.
        let mut seen = std::collections::HashSet::new();
        found.retain(|f| seen.insert(f.url.clone()));
        let taken = if strip {
            ActionTaken::Stripped
        } else {
            ActionTaken::Alerted
        };
        let extra = found.len().saturating_sub(MAX_ALERTS);
        for (i, f) in found.iter().take(MAX_ALERTS).enumerate() {
            let tail = if i + 1 == MAX_ALERTS && extra > 0 {
                format!(" (and {extra} more)")
            } else {
                String::new()
            };
            findings.alert(alert(&f.problem, &f.url, taken, &tail));
        }
        if strip {
            if let Some(v) = subject.json_mut() {
                apply(v, fixes);
            }
        }
    }
}

fn alert(p: &Problem, url: &str, taken: ActionTaken, tail: &str) -> Alert {
    Alert::new(
        OAUTH,
        p.class,
        p.severity,
        taken,
        format!("{}{tail}", p.detail),
    )
    .evidence(url.as_bytes())
}

/// Hosts the message itself names as its authorization server(s): `issuer` and
/// `authorization_endpoint` (RFC 8414), `authorization_servers` (RFC 9728).
fn declared_issuers(message: &Value) -> Vec<String> {
    fn host(s: &str) -> Option<String> {
        url::Url::parse(s)
            .ok()?
            .host_str()
            .map(str::to_ascii_lowercase)
    }
    fn visit(v: &Value, depth: usize, out: &mut Vec<String>) {
        if depth > MAX_DEPTH || out.len() > 16 {
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("issuer" | "authorization_endpoint", Value::String(s)) => {
                            out.extend(host(s))
                        }
                        ("authorization_servers", Value::Array(a)) => {
                            out.extend(a.iter().filter_map(Value::as_str).filter_map(host))
                        }
                        _ => visit(v, depth + 1, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| visit(v, depth + 1, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    visit(message, 0, &mut out);
    out.sort();
    out.dedup();
    out
}

/// Finds bad URLs in every string under `v` (at JSON pointer `at`), noting the fixes.
#[allow(clippy::too_many_arguments)]
fn walk(
    v: &Value,
    at: &str,
    auth: &ServerAuth,
    declared: &[String],
    found: &mut Vec<Finding>,
    fixes: &mut Vec<(String, Fix)>,
    depth: usize,
    strings: &mut usize,
) {
    if depth > MAX_DEPTH || *strings > MAX_STRINGS {
        return;
    }
    match v {
        Value::String(s) => {
            *strings += 1;
            if !may_hold_urls(s) {
                return;
            }
            let mut ranges = Vec::new();
            for u in find_urls(s) {
                if u.quoted || u.image {
                    continue;
                }
                let how = if u.link || u.auth_words {
                    Presented::Prompted
                } else {
                    Presented::Mentioned
                };
                let url = &s[u.range.clone()];
                if let Some(p) = judge(url, how, auth, declared).into_iter().next() {
                    found.push(Finding {
                        url: url.to_owned(),
                        problem: p,
                    });
                    ranges.push(u.range);
                }
            }
            if !ranges.is_empty() {
                fixes.push((at.to_owned(), Fix::Ranges(ranges)));
            }
        }
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("resource_link") {
                if let Some(uri) = map.get("uri").and_then(Value::as_str) {
                    if let Some(p) = judge(uri, Presented::ResourceLink, auth, declared)
                        .into_iter()
                        .next()
                    {
                        found.push(Finding {
                            url: uri.to_owned(),
                            problem: p,
                        });
                        fixes.push((at.to_owned(), Fix::Block));
                        return;
                    }
                }
            }
            for (k, v) in map {
                let child = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                walk(v, &child, auth, declared, found, fixes, depth + 1, strings);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(
                    v,
                    &format!("{at}/{i}"),
                    auth,
                    declared,
                    found,
                    fixes,
                    depth + 1,
                    strings,
                );
            }
        }
        _ => {}
    }
}

fn apply(message: &mut Value, mut fixes: Vec<(String, Fix)>) {
    // Removing array elements shifts the pointers after them: do it last.
    fixes.sort_by_key(|(_, f)| matches!(f, Fix::Elements(_)));
    for (pointer, fix) in fixes {
        let Some(slot) = message.pointer_mut(&pointer) else {
            continue;
        };
        match fix {
            Fix::Ranges(ranges) => {
                if let Value::String(s) = slot {
                    let mut out = s.clone();
                    for r in ranges.into_iter().rev() {
                        out.replace_range(r, REMOVED);
                    }
                    *s = out;
                }
            }
            Fix::Block => *slot = json!({"type": "text", "text": REMOVED}),
            Fix::Elements(indices) => {
                if let Value::Array(a) = slot {
                    let mut i = 0;
                    a.retain(|_| {
                        let keep = !indices.contains(&i);
                        i += 1;
                        keep
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
