//! Applying strip and redact edits to one string, leaving every other byte as it was.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub replacement: String,
}

/// Applies the edits (ranges in `text`, any order). Overlapping edits merge into one that spans
/// them all and takes the first replacement. Ranges are clamped to char boundaries.
pub fn apply_edits(text: &str, mut edits: Vec<Edit>) -> String {
    edits.retain(|e| e.range.start < e.range.end);
    edits.sort_by_key(|e| (e.range.start, std::cmp::Reverse(e.range.end)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0usize;
    let mut i = 0;
    while i < edits.len() {
        let mut range = clamp(text, edits[i].range.clone());
        let replacement = edits[i].replacement.clone();
        i += 1;
        while i < edits.len() && edits[i].range.start < range.end {
            range.end = range.end.max(clamp(text, edits[i].range.clone()).end);
            i += 1;
        }
        if range.start < at {
            range.start = at;
        }
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end.max(at);
    }
    out.push_str(&text[at.min(text.len())..]);
    out
}

fn clamp(text: &str, r: Range<usize>) -> Range<usize> {
    let mut start = r.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = r.end.min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(r: Range<usize>, s: &str) -> Edit {
        Edit {
            range: r,
            replacement: s.into(),
        }
    }

    #[test]
    fn applies_in_any_order_and_keeps_the_rest() {
        assert_eq!(
            apply_edits("abcdefgh", vec![e(6..8, "X"), e(0..2, "")]),
            "cdefX"
        );
        assert_eq!(apply_edits("abc", vec![]), "abc");
    }

    #[test]
    fn merges_overlaps_and_respects_char_boundaries() {
        assert_eq!(
            apply_edits("0123456789", vec![e(2..5, "[R]"), e(4..7, "[S]")]),
            "01[R]789"
        );
        assert_eq!(apply_edits("aé b", vec![e(2..3, "")]), "a b");
    }
}
