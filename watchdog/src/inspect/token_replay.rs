//! TOKEN-REPLAY: a bearer token minted for one server presented to another.
//!
//! Tokens are learned inline from what each server hands out (`access_token` fields, `Bearer …`,
//! JWTs) and from what the client sends it; only hashes and the owning server are kept, bounded. A
//! request to server B that carries a token learned for server A is stopped, and so is a JWT whose
//! `aud` is not B's configured `oauth.audience`. Opaque ids are never learned: only values labelled
//! as tokens, or JWTs.

use super::{Findings, Inspector, Subject, SubjectMeta};
use crate::alert::{ActionTaken, Alert, Direction, Severity};
use crate::jsonrpc::Kind;
use crate::policy::{Action, Policy};
use aho_corasick::AhoCorasick;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub const TOKEN_REPLAY: &str = "TOKEN-REPLAY";

/// Tokens remembered at most (oldest forgotten first).
const CAPACITY: usize = 4096;
/// Shorter values are ids or words, not bearer tokens.
const MIN_TOKEN: usize = 20;
const MAX_TOKEN: usize = 8192;
const MAX_DEPTH: usize = 64;
/// Object keys (lowercase, without `_` and `-`) whose string values are bearer tokens. Page,
/// progress and sync tokens are opaque ids and stay out.
const TOKEN_KEYS: &[&str] = &[
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "token",
    "bearer",
    "bearertoken",
    "authorization",
    "authtoken",
    "apitoken",
    "oauthtoken",
    "sessiontoken",
    "personalaccesstoken",
];
const TRIGGERS: &[&str] = &["eyJ", "bearer", "token", "authorization"];

type Digest16 = [u8; 16];

/// Who each remembered token belongs to.
#[derive(Default)]
struct TokenBook {
    owners: HashMap<Digest16, Arc<str>>,
    order: VecDeque<Digest16>,
}

impl TokenBook {
    fn owner(&self, d: &Digest16) -> Option<&Arc<str>> {
        self.owners.get(d)
    }

    /// The first server a token was seen with owns it.
    fn learn(&mut self, d: Digest16, server: &str) {
        if self.owners.contains_key(&d) {
            return;
        }
        if self.order.len() >= CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.owners.remove(&old);
            }
        }
        self.owners.insert(d, server.into());
        self.order.push_back(d);
    }
}

pub struct TokenReplay {
    book: Mutex<TokenBook>,
    /// Set once any token is known: until then requests need no look beyond the triggers.
    learned: AtomicBool,
    /// Server name → the `aud` its JWTs must carry.
    audiences: HashMap<String, String>,
    /// Several servers: tokens can travel between them.
    gateway: bool,
    triggers: AhoCorasick,
}

/// A token found in a message.
struct Token<'a> {
    text: &'a str,
    /// Labelled as a token or shaped as a JWT (worth learning), not just a long word.
    labelled: bool,
}

impl TokenReplay {
    pub fn new(audiences: HashMap<String, String>, gateway: bool) -> Self {
        TokenReplay {
            book: Mutex::new(TokenBook::default()),
            learned: AtomicBool::new(false),
            audiences,
            gateway,
            triggers: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(TRIGGERS)
                .expect("literals build"),
        }
    }

    pub fn for_settings(settings: &crate::config::Settings) -> Self {
        TokenReplay::new(
            settings
                .servers
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.oauth.audience.clone()?)))
                .collect(),
            settings.servers.len() > 1,
        )
    }

    fn learn_all(&self, tokens: &[Token<'_>], server: &str) {
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        for t in tokens.iter().filter(|t| t.labelled) {
            book.learn(digest(t.text), server);
            self.learned.store(true, Ordering::Relaxed);
        }
    }
}

impl Inspector for TokenReplay {
    fn name(&self) -> &'static str {
        TOKEN_REPLAY
    }

    fn applies(&self, meta: &SubjectMeta<'_>, policy: &Policy) -> bool {
        // Client notifications are broadcast to every server: not a presentation to one of them.
        let relevant = match meta.direction {
            Direction::ClientToServer => {
                meta.kind != Kind::Notification
                    && (self.gateway || self.audiences.contains_key(meta.server))
            }
            Direction::ServerToClient => self.gateway,
        };
        relevant && policy.action(TOKEN_REPLAY) != Action::Off
    }

    fn prefilter(&self, _meta: &SubjectMeta<'_>, raw: &[u8]) -> bool {
        // Once tokens are known, an unlabelled copy of one in a request must be found too.
        self.learned.load(Ordering::Relaxed) || self.triggers.is_match(raw)
    }

    fn inspect(&self, subject: &mut Subject<'_>, policy: &Policy, findings: &mut Findings) {
        let meta = subject.meta;
        if meta.direction == Direction::ServerToClient && !self.triggers.is_match(subject.raw()) {
            return;
        }
        let Some(message) = subject.json() else {
            return;
        };
        let region = message
            .get("params")
            .or_else(|| message.get("result"))
            .or_else(|| message.get("error"));
        let Some(region) = region else { return };
        let mut tokens = Vec::new();
        collect(region, None, 0, &mut tokens);
        if tokens.is_empty() {
            return;
        }
        if meta.direction == Direction::ServerToClient {
            if self.gateway {
                self.learn_all(&tokens, meta.server);
            }
            return;
        }
        let mut problem: Option<(&'static str, String, &str)> = None;
        if self.gateway {
            let book = self.book.lock().unwrap_or_else(|p| p.into_inner());
            for t in &tokens {
                if let Some(owner) = book.owner(&digest(t.text)) {
                    if &**owner != meta.server {
                        problem = Some((
                            "token replay",
                            format!(
                                "a token learned from server `{owner}` is being sent to `{}`",
                                meta.server
                            ),
                            t.text,
                        ));
                        break;
                    }
                }
            }
        }
        if problem.is_none() {
            if let Some(want) = self.audiences.get(meta.server) {
                for t in tokens.iter().filter(|t| t.labelled) {
                    let Some(aud) = jwt_audiences(t.text) else {
                        continue;
                    };
                    if !aud.is_empty() && !aud.iter().any(|a| a == want) {
                        problem = Some((
                            "audience mismatch",
                            format!(
                                "a JWT for audience {} is being sent to `{}` (audience {want})",
                                aud.join(", "),
                                meta.server
                            ),
                            t.text,
                        ));
                        break;
                    }
                }
            }
        }
        match problem {
            Some((class, detail, token)) => {
                let block = policy.action(TOKEN_REPLAY) >= Action::Strip;
                let taken = if block {
                    ActionTaken::Blocked
                } else {
                    ActionTaken::Alerted
                };
                findings.alert(
                    Alert::new(TOKEN_REPLAY, class, Severity::High, taken, detail)
                        .evidence(token.as_bytes()),
                );
                if block {
                    findings.refuse(
                        format!("{class} to {}", meta.server),
                        "Blocked by mcp-watchdog: a token issued for another server",
                    );
                }
            }
            None if self.gateway => self.learn_all(&tokens, meta.server),
            None => {}
        }
    }
}

/// `access_token`, `Access-Token`, `Bearer`, … (see [`TOKEN_KEYS`]).
fn is_token_key(k: &str) -> bool {
    if k.len() > 24 {
        return false;
    }
    let k: String = k
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    TOKEN_KEYS.contains(&k.as_str())
}

fn digest(token: &str) -> Digest16 {
    let full = Sha256::digest(token.as_bytes());
    let mut d = [0u8; 16];
    d.copy_from_slice(&full[..16]);
    d
}

/// Every token-like value under `v`: labelled values, JWTs, `Bearer` arguments, and (unlabelled)
/// every long word, to find copies of tokens already known.
fn collect<'a>(v: &'a Value, key: Option<&str>, depth: usize, out: &mut Vec<Token<'a>>) {
    if depth > MAX_DEPTH || out.len() > 4096 {
        return;
    }
    match v {
        Value::String(s) => {
            let labelled_key = key.is_some_and(is_token_key);
            // A word right after `Bearer`, `access_token:` or `token=` is labelled by it.
            let mut after_label = false;
            for word in s.split(|c: char| c.is_whitespace() || "\"',;=&?#()[]{}<>|".contains(c)) {
                if word.is_empty() {
                    continue;
                }
                if is_token_key(word.trim_end_matches(':')) {
                    after_label = true;
                    continue;
                }
                let fits = (MIN_TOKEN..=MAX_TOKEN).contains(&word.len());
                if fits && looks_like_token(word) {
                    let labelled = after_label
                        || (labelled_key && word.len() == s.trim().len())
                        || is_jwt(word);
                    out.push(Token {
                        text: word,
                        labelled,
                    });
                }
                after_label = false;
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect(v, Some(k), depth + 1, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, key, depth + 1, out)),
        _ => {}
    }
}

/// Token alphabets (base64, base64url, hex, JWT dots); not a UUID, not all digits, not a path.
fn looks_like_token(w: &str) -> bool {
    let charset = w
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+' | b'/' | b'~'));
    let uuid = w.len() == 36 && w.bytes().filter(|&b| b == b'-').count() == 4;
    let digits = w.bytes().all(|b| b.is_ascii_digit());
    let path = w.starts_with('/') || w.contains("//");
    let mixed = w.bytes().any(|b| b.is_ascii_digit()) && w.bytes().any(|b| b.is_ascii_alphabetic());
    charset && !uuid && !digits && !path && mixed
}

fn jwt_part(part: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn is_jwt(w: &str) -> bool {
    let mut parts = w.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    h.starts_with("eyJ") && jwt_part(h).is_some_and(|h| h.get("alg").is_some())
}

/// The `aud` claim of a JWT (string or array), or `None` when `w` is not a JWT.
fn jwt_audiences(w: &str) -> Option<Vec<String>> {
    if !is_jwt(w) {
        return None;
    }
    let claims = jwt_part(w.split('.').nth(1)?)?;
    Some(match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests;
