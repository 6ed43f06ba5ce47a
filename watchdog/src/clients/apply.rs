//! Carrying a planned change to a config file out: a diff in dry-run, otherwise a backup next to
//! the file and an atomic replacement that keeps the file's mode and owner. A file that cannot be
//! read, parsed or changed safely is reported and left untouched; the other files still proceed.

use crate::clients::jsonc::line_column;
use crate::clients::report::{render_rows, Row};
use crate::clients::{ClientArgs, ConfigFile, Locations};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// A file's rows and its text after the change (equal to the input when nothing changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub rows: Vec<Row>,
    pub new_text: String,
}

/// The backup's name: `<file>.mcp-watchdog-backup-<UTC time>`.
pub const BACKUP_INFIX: &str = ".mcp-watchdog-backup-";

/// Runs a planner over the files `args` selects in this process's environment.
pub fn run_subcommand(
    args: &ClientArgs,
    planner: impl Fn(&str, &ConfigFile) -> Result<FilePlan, String>,
) -> ExitCode {
    let at = match Locations::from_env() {
        Ok(at) => at,
        Err(e) => {
            eprintln!("mcp-watchdog: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = io::stdout();
    if run_files(&args.files(&at), args.dry_run, &mut stdout.lock(), planner) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Plans and carries out each file in turn; true if none failed. Missing files are not failures:
/// most people use only some of the clients.
pub fn run_files(
    files: &[ConfigFile],
    dry_run: bool,
    out: &mut dyn Write,
    planner: impl Fn(&str, &ConfigFile) -> Result<FilePlan, String>,
) -> bool {
    let mut all_well = true;
    let mut missing = Vec::new();
    let mut written = 0;
    for file in files {
        let heading = format!("{} {}", file.client_name(), file.path.display());
        let text = match read_text(&file.path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                missing.push(heading);
                continue;
            }
            Err(e) => {
                all_well = false;
                fail(out, &heading, file, &e);
                continue;
            }
        };
        let plan = match planner(&text, file) {
            Ok(plan) => plan,
            Err(e) => {
                all_well = false;
                fail(out, &heading, file, &e);
                continue;
            }
        };
        let _ = writeln!(out, "{heading}");
        let _ = write!(out, "{}", render_rows(&plan.rows));
        if plan.new_text == text {
            let _ = writeln!(out, "  (nothing to change)");
        } else if dry_run {
            let _ = write!(out, "{}", unified_diff(&file.path, &text, &plan.new_text));
            let _ = writeln!(out, "  (dry run: nothing written)");
        } else {
            match write_with_backup(&file.path, &text, &plan.new_text) {
                Ok(backup) => {
                    written += 1;
                    let _ = writeln!(out, "  written; backup at {}", backup.display());
                }
                Err(e) => {
                    all_well = false;
                    fail(out, &heading, file, &format!("cannot write it: {e}"));
                }
            }
        }
    }
    if !missing.is_empty() {
        let _ = writeln!(out, "no config file at:");
        for heading in &missing {
            let _ = writeln!(out, "  {heading}");
        }
    }
    if written > 0 {
        let _ = writeln!(
            out,
            "restart the clients whose configs changed (or reload their MCP servers) to apply this"
        );
    }
    all_well
}

fn fail(out: &mut dyn Write, heading: &str, file: &ConfigFile, error: &str) {
    let _ = writeln!(out, "{heading}: left untouched");
    eprintln!(
        "mcp-watchdog: error: {}: {error}; the file was left untouched",
        file.path.display()
    );
}

/// The file's text; `None` if it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..valid]);
        let (line, column) = line_column(&text, valid);
        format!("line {line}, column {column}: expected UTF-8 text, found an invalid byte")
    })
}

/// `diff -u` of the change, named after the file.
pub fn unified_diff(path: &Path, old: &str, new: &str) -> String {
    let name = path.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&name, &name)
        .to_string()
}

/// Writes `new` over the file at `path` (which holds `old`): backup first, then an atomic swap.
/// Returns the backup's path.
pub fn write_with_backup(path: &Path, old: &str, new: &str) -> io::Result<PathBuf> {
    // A config kept in a dotfiles repository is often a symlink: replace the file it points to,
    // and keep the link.
    let target = fs::canonicalize(path)?;
    let meta = fs::metadata(&target)?;
    let backup = write_backup(path, old.as_bytes(), meta.permissions().mode())?;
    let dir = target.parent().unwrap_or(Path::new("/"));
    let mut temp = tempfile::Builder::new()
        .prefix(".mcp-watchdog-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(new.as_bytes())?;
    temp.as_file().set_permissions(meta.permissions())?;
    // Run as root on someone else's config, the replacement must stay theirs.
    if temp.as_file().metadata()?.uid() != meta.uid() {
        std::os::unix::fs::fchown(temp.as_file(), Some(meta.uid()), Some(meta.gid()))?;
    }
    temp.as_file().sync_all()?;
    // Claude Code rewrites ~/.claude.json while it runs: a file that changed since it was read
    // is not replaced (that would lose the client's write). A narrow window remains.
    if fs::read(&target)? != old.as_bytes() {
        // The backup holds what was read, not what is there: it would only mislead.
        let _ = fs::remove_file(&backup);
        return Err(io::Error::other(
            "it changed while mcp-watchdog was working on it (is the client running?); run again",
        ));
    }
    temp.persist(&target).map_err(|e| e.error)?;
    if let Ok(dir) = fs::File::open(dir) {
        // Makes the rename itself durable; a failure here cannot be acted on.
        let _ = dir.sync_all();
    }
    Ok(backup)
}

/// Writes `<path>.mcp-watchdog-backup-<time>` (never over an existing file) with `mode`.
fn write_backup(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    let stamp: String = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let base = format!("{}{BACKUP_INFIX}{stamp}", path.display());
    for n in 1u32.. {
        let candidate = PathBuf::from(if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(&candidate);
        match file {
            Ok(mut file) => {
                file.write_all(bytes)?;
                file.sync_all()?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 backups")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_with_a_backup_and_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mcp.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let first = write_with_backup(&path, "old", "new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_to_string(&first).unwrap(), "old");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::metadata(&first).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(first.to_string_lossy().contains(".mcp-watchdog-backup-"));
        // A second change in the same second gets its own backup.
        let second = write_with_backup(&path, "new", "newer").unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(&second).unwrap(), "new");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_file_changed_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude.json");
        fs::write(&path, "written by the client just now").unwrap();
        let err = write_with_backup(&path, "what was read", "planned").unwrap_err();
        assert!(err.to_string().contains("changed while"), "{err}");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no backup, no temp file"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "written by the client just now"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        fs::write(&path, b"{\n  \"a\": \"\xff\"}").unwrap();
        let err = read_text(&path).unwrap_err();
        assert_eq!(
            err,
            "line 2, column 9: expected UTF-8 text, found an invalid byte"
        );
    }
}
