//! A case-preserving copy of a string with invisible characters removed.
//!
//! Keys, tokens and base64 are case-sensitive, so they cannot be matched on the lower-cased
//! [`Normalized`](super::text::Normalized) copy; but a zero-width space inside a key must not hide
//! it either. This copy keeps case and drops only what renders as nothing, with a map back to the
//! original's byte offsets.

use super::text::normalize::is_invisible;
use std::borrow::Cow;
use std::ops::Range;

pub struct VisibleText<'a> {
    pub text: Cow<'a, str>,
    /// For each byte of `text`, its byte offset in the original; `None` when nothing was dropped.
    origin: Option<Vec<u32>>,
    original_len: usize,
}

impl<'a> VisibleText<'a> {
    pub fn new(original: &'a str) -> Self {
        // Most traffic is ASCII or has no invisible characters: borrow, no map.
        if original.is_ascii() || !original.chars().any(is_invisible) {
            return VisibleText {
                text: Cow::Borrowed(original),
                origin: None,
                original_len: original.len(),
            };
        }
        let mut text = String::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        for (at, c) in original.char_indices() {
            if is_invisible(c) {
                continue;
            }
            text.push(c);
            origin.extend(std::iter::repeat_n(at as u32, c.len_utf8()));
        }
        VisibleText {
            text: Cow::Owned(text),
            origin: Some(origin),
            original_len: original.len(),
        }
    }

    /// The original byte range that a range of `text` came from (invisible characters inside the
    /// range included, so that redacting it removes them too).
    pub fn original_range(&self, r: Range<usize>) -> Range<usize> {
        let Some(origin) = &self.origin else {
            return r;
        };
        let at = |i: usize| origin.get(i).map_or(self.original_len, |&o| o as usize);
        let start = at(r.start);
        let end = if r.end >= origin.len() {
            // The last visible character may be followed by invisible ones: stop right after it.
            origin.last().map_or(self.original_len, |&o| {
                o as usize + last_char_len(&self.text)
            })
        } else {
            at(r.end)
        };
        start..end.max(start)
    }
}

fn last_char_len(s: &str) -> usize {
    s.chars().next_back().map_or(0, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_case_drops_invisible_and_maps_back() {
        let original = "key AK\u{200b}IAQ\u{00ad}X7 end";
        let v = VisibleText::new(original);
        assert_eq!(v.text, "key AKIAQX7 end");
        let at = v.text.find("AKIA").unwrap();
        let r = v.original_range(at..at + "AKIAQX7".len());
        assert_eq!(&original[r], "AK\u{200b}IAQ\u{00ad}X7");
    }

    #[test]
    fn plain_text_is_borrowed() {
        let v = VisibleText::new("東京 plain");
        assert!(matches!(v.text, Cow::Borrowed(_)));
        assert_eq!(v.original_range(0..3), 0..3);
    }

    #[test]
    fn range_to_the_end_stops_after_the_last_visible_character() {
        let original = "ab\u{200b}c\u{200b}";
        let v = VisibleText::new(original);
        assert_eq!(v.text, "abc");
        assert_eq!(&original[v.original_range(1..3)], "b\u{200b}c");
    }
}
