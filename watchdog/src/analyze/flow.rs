//! FLOW: significant tokens seen in one server's output, remembered (as hashes) so that a request
//! carrying one of them to a *different* server can be recognised.
//!
//! Both sides run inline, in the session's order (see `inspect::flow_guard`): a token in server A's
//! output is remembered before that output reaches the client, so a request that reuses it, however
//! quickly, finds it. Extraction is one linear pass over the raw bytes (measured in the unit tests:
//! well under a millisecond for a 64 KiB result), bounded by [`SCAN_LIMIT`], and only runs in
//! gateway mode, where a second server exists at all.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::Instant;

/// Rule id.
pub const FLOW: &str = "FLOW";

/// Bytes of one message scanned for tokens: what matters (ids, keys, paths) is in the first part
/// of a result; a 60 MiB file read is not walked in full on the hot path.
pub const SCAN_LIMIT: usize = 256 * 1024;

/// Tokens remembered from one message at most: a result listing 10 000 ids must not evict
/// everything else.
const PER_MESSAGE: usize = 256;

/// Default number of token hashes remembered.
pub const DEFAULT_CAPACITY: usize = 4096;

/// `[flow]` in watchdog.toml.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Token hashes remembered (the oldest are forgotten first).
    pub tokens_remembered: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tokens_remembered: DEFAULT_CAPACITY,
        }
    }
}

/// What kind of significant token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Jwt,
    ApiKey,
    PrivateKey,
    Uuid,
    RandomId,
    PrivatePath,
}

impl TokenKind {
    /// Secrets are blocked when they cross servers; the rest is reported.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            TokenKind::Jwt | TokenKind::ApiKey | TokenKind::PrivateKey
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Jwt => "JWT",
            TokenKind::ApiKey => "API key",
            TokenKind::PrivateKey => "private key material",
            TokenKind::Uuid => "UUID",
            TokenKind::RandomId => "random id",
            TokenKind::PrivatePath => "private path",
        }
    }
}

/// One significant token found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub kind: TokenKind,
}

/// Prefixes of well-known API keys and access tokens.
const KEY_PREFIXES: &[&str] = &[
    "sk-ant-",
    "sk-proj-",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "pk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "npm_",
    "pypi-",
    "hf_",
    "dop_v1_",
    "SG.",
];

/// Home directories that make a path private (someone's files), unlike /tmp or /usr.
const PRIVATE_PATH_PREFIXES: &[&str] = &["/home/", "/Users/", "/root/", "~/"];

fn token_byte(b: u8) -> bool {
    // `=` separates (`KEY=value`); base64 padding is not part of an identifier anyway.
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'~' | b'+')
}

/// The significant tokens in `raw` (JSON text or plain text), at most [`PER_MESSAGE`], from the
/// first [`SCAN_LIMIT`] bytes.
pub fn tokens(raw: &[u8]) -> Vec<Token<'_>> {
    let raw = &raw[..raw.len().min(SCAN_LIMIT)];
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() && out.len() < PER_MESSAGE {
        let b = raw[i];
        if b == b'\\' {
            // A JSON escape (`\n`, `\"`, `\u…`) separates words; skip the escaped character.
            i += 2;
            continue;
        }
        if !token_byte(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < raw.len() && token_byte(raw[i]) {
            i += 1;
        }
        // Only ASCII bytes were taken, so this cannot fail.
        let run = std::str::from_utf8(&raw[start..i]).unwrap_or_default();
        let key_context = start >= 2 && preceded_by_private_key(&raw[..start]);
        classify(run, key_context, &mut out);
    }
    out.truncate(PER_MESSAGE);
    out
}

/// Whether a PEM private-key header sits just before `before`'s end.
fn preceded_by_private_key(before: &[u8]) -> bool {
    let from = before.len().saturating_sub(80);
    memchr::memmem::find(&before[from..], b"PRIVATE KEY-----").is_some()
}

fn classify<'a>(run: &'a str, key_context: bool, out: &mut Vec<Token<'a>>) {
    let run = run
        .trim_end_matches(['.', '/', '+'])
        .trim_start_matches('.');
    if run.len() < 8 {
        return;
    }
    if PRIVATE_PATH_PREFIXES.iter().any(|p| run.starts_with(p)) {
        if is_private_path(run) {
            out.push(Token {
                text: run,
                kind: TokenKind::PrivatePath,
            });
        }
        return;
    }
    if is_jwt(run) {
        out.push(Token {
            text: run,
            kind: TokenKind::Jwt,
        });
        return;
    }
    if key_context && run.len() >= 40 && run.len() <= 4096 {
        out.push(Token {
            text: run,
            kind: TokenKind::PrivateKey,
        });
        return;
    }
    if run.len() > 256 {
        // Encoded content (an image, a file), not an identifier.
        return;
    }
    // Pieces of URLs, file names and dotted names are judged one by one.
    for piece in run.split(['/', '.']) {
        if let Some(kind) = piece_kind(piece) {
            out.push(Token { text: piece, kind });
        }
    }
}

fn piece_kind(piece: &str) -> Option<TokenKind> {
    let len = piece.len();
    if !(16..=200).contains(&len) {
        return None;
    }
    if KEY_PREFIXES
        .iter()
        .any(|p| piece.starts_with(p) && len >= p.len() + 16)
        && high_entropy(&piece[2..])
    {
        return Some(TokenKind::ApiKey);
    }
    if is_uuid(piece) {
        return Some(TokenKind::Uuid);
    }
    if len >= 20 && is_random_id(piece) {
        return Some(TokenKind::RandomId);
    }
    None
}

/// `/home/alice/…`, `~/.ssh/…`: a home directory and something inside it.
fn is_private_path(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix("~/") {
        return rest.len() >= 3;
    }
    let rest = PRIVATE_PATH_PREFIXES
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .unwrap_or_default();
    match rest.split_once('/') {
        Some((user, inside)) => !user.is_empty() && inside.len() >= 2,
        None => path.starts_with("/root/") && rest.len() >= 3,
    }
}

fn is_jwt(s: &str) -> bool {
    if !s.starts_with("eyJ") || s.len() < 30 {
        return false;
    }
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| p.len() >= 10)
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Letters and digits mixed, not just hex (commit SHAs and content hashes are public ids), not a
/// word-like name (`my-very-long-project-name`), and dense in information.
fn is_random_id(s: &str) -> bool {
    let (mut upper, mut lower, mut digit, mut other) = (0, 0, 0, 0);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' => upper += 1,
            b'a'..=b'z' => lower += 1,
            b'0'..=b'9' => digit += 1,
            _ => other += 1,
        }
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let classes = [upper, lower, digit].iter().filter(|&&n| n > 0).count();
    classes >= 2 && digit > 0 && other * 4 < s.len() && high_entropy(s)
}

/// Shannon entropy of the bytes, in bits per byte, above what words and names reach.
fn high_entropy(s: &str) -> bool {
    let mut counts = [0u32; 128];
    let mut n = 0u32;
    for b in s.bytes().filter(u8::is_ascii) {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return false;
    }
    let n = n as f64;
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    // A random string of length n over a large alphabet reaches ≈ log2(n); require most of it.
    h >= (n.log2() * 0.8).min(4.0)
}

/// Where a remembered token was first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// In this server's output.
    Server(std::sync::Arc<str>),
    /// In a request the client sent first: the user's own value, not something a server gave out.
    Client,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub origin: Origin,
    pub kind: TokenKind,
    pub first_seen: Instant,
}

/// A token that crossed from one server to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub from: std::sync::Arc<str>,
    pub kind: TokenKind,
    /// The token, for the alert's redacted excerpt (never stored).
    pub text: String,
}

/// Token hashes and where each came from: fixed capacity, the oldest forgotten first. Tokens
/// themselves are never kept, only keyed hashes (a random key per process).
pub struct FlowMemory {
    hasher: RandomState,
    inner: Mutex<Ring>,
}

struct Ring {
    capacity: usize,
    seen: HashMap<u64, Seen>,
    order: VecDeque<u64>,
}

impl Default for FlowMemory {
    fn default() -> Self {
        FlowMemory::new(DEFAULT_CAPACITY)
    }
}

impl FlowMemory {
    pub fn new(capacity: usize) -> Self {
        FlowMemory {
            hasher: RandomState::new(),
            inner: Mutex::new(Ring {
                capacity: capacity.max(1),
                seen: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn hash(&self, token: &str) -> u64 {
        self.hasher.hash_one(token)
    }

    /// A server's output: its tokens are remembered as coming from it, unless already known
    /// (the first origin stands: a token the client typed stays the client's).
    pub fn output(&self, server: &std::sync::Arc<str>, raw: &[u8]) {
        let found = tokens(raw);
        if found.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for t in found {
            ring.remember(
                self.hash(t.text),
                Seen {
                    origin: Origin::Server(server.clone()),
                    kind: t.kind,
                    first_seen: now,
                },
            );
        }
    }

    /// A request to `server`: the tokens it carries that another server produced. Tokens not yet
    /// known are remembered as the client's own.
    pub fn request(&self, server: &str, raw: &[u8]) -> Vec<Crossing> {
        let found = tokens(raw);
        if found.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let mut crossings = Vec::new();
        let mut ring = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for t in found {
            let h = self.hash(t.text);
            match ring.seen.get(&h) {
                Some(Seen {
                    origin: Origin::Server(from),
                    kind,
                    ..
                }) if &**from != server => {
                    if !crossings.iter().any(|c: &Crossing| c.text == t.text) {
                        crossings.push(Crossing {
                            from: from.clone(),
                            kind: *kind,
                            text: t.text.to_owned(),
                        });
                    }
                }
                Some(_) => {}
                None => ring.remember(
                    h,
                    Seen {
                        origin: Origin::Client,
                        kind: t.kind,
                        first_seen: now,
                    },
                ),
            }
        }
        crossings
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|r| r.seen.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ring {
    fn remember(&mut self, hash: u64, seen: Seen) {
        if self.seen.contains_key(&hash) {
            return;
        }
        while self.seen.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.seen.remove(&old);
                }
                None => break,
            }
        }
        self.seen.insert(hash, seen);
        self.order.push_back(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    const GH_TOKEN: &str = "ghp_R4nd0mT0k3nV4lu3xYz123456789AbCdEf";
    const UUID: &str = "3f2c9a4e-8b1d-4c7a-9e2f-1a2b3c4d5e6f";
    const SESSION_ID: &str = "sess_9fKq2LmZ7xWp4RtY8vBn3Hc";

    fn kinds(text: &str) -> Vec<(String, TokenKind)> {
        tokens(text.as_bytes())
            .into_iter()
            .map(|t| (t.text.to_owned(), t.kind))
            .collect()
    }

    fn result(text: &str) -> String {
        serde_json::json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":text}]}})
            .to_string()
    }

    fn call(args: serde_json::Value) -> String {
        serde_json::json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","arguments":args}})
            .to_string()
    }

    // ---- extraction: attacks ------------------------------------------------------------

    #[test]
    fn finds_jwts_keys_uuids_random_ids_and_private_paths() {
        let text = format!(
            "token {JWT} and key {GH_TOKEN}, issue {UUID}, session {SESSION_ID}, file /home/alice/notes/plan.md and ~/.ssh/id_ed25519"
        );
        let got = kinds(&result(&text));
        let has = |t: &str, k| got.iter().any(|(x, kk)| x == t && *kk == k);
        assert!(has(JWT, TokenKind::Jwt), "{got:?}");
        assert!(has(GH_TOKEN, TokenKind::ApiKey), "{got:?}");
        assert!(has(UUID, TokenKind::Uuid), "{got:?}");
        assert!(has(SESSION_ID, TokenKind::RandomId), "{got:?}");
        assert!(
            has("/home/alice/notes/plan.md", TokenKind::PrivatePath),
            "{got:?}"
        );
        assert!(has("~/.ssh/id_ed25519", TokenKind::PrivatePath), "{got:?}");
    }

    #[test]
    fn private_key_material_in_escaped_json_is_found() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";
        let got = kinds(&result(pem));
        assert!(
            got.iter()
                .any(|(t, k)| *k == TokenKind::PrivateKey && t.starts_with("b3BlbnNzaC1")),
            "{got:?}"
        );
    }

    #[test]
    fn aws_and_anthropic_keys_are_secrets() {
        for key in [
            "AKIAIOSFODNN7EXAMPLE2QX",
            "sk-ant-api03-Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hc1Jd5Fg",
        ] {
            let got = kinds(&format!("\"{key}\""));
            assert!(
                got.iter().any(|(t, k)| t == key && k.is_secret()),
                "{key}: {got:?}"
            );
        }
    }

    // ---- extraction: benign twins -------------------------------------------------------

    #[test]
    fn public_names_hashes_common_paths_and_prose_are_not_tokens() {
        for text in [
            "octocat/Hello-World",
            "modelcontextprotocol/typescript-sdk",
            "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904 on main",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "/tmp/build-output/artifact.tar.gz",
            "/usr/share/doc/readme",
            "https://docs.example.com/getting-started/installation-guide",
            "internationalization-and-localization",
            "Die Übersetzung ist fertig — 日本語のテキスト 🎉",
            "2026-08-31T12:00:00Z",
            "@modelcontextprotocol/server-everything@2026.8.31",
            "/home",
        ] {
            assert!(kinds(&result(text)).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn big_base64_content_is_not_an_id() {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let blob: String = (0..5000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                B64[(x >> 58) as usize] as char
            })
            .collect();
        assert!(kinds(&result(&blob)).is_empty());
    }

    #[test]
    fn extraction_is_cheap_enough_to_run_inline() {
        // A 64 KiB tool result of mixed text, ids and paths.
        let mut text = String::new();
        while text.len() < 64 * 1024 {
            text.push_str("line with words, /home/bob/src/lib.rs, 3f2c9a4e-8b1d-4c7a-9e2f-1a2b3c4d5e6f and numbers 12345\n");
        }
        let msg = result(&text);
        let start = Instant::now();
        let rounds = 20;
        for _ in 0..rounds {
            std::hint::black_box(tokens(msg.as_bytes()));
        }
        let per = start.elapsed() / rounds;
        eprintln!("flow extraction of a 64 KiB result: {per:?}");
        // Generous bound for shared CI cores in debug builds; release is ~50× faster.
        assert!(per < std::time::Duration::from_millis(50), "{per:?}");
    }

    // ---- memory: crossings --------------------------------------------------------------

    fn servers() -> (Arc<str>, Arc<str>) {
        ("a".into(), "b".into())
    }

    #[test]
    fn a_token_from_a_in_a_request_to_b_crosses() {
        let m = FlowMemory::default();
        let (a, _) = servers();
        m.output(
            &a,
            result(&format!("your id is {UUID} and token {GH_TOKEN}")).as_bytes(),
        );
        let c = m.request(
            "b",
            call(serde_json::json!({"ref": UUID, "auth": GH_TOKEN})).as_bytes(),
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c.iter().all(|x| &*x.from == "a"));
        assert!(c.iter().any(|x| x.kind == TokenKind::ApiKey));
    }

    #[test]
    fn a_token_sent_back_to_its_own_server_is_not_a_crossing() {
        let m = FlowMemory::default();
        let (a, _) = servers();
        m.output(&a, result(&format!("nextCursor {SESSION_ID}")).as_bytes());
        assert!(m
            .request(
                "a",
                call(serde_json::json!({"cursor": SESSION_ID})).as_bytes()
            )
            .is_empty());
    }

    #[test]
    fn a_token_the_user_typed_first_is_the_users_own() {
        let m = FlowMemory::default();
        let (a, _) = servers();
        assert!(m
            .request("a", call(serde_json::json!({"issue": UUID})).as_bytes())
            .is_empty());
        m.output(&a, result(&format!("issue {UUID} updated")).as_bytes());
        assert!(m
            .request("b", call(serde_json::json!({"issue": UUID})).as_bytes())
            .is_empty());
    }

    #[test]
    fn public_ids_and_common_paths_from_a_to_b_do_not_cross() {
        let m = FlowMemory::default();
        let (a, _) = servers();
        m.output(
            &a,
            result("repo octocat/Hello-World at 4b825dc642cb6eb9a060e54bf8d69288fbee4904, built in /tmp/out")
                .as_bytes(),
        );
        let c = m.request(
            "b",
            call(serde_json::json!({"repo": "octocat/Hello-World", "sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "dir": "/tmp/out"}))
                .as_bytes(),
        );
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest() {
        let m = FlowMemory::new(8);
        let (a, _) = servers();
        let ids: Vec<String> = (0..20)
            .map(|i| format!("3f2c9a4e-8b1d-4c7a-9e2f-1a2b3c4d5e{i:02x}"))
            .collect();
        for id in &ids {
            m.output(&a, result(id).as_bytes());
        }
        assert_eq!(m.len(), 8);
        assert!(m
            .request("b", call(serde_json::json!({"x": ids[0]})).as_bytes())
            .is_empty());
        assert_eq!(
            m.request("b", call(serde_json::json!({"x": ids[19]})).as_bytes())
                .len(),
            1
        );
    }
}
