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
    #[arg(long, value_name = "RULE")]
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
