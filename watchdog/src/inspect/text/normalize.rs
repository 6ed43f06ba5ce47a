//! The matching copy of a string: what a model would read, with disguises removed.
//!
//! Steps, per character: invisible characters dropped, compatibility forms folded (NFKC), confusable
//! letters mapped to their Latin prototype (UTS #39 skeleton), lower-cased. Every byte of the copy
//! maps back to the byte offset of the original character it came from, so a finding in the copy
//! becomes an exact range in the original. The client never receives this copy.

use std::ops::Range;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub text: String,
    /// For each byte of `text`, the byte offset in the original of the character it came from.
    origin: Vec<u32>,
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
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        let mut buf = [0u8; 4];
        for (at, c) in original.char_indices() {
            if is_invisible(c) {
                continue;
            }
            if c.is_ascii() {
                text.push(c.to_ascii_lowercase());
                origin.push(at as u32);
                continue;
            }
            for folded in c.encode_utf8(&mut buf).nfkc().flat_map(char::to_lowercase) {
                if folded.is_ascii() {
                    text.push(folded);
                    origin.push(at as u32);
                    continue;
                }
                let mut one = [0u8; 4];
                for f in unicode_security::skeleton(folded.encode_utf8(&mut one))
                    .flat_map(char::to_lowercase)
                {
                    let before = text.len();
                    text.push(f);
                    origin.extend(std::iter::repeat_n(at as u32, text.len() - before));
                }
            }
        }
        Normalized {
            text,
            origin,
            original_len: original.len(),
        }
    }

    /// The original byte range a range of the normalized text came from (whole characters).
    pub fn original_range(&self, r: Range<usize>) -> Range<usize> {
        if r.start >= self.origin.len() {
            return self.original_len..self.original_len;
        }
        let start = self.origin[r.start] as usize;
        let end = if r.end >= self.origin.len() {
            self.original_len
        } else {
            // The original character at `r.end` starts right after what the range covers.
            self.origin[r.end] as usize
        };
        start..end.max(start)
    }
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
    fn non_latin_text_survives_in_some_form() {
        let n = Normalized::new("héllo 東京 😀");
        assert!(n.text.contains("東京"));
        assert!(n.text.contains('😀'));
    }
}
