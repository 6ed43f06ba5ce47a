//! SMAC-6: secrets in text. In responses each secret is redacted to `[REDACTED:<kind>]` and the rest
//! of the text kept; in request arguments (DLP) a secret cannot be cut out of what the user asked
//! to send, so a finding stops the message when the policy says strip or block.
//!
//! Matching runs on a case-preserving copy without invisible characters ([`VisibleText`]): keys
//! are case-sensitive, and a zero-width space inside one must not hide it. Candidates start at
//! anchor literals (one Aho-Corasick pass); patterns run only from there, over a bounded window.

use super::secrets_kinds::{
    Check, KINDS, KNOWN_EXAMPLES, LABEL_ENDINGS, LABEL_NOT_SECRET, LABEL_WORDS, TRIGGERS,
};
use super::text::{Hit, Replacement, Role, Site, TextDetector, TextView};
use super::visible_text::VisibleText;
use super::SubjectMeta;
use crate::alert::Severity;
use aho_corasick::{AhoCorasick, MatchKind};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use memchr::{memchr_iter, memmem};
use regex::bytes::Regex;
use std::ops::Range;

pub const RULE: &str = "SMAC-6";
const CLASS_RESPONSE: &str = "secret leakage";
const CLASS_REQUEST: &str = "secret in arguments";

/// Anchor candidates tried per string: bounds the work on pathological input.
const MAX_CANDIDATES: usize = 4096;
/// Longest generic labelled value considered a secret.
const MAX_LABELLED_VALUE: usize = 256;
/// Pieces joined when a key arrives spaced out (one character each) or broken across lines.
const MAX_SPACED_PIECES: usize = 200;
const MAX_LINE_PIECES: usize = 6;
/// Longest piece of a broken key (bounds the work per candidate).
const MAX_PIECE: usize = 512;

/// Priorities of the kinds found by code rather than by the table (lower wins an overlap).
const PRIORITY_PEM: usize = 1;
const PRIORITY_TABLE: usize = 10;
const PRIORITY_STRUCTURAL: usize = 1000;
const PRIORITY_LABELLED: usize = 2000;

/// base64 without caring about padding, for JWT headers and Discord ids.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

pub struct Secrets {
    patterns: Vec<Regex>,
    /// Anchor literals of the table plus the spaced forms of splittable ones.
    anchors: AhoCorasick,
    /// Per anchor pattern: (kind index, spaced form).
    anchor_of: Vec<(usize, bool)>,
    labels: AhoCorasick,
}

struct Found {
    priority: usize,
    range: Range<usize>,
    kind: &'static str,
    severity: Severity,
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new()
    }
}

impl Secrets {
    pub fn new() -> Self {
        let patterns = KINDS
            .iter()
            .map(|k| Regex::new(&format!("^(?:{})", k.pattern)).expect("secret pattern"))
            .collect();
        let mut literals = Vec::new();
        let mut anchor_of = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            for a in kind.anchors {
                literals.push(a.to_string());
                anchor_of.push((i, false));
                if kind.splittable {
                    literals.push(spaced(a));
                    anchor_of.push((i, true));
                }
            }
        }
        let anchors = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&literals)
            .expect("anchors build");
        let labels = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(LABEL_WORDS)
            .expect("labels build");
        Secrets {
            patterns,
            anchors,
            anchor_of,
            labels,
        }
    }

    fn table_kinds(&self, text: &[u8], found: &mut Vec<Found>) {
        for m in self
            .anchors
            .find_overlapping_iter(text)
            .take(MAX_CANDIDATES)
        {
            let (k, spaced) = self.anchor_of[m.pattern().as_usize()];
            let kind = &KINDS[k];
            let start = m.start();
            if kind.bounded && start > 0 && is_word(text[start - 1]) {
                continue;
            }
            let re = &self.patterns[k];
            let mut got = None;
            if !spaced {
                let window = &text[start..text.len().min(start + kind.window)];
                if let Some(c) = re.captures(window) {
                    let m = c
                        .name("v")
                        .unwrap_or_else(|| c.get(0).expect("whole match"));
                    let range = start + m.start()..start + m.end();
                    let ends_clean =
                        !kind.bounded || text.get(range.end).is_none_or(|&b| !is_word(b));
                    if ends_clean && confirmed(kind.check, &text[range.clone()]) {
                        got = Some(range);
                    }
                }
            }
            if got.is_none() && kind.splittable {
                got = joined_key(re, kind.check, text, start, spaced);
            }
            if let Some(range) = got {
                found.push(Found {
                    priority: PRIORITY_TABLE + k,
                    range,
                    kind: kind.kind,
                    severity: kind.severity,
                });
            }
        }
    }

    /// `name = value` pairs whose name ends in a credential word.
    fn labelled(&self, text: &[u8], found: &mut Vec<Found>) {
        let mut last_label_end = usize::MAX;
        for m in self.labels.find_overlapping_iter(text).take(MAX_CANDIDATES) {
            let mut start = m.start();
            while start > 0 && m.start() - start < 64 && is_label_byte(text[start - 1]) {
                start -= 1;
            }
            let mut end = m.end();
            while end < text.len() && end - m.end() < 64 && is_label_byte(text[end]) {
                end += 1;
            }
            if end == last_label_end {
                continue;
            }
            last_label_end = end;
            let Some(kind) = label_kind(&text[start..end]) else {
                continue;
            };
            let Some(value) = assigned_value(text, end) else {
                continue;
            };
            if labelled_value_is_secret(kind, &text[value.clone()]) {
                found.push(Found {
                    priority: PRIORITY_LABELLED,
                    range: value,
                    kind,
                    severity: Severity::High,
                });
            }
        }
    }
}

impl TextDetector for Secrets {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn triggers(&self) -> &'static [&'static str] {
        TRIGGERS
    }

    /// Discord bot tokens and Twilio API key ids have no literal prefix to trigger on.
    fn raw_check(&self, raw: &[u8]) -> bool {
        discord_tokens(raw, &mut |_| true) || twilio_key_ids(raw, &mut |_| true)
    }

    fn applies(&self, _meta: &SubjectMeta<'_>, site: &Site) -> bool {
        !site.is_key
    }

    fn scan(&self, view: &TextView<'_>, hits: &mut Vec<Hit>) {
        let role = view.site.role;
        let key_kind = view
            .site
            .key
            .as_deref()
            .and_then(|k| label_kind(k.as_bytes()));
        // An argument the tool declares as a credential (`password`, `api_key`) carries what the
        // user means to send to that server; whether it belongs there is the FLOW analyzer's call.
        if role == Role::Argument && key_kind.is_some() {
            return;
        }
        let visible = VisibleText::new(view.original);
        let text = visible.text.as_bytes();
        let mut found = Vec::new();
        self.table_kinds(text, &mut found);
        private_key_blocks(text, &mut found);
        discord_tokens(text, &mut |range| {
            found.push(Found {
                priority: PRIORITY_STRUCTURAL,
                range,
                kind: "discord-bot-token",
                severity: Severity::Critical,
            });
            false
        });
        twilio_key_ids(text, &mut |range| {
            found.push(Found {
                priority: PRIORITY_STRUCTURAL,
                range,
                kind: "twilio-api-key",
                severity: Severity::Critical,
            });
            false
        });
        self.labelled(text, &mut found);
        // A whole value under a credential key (`{"api_key": "…"}` in structured content).
        if let Some(kind) = key_kind {
            let trimmed = trim_range(text);
            if labelled_value_is_secret(kind, &text[trimmed.clone()]) {
                found.push(Found {
                    priority: PRIORITY_LABELLED + 1,
                    range: trimmed,
                    kind,
                    severity: Severity::High,
                });
            }
        }
        found.sort_by_key(|f| (f.priority, f.range.start));
        let mut kept: Vec<Found> = Vec::new();
        for f in found {
            if kept
                .iter()
                .all(|k| f.range.end <= k.range.start || k.range.end <= f.range.start)
            {
                kept.push(f);
            }
        }
        for f in kept {
            let (class, replacement) = match role {
                Role::Argument => (CLASS_REQUEST, Replacement::None),
                Role::Content | Role::Metadata => (
                    CLASS_RESPONSE,
                    Replacement::With(format!("[REDACTED:{}]", f.kind)),
                ),
            };
            hits.push(Hit {
                rule: RULE,
                class,
                severity: f.severity,
                range: visible.original_range(f.range.clone()),
                replacement,
                detail: format!("{} ({} characters)", f.kind, f.range.len()),
            });
        }
    }
}

/// `AKIA` → `A K I A`: how a key looks when spelled out to dodge matching.
fn spaced(anchor: &str) -> String {
    let mut out = String::with_capacity(anchor.len() * 2);
    for (i, c) in anchor.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/' | b'=' | b'.')
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A key broken into pieces: spelled with one character per piece (`A K I A …`), or wrapped across
/// lines. Pieces are joined until the pattern covers all of them.
fn joined_key(
    re: &Regex,
    check: Check,
    text: &[u8],
    start: usize,
    spaced: bool,
) -> Option<Range<usize>> {
    let mut joined = Vec::new();
    let mut pos = start;
    let mut pieces = 0;
    let limit = if spaced {
        MAX_SPACED_PIECES
    } else {
        MAX_LINE_PIECES
    };
    while pieces < limit {
        let piece_end = pos
            + text[pos..]
                .iter()
                .take(MAX_PIECE)
                .take_while(|&&b| is_token_byte(b))
                .count();
        let piece = &text[pos..piece_end];
        if piece.is_empty() || piece.len() == MAX_PIECE || (spaced && piece.len() != 1) {
            return None;
        }
        joined.extend_from_slice(piece);
        pieces += 1;
        if pieces >= 2 {
            if let Some(m) = re.find(&joined) {
                if m.end() == joined.len() && confirmed(check, &joined) {
                    return Some(start..piece_end);
                }
            }
        }
        let gap = text[piece_end..]
            .iter()
            .take(8)
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        let sep = &text[piece_end..piece_end + gap];
        let broken_line = sep.contains(&b'\n');
        if gap == 0 || gap == 8 || (spaced && broken_line) || (!spaced && !broken_line) {
            return None;
        }
        pos = piece_end + gap;
    }
    None
}

/// Whether a pattern match is a real secret rather than a stand-in.
fn confirmed(check: Check, value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    if KNOWN_EXAMPLES.iter().any(|e| value.contains(e)) || is_placeholder(value) {
        return false;
    }
    match check {
        Check::Random(min) => entropy(value.as_bytes()) >= min,
        Check::Jwt => jwt_header_names_alg(value),
        Check::Password => password_like(value),
    }
}

/// Documentation stand-ins: `AKIAIOSFODNN7EXAMPLE`, `ghp_XXXX…`, `your_token_here`, `sk-...xxxx`,
/// `<your-api-key>`, `1234567890abcdef…`.
pub(crate) fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    const WORDS: &[&str] = &[
        "example",
        "placeholder",
        "redacted",
        "changeme",
        "dummy",
        "sample",
        "...",
        "…",
        "***",
        "<",
        ">",
        "${",
        "{{",
    ];
    if WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    // Short words count only as whole segments or segment starts: random keys contain them by
    // chance.
    if lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|seg| {
            matches!(seg, "fake" | "xxx")
                || ["your", "xxxx", "password"]
                    .iter()
                    .any(|w| seg.starts_with(w))
        })
    {
        return true;
    }
    let bytes = lower.as_bytes();
    let mut same = 1;
    let mut rising = 1;
    for w in bytes.windows(2) {
        same = if w[0] == w[1] { same + 1 } else { 1 };
        rising = if w[1] == w[0].wrapping_add(1) {
            rising + 1
        } else {
            1
        };
        if same >= 5 || rising >= 8 {
            return true;
        }
    }
    let mut distinct = [false; 256];
    bytes.iter().for_each(|&b| distinct[b as usize] = true);
    bytes.len() >= 16 && distinct.iter().filter(|&&d| d).count() < 8
}

/// Shannon entropy in bits per byte.
pub(crate) fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    bytes.iter().for_each(|&b| counts[b as usize] += 1);
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn char_classes(value: &str) -> usize {
    let b = value.as_bytes();
    [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
        b.iter().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|&&x| x)
    .count()
}

fn password_like(value: &str) -> bool {
    value.len() >= 8 && char_classes(value) >= 2 && !identifier_like(value)
}

/// `my-app-secret-v2`, `default.token.name`: names of secrets, not secrets.
fn identifier_like(value: &str) -> bool {
    let segments: Vec<&str> = value.split(['-', '_', '.']).collect();
    segments.len() >= 2
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 12
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn jwt_header_names_alg(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or_default();
    let Ok(json) = URL_SAFE_LENIENT.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json)
        .is_ok_and(|h| h.contains_key("alg"))
}

/// The kind a label redacts as, if it names a credential.
fn label_kind(label: &[u8]) -> Option<&'static str> {
    let squashed: String = label
        .iter()
        .filter(|b| !matches!(b, b'_' | b'-' | b'.'))
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    if LABEL_NOT_SECRET.iter().any(|n| squashed.ends_with(n)) {
        return None;
    }
    LABEL_ENDINGS
        .iter()
        .find(|(ending, _)| squashed.ends_with(ending))
        .map(|(_, kind)| *kind)
}

/// The value assigned right after a label (`= v`, `: "v"`, `=> 'v'`), if any.
fn assigned_value(text: &[u8], label_end: usize) -> Option<Range<usize>> {
    let mut p = label_end;
    let at = |p: usize| text.get(p).copied();
    if at(p) == Some(b'\\') {
        p += 1;
    }
    if matches!(at(p), Some(b'"' | b'\'')) {
        p += 1;
    }
    while matches!(at(p), Some(b' ' | b'\t')) {
        p += 1;
    }
    match (at(p), at(p + 1)) {
        (Some(b'=' | b':'), Some(b'=' | b'>')) => p += 2,
        (Some(b'='), _) => p += 1,
        // `https://…` after a label is a URL, not a value.
        (Some(b':'), Some(b'/')) => return None,
        (Some(b':'), _) => p += 1,
        _ => return None,
    }
    if at(p) == Some(b'=') {
        return None; // `token == x` compares
    }
    while matches!(at(p), Some(b' ' | b'\t')) {
        p += 1;
    }
    let escaped = at(p) == Some(b'\\') && matches!(at(p + 1), Some(b'"' | b'\''));
    if escaped {
        p += 1;
    }
    if let Some(q @ (b'"' | b'\'')) = at(p) {
        let start = p + 1;
        let len = text[start..]
            .iter()
            .take(MAX_LABELLED_VALUE + 1)
            .take_while(|&&b| b != q && b != b'\n' && !(escaped && b == b'\\'))
            .count();
        let end = start + len;
        let closed = at(end) == Some(q) || (escaped && at(end) == Some(b'\\'));
        return (closed && len <= MAX_LABELLED_VALUE).then_some(start..end);
    }
    let len = text[p..]
        .iter()
        .take(MAX_LABELLED_VALUE + 1)
        .take_while(|&&b| {
            !b.is_ascii_whitespace()
                && !matches!(
                    b,
                    b'"' | b'\'' | b',' | b';' | b'&' | b')' | b'}' | b']' | b'>' | b'\\'
                )
        })
        .count();
    (len > 0 && len <= MAX_LABELLED_VALUE).then_some(p..p + len)
}

fn labelled_value_is_secret(kind: &str, value: &[u8]) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let min_len = match kind {
        "password" => 8,
        "secret" => 12,
        _ => 16,
    };
    if value.len() < min_len || value.len() > MAX_LABELLED_VALUE {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    // References to a secret kept elsewhere, paths and URLs, code.
    const NOT_VALUES: &[&str] = &[
        "$", "%", "{", "[", "(", "@", "#", "/", "./", "~/", "http:", "https:", "file:",
    ];
    if NOT_VALUES.iter().any(|p| lower.starts_with(p))
        || ["(", "process.env", "os.environ", "getenv", " "]
            .iter()
            .any(|p| lower.contains(p))
    {
        return false;
    }
    if is_placeholder(value) || char_classes(value) < 2 || identifier_like(value) {
        return false;
    }
    let min_entropy = if kind == "password" { 2.5 } else { 3.0 };
    entropy(value.as_bytes()) >= min_entropy
}

fn trim_range(text: &[u8]) -> Range<usize> {
    let start = text.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let end = text.len()
        - text[start..]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    start..end
}

/// PEM private key blocks, whole (`-----BEGIN … PRIVATE KEY-----` to its END line); a block cut
/// off before its END line is redacted to the end of its body. Public keys and certificates are
/// other labels and pass.
fn private_key_blocks(text: &[u8], found: &mut Vec<Found>) {
    const BEGIN: &[u8] = b"-----BEGIN ";
    for at in memmem::find_iter(text, BEGIN).take(MAX_CANDIDATES) {
        let label_start = at + BEGIN.len();
        let label_len = text[label_start..]
            .iter()
            .take(48)
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b' ')
            .count();
        let label = &text[label_start..label_start + label_len];
        let body_start = label_start + label_len;
        if !text[body_start..].starts_with(b"-----")
            || memmem::find(label, b"PRIVATE KEY").is_none()
        {
            continue;
        }
        let body_start = body_start + 5;
        let window = &text[body_start..text.len().min(body_start + 16384)];
        let (body_end, end) = match memmem::find(window, b"-----END ") {
            Some(e) => {
                let close =
                    memmem::find(&window[e + 9..], b"-----").map_or(e + 9, |c| e + 9 + c + 5);
                (body_start + e, body_start + close)
            }
            None => {
                let len = window
                    .iter()
                    .take_while(|&&b| {
                        b.is_ascii_alphanumeric()
                            || matches!(
                                b,
                                b'+' | b'/'
                                    | b'='
                                    | b'\\'
                                    | b'\r'
                                    | b'\n'
                                    | b' '
                                    | b':'
                                    | b','
                                    | b'-'
                            )
                    })
                    .count();
                (body_start + len, body_start + len)
            }
        };
        let body = &text[body_start..body_end];
        let base64_chars = body
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
            .count();
        let stand_in = std::str::from_utf8(body).map_or(true, |b| {
            let lower = b.to_ascii_lowercase();
            lower.contains("...")
                || lower.contains('…')
                || lower.contains("your")
                || lower.contains('<')
        });
        if base64_chars >= 64 && !(stand_in && base64_chars < 256) {
            found.push(Found {
                priority: PRIORITY_PEM,
                range: at..end,
                kind: "private-key",
                severity: Severity::Critical,
            });
        }
    }
}

/// Discord bot tokens: base64 of a numeric user id, a 6–7 character timestamp, an HMAC.
/// `f` returns whether to stop.
fn discord_tokens(text: &[u8], f: &mut dyn FnMut(Range<usize>) -> bool) -> bool {
    for dot in memchr_iter(b'.', text) {
        let Some(second) = text.get(dot + 7..dot + 9) else {
            break;
        };
        let middle = if second[0] == b'.' {
            6
        } else if second[1] == b'.' {
            7
        } else {
            continue;
        };
        if !text[dot + 1..dot + 1 + middle]
            .iter()
            .all(|&b| is_b64url(b))
        {
            continue;
        }
        let first_len = text[..dot]
            .iter()
            .rev()
            .take(29)
            .take_while(|&&b| is_b64url(b))
            .count();
        let start = dot - first_len;
        if !(23..=28).contains(&first_len) || !matches!(text[start], b'M' | b'N' | b'O') {
            continue;
        }
        let hmac_start = dot + 2 + middle;
        let hmac_len = text[hmac_start..]
            .iter()
            .take(41)
            .take_while(|&&b| is_b64url(b))
            .count();
        if !(27..=40).contains(&hmac_len) {
            continue;
        }
        let id_is_numeric = URL_SAFE_LENIENT
            .decode(&text[start..dot])
            .is_ok_and(|id| (17..=20).contains(&id.len()) && id.iter().all(u8::is_ascii_digit));
        if id_is_numeric && entropy(&text[hmac_start..hmac_start + hmac_len]) >= 3.5 {
            let end = hmac_start + hmac_len;
            if f(start..end) {
                return true;
            }
        }
    }
    false
}

/// Twilio API key ids: `SK` and 32 lower-case hex digits, standing alone.
fn twilio_key_ids(text: &[u8], f: &mut dyn FnMut(Range<usize>) -> bool) -> bool {
    for at in memmem::find_iter(text, b"SK") {
        if at > 0 && is_word(text[at - 1]) {
            continue;
        }
        let Some(hex) = text.get(at + 2..at + 34) else {
            break;
        };
        let is_hex = hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        let alone = text.get(at + 34).is_none_or(|&b| !is_word(b));
        if is_hex
            && alone
            && !is_placeholder(std::str::from_utf8(hex).unwrap_or_default())
            && hex.iter().any(u8::is_ascii_digit)
            && hex.iter().any(u8::is_ascii_lowercase)
            && f(at..at + 34)
        {
            return true;
        }
    }
    false
}
