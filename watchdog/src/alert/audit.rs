//! The append-only, tamper-evident audit log (SMAC-4): one JSON line per alert, each line carrying the
//! SHA-256 of its own text and of the line before it, so an edited, removed, inserted or reordered
//! record breaks the chain.
//!
//! A line is `{"seq":N,"prev":"<hex>","alert":{…},"hash":"<hex>"}`. The hash covers the line's text
//! without its `,"hash":"…"` member, exactly as written, so a verifier needs nothing but the file.
//! Truncating records off the end cannot be detected from the file alone: keep `last_hash` elsewhere
//! if that matters.

use crate::alert::model::Alert;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `prev` of the first record.
const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_MEMBER_START: &str = ",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = HASH_MEMBER_START.len() + 64 + 2;

/// No alert comes near this; a longer "record" is garbage, and reading it must not exhaust memory.
const MAX_RECORD_BYTES: usize = 1 << 20;

/// How much of the file's tail is read at a time when looking for the last record.
const TAIL_CHUNK: usize = 4096;

/// Where the audit log lives unless configured otherwise: `$XDG_STATE_HOME/mcp-watchdog/audit.jsonl`,
/// else `~/.local/state/mcp-watchdog/audit.jsonl`.
pub fn default_audit_path() -> Option<PathBuf> {
    dirs::state_dir().map(|dir| dir.join("mcp-watchdog").join("audit.jsonl"))
}

/// The part of a record the hash covers, in the order it is written.
#[derive(Serialize)]
struct RecordBody<'a> {
    seq: u64,
    prev: &'a str,
    alert: &'a Alert,
}

/// What appending and verifying need to read back; the alert itself is only checked to be present.
#[derive(Deserialize)]
struct RecordHead {
    seq: u64,
    prev: String,
    #[allow(dead_code)] // required to be present, never read
    alert: IgnoredAny,
}

/// An open audit log. Several processes may append to the same file at once.
#[derive(Debug)]
pub struct AuditLog {
    file: File,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating if needed) the log at `path`, readable by its owner only.
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            // Alerts carry excerpts of what servers sent; other users have no business reading them.
            file.set_permissions(Permissions::from_mode(0o600))?;
            tracing::warn!(
                path = %path.display(),
                "audit log was accessible to other users (mode {:o}); restricted it to 0600",
                mode & 0o777
            );
        }
        Ok(AuditLog {
            file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `alert` as the next record of the chain and syncs it to disk.
    pub fn append(&mut self, alert: &Alert) -> io::Result<()> {
        // The last record must be read and the new one written under one lock, or two processes
        // would both chain onto the same predecessor.
        let _lock = ExclusiveLock::acquire(&self.file)?;
        let (seq, prev) = match last_record(&self.file)? {
            Some(line) => {
                let (head, hash) = parse_record(&line).map_err(|fault| {
                    invalid_data(format!(
                        "{}: last record is unreadable ({fault}); not appending to a broken chain",
                        self.path.display()
                    ))
                })?;
                (head.seq + 1, hash)
            }
            None => (1, GENESIS_HASH.to_owned()),
        };
        let line = encode_record(seq, &prev, alert)?;
        (&self.file).write_all(line.as_bytes())?;
        self.file.sync_data()
    }
}

/// Holds `flock(LOCK_EX)` on a file until dropped.
struct ExclusiveLock<'a>(&'a File);

impl<'a> ExclusiveLock<'a> {
    fn acquire(file: &'a File) -> io::Result<Self> {
        loop {
            // SAFETY: the descriptor is valid for as long as `file` is borrowed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ExclusiveLock(file));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for ExclusiveLock<'_> {
    fn drop(&mut self) {
        // SAFETY: as in `acquire`. Closing the file would release the lock anyway.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Serializes one record line, newline included.
fn encode_record(seq: u64, prev: &str, alert: &Alert) -> io::Result<String> {
    let mut line = serde_json::to_string(&RecordBody { seq, prev, alert })?;
    let hash = hex::encode(Sha256::digest(line.as_bytes()));
    line.pop(); // the body's closing brace; the hash member goes before it
    line.push_str(HASH_MEMBER_START);
    line.push_str(&hash);
    line.push_str("\"}\n");
    Ok(line)
}

/// Reads the file's last line (without its newline) by walking back from the end, so that appending
/// costs the same however long the log has grown.
fn last_record(file: &File) -> io::Result<Option<Vec<u8>>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        return Err(invalid_data(
            "audit log ends in a partial record (torn write?); not appending to a broken chain",
        ));
    }
    let mut line: Vec<u8> = Vec::new();
    let mut pos = len - 1;
    while pos > 0 {
        let n = TAIL_CHUNK.min(pos as usize);
        let start = pos - n as u64;
        let mut chunk = vec![0u8; n];
        file.read_exact_at(&mut chunk, start)?;
        if let Some(newline) = memchr::memrchr(b'\n', &chunk) {
            chunk.drain(..=newline);
            chunk.extend_from_slice(&line);
            return Ok(Some(chunk));
        }
        chunk.extend_from_slice(&line);
        line = chunk;
        if line.len() > MAX_RECORD_BYTES {
            return Err(invalid_data(
                "audit log's last line is too long to be a record",
            ));
        }
        pos = start;
    }
    Ok(Some(line))
}

/// Checks one line (without newline) structurally and against its own hash; returns the record and
/// its hash.
fn parse_record(line: &[u8]) -> Result<(RecordHead, String), RecordFault> {
    let text = std::str::from_utf8(line).map_err(|_| RecordFault::Malformed("not UTF-8"))?;
    if text.len() < HASH_SUFFIX_LEN || !text.ends_with("\"}") {
        return Err(RecordFault::Malformed("no hash at the end"));
    }
    let split = text.len() - HASH_SUFFIX_LEN;
    let (body_open, suffix) = text.split_at(split);
    let hash = suffix
        .strip_prefix(HASH_MEMBER_START)
        .and_then(|rest| rest.strip_suffix("\"}"))
        .filter(|h| h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or(RecordFault::Malformed("no hash at the end"))?;
    let mut body = String::with_capacity(body_open.len() + 1);
    body.push_str(body_open);
    body.push('}');
    let head: RecordHead =
        serde_json::from_str(&body).map_err(|_| RecordFault::Malformed("not a record"))?;
    if hex::encode(Sha256::digest(body.as_bytes())) != hash {
        return Err(RecordFault::HashMismatch);
    }
    Ok((head, hash.to_owned()))
}

#[derive(Debug)]
enum RecordFault {
    Malformed(&'static str),
    HashMismatch,
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFault::Malformed(why) => write!(f, "{why}"),
            RecordFault::HashMismatch => write!(f, "hash mismatch"),
        }
    }
}

fn invalid_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A log whose chain holds from the first record to the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    /// Hash of the last record: note it down to detect later truncation.
    pub last_hash: Option<String>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last_hash {
            Some(hash) => write!(
                f,
                "{} records, chain intact, last hash {hash}",
                self.records
            ),
            None => write!(f, "no records"),
        }
    }
}

/// Where and how the chain breaks.
#[derive(Debug)]
pub struct VerifyError {
    /// 1-based line number; 0 when the file could not be opened at all.
    pub line: u64,
    pub kind: VerifyErrorKind,
}

#[derive(Debug)]
pub enum VerifyErrorKind {
    /// The line is not a record at all.
    Malformed(&'static str),
    /// The record's text does not match its hash: it was edited.
    HashMismatch,
    /// `prev` is not the previous record's hash: a record was removed, inserted or reordered.
    BrokenLink,
    /// The hashes chain but the sequence numbers skip.
    SeqGap {
        expected: u64,
        found: u64,
    },
    Io {
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let VerifyErrorKind::Io { path, source } = &self.kind {
            if self.line == 0 {
                return write!(f, "{}: {source}", path.display());
            }
            return write!(f, "{}: line {}: {source}", path.display(), self.line);
        }
        write!(f, "line {}: ", self.line)?;
        match &self.kind {
            VerifyErrorKind::Malformed(why) => write!(f, "not an audit record ({why})"),
            VerifyErrorKind::HashMismatch => write!(f, "record was edited (hash mismatch)"),
            VerifyErrorKind::BrokenLink => write!(
                f,
                "chain broken: a record before it was removed, inserted or reordered"
            ),
            VerifyErrorKind::SeqGap { expected, found } => {
                write!(f, "sequence number {found}, expected {expected}")
            }
            VerifyErrorKind::Io { .. } => unreachable!("handled above"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            VerifyErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Checks the whole chain of the log at `path`, one line at a time.
pub fn verify(path: &Path) -> Result<VerifyReport, VerifyError> {
    let io_error = |line: u64, source: io::Error| VerifyError {
        line,
        kind: VerifyErrorKind::Io {
            path: path.to_owned(),
            source,
        },
    };
    let mut reader = BufReader::new(File::open(path).map_err(|e| io_error(0, e))?);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    let mut prev_hash: Option<String> = None;
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| io_error(line_no + 1, e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let fault = |kind| VerifyError {
            line: line_no,
            kind,
        };
        if line.pop() != Some(b'\n') {
            let why = if read > MAX_RECORD_BYTES {
                "too long"
            } else {
                "unterminated, torn write?"
            };
            return Err(fault(VerifyErrorKind::Malformed(why)));
        }
        let (head, hash) = parse_record(&line).map_err(|f| {
            fault(match f {
                RecordFault::Malformed(why) => VerifyErrorKind::Malformed(why),
                RecordFault::HashMismatch => VerifyErrorKind::HashMismatch,
            })
        })?;
        if head.prev != prev_hash.as_deref().unwrap_or(GENESIS_HASH) {
            return Err(fault(VerifyErrorKind::BrokenLink));
        }
        if head.seq != line_no {
            return Err(fault(VerifyErrorKind::SeqGap {
                expected: line_no,
                found: head.seq,
            }));
        }
        prev_hash = Some(hash);
    }
    Ok(VerifyReport {
        records: line_no,
        last_hash: prev_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::{ActionTaken, Severity};

    fn alert(n: usize) -> Alert {
        Alert::new(
            "SMAC-5",
            "instruction block",
            Severity::High,
            ActionTaken::Stripped,
            format!("detail number {n}"),
        )
        .server("demo")
        .evidence(format!("<IMPORTANT>evidence {n}</IMPORTANT>").as_bytes())
    }

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/mcp-watchdog/audit.jsonl");
        let mut log = AuditLog::open(&path).unwrap();
        for i in 1..=n {
            log.append(&alert(i)).unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn chain_of_five_verifies() {
        let (_dir, path) = log_with(5);
        let report = verify(&path).unwrap();
        assert_eq!(report.records, 5);
        let last = lines(&path).pop().unwrap();
        let hash = report.last_hash.unwrap();
        assert!(last.ends_with(&format!(",\"hash\":\"{hash}\"}}")));
    }

    #[test]
    fn record_text_is_hashed_without_its_hash_member() {
        let (_dir, path) = log_with(1);
        let line = lines(&path).remove(0);
        assert!(line.starts_with(&format!(
            "{{\"seq\":1,\"prev\":\"{GENESIS_HASH}\",\"alert\":{{"
        )));
        let (body, hash) = line.split_at(line.len() - HASH_SUFFIX_LEN);
        let recomputed = hex::encode(Sha256::digest(format!("{body}}}").as_bytes()));
        assert_eq!(hash, format!(",\"hash\":\"{recomputed}\"}}"));
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(record["alert"]["detail"], "detail number 1");
    }

    #[test]
    fn edited_detail_is_a_hash_mismatch_at_its_line() {
        let (_dir, path) = log_with(5);
        let mut all = lines(&path);
        all[2] = all[2].replace("detail number 3", "detail number X");
        rewrite(&path, &all);
        let err = verify(&path).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(matches!(err.kind, VerifyErrorKind::HashMismatch));
        assert_eq!(err.to_string(), "line 3: record was edited (hash mismatch)");
    }

    #[test]
    fn deleted_line_breaks_the_link() {
        let (_dir, path) = log_with(5);
        let mut all = lines(&path);
        all.remove(1);
        rewrite(&path, &all);
        let err = verify(&path).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(matches!(err.kind, VerifyErrorKind::BrokenLink));
    }

    #[test]
    fn deleted_first_line_breaks_the_link() {
        let (_dir, path) = log_with(3);
        let mut all = lines(&path);
        all.remove(0);
        rewrite(&path, &all);
        let err = verify(&path).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(matches!(err.kind, VerifyErrorKind::BrokenLink));
    }

    #[test]
    fn swapped_lines_are_detected() {
        let (_dir, path) = log_with(5);
        let mut all = lines(&path);
        all.swap(1, 3);
        rewrite(&path, &all);
        let err = verify(&path).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(matches!(err.kind, VerifyErrorKind::BrokenLink));
    }

    #[test]
    fn garbage_line_is_malformed() {
        let (_dir, path) = log_with(2);
        let mut all = lines(&path);
        all.insert(1, "hello".into());
        rewrite(&path, &all);
        let err = verify(&path).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(matches!(err.kind, VerifyErrorKind::Malformed(_)));
    }

    #[test]
    fn rechained_seq_gap_is_reported() {
        // A forger who recomputes hashes still has to keep seq consecutive.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let first = encode_record(1, GENESIS_HASH, &alert(1)).unwrap();
        let (head, hash) = parse_record(first.trim_end().as_bytes()).unwrap();
        assert_eq!(head.seq, 1);
        let second = encode_record(3, &hash, &alert(2)).unwrap();
        std::fs::write(&path, format!("{first}{second}")).unwrap();
        let err = verify(&path).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(matches!(
            err.kind,
            VerifyErrorKind::SeqGap {
                expected: 2,
                found: 3
            }
        ));
    }

    #[test]
    fn empty_file_has_no_records_and_missing_file_is_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            verify(&path).unwrap(),
            VerifyReport {
                records: 0,
                last_hash: None
            }
        );
        let missing = dir.path().join("nope.jsonl");
        let err = verify(&missing).unwrap_err();
        assert!(matches!(err.kind, VerifyErrorKind::Io { .. }));
        assert!(err.to_string().contains("nope.jsonl"));
    }

    #[test]
    fn two_handles_appending_alternately_form_one_chain() {
        let (_dir, path) = log_with(0);
        let mut a = AuditLog::open(&path).unwrap();
        let mut b = AuditLog::open(&path).unwrap();
        for i in 0..6 {
            let log = if i % 2 == 0 { &mut a } else { &mut b };
            log.append(&alert(i)).unwrap();
        }
        assert_eq!(verify(&path).unwrap().records, 6);
    }

    #[test]
    fn concurrent_writers_form_one_chain() {
        let (_dir, path) = log_with(0);
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut log = AuditLog::open(&path).unwrap();
                    for i in 0..25 {
                        log.append(&alert(w * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(verify(&path).unwrap().records, 50);
    }

    #[test]
    fn long_records_are_found_across_tail_chunks() {
        let (_dir, path) = log_with(0);
        let mut log = AuditLog::open(&path).unwrap();
        let long = |n| Alert::new("R", "c", Severity::Low, ActionTaken::Alerted, "x".repeat(n));
        log.append(&long(3 * TAIL_CHUNK)).unwrap();
        log.append(&long(TAIL_CHUNK - 40)).unwrap();
        log.append(&long(10)).unwrap();
        assert_eq!(verify(&path).unwrap().records, 3);
    }

    #[test]
    fn refuses_to_chain_onto_a_torn_record() {
        let (_dir, path) = log_with(1);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":2,\"pr")
            .unwrap();
        let mut log = AuditLog::open(&path).unwrap();
        let err = log.append(&alert(2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn file_is_owner_only() {
        let (_dir, path) = log_with(1);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn open_restricts_a_world_readable_log() {
        let (_dir, path) = log_with(1);
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        AuditLog::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn default_path_ends_in_audit_jsonl() {
        let path = default_audit_path().expect("HOME is set where tests run");
        assert!(path.ends_with("mcp-watchdog/audit.jsonl"));
    }
}
