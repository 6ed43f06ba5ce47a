//! SMAC-5: instructions planted for the model in what servers send back.
//!
//! Two detectors: *instruction blocks* (tags like `<IMPORTANT>`, role markers like `[SYSTEM]:`,
//! plain-language injection like "ignore previous instructions") and *credential seeking*
//! (sentences telling the model to read, print or send keys, tokens and credential files).
//!
//! Judged by role: in definitions (tool descriptions, schemas, server instructions) every such
//! block goes; in content (file reads, fetched pages, command output) a block goes only when it
//! speaks to an AI and is not shown as code or quoted, because documents legitimately contain
//! DocBook `<important>` elements, chat transcripts and essays about prompt injection.

mod context;
mod credentials;
mod phrases;
mod roles;
mod tags;

#[cfg(test)]
pub(crate) mod tests;

use super::text::SharedCheck;
use super::text::{Hit, Replacement, Role, Site, TextDetector, TextView};
use super::SubjectMeta;
use crate::alert::{Direction, Severity};
use crate::inspect::needle::Needle;
use context::{quote_start, quoted, sentence_around, CodeRegions};
use std::ops::Range;

pub const RULE: &str = "SMAC-5";

/// Raw-message literals (ASCII case-insensitive) without which nothing here can be found;
/// disguised spellings are caught by [`disguised`].
const TRIGGERS: &[&str] = &[
    // tags, also closing, spaced and encoded
    "<important",
    "<system",
    "<instruction",
    "<admin",
    "<critical",
    "<hidden",
    "<secret",
    "<urgent",
    "<override",
    "<directive",
    "<sys",
    "<ai",
    "<llm",
    "<assistant",
    "<jailbreak",
    "< important",
    "< system",
    "< instruction",
    "/important",
    "/system",
    "/instruction",
    "/admin",
    "/critical",
    "/hidden",
    "/secret",
    "/urgent",
    "/override",
    "/directive",
    "/sys",
    "/ai",
    "important>",
    "&lt",
    "&#",
    "\\u003c",
    "%3c",
    "\u{ff1c}",
    "\u{fe64}",
    "\\uff1c",
    "\\ufe64",
    // role markers
    "<|",
    "|>",
    "<<sys",
    "[inst",
    "[system",
    "[sys",
    "[assistant",
    "[developer",
    "[admin",
    "[instruction",
    "[ s",
    "# system",
    "#system",
    "# assistant",
    "# developer",
    "`system",
    "` system",
    "`assistant",
    "`developer",
    "~system",
    "~assistant",
    "human:",
    "assistant:",
    "system:",
    "developer:",
    "human :",
    "assistant :",
    "system :",
    "h u m",
    "a s s",
    "s y s",
    "d e v",
    // plain-language injection
    "ignor",
    "disregard",
    "forget",
    "overrid",
    "bypass",
    "tell",
    "inform",
    "mention",
    "reveal",
    "disclose",
    "notify",
    "keep this",
    "keep it",
    "hide this",
    "hide it",
    "the user",
    "you are",
    "mode",
    "pretend",
    "act as",
    "from now on",
    "instruction",
    "directive",
    "orders",
    "system prompt",
    "system message",
    "developer message",
    "conversation",
    // `history` alone is in every other paragraph of prose; the patterns only ever want it after
    // one of these (`chat history`, `message history`, `user's history`).
    "chat",
    "message",
    "previous messages",
    "user's",
    // credentials
    "contents of",
    "~/",
    ".ssh",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".aws",
    ".kube",
    "kubeconfig",
    ".env",
    ".npmrc",
    ".pypirc",
    ".netrc",
    "git-credentials",
    ".docker",
    "shadow",
    ".gnupg",
    ".pgpass",
    "secring",
    "wallet.dat",
    "credential",
    "password",
    "passwd",
    "passphrase",
    "token",
    "api key",
    "api_key",
    "apikey",
    "api-key",
    "secret",
    "private key",
    "seed phrase",
    "mnemonic",
    "recovery",
    "cookie",
    "2fa",
    "otp",
    "mfa",
    "ssh key",
    "access key",
    "signing key",
];

/// JSON escapes of characters that disguise words: Greek and Cyrillic look-alikes, fullwidth
/// forms, mathematical letters, tag characters, invisible characters.
static ESCAPED_DISGUISES: [Needle; 11] = [
    Needle::new(b"\\u03"),
    Needle::new(b"\\u04"),
    Needle::new(b"\\u00ad"),
    Needle::new(b"\\u034f"),
    Needle::new(b"\\u200"),
    Needle::new(b"\\u202"),
    Needle::new(b"\\u206"),
    Needle::new(b"\\ufeff"),
    Needle::new(b"\\uff"),
    Needle::new(b"\\ud835"),
    Needle::new(b"\\udb40"),
];

/// Whether raw bytes carry a disguised word: a Latin letter next to a Greek or Cyrillic one, a
/// fullwidth or mathematical letter, a tag character or an invisible formatting character.
/// Plain accented or non-Latin text does not count, so it stays on the fast path.
pub fn disguised(raw: &[u8]) -> bool {
    let letter = |i: usize| raw.get(i).is_some_and(u8::is_ascii_alphabetic);
    let disguise_at = |i: usize| {
        let (b1, b2) = (raw.get(i + 1).copied(), raw.get(i + 2).copied());
        match raw[i] {
            // U+0340..U+04FF: Greek and Cyrillic (and the combining grapheme joiner)
            0xCD..=0xD3 => i.checked_sub(1).is_some_and(letter) || letter(i + 2),
            0xC2 => b1 == Some(0xAD),
            0xE2 => matches!(
                (b1, b2),
                (Some(0x80), Some(0x8B..=0x8F | 0xAA..=0xAE))
                    | (Some(0x81), Some(0xA0..=0xA4 | 0xA6..=0xA9))
            ),
            0xEF => matches!(
                (b1, b2),
                (Some(0xBC), Some(0x9C | 0xA1..=0xBA))
                    | (Some(0xBD), Some(0x81..=0x9A))
                    | (Some(0xBB), Some(0xBF))
                    | (Some(0xB9), Some(0xA4))
            ),
            0xF0 => b1 == Some(0x9D) && matches!(b2, Some(0x90..=0x9D)),
            0xF3 => b1 == Some(0xA0),
            _ => false,
        }
    };
    let mut i = 0;
    while i < raw.len() {
        // Every disguise starts at a byte >= 0xC2: skip plain ASCII a word-sized block at a time
        // (most text is ASCII, and this check runs on every message the literals did not wake).
        if raw.get(i..i + 32).is_some_and(<[u8]>::is_ascii) {
            i += 32;
            continue;
        }
        // A block with non-ASCII in it: each of its bytes is looked at once.
        let end = (i + 32).min(raw.len());
        while i < end {
            if DISGUISE_LEADS[raw[i] as usize] && disguise_at(i) {
                return true;
            }
            i += 1;
        }
    }
    escaped_disguise(raw)
}

/// The first bytes of the UTF-8 sequences [`disguised`] looks at (most non-ASCII text, accents
/// and CJK, starts with none of them).
const DISGUISE_LEADS: [bool; 256] = {
    let mut leads = [false; 256];
    let mut b = 0xCD;
    while b <= 0xD3 {
        leads[b] = true;
        b += 1;
    }
    leads[0xC2] = true;
    leads[0xE2] = true;
    leads[0xEF] = true;
    leads[0xF0] = true;
    leads[0xF3] = true;
    leads
};

fn escaped_disguise(raw: &[u8]) -> bool {
    static ESCAPE: Needle = Needle::new(b"\\u");
    ESCAPE.is_in(raw) && {
        let lower = raw.to_ascii_lowercase();
        ESCAPED_DISGUISES.iter().any(|e| e.is_in(&lower))
    }
}

/// Server-to-client text the model reads: definitions and content, not the client's arguments.
fn read_by_the_model(meta: &SubjectMeta<'_>, site: &Site) -> bool {
    meta.direction == Direction::ServerToClient && site.role != Role::Argument
}

/// Words before a quotation that say it is being talked about, not said.
const DISCUSSION_CUES: &[&str] = &[
    "such as",
    "like",
    "e.g",
    "for example",
    "phrase",
    "pattern",
    "string",
    "called",
    "known as",
    "detect",
    "flag",
    "block",
    "injection",
    "attack",
];

/// How a string is judged: strictly (definitions) or by whether a finding speaks to an AI.
struct Judge<'a> {
    text: &'a str,
    strict: bool,
    code: Option<CodeRegions>,
}

impl<'a> Judge<'a> {
    fn new(view: &'a TextView<'_>) -> Judge<'a> {
        let strict = view.site.role == Role::Metadata;
        let text = view.normalized.text.as_str();
        Judge {
            text,
            strict,
            code: (!strict).then(|| CodeRegions::new(text)),
        }
    }

    /// Content shown as code or quoted is mentioned, not said to the model.
    fn shown(&self, at: usize) -> bool {
        let end = (at + 1..=self.text.len())
            .find(|&e| self.text.is_char_boundary(e))
            .unwrap_or(at);
        self.code.as_ref().is_some_and(|c| c.contains(at)) || quoted(self.text, at..end)
    }

    /// Whether the tag from `start` to `end` is named rather than used: quoted, or an item of a
    /// list of tags (what follows it continues the list, not a block).
    fn named(&self, start: usize, end: usize) -> bool {
        let after = self.text[end..].trim_start_matches([' ', '\t']);
        quoted(self.text, start..end)
            || after.starts_with([',', ')', '/'])
            || after.starts_with("and ")
            || after.starts_with("or ")
    }

    /// A phrase is exempt in content when shown; in definitions only when quoted as an example.
    fn phrase_exempt(&self, range: Range<usize>) -> bool {
        if !self.strict {
            return self.shown(range.start);
        }
        quote_start(self.text, range).is_some_and(|q| {
            let before = &self.text[..q];
            let from = (q.saturating_sub(60)..=q)
                .find(|&i| before.is_char_boundary(i))
                .unwrap_or(q);
            DISCUSSION_CUES.iter().any(|c| before[from..].contains(c))
        })
    }

    /// Severity of a block whose body is `body` (normalized).
    fn severity(&self, body: &str) -> Severity {
        if phrases::sends_data(body)
            || !credentials::credential_seeking(body, &|_| false).is_empty()
        {
            Severity::Critical
        } else if self.strict {
            Severity::High
        } else {
            Severity::Medium
        }
    }
}

/// Findings of one kind per string: enough to strip any real attack, and a bound on the work an
/// adversarial string (megabytes of `<IMPORTANT`) can cause.
const MAX_FINDINGS: usize = 256;

/// Bodies longer than this are judged by their start: an instruction comes first.
const BODY_REACH: usize = 16 * 1024;

fn bounded(text: &str, r: Range<usize>) -> &str {
    let mut end = r.end.min(r.start + BODY_REACH);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[r.start..end]
}

/// Tags, role markers and plain-language injection.
pub struct InstructionBlocks;

impl TextDetector for InstructionBlocks {
    fn name(&self) -> &'static str {
        "smac5-instruction-blocks"
    }

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
    }

    fn triggers(&self) -> &'static [&'static str] {
        TRIGGERS
    }

    fn shared_raw_check(&self) -> Option<SharedCheck> {
        Some(SharedCheck::Disguise)
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        read_by_the_model(meta, site)
    }

    fn reads_joined_blocks(&self) -> bool {
        true
    }

    fn scan(&self, view: &TextView<'_>, hits: &mut Vec<Hit>) {
        let judge = Judge::new(view);
        let text = judge.text;
        let mut taken: Vec<Range<usize>> = Vec::new();
        let mut hit = |range: Range<usize>, severity, detail: String| {
            hits.push(Hit {
                rule: RULE,
                class: "instruction blocks",
                severity,
                range: view.normalized.original_range(range),
                replacement: Replacement::Remove,
                detail,
            });
        };
        for b in tags::tag_blocks(text).into_iter().take(MAX_FINDINGS) {
            if judge.shown(b.block.start) {
                continue;
            }
            let body = bounded(text, b.body.clone());
            let speaks_to_ai = b.ai_only || phrases::addresses_an_ai(body);
            // Content: only blocks that speak to an AI. Definitions: every block, except a tag
            // that is merely named ("supports <note>, <important> and <warning>").
            if !speaks_to_ai && (!judge.strict || judge.named(b.block.start, b.body.start)) {
                continue;
            }
            hit(
                b.block.clone(),
                judge.severity(body),
                format!("<{}> instruction block", b.name),
            );
            taken.push(b.block);
        }
        for m in roles::role_markers(text) {
            let overlaps = taken
                .iter()
                .any(|t| t.start < m.block.end && m.block.start < t.end);
            if overlaps || judge.shown(m.marker.start) {
                continue;
            }
            let body = bounded(text, m.block.clone());
            if !judge.strict && !phrases::addresses_an_ai(body) {
                continue;
            }
            hit(m.block.clone(), judge.severity(body), m.label);
            taken.push(m.block);
        }
        for p in phrases::injection_phrases(text, judge.strict)
            .into_iter()
            .take(MAX_FINDINGS)
        {
            if taken.iter().any(|t| t.contains(&p.range.start))
                || judge.phrase_exempt(p.range.clone())
            {
                continue;
            }
            let sentence = sentence_around(text, p.range.clone());
            let severity = if p.sends_data {
                Severity::Critical
            } else {
                judge.severity(&text[sentence.clone()])
            };
            let phrase: String = text[p.range.clone()].chars().take(60).collect();
            hit(
                sentence.clone(),
                severity,
                format!("plain-language injection \"{}\"", phrase.trim()),
            );
            taken.push(sentence);
        }
    }
}

/// Sentences telling the model to read, print or send secrets.
pub struct CredentialSeeking;

impl TextDetector for CredentialSeeking {
    fn name(&self) -> &'static str {
        "smac5-credential-seeking"
    }

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
    }

    fn triggers(&self) -> &'static [&'static str] {
        TRIGGERS
    }

    fn shared_raw_check(&self) -> Option<SharedCheck> {
        Some(SharedCheck::Disguise)
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        read_by_the_model(meta, site)
    }

    fn reads_joined_blocks(&self) -> bool {
        true
    }

    fn scan(&self, view: &TextView<'_>, hits: &mut Vec<Hit>) {
        let judge = Judge::new(view);
        let skip = |at: usize| !judge.strict && judge.shown(at);
        for sentence in credentials::credential_seeking(judge.text, &skip) {
            hits.push(Hit {
                rule: RULE,
                class: "credential seeking",
                severity: Severity::Critical,
                range: view.normalized.original_range(sentence),
                replacement: Replacement::Remove,
                detail: "request to read or send credentials".into(),
            });
        }
    }
}
