//! ENTROPY: base64, hex and percent-encoded blobs in responses that decode to instructions for the
//! model or to shell commands. Such a blob is cut out; blobs of images, hashes, ids and ordinary
//! data decode to binary or to harmless text and stay.
//!
//! Finding blobs is one linear byte scan. A run is decoded only when its characters have the
//! signature of encoded *text* (base64 of ASCII puts every fourth character in `I–Z a–f`; hex of
//! ASCII puts every other digit in `2–7`), so hashes, keys and binary never cost a decode. The
//! decoded text is tested against a short list of instruction and command shapes and, to a bounded
//! depth, searched for further blobs.

use super::text::{Hit, Replacement, Role, Site, TextDetector, TextView};
use super::visible_text::VisibleText;
use super::SubjectMeta;
use crate::alert::Severity;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use regex::Regex;
use std::ops::Range;

pub const RULE: &str = "ENTROPY";
const CLASS: &str = "encoded payload";

const MIN_BASE64: usize = 20;
const MIN_HEX: usize = 24;
const MIN_PERCENT: usize = 6;
/// Share of characters that must carry the encoded-text signature.
const SIGNATURE_SHARE: f64 = 0.85;
/// Bounds per string: blobs decoded, bytes decoded, blobs inside blobs.
const MAX_BLOBS: usize = 1024;
const MAX_DECODED: usize = 1 << 20;
const MAX_DEPTH: usize = 2;

const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    Hex,
    Percent,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
            Encoding::Percent => "percent-encoded",
        }
    }
}

#[derive(Debug)]
struct Blob {
    range: Range<usize>,
    encoding: Encoding,
    /// The encoded characters, line breaks removed, from the aligned start.
    chars: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Instruction,
    Command,
}

pub struct EncodedPayloads {
    instruction: Regex,
    command: Regex,
}

impl Default for EncodedPayloads {
    fn default() -> Self {
        Self::new()
    }
}

impl EncodedPayloads {
    pub fn new() -> Self {
        // Matched on lower-cased text with whitespace runs folded to one space.
        let instruction = Regex::new(
            r"(?x)
            ignore\ (?:all\ )?(?:the\ |your\ )?(?:previous|prior|above|earlier|preceding)\ (?:instructions|prompts?|rules|messages|directions)
            | disregard\ (?:all\ )?(?:the\ |your\ )?(?:previous|prior|above|earlier|system)
            | forget\ (?:all\ )?(?:your|previous|prior)\ (?:instructions|rules)
            | <\ ?/?\ ?(?:important|system|instructions?|admin)\ ?>
            | \byou\ must\ (?:always\ |now\ |first\ |also\ )?(?:not\ )?(?:call|use|read|send|run|execute|pass|include|tell|reveal|ignore|invoke|upload|forward|email)\b
            | \bdo\ not\ (?:tell|inform|mention|reveal|show)\ (?:this\ )?(?:to\ )?the\ user
            | \bdon'?t\ (?:tell|inform|mention)\ (?:this\ )?(?:to\ )?the\ user
            | \bsystem\ prompt\b
            | \bbefore\ using\ this\ tool\b
            | ~/\.ssh\b | \bid_rsa\b | \.aws/credentials
            ",
        )
        .expect("instruction pattern");
        let command = Regex::new(
            r"(?x)
            \b(?:curl|wget)\b[^|\n]{0,200}\|\ ?(?:sudo\ )?(?:ba|z|da|k)?sh\b
            | \b(?:curl|wget)\b[^|\n]{0,200}\|\ ?(?:sudo\ )?python[0-9.]*\b
            | /dev/(?:tcp|udp)/
            | \brm\ -(?:rf|fr|r\ -f|f\ -r)\ (?:/|~|\*|\$home)
            | \b(?:nc|ncat|netcat)\b[^\n]{0,80}\ -(?:e|c)\ 
            | \bbash\ -i\b
            | \bmkfifo\b
            | \bpowershell(?:\.exe)?\b[^\n]{0,40}\ -(?:e|enc|encodedcommand)\b
            | \bbase64\ (?:-d|--decode)\b[^\n]{0,40}\|\ ?(?:ba|z)?sh\b
            | \bchmod\ \+x\b[^\n]{0,120}(?:&&|;)\ ?\./
            | \bpython[0-9.]*\ -c\ .{0,20}import\ (?:socket|pty|os)\b
            | \beval\ ?\(\ ?(?:atob|base64_decode|buffer\.from)\b
            ",
        )
        .expect("command pattern");
        EncodedPayloads {
            instruction,
            command,
        }
    }

    /// What a decoded text is, looking inside nested blobs up to `depth`.
    fn judge(&self, decoded: &str, depth: usize, budget: &mut Budget) -> Option<Payload> {
        let folded = fold(decoded);
        if self.instruction.is_match(&folded) {
            return Some(Payload::Instruction);
        }
        if self.command.is_match(&folded) {
            return Some(Payload::Command);
        }
        if depth >= MAX_DEPTH {
            return None;
        }
        let mut verdict = None;
        blobs(decoded.as_bytes(), false, &mut |blob| {
            verdict = decode_text(&blob, budget).and_then(|t| self.judge(&t, depth + 1, budget));
            verdict.is_some() || budget.exhausted()
        });
        verdict
    }
}

impl TextDetector for EncodedPayloads {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn triggers(&self) -> &'static [&'static str] {
        &[]
    }

    fn raw_check(&self, raw: &[u8]) -> bool {
        blobs(raw, true, &mut |_| true)
    }

    fn applies(&self, _meta: &SubjectMeta<'_>, site: &Site) -> bool {
        matches!(site.role, Role::Content | Role::Metadata)
    }

    fn scan(&self, view: &TextView<'_>, hits: &mut Vec<Hit>) {
        let visible = VisibleText::new(view.original);
        let text = visible.text.as_bytes();
        let mut budget = Budget::default();
        blobs(text, false, &mut |blob| {
            if image_data_uri(text, blob.range.start) {
                return false;
            }
            let verdict = decode_text(&blob, &mut budget)
                .and_then(|decoded| self.judge(&decoded, 1, &mut budget));
            if let Some(payload) = verdict {
                let what = match payload {
                    Payload::Instruction => "an instruction to the model",
                    Payload::Command => "a shell command",
                };
                hits.push(Hit {
                    rule: RULE,
                    class: CLASS,
                    severity: Severity::High,
                    range: visible.original_range(blob.range.clone()),
                    replacement: Replacement::Remove,
                    detail: format!(
                        "{} blob of {} characters that decodes to {what}",
                        blob.encoding.name(),
                        blob.range.len()
                    ),
                });
            }
            budget.exhausted()
        });
    }
}

#[derive(Default)]
struct Budget {
    blobs: usize,
    bytes: usize,
}

impl Budget {
    fn exhausted(&self) -> bool {
        self.blobs >= MAX_BLOBS || self.bytes >= MAX_DECODED
    }
}

/// Lower case, whitespace runs folded to one space.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// `data:image/png;base64,` right before the blob: an inline image, not a message.
fn image_data_uri(text: &[u8], start: usize) -> bool {
    let before = &text[start.saturating_sub(64)..start];
    let Some(comma) = before.strip_suffix(b";base64,") else {
        return false;
    };
    memchr::memmem::rfind(comma, b"data:").is_some_and(|at| {
        let mime = &comma[at + 5..];
        [&b"image/"[..], b"audio/", b"video/", b"font/"]
            .iter()
            .any(|p| mime.starts_with(p))
    })
}

/// The decoded bytes of a blob when they are text (valid UTF-8, almost all printable).
fn decode_text(blob: &Blob, budget: &mut Budget) -> Option<String> {
    if budget.exhausted() {
        return None;
    }
    budget.blobs += 1;
    let bytes = match blob.encoding {
        Encoding::Base64 => {
            let mut chars = &blob.chars[..];
            if chars.len() % 4 == 1 {
                chars = &chars[..chars.len() - 1];
            }
            let url_safe = chars.iter().any(|&b| b == b'-' || b == b'_');
            let engine = if url_safe {
                &URL_SAFE_LENIENT
            } else {
                &STANDARD_LENIENT
            };
            engine.decode(chars).ok()?
        }
        Encoding::Hex => {
            let even = blob.chars.len() & !1;
            hex::decode(&blob.chars[..even]).ok()?
        }
        Encoding::Percent => percent_encoding::percent_decode(&blob.chars)
            .map(|b| if b == b'+' { b' ' } else { b })
            .collect(),
    };
    budget.bytes += bytes.len();
    let text = String::from_utf8(bytes).ok()?;
    let total = text.chars().count();
    let printable = text
        .chars()
        .filter(|&c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .count();
    (total >= 8 && printable * 100 >= total * 95).then_some(text)
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Base64 characters that the first of three ASCII text bytes encodes to (`I`–`Z`, `a`–`f`).
fn text_lead(b: u8) -> bool {
    matches!(b, b'I'..=b'Z' | b'a'..=b'f')
}

/// Calls `f` with every blob whose characters look like encoded text; `f` returns whether to stop.
/// Returns whether it was stopped. With `raw_json`, the JSON escapes `\n`, `\r` and `\/` inside a
/// run are read as what they stand for.
fn blobs(text: &[u8], raw_json: bool, f: &mut dyn FnMut(Blob) -> bool) -> bool {
    let n = text.len();
    let mut i = 0;
    while i < n {
        let b = text[i];
        if b == b'%' {
            let (end, blob) = percent_span(text, i);
            if let Some(blob) = blob {
                if f(blob) {
                    return true;
                }
            }
            i = end.max(i + 1);
            continue;
        }
        if !is_base64_byte(b) || (i > 0 && is_base64_byte(text[i - 1])) {
            i += 1;
            continue;
        }
        let (end, blob) = base64_or_hex_run(text, i, raw_json);
        if let Some(blob) = blob {
            if f(blob) {
                return true;
            }
        }
        i = end.max(i + 1);
    }
    false
}

/// Reads one run of base64 characters from `start` (line breaks inside it allowed) and returns its
/// end and, if it carries the encoded-text signature, the blob.
fn base64_or_hex_run(text: &[u8], start: usize, raw_json: bool) -> (usize, Option<Blob>) {
    let n = text.len();
    let mut i = start;
    let mut lead = [0usize; 4];
    let mut hex_lead = [0usize; 2];
    let mut count = 0usize;
    let mut all_hex = true;
    loop {
        let (c, step) = match text.get(i) {
            Some(&b) if is_base64_byte(b) => (b, 1),
            Some(b'\\') if raw_json && text.get(i + 1) == Some(&b'/') => (b'/', 2),
            Some(_) => {
                // A line break inside a wrapped blob continues it.
                let gap = line_break(text, i, raw_json);
                if gap > 0 && text.get(i + gap).is_some_and(|&b| is_base64_byte(b)) && count > 0 {
                    i += gap;
                    continue;
                }
                break;
            }
            None => break,
        };
        if text_lead(c) {
            lead[count % 4] += 1;
        }
        if matches!(c, b'2'..=b'7') {
            hex_lead[count % 2] += 1;
        }
        all_hex &= c.is_ascii_hexdigit();
        count += 1;
        i += step;
    }
    let mut end = i;
    while end < n && end - i < 2 && text[end] == b'=' {
        end += 1;
    }
    let share = |hits: usize, of: usize| of > 0 && hits as f64 >= of as f64 * SIGNATURE_SHARE;
    let encoding_and_offset = if all_hex && count >= MIN_HEX {
        (0..2)
            .find(|&a| share(hex_lead[a], (count - a).div_ceil(2)))
            .map(|a| (Encoding::Hex, a))
    } else if count >= MIN_BASE64 {
        (0..4)
            .find(|&a| share(lead[a], (count - a).div_ceil(4)))
            .map(|a| (Encoding::Base64, a))
    } else {
        None
    };
    let Some((encoding, offset)) = encoding_and_offset else {
        return (end, None);
    };
    let mut chars = Vec::with_capacity(count);
    let mut j = start;
    while j < i {
        match text[j] {
            b if is_base64_byte(b) => {
                chars.push(b);
                j += 1;
            }
            b'\\' if raw_json && text.get(j + 1) == Some(&b'/') => {
                chars.push(b'/');
                j += 2;
            }
            _ => j += line_break(text, j, raw_json).max(1),
        }
    }
    let chars = chars.split_off(offset);
    (
        end,
        Some(Blob {
            range: start..end,
            encoding,
            chars,
        }),
    )
}

/// Length of a line break at `i` (`\n`, `\r\n`, and in raw JSON their escapes), else 0.
fn line_break(text: &[u8], i: usize, raw_json: bool) -> usize {
    let rest = &text[i..];
    for brk in [&b"\r\n"[..], b"\n"] {
        if rest.starts_with(brk) {
            return brk.len();
        }
    }
    if raw_json {
        for brk in [&br"\r\n"[..], br"\n"] {
            if rest.starts_with(brk) {
                return brk.len();
            }
        }
    }
    0
}

/// A span of `%XX` escapes (unreserved characters may sit between them) that decodes to ASCII text.
fn percent_span(text: &[u8], start: usize) -> (usize, Option<Blob>) {
    let mut i = start;
    let mut triplets = 0usize;
    let mut texty = 0usize;
    let mut plain = 0usize;
    while i < text.len() {
        if text[i] == b'%'
            && text.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && text.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            triplets += 1;
            if matches!(text[i + 1], b'2'..=b'7') {
                texty += 1;
            }
            i += 3;
        } else if text[i].is_ascii_alphanumeric()
            || matches!(text[i], b'.' | b'_' | b'~' | b'+' | b'-')
        {
            plain += 1;
            i += 1;
        } else {
            break;
        }
    }
    let blob = (triplets >= MIN_PERCENT
        && triplets >= plain
        && texty as f64 >= triplets as f64 * SIGNATURE_SHARE)
        .then(|| Blob {
            range: start..i,
            encoding: Encoding::Percent,
            chars: text[start..i].to_vec(),
        });
    (i, blob)
}
