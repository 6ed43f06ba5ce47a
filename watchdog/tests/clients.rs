//! `install`, `uninstall`, `alerts` and `completions` as a user runs them: the built binary on a
//! fake home directory (MCP_WATCHDOG_HOME), never the real one.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clients");

/// A fake home and a project directory inside it to run from.
struct Home {
    _dir: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let project = home.join("src").join("app");
        fs::create_dir_all(&project).unwrap();
        Home {
            _dir: dir,
            home,
            project,
        }
    }

    /// Puts a fixture at `relative` (to the home, or to the project with `project/` first).
    fn place(&self, fixture: &str, relative: &str) -> PathBuf {
        let path = match relative.strip_prefix("project/") {
            Some(rest) => self.project.join(rest),
            None => self.home.join(relative),
        };
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::copy(Path::new(FIXTURES).join(fixture), &path).unwrap();
        path
    }

    /// Every client's config, at the places the clients read them.
    fn every_client(&self) -> Vec<(PathBuf, &'static str)> {
        [
            (
                "claude_desktop_config.json",
                ".config/Claude/claude_desktop_config.json",
            ),
            ("claude.json", ".claude.json"),
            ("claude-code-project-mcp.json", "project/.mcp.json"),
            ("cursor-mcp.json", ".cursor/mcp.json"),
            (
                "windsurf-mcp_config.json",
                ".codeium/windsurf/mcp_config.json",
            ),
            ("vscode-mcp.json", ".config/Code/User/mcp.json"),
            ("vscode-settings.json", ".config/Code/User/settings.json"),
            ("vscode-workspace-crlf.json", "project/.vscode/mcp.json"),
        ]
        .into_iter()
        .map(|(fixture, at)| (self.place(fixture, at), fixture))
        .collect()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mcp-watchdog"))
            .args(args)
            .env("MCP_WATCHDOG_HOME", &self.home)
            .env_remove("XDG_CONFIG_HOME")
            .current_dir(&self.project)
            .output()
            .unwrap()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn backups(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut found: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.mcp-watchdog-backup-"))
        })
        .collect();
    found.sort();
    found
}

fn this_watchdog() -> String {
    Path::new(env!("CARGO_BIN_EXE_mcp-watchdog"))
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn install_then_uninstall_gives_every_client_its_bytes_back() {
    let home = Home::new();
    let files = home.every_client();
    let claude = &files[1].0;
    fs::set_permissions(claude, fs::Permissions::from_mode(0o600)).unwrap();

    let out = home.run(&["install"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("not yet covered  mcpServers › sentry"),
        "{report}"
    );
    let command = format!("\"command\": \"{}\"", this_watchdog());
    for (path, name) in &files {
        let text = fs::read_to_string(path).unwrap();
        assert!(text.contains(&command), "{name} not wrapped:\n{text}");
        assert_eq!(backups(path).len(), 1, "{name}: one backup");
        assert_eq!(
            fs::read(&backups(path)[0]).unwrap(),
            fixture(name),
            "{name}"
        );
    }
    let mode = fs::metadata(claude).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the file's mode is kept");

    // Idempotent: nothing left to wrap, nothing written, no further backup.
    let wrapped: Vec<_> = files.iter().map(|(p, _)| fs::read(p).unwrap()).collect();
    let again = home.run(&["install"]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("already wrapped"));
    for ((path, name), before) in files.iter().zip(&wrapped) {
        assert_eq!(
            &fs::read(path).unwrap(),
            before,
            "{name}: second install changed it"
        );
        assert_eq!(backups(path).len(), 1, "{name}");
    }

    let out = home.run(&["uninstall"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    for (path, name) in &files {
        assert_eq!(
            fs::read(path).unwrap(),
            fixture(name),
            "{name} differs after uninstall"
        );
    }
    let mode = fs::metadata(claude).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn dry_run_prints_a_diff_and_touches_nothing() {
    let home = Home::new();
    let files = home.every_client();
    let before: Vec<_> = files
        .iter()
        .map(|(p, _)| {
            (
                fs::read(p).unwrap(),
                fs::metadata(p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = home.run(&["install", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("--- ") && text.contains("+++ "), "{text}");
    assert!(
        text.contains("-            \"command\": \"uvx\","),
        "{text}"
    );
    assert!(text.contains("dry run: nothing written"));
    for ((path, name), (bytes, mtime)) in files.iter().zip(&before) {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{name}");
        assert_eq!(
            &fs::metadata(path).unwrap().modified().unwrap(),
            mtime,
            "{name}"
        );
        assert!(backups(path).is_empty(), "{name}");
    }
}

#[test]
fn malformed_configs_are_named_and_left_untouched_while_others_proceed() {
    let home = Home::new();
    let desktop = home.home.join(".config/Claude/claude_desktop_config.json");
    fs::create_dir_all(desktop.parent().unwrap()).unwrap();
    let broken = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"npx\" \"args\": []}\n  }\n}\n";
    fs::write(&desktop, broken).unwrap();
    let cursor = home.home.join(".cursor/mcp.json");
    fs::create_dir_all(cursor.parent().unwrap()).unwrap();
    fs::write(&cursor, "{\"mcpServers\": [\"not\", \"an object\"]}").unwrap();
    let windsurf = home.place(
        "windsurf-mcp_config.json",
        ".codeium/windsurf/mcp_config.json",
    );

    let out = home.run(&["install"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: line 3, column 28: expected `,` or `}}` after an object member, found `\"`",
            desktop.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("line 1, column 16: expected mcpServers to be an object, found an array"),
        "{err}"
    );
    assert!(err.contains("the file was left untouched"), "{err}");
    assert_eq!(fs::read_to_string(&desktop).unwrap(), broken);
    assert_eq!(
        fs::read_to_string(&cursor).unwrap(),
        "{\"mcpServers\": [\"not\", \"an object\"]}"
    );
    assert!(backups(&desktop).is_empty() && backups(&cursor).is_empty());
    assert!(fs::read_to_string(&windsurf)
        .unwrap()
        .contains(&this_watchdog()));
}

#[test]
fn a_symlinked_config_stays_a_symlink() {
    let home = Home::new();
    let real = home.place("cursor-mcp.json", "dotfiles/cursor-mcp.json");
    fs::create_dir_all(home.home.join(".cursor")).unwrap();
    let link = home.home.join(".cursor/mcp.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = home.run(&["install", "--client", "cursor"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&real)
        .unwrap()
        .contains(&this_watchdog()));
    let out = home.run(&["uninstall", "--client", "cursor"]);
    assert!(out.status.success());
    assert_eq!(fs::read(&real).unwrap(), fixture("cursor-mcp.json"));
}

#[test]
fn config_path_works_on_one_file_in_a_clients_layout() {
    let home = Home::new();
    let file = home.place("vscode-settings.json", "elsewhere/settings.json");
    let untouched = home.place("cursor-mcp.json", ".cursor/mcp.json");
    let path = file.to_str().unwrap();
    let out = home.run(&["install", "--client", "vscode", "--config-path", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrapped          memory"),
        "{}",
        stdout(&out)
    );
    assert_eq!(fs::read(&untouched).unwrap(), fixture("cursor-mcp.json"));
    let out = home.run(&["uninstall", "--config-path", path]);
    assert!(out.status.success());
    assert_eq!(fs::read(&file).unwrap(), fixture("vscode-settings.json"));
}

#[test]
fn alerts_reads_and_filters_an_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut audit = watchdog::alert::AuditLog::open(&log).unwrap();
    for (rule, server) in [("SSRF", "github"), ("SMAC-5", "fs"), ("SSRF", "fs")] {
        let alert = watchdog::alert::Alert::new(
            rule,
            "class",
            watchdog::alert::Severity::High,
            watchdog::alert::ActionTaken::Blocked,
            "detail",
        )
        .server(server);
        audit.append(&alert).unwrap();
    }
    let home = Home::new();
    let log = log.to_str().unwrap();
    let out = home.run(&[
        "alerts",
        "--audit-log",
        log,
        "--rule",
        "ssrf",
        "--server",
        "fs",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("#3 HIGH SSRF class — detail [action=blocked server=fs]"),
        "{text}"
    );
    let out = home.run(&["alerts", "--audit-log", log, "--json", "--since", "1h"]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["rule"], "SMAC-5");
    let out = home.run(&["alerts", "--audit-log", log, "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected a duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn alerts_follow_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_mcp-watchdog"))
        .args(["alerts", "--follow", "--audit-log"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut audit = watchdog::alert::AuditLog::open(&log).unwrap();
    let alert = watchdog::alert::Alert::new(
        "SSRF",
        "metadata address",
        watchdog::alert::Severity::Critical,
        watchdog::alert::ActionTaken::Blocked,
        "followed",
    );
    audit.append(&alert).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(
        stdout(&out).contains("#1 CRITICAL SSRF metadata address — followed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn completions_and_help_with_examples() {
    let home = Home::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = home.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = stdout(&out);
        for word in ["install", "uninstall", "alerts", "dry-run"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    for sub in ["install", "uninstall", "alerts", "completions"] {
        let out = home.run(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        let help = stdout(&out);
        assert!(
            help.contains("Examples:\n  mcp-watchdog "),
            "{sub} --help:\n{help}"
        );
    }
}
