//! Terminal escape sequences in tool text: they hide text, move the cursor, retitle the window,
//! write the clipboard or plant hyperlinks when a client prints them to a terminal. No tool text
//! needs them, so every sequence goes, whole (not just its ESC, which would leave `[8m` litter).
//!
//! The scanner follows ECMA-48's shapes by hand because the byte range of each sequence is what is
//! needed, including sequences left unterminated; terminal-emulator parsers (vte) report actions,
//! not ranges.

use super::{response_text, RULE};
use crate::alert::Severity;
use crate::inspect::text::{Hit, Replacement, Site, TextDetector, TextView};
use crate::inspect::SubjectMeta;
use std::ops::Range;

pub const CLASS: &str = "terminal escapes";

pub struct TerminalEscapes;

const ESC: char = '\u{1B}';
const BEL: char = '\u{07}';
/// 8-bit introducers: CSI, OSC, DCS, SOS, PM, APC; and ST, the string terminator.
const C1_CSI: char = '\u{9B}';
const C1_ST: char = '\u{9C}';

const TRIGGERS: &[&str] = &[
    "\u{1B}", "\\u001b", "\u{9B}", "\\u009b", "\u{9D}", "\\u009d", "\u{90}", "\\u0090", "\u{98}",
    "\\u0098", "\u{9E}", "\\u009e", "\u{9F}", "\\u009f",
];

impl TextDetector for TerminalEscapes {
    fn name(&self) -> &'static str {
        "smac1-terminal-escapes"
    }

    fn rules(&self) -> &'static [&'static str] {
        &[RULE]
    }

    fn triggers(&self) -> &'static [&'static str] {
        TRIGGERS
    }

    fn applies(&self, meta: &SubjectMeta<'_>, site: &Site) -> bool {
        response_text(meta, site)
    }

    fn scan(&self, text: &TextView<'_>, hits: &mut Vec<Hit>) {
        for (range, kind) in sequences(text.original) {
            let (severity, what) = judge(&text.original[range.clone()], kind);
            hits.push(Hit {
                rule: RULE,
                class: CLASS,
                severity,
                range,
                replacement: Replacement::Remove,
                detail: format!("terminal escape sequence: {what}"),
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Control sequence: `ESC [` or 0x9B, parameters, intermediates, a final byte.
    Control,
    /// A string (OSC, DCS, SOS, PM, APC) up to BEL or ST, or to the end when unterminated.
    Command { osc: bool },
    /// `ESC` and one to a few bytes (charset selection, save/restore cursor, reset).
    Short,
}

/// Every escape sequence in `text`, with its byte range.
fn sequences(text: &str) -> Vec<(Range<usize>, Kind)> {
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let introducer = match c {
            ESC => match chars.peek().map(|&(_, n)| n) {
                Some('[') => {
                    chars.next();
                    Some(Kind::Control)
                }
                Some(n @ (']' | 'P' | 'X' | '^' | '_')) => {
                    chars.next();
                    Some(Kind::Command { osc: n == ']' })
                }
                _ => Some(Kind::Short),
            },
            C1_CSI => Some(Kind::Control),
            '\u{9D}' => Some(Kind::Command { osc: true }),
            '\u{90}' | '\u{98}' | '\u{9E}' | '\u{9F}' => Some(Kind::Command { osc: false }),
            _ => None,
        };
        let Some(kind) = introducer else { continue };
        let mut end = text.len();
        match kind {
            Kind::Control => {
                // Parameters 0x30–0x3F, intermediates 0x20–0x2F, final 0x40–0x7E; anything else
                // ends a malformed sequence before it.
                end = start + c.len_utf8() + usize::from(c == ESC);
                while let Some(&(at, n)) = chars.peek() {
                    match n {
                        '\u{30}'..='\u{3F}' | '\u{20}'..='\u{2F}' => {
                            chars.next();
                            end = at + 1;
                        }
                        '\u{40}'..='\u{7E}' => {
                            chars.next();
                            end = at + 1;
                            break;
                        }
                        _ => break,
                    }
                }
            }
            Kind::Command { .. } => {
                while let Some((at, n)) = chars.next() {
                    match n {
                        BEL | C1_ST => {
                            end = at + n.len_utf8();
                            break;
                        }
                        ESC if chars.peek().map(|&(_, n)| n) == Some('\\') => {
                            chars.next();
                            end = at + 2;
                            break;
                        }
                        _ => {}
                    }
                }
            }
            Kind::Short => {
                end = start + 1;
                // nF: intermediates then one final; Fp/Fe/Fs: one byte 0x30–0x7E.
                while let Some(&(at, n)) = chars.peek() {
                    match n {
                        '\u{20}'..='\u{2F}' => {
                            chars.next();
                            end = at + 1;
                        }
                        '\u{30}'..='\u{7E}' => {
                            chars.next();
                            end = at + 1;
                            break;
                        }
                        _ => break,
                    }
                }
            }
        }
        found.push((start..end, kind));
    }
    found
}

/// Sequences that hide or rewrite what the person sees, or act outside the text, are high;
/// colours and other styling low.
fn judge(sequence: &str, kind: Kind) -> (Severity, &'static str) {
    match kind {
        Kind::Command { osc: true } => {
            let body = sequence.trim_start_matches([ESC, ']', '\u{9D}']);
            let code = body.split(';').next().unwrap_or_default();
            match code {
                "0" | "1" | "2" => (Severity::High, "sets the window title"),
                "8" => (Severity::High, "plants a hyperlink"),
                "52" => (Severity::High, "writes the clipboard"),
                _ => (Severity::High, "operating system command"),
            }
        }
        Kind::Command { osc: false } => (Severity::High, "device control string"),
        Kind::Control => {
            let final_byte = sequence.chars().last().unwrap_or_default();
            let params = sequence.trim_start_matches([ESC, '[', C1_CSI]);
            let params = params.strip_suffix(final_byte).unwrap_or(params);
            match final_byte {
                'm' if params.split(';').any(|p| p == "8") => (Severity::High, "conceals text"),
                'm' => (Severity::Low, "styling"),
                'A'..='H' | 'J' | 'K' | 'f' | 'd' | 's' | 'u' | 'S' | 'T' | 'L' | 'M' | 'P' => {
                    (Severity::High, "moves the cursor or erases text")
                }
                _ => (Severity::Medium, "control sequence"),
            }
        }
        Kind::Short => match sequence.chars().nth(1) {
            Some('7' | '8' | 'c' | 'M' | 'D' | 'E') => {
                (Severity::High, "moves the cursor or resets the terminal")
            }
            _ => (Severity::Medium, "escape"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{enforce, scan};
    use super::*;
    use crate::inspect::text::Role;

    fn stripped(text: &str) -> String {
        enforce(Box::new(TerminalEscapes), Role::Content, text).0
    }

    fn severity(text: &str) -> Option<Severity> {
        scan(Box::new(TerminalEscapes), Role::Content, text)
            .iter()
            .map(|h| h.severity)
            .max()
    }

    // --- attacks ---

    #[test]
    fn csi_sequences_go_whole() {
        assert_eq!(
            stripped("ok\u{1B}[8mhidden instructions\u{1B}[0m done"),
            "okhidden instructions done"
        );
        assert_eq!(severity("ok\u{1B}[8mhidden\u{1B}[0m"), Some(Severity::High));
        assert_eq!(stripped("line\u{1B}[2K\u{1B}[1Areplaced"), "linereplaced");
        assert_eq!(severity("line\u{1B}[2K\u{1B}[1A"), Some(Severity::High));
        assert_eq!(stripped("\u{1B}[31mred\u{1B}[0m"), "red");
        assert_eq!(severity("\u{1B}[31mred\u{1B}[0m"), Some(Severity::Low));
        assert_eq!(stripped("\u{1B}[38;5;196mX"), "X");
    }

    #[test]
    fn eight_bit_csi_goes_whole() {
        assert_eq!(stripped("a\u{9B}2Jb"), "ab");
        assert_eq!(severity("a\u{9B}2Jb"), Some(Severity::High));
    }

    #[test]
    fn osc_sequences_go_up_to_their_terminator() {
        assert_eq!(
            stripped("see \u{1B}]8;;https://evil.example\u{07}docs\u{1B}]8;;\u{07} here"),
            "see docs here"
        );
        assert_eq!(stripped("\u{1B}]0;pwned\u{1B}\\title"), "title");
        assert_eq!(stripped("\u{1B}]52;c;Y3VybCBldmlsCg==\u{07}ok"), "ok");
        assert_eq!(severity("\u{1B}]52;c;Zm9v\u{07}"), Some(Severity::High));
        // Unterminated: to the end of the string.
        assert_eq!(stripped("keep \u{1B}]2;never ends"), "keep ");
        assert_eq!(stripped("x\u{9D}0;t\u{9C}y"), "xy");
    }

    #[test]
    fn short_escapes_and_a_lone_esc_go() {
        assert_eq!(stripped("a\u{1B}7b\u{1B}8c"), "abc");
        assert_eq!(stripped("a\u{1B}(Bb"), "ab");
        assert_eq!(stripped("end\u{1B}"), "end");
    }

    #[test]
    fn escapes_in_metadata_go_too() {
        let (out, alerts) = enforce(
            Box::new(TerminalEscapes),
            Role::Metadata,
            "Reads\u{1B}[8m secretly\u{1B}[0m",
        );
        assert_eq!(out, "Reads secretly");
        assert_eq!(alerts.len(), 1);
    }

    // --- benign twins ---

    #[test]
    fn escapes_described_in_prose_pass() {
        for text in [
            "Use \\x1b[31m to print red; \\033[0m resets.",
            "In JSON the escape is written \\u001b[0m",
            "printf '\\e[1mbold\\e[0m'",
            "The ESC key (0x1B) cancels; the CSI byte is 0x9B.",
            "Brackets [31m] and ]0; in plain text",
            "€ 100, ü, — and … are fine",
        ] {
            assert_eq!(severity(text), None, "{text}");
            assert_eq!(stripped(text), text);
        }
    }
}
