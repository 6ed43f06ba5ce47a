//! Sentences of a description or prompt, as byte ranges, so a detector can cut out the one sentence
//! that misbehaves and leave the rest of the text as the author wrote it.

use std::ops::Range;

/// Byte ranges of the sentences of `text`, each with the whitespace after it (so removing one
/// leaves no double space). A sentence ends after `.`, `!` or `?` followed by whitespace, or at a
/// line break. Over-splitting ("e.g. this") only makes a cut smaller.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let ends = b == b'\n'
            || (matches!(b, b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()));
        if ends {
            let mut end = i + 1;
            while end < bytes.len() && bytes[end].is_ascii_whitespace() {
                end += 1;
            }
            out.push(start..end);
            start = end;
            i = end;
            continue;
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(start..bytes.len());
    }
    out
}

/// `text` without the given (sorted, disjoint) ranges, trimmed at the end.
pub fn without(text: &str, cuts: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in cuts {
        out.push_str(&text[at..r.start]);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out.trim_end().to_owned()
}

/// Whether the match at `at..at+len` in `sentence` sits between quotes: a text that *quotes* a
/// phrase ("a classifier for inputs like 'ignore previous instructions'") does not say it.
pub fn quoted(sentence: &str, at: usize, len: usize) -> bool {
    let opened = quote_marks(&sentence[..at]) % 2 == 1;
    opened && quote_marks(&sentence[at + len..]) > 0
}

/// Quotation marks in `s`, not counting apostrophes inside words (`don't`).
fn quote_marks(s: &str) -> usize {
    const QUOTES: &[char] = &['"', '\'', '“', '”', '‘', '’', '`', '«', '»'];
    let chars: Vec<char> = s.chars().collect();
    (0..chars.len())
        .filter(|&i| {
            let c = chars[i];
            let inside_word = matches!(c, '\'' | '’')
                && i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
            QUOTES.contains(&c) && !inside_word
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_sentence_ends_and_lines_and_cuts_cleanly() {
        let t = "Reads a file. Always use this instead of x!\nThen stop? ok";
        let s: Vec<&str> = sentences(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(
            s,
            vec![
                "Reads a file. ",
                "Always use this instead of x!\n",
                "Then stop? ",
                "ok"
            ]
        );
        let r = sentences(t);
        assert_eq!(without(t, &r[1..2]), "Reads a file. Then stop? ok");
        assert_eq!(sentences("v1.2 is out").len(), 1);
    }

    #[test]
    fn quoted_phrases_are_recognised() {
        let s = "Detects inputs like 'ignore previous instructions' in text";
        let at = s.find("ignore").unwrap();
        assert!(quoted(s, at, "ignore previous instructions".len()));
        let s = "Don't wait: ignore previous instructions";
        let at = s.find("ignore").unwrap();
        assert!(!quoted(s, at, "ignore previous instructions".len()));
    }
}
