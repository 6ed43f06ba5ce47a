//! Replacing byte ranges of a text, all at once.

use std::ops::Range;

/// Replace `range` of the original text with `text` (an empty range inserts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

impl Edit {
    pub fn replace(range: Range<usize>, text: impl Into<String>) -> Edit {
        Edit {
            range,
            text: text.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<String>) -> Edit {
        Edit::replace(at..at, text)
    }

    pub fn delete(range: Range<usize>) -> Edit {
        Edit::replace(range, "")
    }
}

/// Applies `edits` (ranges of the original `text`, in any order) in one pass.
///
/// # Panics
/// If two edits overlap: the planner that made them has a bug, and guessing an order could
/// corrupt a user's config.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let mut out = String::with_capacity(text.len() + 256);
    let mut at = 0;
    for edit in &edits {
        assert!(edit.range.start >= at, "overlapping edits: {edits:?}");
        out.push_str(&text[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_in_text_order_whatever_the_given_order() {
        let out = apply(
            "abcdef",
            vec![
                Edit::delete(4..5),
                Edit::insert(0, ">"),
                Edit::replace(1..3, "XY"),
                Edit::insert(3, "-"),
            ],
        );
        assert_eq!(out, ">aXY-df");
    }

    #[test]
    #[should_panic(expected = "overlapping edits")]
    fn overlapping_edits_are_a_bug() {
        apply("abcdef", vec![Edit::delete(1..4), Edit::delete(2..3)]);
    }
}
