//! The matching copy of a string: what a model would read, with disguises removed.
//!
//! Steps: encodings a model reads through decoded (HTML entities, percent-encoding, JSON `\uXXXX`
//! escapes written out as text), up to [`DECODE_ROUNDS`] times so that `%26lt%3B` still becomes `<`;
//! then per character: invisible characters dropped, compatibility forms folded (NFKC), confusable
//! letters mapped to their Latin prototype (UTS #39 skeleton), lower-cased. Every byte of the copy
//! maps back to the byte offset of the original character (or the whole encoded form) it came from,
//! so a finding in the copy becomes an exact range in the original. The client never receives this
//! copy.

use std::borrow::Cow;
use std::ops::Range;
use unicode_normalization::UnicodeNormalization;

/// How many layers of encoding are peeled off: enough for double encoding, bounded for adversarial
/// input (each round is linear in the string).
pub const DECODE_ROUNDS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    /// For each byte of `text`, the byte offset in the original of the character it came from;
    /// `None` when the copy is the original lower-cased byte for byte (plain ASCII, nothing encoded).
    origin: Option<Vec<u32>>,
    original_len: usize,
}

/// Characters that render as nothing (or as formatting only) and can hide between letters.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD                 // soft hyphen
        | 0x034F               // combining grapheme joiner
        | 0x061C               // arabic letter mark
        | 0x115F | 0x1160      // hangul fillers
        | 0x17B4 | 0x17B5
        | 0x180B..=0x180F      // mongolian variation selectors
        | 0x200B..=0x200F      // zero width space/non-joiner/joiner, LRM, RLM
        | 0x202A..=0x202E      // bidi embeddings and overrides
        | 0x2060..=0x2064      // word joiner, invisible operators
        | 0x2066..=0x2069      // bidi isolates
        | 0x206A..=0x206F
        | 0x3164 | 0xFFA0
        | 0xFE00..=0xFE0F      // variation selectors
        | 0xFEFF               // BOM / zero width no-break space
        | 0xE0000..=0xE007F    // tag characters
        | 0xE0100..=0xE01EF) // variation selectors supplement
}

impl Normalized {
    pub fn new(original: &str) -> Normalized {
        // Fast path: nothing encoded, nothing to fold but ASCII case; offsets are the identity.
        if original.is_ascii() && !original.bytes().any(|b| matches!(b, b'&' | b'%' | b'\\')) {
            return Normalized {
                text: original.to_ascii_lowercase(),
                origin: None,
                original_len: original.len(),
            };
        }
        let decoded = decode(original);
        let (source, map): (&str, Option<&[u32]>) = match &decoded {
            Some((s, m)) => (s, Some(m)),
            None => (original, None),
        };
        let at_original = |at: usize| map.map_or(at as u32, |m| m[at]);
        let mut text = String::with_capacity(source.len());
        let mut origin = Vec::with_capacity(source.len());
        let mut buf = [0u8; 4];
        for (at, c) in source.char_indices() {
            if is_invisible(c) {
                continue;
            }
            let from = at_original(at);
            if c.is_ascii() {
                text.push(c.to_ascii_lowercase());
                origin.push(from);
                continue;
            }
            for folded in c.encode_utf8(&mut buf).nfkc().flat_map(char::to_lowercase) {
                if folded.is_ascii() {
                    text.push(folded);
                    origin.push(from);
                    continue;
                }
                let mut one = [0u8; 4];
                for f in unicode_security::skeleton(folded.encode_utf8(&mut one))
                    .flat_map(char::to_lowercase)
                {
                    let before = text.len();
                    text.push(f);
                    origin.extend(std::iter::repeat_n(from, text.len() - before));
                }
            }
        }
        Normalized {
            text,
            origin: Some(origin),
            original_len: original.len(),
        }
    }

    /// The original byte range a range of the normalized text came from (whole characters, whole
    /// encoded forms).
    pub fn original_range(&self, r: Range<usize>) -> Range<usize> {
        let Some(origin) = &self.origin else {
            let start = r.start.min(self.original_len);
            return start..r.end.clamp(start, self.original_len);
        };
        if r.start >= origin.len() {
            return self.original_len..self.original_len;
        }
        let start = origin[r.start] as usize;
        let end = if r.end >= origin.len() {
            self.original_len
        } else {
            // The original character at `r.end` starts right after what the range covers.
            origin[r.end] as usize
        };
        start..end.max(start)
    }
}

/// Peels encodings off `original`, at most [`DECODE_ROUNDS`] times. Returns the decoded text and,
/// for each of its bytes, the offset in `original` of the encoded form it came from; `None` when
/// nothing was encoded.
fn decode(original: &str) -> Option<(String, Vec<u32>)> {
    let mut current: Option<(String, Vec<u32>)> = None;
    for _ in 0..DECODE_ROUNDS {
        let input = current.as_ref().map_or(original, |(s, _)| s.as_str());
        let Some((next, map)) = decode_round(input) else {
            break;
        };
        // Compose: a byte of this round points into the previous round, which points into the
        // original.
        let map = match &current {
            Some((_, previous)) => map.iter().map(|&at| previous[at as usize]).collect(),
            None => map,
        };
        current = Some((next, map));
    }
    current
}

/// One layer: entities, percent-encoded runs and `\u` escapes, left to right. `None` when the
/// input holds none of them.
fn decode_round(input: &str) -> Option<(String, Vec<u32>)> {
    let bytes = input.as_bytes();
    let mut first = memchr::memchr3(b'&', b'%', b'\\', bytes)?;
    let mut out = String::with_capacity(input.len());
    let mut map: Vec<u32> = Vec::with_capacity(input.len());
    let mut copied = 0usize;
    let mut changed = false;
    loop {
        let at = first;
        let decoded = match bytes[at] {
            b'&' => html_entity(input, at),
            b'%' => percent_run(input, at),
            _ => json_unicode_escape(input, at),
        };
        let next_search = match decoded {
            Some((text, end)) => {
                push_identity(&mut out, &mut map, input, copied, at);
                out.push_str(&text);
                map.extend(std::iter::repeat_n(at as u32, text.len()));
                copied = end;
                changed = true;
                end
            }
            None => at + 1,
        };
        match memchr::memchr3(b'&', b'%', b'\\', &bytes[next_search..]) {
            Some(i) => first = next_search + i,
            None => break,
        }
    }
    if !changed {
        return None;
    }
    push_identity(&mut out, &mut map, input, copied, input.len());
    Some((out, map))
}

fn push_identity(out: &mut String, map: &mut Vec<u32>, input: &str, from: usize, to: usize) {
    out.push_str(&input[from..to]);
    map.extend((from..to).map(|i| i as u32));
}

/// Legacy references browsers decode without a `;`.
const SEMICOLONLESS: &[&str] = &["lt", "gt", "amp", "quot"];

/// `&name;`, `&#60;`, `&#x3C;` (and the forms browsers accept without `;`) at `at`: the decoded
/// text and where the reference ends.
fn html_entity(input: &str, at: usize) -> Option<(Cow<'static, str>, usize)> {
    let bytes = input.as_bytes();
    let body_start = at + 1;
    let numeric = bytes.get(body_start) == Some(&b'#');
    let hex = numeric && matches!(bytes.get(body_start + 1), Some(b'x' | b'X'));
    let digits_start = body_start + usize::from(numeric) + usize::from(hex);
    let valid = |b: u8| {
        if hex {
            b.is_ascii_hexdigit()
        } else if numeric {
            b.is_ascii_digit()
        } else {
            b.is_ascii_alphanumeric()
        }
    };
    let digits_end = digits_start
        + bytes[digits_start.min(bytes.len())..]
            .iter()
            .take(32)
            .take_while(|&&b| valid(b))
            .count();
    if digits_end == digits_start {
        return None;
    }
    let terminated = bytes.get(digits_end) == Some(&b';');
    let end = digits_end + usize::from(terminated);
    if numeric {
        let radix = if hex { 16 } else { 10 };
        let value = u32::from_str_radix(&input[digits_start..digits_end], radix).ok()?;
        let c = char::from_u32(value).filter(|&c| c != '\0')?;
        return Some((Cow::Owned(c.to_string()), end));
    }
    let name = &input[digits_start..digits_end];
    if !terminated && !SEMICOLONLESS.contains(&name) {
        return None;
    }
    let reference = format!("&{name};");
    match html_escape::decode_html_entities(&reference) {
        Cow::Owned(decoded) if decoded != reference => Some((Cow::Owned(decoded), end)),
        _ => None,
    }
}

/// A run of `%XX` triplets at `at`, when its bytes are UTF-8: the decoded text and where the run
/// ends. A run that is not UTF-8 (`100%ff`) stays as written.
fn percent_run(input: &str, at: usize) -> Option<(Cow<'static, str>, usize)> {
    let bytes = input.as_bytes();
    let mut end = at;
    while bytes.get(end) == Some(&b'%')
        && bytes.get(end + 1).is_some_and(u8::is_ascii_hexdigit)
        && bytes.get(end + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        end += 3;
    }
    if end == at {
        return None;
    }
    let raw: Vec<u8> = percent_encoding::percent_decode_str(&input[at..end]).collect();
    let text = String::from_utf8(raw).ok()?;
    Some((Cow::Owned(text), end))
}

/// `\uXXXX` (a surrogate pair as two) at `at`, as JSON writes it: the decoded character and where
/// the escape ends. Lone surrogates stay as written.
fn json_unicode_escape(input: &str, at: usize) -> Option<(Cow<'static, str>, usize)> {
    let unit = |from: usize| -> Option<u32> {
        let bytes = input.as_bytes();
        if bytes.get(from) != Some(&b'\\') || bytes.get(from + 1) != Some(&b'u') {
            return None;
        }
        let hex = input.get(from + 2..from + 6)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    };
    let high = unit(at)?;
    let (value, end) = if (0xD800..0xDC00).contains(&high) {
        let low = unit(at + 6).filter(|l| (0xDC00..0xE000).contains(l))?;
        (0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00), at + 12)
    } else {
        (high, at + 6)
    };
    let c = char::from_u32(value)?;
    Some((Cow::Owned(c.to_string()), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_invisible_characters_and_maps_back() {
        let original = "ig\u{200b}nore prev\u{00ad}ious";
        let n = Normalized::new(original);
        assert_eq!(n.text, "ignore previous");
        let at = n.text.find("previous").unwrap();
        let r = n.original_range(at..at + "previous".len());
        assert_eq!(&original[r], "prev\u{00ad}ious");
    }

    #[test]
    fn folds_compatibility_forms_case_and_homoglyphs() {
        assert_eq!(Normalized::new("ＩＭＰＯＲＴＡＮＴ").text, "important");
        // Cyrillic а and о in a Latin word.
        assert_eq!(Normalized::new("ign\u{043e}re").text, "ignore");
        assert_eq!(Normalized::new("<SYSTEM>").text, "<system>");
    }

    #[test]
    fn plain_ascii_maps_one_to_one() {
        let n = Normalized::new("Ignore THIS");
        assert_eq!(n.text, "ignore this");
        assert_eq!(n.original_range(7..11), 7..11);
        assert_eq!(n.original_range(7..99), 7..11);
    }

    #[test]
    fn html_entities_decode_and_map_to_the_whole_reference() {
        let original = "a &lt;IMPORTANT&gt; b &#x3C;x&#62; &amp;amp; &quot;q&quot";
        let n = Normalized::new(original);
        assert_eq!(n.text, "a <important> b <x> & \"q\"");
        let at = n.text.find("<important>").unwrap();
        let r = n.original_range(at..at + "<important>".len());
        assert_eq!(&original[r], "&lt;IMPORTANT&gt;");
        // Semicolon-less numeric references, as browsers read them.
        assert_eq!(Normalized::new("&#60SYSTEM&#62").text, "<system>");
        // Not references: left as written.
        assert_eq!(
            Normalized::new("AT&T R&D &nosuch; & ;").text,
            "at&t r&d &nosuch; & ;"
        );
    }

    #[test]
    fn double_encodings_peel_to_the_bounded_depth() {
        assert_eq!(Normalized::new("%26lt%3BSYSTEM%26gt%3B").text, "<system>");
        assert_eq!(Normalized::new("%253Cb%253E").text, "<b>");
        // A third layer stays encoded.
        assert_eq!(Normalized::new("%25253C").text, "%3c");
        let original = "x %2526lt%253B y";
        let n = Normalized::new(original);
        assert_eq!(n.text, "x &lt; y");
    }

    #[test]
    fn percent_runs_decode_only_to_utf8() {
        // A Cyrillic а, percent-encoded, is still a look-alike of a Latin a.
        let original = "ignore %D0%B0ll 100%ff 50% off %zz";
        let n = Normalized::new(original);
        assert_eq!(n.text, "ignore all 100%ff 50% off %zz");
        let at = n.text.find("all").unwrap();
        let r = n.original_range(at..at + 1);
        assert_eq!(&original[r], "%D0%B0");
    }

    #[test]
    fn json_unicode_escapes_written_as_text_decode() {
        let original = r#"{"d": "\u003cIMPORTANT\u003e read \ud83d\ude00 \ud800x"}"#;
        let n = Normalized::new(original);
        assert!(
            n.text.contains("<important> read 😀 \\ud800x"),
            "{}",
            n.text
        );
        let at = n.text.find("<important>").unwrap();
        let r = n.original_range(at..at + 1);
        assert_eq!(&original[r], "\\u003c");
        // An escaped invisible character disappears like a real one.
        assert_eq!(Normalized::new("ig\\u200bnore").text, "ignore");
        // A Windows path with no escape shape is left alone.
        assert_eq!(Normalized::new(r"C:\Users\me").text, r"c:\users\me");
    }

    #[test]
    fn non_latin_text_survives_in_some_form() {
        let n = Normalized::new("héllo 東京 😀");
        assert!(n.text.contains("東京"));
        assert!(n.text.contains('😀'));
    }
}
