//! STEGO: bits hidden in whitespace at line ends (SNOW-style runs of tabs and spaces after the
//! visible text of a line). Nothing a person reads changes, so this only alerts by default; a policy
//! that strips removes the trailing runs and leaves the visible text as it was.
//!
//! Markdown hard breaks (two spaces), editor leftovers (spaces only) and tab-separated data with
//! empty last columns (tabs only) are ordinary; a run that mixes tabs and spaces after text, on
//! several lines, is not.

use super::text::{Hit, Replacement, Role, Site, TextDetector, TextView};
use super::SubjectMeta;
use crate::alert::Severity;
use memchr::{memchr_iter, memmem};
use std::ops::Range;

pub const RULE: &str = "STEGO";
const CLASS: &str = "whitespace steganography";
/// Lines with a mixed trailing run before a text counts as carrying hidden bits.
const MIN_MIXED_LINES: usize = 4;
const MAX_RUN: usize = 512;

pub struct WhitespaceStego;

impl TextDetector for WhitespaceStego {
    fn name(&self) -> &'static str {
        "whitespace-stego"
    }

    fn triggers(&self) -> &'static [&'static str] {
        &[]
    }

    fn raw_check(&self, raw: &[u8]) -> bool {
        mixed_runs_in_json(raw) >= MIN_MIXED_LINES || mixed_runs(raw).len() >= MIN_MIXED_LINES
    }

    fn applies(&self, _meta: &SubjectMeta<'_>, site: &Site) -> bool {
        matches!(site.role, Role::Content | Role::Metadata) && !site.is_key
    }

    fn scan(&self, view: &TextView<'_>, hits: &mut Vec<Hit>) {
        let runs = mixed_runs(view.original.as_bytes());
        if runs.len() < MIN_MIXED_LINES {
            return;
        }
        let lines = runs.len();
        for range in runs {
            hits.push(Hit {
                rule: RULE,
                class: CLASS,
                severity: Severity::Medium,
                range,
                replacement: Replacement::Remove,
                detail: format!("tabs and spaces after the text of {lines} lines"),
            });
        }
    }
}

/// Trailing runs (before `\n` or `\r\n`, after visible text) that mix tabs and spaces.
fn mixed_runs(text: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for nl in memchr_iter(b'\n', text) {
        let end = if nl > 0 && text[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let len = text[..end]
            .iter()
            .rev()
            .take(MAX_RUN)
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let start = end - len;
        let after_text = start > 0 && !matches!(text[start - 1], b'\n' | b'\r');
        let run = &text[start..end];
        if after_text && run.contains(&b' ') && run.contains(&b'\t') {
            out.push(start..end);
        }
    }
    out
}

/// The same count on raw JSON, where a tab is `\t` and a line break `\n`.
fn mixed_runs_in_json(raw: &[u8]) -> usize {
    let mut count = 0;
    for nl in memmem::find_iter(raw, br"\n") {
        let mut end = nl;
        if raw[..end].ends_with(br"\r") {
            end -= 2;
        }
        let (mut tab, mut space) = (false, false);
        let mut i = end;
        while end - i < MAX_RUN {
            if i >= 1 && raw[i - 1] == b' ' {
                space = true;
                i -= 1;
            } else if i >= 2 && &raw[i - 2..i] == br"\t" {
                tab = true;
                i -= 2;
            } else {
                break;
            }
        }
        let after_text = i > 0 && raw[i - 1] != b'"' && !raw[..i].ends_with(br"\n");
        if tab && space && after_text {
            count += 1;
        }
    }
    count
}
