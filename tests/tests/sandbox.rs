//! The sandbox through the built binary: a server writes inside its scope, gets EACCES outside it
//! and on sensitive paths, gets EPERM from io_uring, and the same holds when the watchdog runs as
//! an unprivileged user. Landlock binds root too, so the root cases are real; without Landlock the
//! filesystem cases print why they skip.

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use watchdog_tests::harness::{
    as_nobody, fake_cmd, server_toml, toml_str, Input, TestDir, Watchdog, EXIT_TIMEOUT,
};

fn landlock_abi() -> Option<i64> {
    // SAFETY: the documented version probe (NULL attribute, size 0, flag 1).
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u64>(),
            0usize,
            1u32,
        )
    };
    (v > 0).then_some(v)
}

/// False (with the reason printed) when the kernel has no Landlock.
fn landlock_available(test: &str) -> bool {
    if landlock_abi().is_none() {
        eprintln!("{test}: skipped: this kernel has no Landlock (landlock_create_ruleset failed)");
        return false;
    }
    true
}

/// The text of a tools/call result from the fake (`ok`, `EACCES`, …).
fn call(wd: &mut Watchdog, tool: &str, arguments: Value) -> String {
    let result = wd.call_ok("tools/call", json!({"name": tool, "arguments": arguments}));
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{tool}: no text in {result}\n{}", wd.stderr_tail()))
        .to_owned()
}

fn write(wd: &mut Watchdog, path: &Path) -> String {
    call(wd, "write", json!({"path": path.to_str().unwrap()}))
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Wrap mode around the fake with `--write-file <target>` (which makes the target's directory the
/// default scope), plus `extra` watchdog flags.
fn wrapped(dir: &TestDir, extra: &[&str], target: &Path) -> Watchdog {
    let mut wd = Watchdog::wrap(
        dir,
        extra,
        &[
            "--tools",
            "write,io_uring",
            "--io-uring",
            "--write-file",
            &path_str(target),
        ],
    );
    wd.initialize();
    wd
}

fn finish(mut wd: Watchdog) {
    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
}

#[test]
fn writes_inside_the_default_scope_succeed_and_outside_get_eacces() {
    if !landlock_available("writes_inside_the_default_scope_succeed_and_outside_get_eacces") {
        return;
    }
    let dir = TestDir::new();
    let project = PathBuf::from(dir.subdir("project"));
    let outside = tempfile::Builder::new()
        .prefix("watchdog-e2e-outside-")
        .tempdir()
        .unwrap();
    let mut wd = wrapped(&dir, &[], &project.join("created.txt"));
    assert_eq!(call(&mut wd, "write", json!({})), "ok");
    assert_eq!(write(&mut wd, &project.join("sub-dir-less.txt")), "ok");
    assert_eq!(
        write(&mut wd, &outside.path().join("escaped.txt")),
        "EACCES"
    );
    // The watchdog's own files beside the project are outside too.
    assert_eq!(write(&mut wd, &dir.path("audit.jsonl")), "EACCES");
    // The private TMPDIR is writable, and it is not the shared one.
    assert_eq!(
        call(&mut wd, "write", json!({"path": "$TMPDIR/scratch"})),
        "ok"
    );
    finish(wd);
    assert!(project.join("created.txt").exists());
    assert!(!outside.path().join("escaped.txt").exists());
}

#[test]
fn sensitive_paths_stay_closed_even_when_the_server_is_given_home() {
    if !landlock_available("sensitive_paths_stay_closed_even_when_the_server_is_given_home") {
        return;
    }
    let dir = TestDir::new();
    let home = PathBuf::from(dir.subdir("home"));
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::create_dir_all(home.join("project")).unwrap();
    // As `server-filesystem ~` would be: home and ~/.ssh/… both on the command line.
    let args = vec!["--".to_string()]
        .into_iter()
        .chain(fake_cmd(&[
            "--tools",
            "write",
            "--write-file",
            &path_str(&home.join(".ssh/authorized_keys")),
            // Any argument naming a directory counts; the fake takes this one as its name.
            "--name",
            &path_str(&home),
        ]))
        .collect::<Vec<_>>();
    let env = [("HOME".to_string(), path_str(&home))];
    let mut wd = Watchdog::spawn_with(&dir, &[], &args, &env, Input::Pipe);
    wd.initialize();
    assert_eq!(call(&mut wd, "write", json!({})), "EACCES");
    assert_eq!(write(&mut wd, &home.join("project/notes.md")), "EACCES");
    assert_eq!(write(&mut wd, &home.join(".bashrc")), "EACCES");
    let stderr = wd.stderr_lines().join("\n");
    assert!(
        stderr.contains(&format!("not granting write beneath {}", home.display())),
        "the left-out default is named:\n{stderr}"
    );
    finish(wd);
    assert!(!home.join(".ssh/authorized_keys").exists());
}

#[test]
fn a_configured_scope_exposing_sensitive_paths_is_a_config_error() {
    let dir = TestDir::new();
    let home = dir.subdir("home");
    let config = server_toml("fs", &["--tools", "write"], "scope.write = [\"~\"]");
    let path = dir.path("watchdog.toml");
    fs::write(&path, config).unwrap();
    let args = vec!["--config".to_string(), path_str(&path)];
    let env = [("HOME".to_string(), home)];
    let mut wd = Watchdog::spawn_with(&dir, &[], &args, &env, Input::Null);
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(2), "{}", wd.stderr_tail());
    let stderr = wd.stderr_lines().join("\n");
    assert!(
        stderr.contains("server `fs`: scope.write: `~`") && stderr.contains("no scope may open"),
        "{stderr}"
    );
}

#[test]
fn io_uring_is_refused_with_eperm_unless_the_sandbox_is_off() {
    let dir = TestDir::new();
    let target = dir.path("x");
    let mut wd = wrapped(&dir, &[], &target);
    assert_eq!(call(&mut wd, "io_uring", json!({})), "EPERM");
    finish(wd);
    let sysctl = fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
    if sysctl.trim() != "0" {
        eprintln!(
            "unsandboxed half skipped: kernel.io_uring_disabled = {}",
            sysctl.trim()
        );
        return;
    }
    let mut wd = wrapped(&dir, &["--no-sandbox"], &target);
    assert_eq!(
        call(&mut wd, "io_uring", json!({})),
        "ok",
        "the control: io_uring works unconfined"
    );
    finish(wd);
}

#[test]
fn gateway_scope_and_sandbox_settings_apply_per_server() {
    if !landlock_available("gateway_scope_and_sandbox_settings_apply_per_server") {
        return;
    }
    let dir = TestDir::new();
    let granted = PathBuf::from(dir.subdir("granted"));
    let given = PathBuf::from(dir.subdir("given-as-argument"));
    let free_dir = PathBuf::from(dir.subdir("free"));
    let fake = |dir: &Path| {
        vec![
            "--tools".to_string(),
            "write".into(),
            "--write-file".into(),
            path_str(&dir.join("default.txt")),
        ]
    };
    let boxed_args = fake(&given);
    let free_args = fake(&free_dir);
    let boxed: Vec<&str> = boxed_args.iter().map(String::as_str).collect();
    let free: Vec<&str> = free_args.iter().map(String::as_str).collect();
    let config = format!(
        "{}{}",
        server_toml(
            "boxed",
            &boxed,
            &format!("scope.write = [{}]", toml_str(&path_str(&granted)))
        ),
        server_toml("free", &free, "sandbox = false"),
    );
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    // A configured scope replaces the defaults from the arguments.
    assert_eq!(write_as(&mut wd, "boxed__write", &granted.join("a")), "ok");
    assert_eq!(
        write_as(&mut wd, "boxed__write", &given.join("b")),
        "EACCES"
    );
    assert_eq!(write_as(&mut wd, "free__write", &given.join("c")), "ok");
    finish(wd);
}

fn write_as(wd: &mut Watchdog, tool: &str, path: &Path) -> String {
    call(wd, tool, json!({"path": path_str(path)}))
}

/// The same confinement when the watchdog itself runs as `nobody`: Landlock needs no privilege.
#[test]
fn an_unprivileged_watchdog_confines_its_server_too() {
    let test = "an_unprivileged_watchdog_confines_its_server_too";
    if !landlock_available(test) {
        return;
    }
    // SAFETY: getters without side effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{test}: skipped: dropping to nobody needs root (already unprivileged: the other tests cover it)");
        return;
    }
    let Some(launcher) = as_nobody() else {
        eprintln!("{test}: skipped: setpriv (util-linux) is not installed");
        return;
    };
    let probe = std::process::Command::new(&launcher[0])
        .args(&launcher[1..])
        .arg(watchdog_tests::watchdog_bin())
        .arg("--version")
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("{test}: skipped: nobody cannot run the built binary ({probe:?})");
        return;
    }
    let dir = TestDir::new();
    let project = PathBuf::from(dir.subdir("project"));
    let outside = PathBuf::from(dir.subdir("outside"));
    let home = PathBuf::from(dir.subdir("home"));
    // Everything nobody needs is nobody's, so that every EACCES below is Landlock's, not the
    // file permissions'.
    dir.give_to_nobody(&[&project, &outside, &home]);
    let env = [("HOME".to_string(), path_str(&home))];
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.push("--".into());
        args.extend(fake_cmd(&[
            "--tools",
            "write,io_uring",
            "--io-uring",
            "--write-file",
            &path_str(&project.join("mine.txt")),
        ]));
        let mut wd = Watchdog::spawn_with(&dir, &launcher, &args, &env, Input::Pipe);
        wd.initialize();
        wd
    };
    let mut wd = run(&[]);
    let uid = fs::read_to_string(format!("/proc/{}/status", wd.pid())).unwrap();
    assert!(
        uid.lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "the watchdog runs as nobody: {uid}"
    );
    assert_eq!(call(&mut wd, "write", json!({})), "ok");
    assert_eq!(write(&mut wd, &outside.join("x")), "EACCES");
    assert_eq!(call(&mut wd, "io_uring", json!({})), "EPERM");
    finish(wd);
    // The control: the same write by the same user succeeds without the sandbox.
    let mut wd = run(&["--no-sandbox"]);
    assert_eq!(write(&mut wd, &outside.join("x")), "ok");
    finish(wd);
}
