//! The one-line, human-readable form of an alert for stderr.

use crate::alert::model::{Alert, Severity};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

const RESET: &str = "\x1b[0m";

/// Whether to colour stderr, following no-color.org: only on a terminal, and never when `NO_COLOR`
/// is set to a non-empty value.
pub fn colour_enabled(stderr_is_tty: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_tty && no_color.is_none_or(OsStr::is_empty)
}

/// [`colour_enabled`] for this process's stderr and environment.
pub fn colour_enabled_for_stderr() -> bool {
    colour_enabled(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "\x1b[2m",
        Severity::Low => "\x1b[36m",
        Severity::Medium => "\x1b[33m",
        Severity::High => "\x1b[1;31m",
        Severity::Critical => "\x1b[1;97;41m",
    }
}

/// Formats `alert` as one line (without newline), e.g.
/// `mcp-watchdog: HIGH TOOL-POLICY tool denied by policy — blocked call to x [action=blocked server=demo method=tools/call id=7]  "excerpt"`.
/// A repeat summary ends with how many repeats `window` saw.
pub fn human_line(alert: &Alert, colour: bool, window: Duration) -> String {
    let mut line = String::from("mcp-watchdog: ");
    let severity = alert.severity.as_str().to_ascii_uppercase();
    if colour {
        let _ = write!(line, "{}{severity}{RESET}", severity_colour(alert.severity));
    } else {
        line.push_str(&severity);
    }
    line.push(' ');
    push_visible(&mut line, &alert.rule);
    line.push(' ');
    push_visible(&mut line, &alert.class);
    line.push_str(" — ");
    push_visible(&mut line, &alert.detail);
    let _ = write!(line, " [action={}", alert.action.as_str());
    for (key, value) in [
        ("server", &alert.server),
        ("method", &alert.method),
        ("id", &alert.jsonrpc_id),
    ] {
        if let Some(value) = value {
            let _ = write!(line, " {key}=");
            push_visible(&mut line, value);
        }
    }
    line.push(']');
    if let Some(excerpt) = &alert.excerpt {
        line.push_str("  \"");
        push_visible(&mut line, excerpt);
        line.push('"');
    }
    if alert.repeats > 0 {
        let _ = write!(
            line,
            " (repeated {} more times in the last {})",
            alert.repeats,
            humantime::format_duration(window)
        );
    }
    line
}

/// Appends `text` with control and invisible formatting characters escaped: detail, method and
/// server names can come from a hostile server, and must not drive the terminal or hide text.
pub fn push_visible(out: &mut String, text: &str) {
    for ch in text.chars() {
        let code = ch as u32;
        let invisible =
            matches!(code, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2069 | 0xFEFF);
        if ch.is_control() || invisible {
            let _ = write!(out, "\\u{{{code:04x}}}");
        } else {
            out.push(ch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::ActionTaken;

    fn blocked_call() -> Alert {
        Alert::new(
            "TOOL-POLICY",
            "tool denied by policy",
            Severity::High,
            ActionTaken::Blocked,
            "blocked call to delete_everything",
        )
        .server("demo")
        .method(Some("tools/call"))
        .jsonrpc_id(Some("7"))
        .evidence(b"{\"name\":\"wipe\"}")
    }

    #[test]
    fn colour_truth_table() {
        let empty = OsStr::new("");
        let set = OsStr::new("1");
        assert!(colour_enabled(true, None));
        assert!(colour_enabled(true, Some(empty)));
        assert!(!colour_enabled(true, Some(set)));
        assert!(!colour_enabled(false, None));
        assert!(!colour_enabled(false, Some(empty)));
        assert!(!colour_enabled(false, Some(set)));
    }

    #[test]
    fn plain_line_names_everything() {
        let line = human_line(&blocked_call(), false, Duration::from_secs(10));
        assert_eq!(
            line,
            "mcp-watchdog: HIGH TOOL-POLICY tool denied by policy — blocked call to delete_everything \
             [action=blocked server=demo method=tools/call id=7]  \"{\"name\":\"wipe\"}\""
        );
        assert!(!line.contains('\x1b'));
    }

    #[test]
    fn colour_wraps_the_severity_only() {
        let line = human_line(&blocked_call(), true, Duration::from_secs(10));
        assert!(line.starts_with("mcp-watchdog: \x1b[1;31mHIGH\x1b[0m TOOL-POLICY "));
        assert_eq!(line.matches('\x1b').count(), 2);
    }

    #[test]
    fn summary_says_how_often_it_repeated() {
        let mut alert = blocked_call();
        alert.repeats = 99;
        let line = human_line(&alert, false, Duration::from_secs(10));
        assert!(
            line.ends_with(" (repeated 99 more times in the last 10s)"),
            "{line}"
        );
    }

    #[test]
    fn hostile_text_cannot_drive_the_terminal() {
        let alert = Alert::new(
            "SHADOW",
            "tool name",
            Severity::Medium,
            ActionTaken::Alerted,
            "tool \x1b[2Jevil\u{202e}txt.exe",
        )
        .server("bad\nserver");
        let line = human_line(&alert, false, Duration::from_secs(10));
        assert!(!line.contains('\x1b') && !line.contains('\n') && !line.contains('\u{202e}'));
        assert!(line.contains("tool \\u{001b}[2Jevil\\u{202e}txt.exe"));
        assert!(line.contains("server=bad\\u{000a}server"));
    }
}
