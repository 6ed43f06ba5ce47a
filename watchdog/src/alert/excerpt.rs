//! Short, masked excerpts of evidence: enough for a person to recognise the finding, never enough to
//! copy a secret out of the audit log.

/// How many characters of evidence an alert keeps.
pub const EXCERPT_CHARS: usize = 120;

/// Runs of token-like characters at least this long are masked: secrets, keys and ids look like that.
const MASK_RUN: usize = 16;

/// Returns at most [`EXCERPT_CHARS`] characters of `evidence`, lossily decoded, with control
/// characters made visible and long token-like runs reduced to their first four characters.
pub fn redacted_excerpt(evidence: &[u8]) -> String {
    let text = String::from_utf8_lossy(evidence);
    let mut out = String::with_capacity(EXCERPT_CHARS + 8);
    let mut run = String::new();
    let mut truncated = false;
    for (taken, ch) in text.chars().enumerate() {
        if taken >= EXCERPT_CHARS {
            truncated = true;
            break;
        }
        if ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '+' | '/' | '=' | '.') {
            run.push(ch);
            continue;
        }
        flush_run(&mut out, &mut run);
        push_visible(&mut out, ch);
    }
    flush_run(&mut out, &mut run);
    if truncated {
        out.push('…');
    }
    out
}

fn flush_run(out: &mut String, run: &mut String) {
    if run.chars().count() >= MASK_RUN {
        out.extend(run.chars().take(4));
        out.push_str("…[masked]");
    } else {
        out.push_str(run);
    }
    run.clear();
}

fn push_visible(out: &mut String, ch: char) {
    match ch {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() || is_invisible(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Format characters that render as nothing; shown escaped so the excerpt itself hides nothing.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF | 0xE0000..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_long_tokens_and_keeps_words() {
        let e = redacted_excerpt(b"token ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked");
        assert_eq!(e, "token ghp_…[masked] leaked");
    }

    #[test]
    fn shows_invisible_and_control_characters() {
        let e = redacted_excerpt("a\u{200b}b\x1b[2J\n".as_bytes());
        assert_eq!(e, "a\\u{200b}b\\u{001b}[2J\\n");
    }

    #[test]
    fn truncates_long_evidence() {
        let long = "word ".repeat(100);
        let e = redacted_excerpt(long.as_bytes());
        assert!(e.ends_with('…'));
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
    }
}
