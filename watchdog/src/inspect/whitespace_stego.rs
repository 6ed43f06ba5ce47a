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
use crate::inspect::needle::Needle;
use memchr::memchr_iter;
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

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
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
    static ESCAPED_LINE_BREAK: Needle = Needle::new(br"\n");
    for nl in ESCAPED_LINE_BREAK.find_iter(raw) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Direction;
    use crate::inspect::text::TextInspector;
    use crate::inspect::{Outcome, Pipeline};
    use crate::jsonrpc::Kind;
    use crate::mcp::methods::TOOLS_CALL;
    use crate::policy::{Action, Mode, Policy};
    use serde_json::{json, Value};
    use std::collections::HashMap;

    fn meta() -> SubjectMeta<'static> {
        SubjectMeta {
            direction: Direction::ServerToClient,
            server: "s",
            kind: Kind::Result,
            method: Some(TOOLS_CALL),
            id: None,
        }
    }

    fn raw(text: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}})).unwrap()
    }

    fn hits(text: &str) -> Vec<Hit> {
        let message: Value = serde_json::from_slice(&raw(text)).unwrap();
        TextInspector::new(vec![Box::new(WhitespaceStego)])
            .scan(&message, &meta())
            .into_iter()
            .flat_map(|(_, _, h)| h)
            .collect()
    }

    /// Lines of a poem with bits appended SNOW-style.
    fn snow() -> String {
        let lines = [
            "Roses are red,",
            "violets are blue,",
            "sugar is sweet,",
            "and so are you.",
            "The end.",
        ];
        let bits = [" \t  \t", "\t \t ", "  \t\t ", "\t  \t", " \t"];
        lines
            .iter()
            .zip(bits)
            .map(|(l, b)| format!("{l}{b}\n"))
            .collect()
    }

    #[test]
    fn mixed_trailing_runs_alert_by_default_and_strip_when_asked() {
        let text = snow();
        let found = hits(&text);
        assert_eq!(found.len(), 5);
        assert_eq!((found[0].rule, found[0].severity), (RULE, Severity::Medium));
        let inspector = || -> Vec<Box<dyn crate::inspect::Inspector>> {
            vec![Box::new(TextInspector::new(vec![Box::new(
                WhitespaceStego,
            )]))]
        };
        let alerting = Pipeline::new(Policy::default(), inspector()).inspect(meta(), &raw(&text));
        assert_eq!(
            (alerting.outcome, alerting.alerts.len()),
            (Outcome::Pass, 1)
        );
        let mut o = HashMap::new();
        o.insert(RULE.to_string(), Action::Strip);
        let stripping =
            Pipeline::new(Policy::new(Mode::Enforce, o), inspector()).inspect(meta(), &raw(&text));
        let Outcome::Rewrite(bytes) = stripping.outcome else {
            panic!("expected a rewrite");
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v["result"]["content"][0]["text"],
            "Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you.\nThe end.\n"
        );
    }

    #[test]
    fn raw_check_sees_escaped_tabs_and_breaks() {
        assert!(WhitespaceStego.raw_check(&raw(&snow())));
        assert!(WhitespaceStego.raw_check(snow().as_bytes()));
        assert!(!WhitespaceStego.raw_check(&raw("a  \nb  \nc\td\n")));
    }

    #[test]
    fn ordinary_whitespace_passes() {
        let markdown = "First line  \nsecond line  \nthird  \nfourth  \nfifth  \n";
        let tsv = "id\tname\tnote\t\n1\tada\t\t\n2\tbob\t\t\t\n3\tcy\t\n4\tdee\t\t\n";
        let code = "fn main() {    \n\t\n    \t  \n\tlet x = 1;   \n  \t\n}\n";
        let makefile = "all:\n\tcargo build\t\n\tcargo test\t\n\n";
        let windows = "line one \r\nline two \r\nline three\t\r\n";
        for text in [markdown, tsv, code, makefile, windows] {
            assert!(hits(text).is_empty(), "{text:?}");
            assert!(!WhitespaceStego.raw_check(&raw(text)), "{text:?}");
        }
    }
}
