//! `mcp-watchdog alerts`: the audit log for people. Reads the hash-chained JSONL records, filters
//! them by time, rule and server, prints them as the one-line human form (or as JSON lines), and
//! with `--follow` keeps printing records as proxies append them.
//!
//! This reads; it does not verify the chain (that is `mcp-watchdog audit verify`).

use crate::alert::{self, Alert};
use clap::Args;
use serde::Deserialize;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How often `--follow` looks for new records.
pub const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// A line longer than this is not a record (see the audit log's own limit); it is skipped
/// rather than buffered without end.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Args, Default, Clone)]
pub struct AlertsArgs {
    /// Keep printing alerts as they are recorded, until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,

    /// Only alerts from this long ago on (`30m`, `1h`, `2d`), or since an RFC 3339 time.
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    pub since: Option<SystemTime>,

    /// Only alerts of this rule, e.g. SSRF (case-insensitive; repeat for several).
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    pub rule: Vec<String>,

    /// Only alerts about this server (repeat for several).
    #[arg(long, value_name = "NAME")]
    pub server: Vec<String>,

    /// One JSON object per alert, as `--alerts-json` writes them.
    #[arg(long)]
    pub json: bool,

    /// The audit log to read (default: $XDG_STATE_HOME/mcp-watchdog/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// `--since`: a duration back from now, or an absolute time.
pub fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return SystemTime::now()
            .checked_sub(ago)
            .ok_or_else(|| format!("{text} reaches back before the epoch"));
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        format!("expected a duration such as 30m, 1h or 2d, or a time such as 2025-01-31T12:00:00Z; found `{text}`")
    })
}

/// A `--rule` value: a rule alerts carry, in any case.
fn parse_rule(text: &str) -> Result<String, String> {
    crate::policy::rule_named(text).map(str::to_owned)
}

/// Which alerts to show.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub since: Option<SystemTime>,
    pub rules: Vec<String>,
    pub servers: Vec<String>,
}

impl AlertFilter {
    pub fn from_args(args: &AlertsArgs) -> AlertFilter {
        AlertFilter {
            since: args.since,
            rules: args.rule.clone(),
            servers: args.server.clone(),
        }
    }

    pub fn matches(&self, alert: &Alert) -> bool {
        self.since.is_none_or(|since| alert.time >= since)
            && (self.rules.is_empty()
                || self
                    .rules
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&alert.rule)))
            && (self.servers.is_empty()
                || alert
                    .server
                    .as_deref()
                    .is_some_and(|s| self.servers.iter().any(|want| want == s)))
    }
}

/// The parts of an audit record shown here.
#[derive(Deserialize)]
struct Record {
    seq: u64,
    alert: Alert,
}

/// How the alerts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Human { colour: bool },
    Json,
}

/// Set by SIGINT and SIGTERM; `--follow` stops at its next poll.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn run(args: &AlertsArgs) -> ExitCode {
    let Some(path) = args.audit_log.clone().or_else(alert::default_audit_path) else {
        eprintln!(
            "mcp-watchdog: no audit log path (give --audit-log, or set $XDG_STATE_HOME or $HOME)"
        );
        return ExitCode::from(2);
    };
    if args.follow {
        install_stop_handler();
    }
    let style = if args.json {
        Style::Json
    } else {
        Style::Human {
            colour: alert::colour_enabled(
                io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ),
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let show = Show {
        path: &path,
        filter: AlertFilter::from_args(args),
        style,
        follow: args.follow,
        poll: FOLLOW_POLL,
        stop: &STOP,
    };
    match show.run(&mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-watchdog: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn install_stop_handler() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(request_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            tracing::warn!("cannot handle {signal}: {e}; it will end the process abruptly");
        }
    }
}

/// One run of the subcommand, with everything it depends on spelled out (tests drive it).
pub struct Show<'a> {
    pub path: &'a Path,
    pub filter: AlertFilter,
    pub style: Style,
    pub follow: bool,
    pub poll: Duration,
    pub stop: &'a AtomicBool,
}

impl Show<'_> {
    /// Prints what is in the log, and with `follow` what is appended, until `stop` is set.
    /// A closed output (`| head`) ends it quietly.
    pub fn run(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut tail = Tail::new(self.path);
        let mut waiting_said = false;
        loop {
            match tail.read_lines() {
                Ok(lines) => {
                    for (number, line) in lines {
                        if let Err(e) = self.show_line(out, number, &line) {
                            return quiet_if_closed(e);
                        }
                    }
                    if let Err(e) = out.flush() {
                        return quiet_if_closed(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && self.follow => {
                    if !waiting_said {
                        eprintln!(
                            "mcp-watchdog: {} does not exist yet; waiting for the first alert",
                            self.path.display()
                        );
                        waiting_said = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(io::Error::new(
                        e.kind(),
                        "no audit log here yet (no alert has been recorded)",
                    ))
                }
                Err(e) => return Err(e),
            }
            if !self.follow || self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            std::thread::sleep(self.poll);
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }

    fn show_line(&self, out: &mut dyn Write, number: u64, line: &[u8]) -> io::Result<()> {
        let record: Record = match serde_json::from_slice(line) {
            Ok(record) => record,
            Err(e) => {
                eprintln!(
                    "mcp-watchdog: {} line {number}: not an audit record ({e}); skipped",
                    self.path.display()
                );
                return Ok(());
            }
        };
        if !self.filter.matches(&record.alert) {
            return Ok(());
        }
        match self.style {
            Style::Json => {
                serde_json::to_writer(&mut *out, &record.alert)?;
                out.write_all(b"\n")
            }
            Style::Human { colour } => {
                let line = alert::human_line(&record.alert, colour, alert::DEFAULT_REPEAT_WINDOW);
                let line = line.strip_prefix("mcp-watchdog: ").unwrap_or(&line);
                let time = humantime::format_rfc3339_seconds(record.alert.time);
                writeln!(out, "{time} #{} {line}", record.seq)
            }
        }
    }
}

fn quiet_if_closed(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

/// Reads a growing file line by line: whole lines only (a record being written is kept until its
/// newline arrives), and from the start again if the file is truncated or replaced.
pub struct Tail<'a> {
    path: &'a Path,
    file: Option<File>,
    offset: u64,
    partial: Vec<u8>,
    /// Lines handed out so far, for messages.
    line_number: u64,
    /// Set while the rest of an overlong line is being skipped.
    skipping: bool,
}

impl<'a> Tail<'a> {
    pub fn new(path: &'a Path) -> Tail<'a> {
        Tail {
            path,
            file: None,
            offset: 0,
            partial: Vec::new(),
            line_number: 0,
            skipping: false,
        }
    }

    /// The complete lines appended since the last call, with their line numbers.
    pub fn read_lines(&mut self) -> io::Result<Vec<(u64, Vec<u8>)>> {
        self.reopen_if_replaced()?;
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(File::open(self.path)?),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            eprintln!(
                "mcp-watchdog: {} was truncated; reading it from the start",
                self.path.display()
            );
            self.restart();
        }
        let file = self.file.as_mut().expect("opened above");
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        let read = file.take(len - self.offset).read_to_end(&mut fresh)?;
        self.offset += read as u64;
        Ok(self.split(&fresh))
    }

    fn split(&mut self, fresh: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut lines = Vec::new();
        let mut rest = fresh;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            let (piece, after) = rest.split_at(newline);
            rest = &after[1..];
            self.line_number += 1;
            if std::mem::take(&mut self.skipping) {
                self.partial.clear();
                continue;
            }
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(piece);
            if !line.is_empty() {
                lines.push((self.line_number, line));
            }
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_LINE_BYTES {
            eprintln!(
                "mcp-watchdog: {} line {}: longer than any record; skipped",
                self.path.display(),
                self.line_number + 1
            );
            self.partial.clear();
            self.skipping = true;
        }
        lines
    }

    /// A log moved aside and recreated (rotation) is followed to the new file.
    fn reopen_if_replaced(&mut self) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let open = file.metadata()?;
        let replaced = match std::fs::metadata(self.path) {
            Ok(now) => (now.dev(), now.ino()) != (open.dev(), open.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        if replaced {
            eprintln!(
                "mcp-watchdog: {} was replaced; reading the new file from its start",
                self.path.display()
            );
            self.file = None;
            self.restart();
        }
        Ok(())
    }

    fn restart(&mut self) {
        self.offset = 0;
        self.partial.clear();
        self.line_number = 0;
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{ActionTaken, AuditLog, Severity};
    use std::sync::{Arc, Mutex};

    fn alert(rule: &str, server: Option<&str>, ago: Duration) -> Alert {
        let mut alert = Alert::new(
            rule,
            "test class",
            Severity::High,
            ActionTaken::Blocked,
            format!("{rule} detail"),
        );
        alert.server = server.map(str::to_owned);
        alert.time = SystemTime::now() - ago;
        alert
    }

    /// A log of four alerts: SSRF/github 3h ago, SMAC-5/fs 10m ago, SSRF/fs now, TOOL-POLICY now.
    fn generated_log() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).unwrap();
        for a in [
            alert("SSRF", Some("github"), Duration::from_secs(3 * 3600)),
            alert("SMAC-5", Some("fs"), Duration::from_secs(600)),
            alert("SSRF", Some("fs"), Duration::ZERO),
            alert("TOOL-POLICY", None, Duration::ZERO),
        ] {
            log.append(&a).unwrap();
        }
        (dir, path)
    }

    fn show(path: &Path, filter: AlertFilter, style: Style) -> String {
        let stop = AtomicBool::new(false);
        let mut out = Vec::new();
        Show {
            path,
            filter,
            style,
            follow: false,
            poll: FOLLOW_POLL,
            stop: &stop,
        }
        .run(&mut out)
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn seqs(output: &str) -> Vec<String> {
        output
            .lines()
            .map(|l| l.split(' ').nth(1).unwrap().to_owned())
            .collect()
    }

    const PLAIN: Style = Style::Human { colour: false };

    #[test]
    fn filters_by_rule_server_and_time() {
        let (_dir, path) = generated_log();
        let all = show(&path, AlertFilter::default(), PLAIN);
        assert_eq!(seqs(&all), ["#1", "#2", "#3", "#4"]);
        let rule = AlertFilter {
            rules: vec!["ssrf".into()],
            ..AlertFilter::default()
        };
        assert_eq!(seqs(&show(&path, rule, PLAIN)), ["#1", "#3"]);
        let server = AlertFilter {
            servers: vec!["fs".into()],
            ..AlertFilter::default()
        };
        assert_eq!(seqs(&show(&path, server, PLAIN)), ["#2", "#3"]);
        let recent = AlertFilter {
            since: Some(parse_since("1h").unwrap()),
            ..AlertFilter::default()
        };
        assert_eq!(seqs(&show(&path, recent, PLAIN)), ["#2", "#3", "#4"]);
        let all_three = AlertFilter {
            since: Some(parse_since("1h").unwrap()),
            rules: vec!["SSRF".into(), "TOOL-POLICY".into()],
            servers: vec!["fs".into(), "github".into()],
        };
        assert_eq!(seqs(&show(&path, all_three, PLAIN)), ["#3"]);
    }

    #[test]
    fn human_lines_carry_time_sequence_and_the_alert() {
        let (_dir, path) = generated_log();
        let out = show(&path, AlertFilter::default(), PLAIN);
        let second = out.lines().nth(1).unwrap();
        let (time, rest) = second.split_once(' ').unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{second}");
        assert_eq!(
            rest,
            "#2 HIGH SMAC-5 test class — SMAC-5 detail [action=blocked server=fs]"
        );
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn json_lines_are_the_alerts() {
        let (_dir, path) = generated_log();
        let out = show(&path, AlertFilter::default(), Style::Json);
        let alerts: Vec<Alert> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(alerts.len(), 4);
        assert_eq!(alerts[3].rule, "TOOL-POLICY");
        assert_eq!(alerts[2].server.as_deref(), Some("fs"));
    }

    #[test]
    fn a_garbage_line_is_skipped_and_the_rest_shown() {
        let (_dir, path) = generated_log();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "not json\n");
        std::fs::write(&path, text).unwrap();
        let out = show(&path, AlertFilter::default(), PLAIN);
        assert_eq!(seqs(&out), ["#1", "#2", "#3", "#4"]);
    }

    #[test]
    fn since_takes_durations_and_times_and_explains_bad_input() {
        let hour_ago = parse_since("1h").unwrap();
        let age = SystemTime::now().duration_since(hour_ago).unwrap();
        assert!(age >= Duration::from_secs(3600) && age < Duration::from_secs(3700));
        assert_eq!(
            parse_since("2025-01-31T12:00:00Z").unwrap(),
            humantime::parse_rfc3339("2025-01-31T12:00:00Z").unwrap()
        );
        let err = parse_since("yesterday").unwrap_err();
        assert!(err.contains("expected a duration such as 30m"), "{err}");
    }

    #[test]
    fn a_missing_log_is_an_error_unless_following() {
        let dir = tempfile::tempdir().unwrap();
        let stop = AtomicBool::new(false);
        let err = Show {
            path: &dir.path().join("none.jsonl"),
            filter: AlertFilter::default(),
            style: PLAIN,
            follow: false,
            poll: FOLLOW_POLL,
            stop: &stop,
        }
        .run(&mut Vec::new())
        .unwrap_err();
        assert!(err.to_string().contains("no audit log here yet"), "{err}");
    }

    #[test]
    fn tail_hands_out_whole_lines_only_and_restarts_after_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "one\ntw").unwrap();
        let mut tail = Tail::new(&path);
        assert_eq!(tail.read_lines().unwrap(), [(1, b"one".to_vec())]);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"o\n\nthree\n").unwrap();
        assert_eq!(
            tail.read_lines().unwrap(),
            [(2, b"two".to_vec()), (4, b"three".to_vec())]
        );
        assert!(tail.read_lines().unwrap().is_empty());
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(tail.read_lines().unwrap(), [(1, b"new".to_vec())]);
    }

    #[test]
    fn tail_follows_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old record that is long\n").unwrap();
        let mut tail = Tail::new(&path);
        assert_eq!(tail.read_lines().unwrap().len(), 1);
        let fresh = dir.path().join("fresh");
        std::fs::write(&fresh, "a much longer new record than before\n").unwrap();
        std::fs::rename(&fresh, &path).unwrap();
        assert_eq!(
            tail.read_lines().unwrap(),
            [(1, b"a much longer new record than before".to_vec())]
        );
    }

    /// An output the test can read while `Show` still writes to it from another thread.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        fn wait_for(&self, needle: &str) {
            for _ in 0..500 {
                if self.text().contains(needle) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("never saw {needle:?} in:\n{}", self.text());
        }
    }

    #[test]
    fn follow_prints_what_is_appended_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let stop = AtomicBool::new(false);
        let out = Shared::default();
        std::thread::scope(|scope| {
            let mut writer = out.clone();
            let (path, stop) = (&path, &stop);
            let follower = scope.spawn(move || {
                Show {
                    path,
                    filter: AlertFilter {
                        rules: vec!["SSRF".into()],
                        ..AlertFilter::default()
                    },
                    style: PLAIN,
                    follow: true,
                    poll: Duration::from_millis(10),
                    stop,
                }
                .run(&mut writer)
            });
            // The log does not exist yet: following waits for it.
            std::thread::sleep(Duration::from_millis(50));
            let mut log = AuditLog::open(path).unwrap();
            log.append(&alert("SSRF", Some("a"), Duration::ZERO))
                .unwrap();
            out.wait_for("#1 HIGH SSRF");
            log.append(&alert("SMAC-5", Some("a"), Duration::ZERO))
                .unwrap();
            log.append(&alert("SSRF", Some("b"), Duration::ZERO))
                .unwrap();
            out.wait_for("#3 HIGH SSRF");
            stop.store(true, Ordering::SeqCst);
            follower.join().unwrap().unwrap();
        });
        assert_eq!(seqs(&out.text()), ["#1", "#3"]);
    }
}
