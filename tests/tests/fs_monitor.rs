//! The kernel filesystem monitor through the built binary: a real server tree (a `sh -c` root,
//! short-lived children, a grandchild writing by a relative path) does write-like operations inside
//! and outside its scope and on a sensitive file; each backend, forced in turn, must attribute the
//! same breaches to the same processes, report nothing for in-scope writes or for an unrelated
//! process, and in strict mode kill the server. Root-only cases print why they skip otherwise.

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use watchdog_tests::harness::{
    as_nobody, chown_nobody, toml_str, Input, TestDir, Watchdog, EXIT_TIMEOUT,
};

const ALERT_WAIT: Duration = Duration::from_secs(15);

fn is_root() -> bool {
    // SAFETY: a getter without side effects.
    unsafe { libc::geteuid() == 0 }
}

/// Why `backend` cannot run here, if it cannot: not root, or (for eBPF) a build without clang or
/// a kernel without BTF, as `mcp-watchdog status` reports it.
fn unavailable(backend: &str) -> Option<String> {
    if !is_root() {
        return Some(format!("the {backend} backend needs root"));
    }
    let out = std::process::Command::new(watchdog_tests::watchdog_bin())
        .args(["status", "--json"])
        .output()
        .ok()?;
    let status: Value = serde_json::from_slice(&out.stdout).ok()?;
    let summary = status["sandbox"]["kernel_monitor"].as_str()?.to_owned();
    let why = summary
        .split("; ")
        .find_map(|part| part.strip_prefix(&format!("{backend}: ")))?;
    Some(format!("the {backend} backend is unavailable: {why}"))
}

/// The places one run uses: the server's scope, somewhere outside it, a private HOME.
struct Layout {
    dir: TestDir,
    scope: PathBuf,
    outside: PathBuf,
    home: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let dir = TestDir::new();
        let scope = PathBuf::from(dir.subdir("project"));
        let outside = PathBuf::from(dir.subdir("outside"));
        let home = PathBuf::from(dir.subdir("home"));
        fs::write(home.join(".bashrc"), "# rc\n").unwrap();
        Layout {
            dir,
            scope,
            outside,
            home,
        }
    }

    /// A gateway config running `sh -c <script>` as server `tree` with write scope `scope`; the
    /// script ends by exec'ing the fake upstream so that the session goes on.
    fn config(&self, script: &str, extra: &str) -> String {
        let script = format!(
            "{script}\nexec {} --tools noop",
            watchdog_tests::fake_upstream_bin().display()
        );
        format!(
            "{extra}\n[[server]]\nname = \"tree\"\ncommand = \"sh\"\nargs = [\"-c\", {}]\n\
             scope.write = [{}]\nenv = {{ SCOPE = {}, OUT = {}, HOME = {} }}\n",
            toml_str(&script),
            toml_str(&self.scope.to_string_lossy()),
            toml_str(&self.scope.to_string_lossy()),
            toml_str(&self.outside.to_string_lossy()),
            toml_str(&self.home.to_string_lossy()),
        )
    }

    fn start(&self, config: &str, flags: &[&str]) -> Watchdog {
        let path = self.dir.path("watchdog.toml");
        fs::write(&path, config).unwrap();
        let mut args = vec!["--config".to_string(), path.to_string_lossy().into_owned()];
        args.extend(flags.iter().map(|s| s.to_string()));
        let env = [("HOME".to_string(), self.home.to_string_lossy().into_owned())];
        Watchdog::spawn_with(&self.dir, &[], &args, &env, Input::Pipe)
    }

    /// [`Layout::config`] for `script`, run by an unprivileged proxy (as `nobody`) that the daemon
    /// at `socket` serves, without the sandbox so that every operation reaches the kernel.
    fn start_as_nobody_with_daemon(
        &self,
        nobody: &[String],
        socket: &Path,
        script: &str,
        flags: &[&str],
    ) -> Watchdog {
        let path = self.dir.path("watchdog.toml");
        fs::write(&path, self.config(script, "")).unwrap();
        chown_nobody(&path);
        let mut args = vec![
            "--config".to_string(),
            path.to_string_lossy().into_owned(),
            "--no-sandbox".into(),
            "--fs-backend".into(),
            "daemon".into(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let env = [
            ("HOME".to_string(), self.home.to_string_lossy().into_owned()),
            (
                "MCP_WATCHDOG_SOCKET".to_string(),
                socket.to_string_lossy().into_owned(),
            ),
        ];
        Watchdog::spawn_with(&self.dir, nobody, &args, &env, Input::Pipe)
    }

    /// The pid the script wrote to `name` (waiting for it: the script runs beside the test).
    fn pid(&self, name: &str) -> u64 {
        let deadline = std::time::Instant::now() + ALERT_WAIT;
        loop {
            let text = fs::read_to_string(self.scope.join(name)).unwrap_or_default();
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the script never wrote {name}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Every kind of write-like operation, by the root shell, short-lived children and a grandchild;
/// each child's pid is recorded (in scope, so recording is not itself a breach).
const TREE_SCRIPT: &str = r#"set -u
echo $$ > "$SCOPE/root.pid"
echo inside > "$SCOPE/inside.txt"
run() { name=$1; shift; "$@" & echo $! > "$SCOPE/$name.pid"; wait $!; }
run touch touch "$OUT/short.txt"
run mkdir mkdir "$OUT/made"
sh -c 'echo $$ > "$SCOPE/grandchild.pid"; cd "$OUT" && echo rel > rel.txt'
run mv mv "$OUT/short.txt" "$OUT/moved.txt"
run ln ln -s /etc/hostname "$OUT/link"
run chmod chmod 600 "$OUT/moved.txt"
run rm rm "$OUT/moved.txt"
echo '# added' >> "$HOME/.bashrc"
echo done > "$SCOPE/done""#;

fn scope_alerts(wd: &Watchdog) -> Vec<Value> {
    wd.alerts()
        .into_iter()
        .filter(|a| a["rule"] == "SCOPE-L4" && a.get("fs").is_some())
        .collect()
}

/// Waits for the SCOPE-L4 alert about `path` by process `pid`, one of `ops`. With eBPF the process's
/// name must be `comm` (read in the kernel at the syscall); fanotify reads it from /proc or the fork
/// tracker when the event is handled, by which time the process may have exec'd again or be gone,
/// so only its pid is held to account there.
fn expect_breach(wd: &Watchdog, path: &Path, pid: u64, comm: &str, ops: &[&str]) -> Value {
    let path = path.to_string_lossy().into_owned();
    let alert = wd.wait_alert(&format!("pid {pid} on {path}"), ALERT_WAIT, |a| {
        a["rule"] == "SCOPE-L4"
            && a["fs"]["path"] == path.as_str()
            && a["fs"]["pid"] == pid
            && ops.iter().any(|op| a["fs"]["operation"] == *op)
    });
    let named = alert["fs"]["comm"].as_str().unwrap_or_default();
    if alert["fs"]["backend"] == "ebpf" {
        assert_eq!(named, comm, "pid {pid}: {alert}");
    }
    alert
}

/// What every attributing backend must report for [`TREE_SCRIPT`] run without the sandbox (so that
/// every operation happens and the notification backends see it too).
fn attributes_the_tree(backend: &str) {
    let test = format!("{backend}_attributes_every_write_of_the_tree");
    if let Some(why) = unavailable(backend) {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let at = Layout::new();
    let mut wd = at.start(
        &at.config(TREE_SCRIPT, ""),
        &["--no-sandbox", "--fs-backend", backend],
    );
    wd.initialize();
    // Written by an unrelated process (this test) while the tree is watched: never reported.
    fs::write(at.outside.join("unrelated.txt"), "x").unwrap();
    let root = at.pid("root.pid");
    let pid = |name: &str| at.pid(&format!("{name}.pid"));
    let o = |name: &str| at.outside.join(name);

    let a = expect_breach(
        &wd,
        &o("short.txt"),
        pid("touch"),
        "touch",
        &["open-write", "create"],
    );
    assert_eq!(a["server"], "tree");
    assert_eq!(a["fs"]["backend"], backend);
    expect_breach(&wd, &o("made"), pid("mkdir"), "mkdir", &["mkdir"]);
    expect_breach(
        &wd,
        &o("rel.txt"),
        pid("grandchild"),
        "sh",
        &["open-write", "create"],
    );
    let mv = expect_breach(&wd, &o("short.txt"), pid("mv"), "mv", &["rename"]);
    assert_eq!(mv["fs"]["path2"], o("moved.txt").to_string_lossy().as_ref());
    expect_breach(&wd, &o("link"), pid("ln"), "ln", &["symlink"]);
    expect_breach(
        &wd,
        &o("moved.txt"),
        pid("chmod"),
        "chmod",
        &["chmod", "attrib"],
    );
    expect_breach(&wd, &o("moved.txt"), pid("rm"), "rm", &["unlink"]);
    let rc = expect_breach(&wd, &at.home.join(".bashrc"), root, "sh", &["open-write"]);
    assert_eq!(rc["class"], "sensitive write");
    assert_eq!(rc["severity"], "critical");

    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
    let alerts = scope_alerts(&wd);
    let mentions = |name: &str| {
        alerts
            .iter()
            .any(|a| a["fs"]["path"].as_str().is_some_and(|p| p.ends_with(name)))
    };
    assert!(
        !mentions("inside.txt"),
        "in-scope write reported: {alerts:#?}"
    );
    assert!(
        !mentions("root.pid"),
        "in-scope write reported: {alerts:#?}"
    );
    assert!(
        !mentions("unrelated.txt"),
        "unrelated process reported: {alerts:#?}"
    );
}

#[test]
fn ebpf_attributes_every_write_of_the_tree() {
    attributes_the_tree("ebpf");
}

#[test]
fn fanotify_attributes_every_write_of_the_tree() {
    attributes_the_tree("fanotify");
}

/// With the sandbox on (the default), out-of-scope writes fail with EACCES: the eBPF backend sees
/// the attempt and its outcome.
#[test]
fn ebpf_reports_writes_landlock_refused() {
    let test = "ebpf_reports_writes_landlock_refused";
    if let Some(why) = unavailable("ebpf") {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let at = Layout::new();
    let script = r#"echo $$ > "$SCOPE/root.pid"
echo nope > "$OUT/refused.txt" 2>/dev/null
echo done > "$SCOPE/done""#;
    let mut wd = at.start(&at.config(script, ""), &["--fs-backend", "ebpf"]);
    wd.initialize();
    let root = at.pid("root.pid");
    let a = expect_breach(
        &wd,
        &at.outside.join("refused.txt"),
        root,
        "sh",
        &["open-write"],
    );
    assert_eq!(a["fs"]["outcome"], "failed (Permission denied)");
    assert_eq!(a["action"], "blocked");
    assert!(!at.outside.join("refused.txt").exists());
    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
}

/// Strict mode: a chmod of a sensitive file (which Landlock cannot refuse) kills the whole tree,
/// and the server is not restarted.
fn strict_kills(backend: &str) {
    let test = format!("{backend}_strict_mode_kills_the_tree");
    if let Some(why) = unavailable(backend) {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let at = Layout::new();
    let script = r#"sleep 300 &
echo $! > "$SCOPE/sleeper.pid"
chmod 600 "$HOME/.bashrc" &
echo $! > "$SCOPE/chmod.pid"
wait $!
sleep 300"#;
    let restart_fast =
        "[restart]\nmax_restarts = 5\nwindow_secs = 60\ninitial_backoff_ms = 50\nmax_backoff_ms = 100\n";
    let config = at.config(script, restart_fast);
    let mut wd = at.start(&config, &["--strict", "--fs-backend", backend]);
    let chmod = at.pid("chmod.pid");
    let killed = expect_breach(
        &wd,
        &at.home.join(".bashrc"),
        chmod,
        "chmod",
        &["chmod", "attrib"],
    );
    assert_eq!(killed["action"], "killed");
    assert_eq!(killed["fs"]["outcome"], "killed");
    wd.wait_alert("server quarantined", ALERT_WAIT, |a| {
        a["rule"] == "SUPERVISION" && a["class"] == "server quarantined"
    });
    let sleeper = at.pid("sleeper.pid") as i32;
    watchdog_tests::harness::assert_all_gone(&[sleeper], ALERT_WAIT, "the tree's background child");
    // One server is wrap mode: the watchdog ends with the killed server's status.
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGKILL),
        "{}",
        wd.stderr_tail()
    );
    assert!(
        !wd.alerts().iter().any(|a| a["class"] == "server crashed"),
        "a quarantined server must not be restarted: {:#?}",
        wd.alerts()
    );
}

#[test]
fn ebpf_strict_mode_kills_the_tree() {
    strict_kills("ebpf");
}

#[test]
fn fanotify_strict_mode_kills_the_tree() {
    strict_kills("fanotify");
}

/// Without root or a daemon, strict mode cannot keep its promise: the proxy refuses to start.
#[test]
fn strict_mode_without_an_attributing_backend_is_refused() {
    let at = Layout::new();
    let mut wd = at.start(
        &at.config("true", ""),
        &["--strict", "--fs-backend", "inotify"],
    );
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_ne!(status.code(), Some(0));
    assert!(
        wd.stderr_lines()
            .iter()
            .any(|l| l
                .contains("strict mode needs a filesystem backend that names the writing process")),
        "{}",
        wd.stderr_tail()
    );
}

/// The unprivileged backend names no process, but a change to a sensitive file while servers run
/// is still reported (unattributed).
#[test]
fn inotify_reports_sensitive_changes_unattributed() {
    let at = Layout::new();
    let script = r#"echo '# added' >> "$HOME/.bashrc"; echo done > "$SCOPE/done""#;
    let mut wd = at.start(
        &at.config(script, ""),
        &["--no-sandbox", "--fs-backend", "inotify"],
    );
    wd.initialize();
    let path = at.home.join(".bashrc").to_string_lossy().into_owned();
    let a = wd.wait_alert("sensitive change", ALERT_WAIT, |a| {
        a["rule"] == "SCOPE-L4" && a["fs"]["path"] == path.as_str()
    });
    assert_eq!(a["class"], "sensitive write");
    assert_eq!(a["fs"]["backend"], "inotify");
    assert_eq!(a["server"], Value::Null, "inotify cannot tell who wrote it");
    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
}

/// A running `mcp-watchdog daemon`, stopped on drop.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn start_daemon(socket: &Path) -> Daemon {
    let child = std::process::Command::new(watchdog_tests::watchdog_bin())
        .args(["daemon", "--socket"])
        .arg(socket)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + ALERT_WAIT;
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon(child)
}

/// An unprivileged proxy gets its server's writes attributed by the root daemon.
#[test]
fn an_unprivileged_proxy_is_served_by_the_daemon() {
    let test = "an_unprivileged_proxy_is_served_by_the_daemon";
    if !is_root() {
        eprintln!("{test}: skipped: the daemon needs root");
        return;
    }
    let Some(nobody) = as_nobody() else {
        eprintln!("{test}: skipped: setpriv (util-linux) is not installed");
        return;
    };
    let at = Layout::new();
    at.dir
        .give_to_nobody(&[&at.scope, &at.outside, &at.home, &at.home.join(".bashrc")]);
    let socket = at.dir.path("daemon.sock");
    let _daemon = start_daemon(&socket);
    let script = r#"echo $$ > "$SCOPE/root.pid"
touch "$OUT/by-nobody.txt" &
echo $! > "$SCOPE/touch.pid"
wait $!
echo done > "$SCOPE/done""#;
    let mut wd = at.start_as_nobody_with_daemon(&nobody, &socket, script, &[]);
    wd.initialize();
    let a = expect_breach(
        &wd,
        &at.outside.join("by-nobody.txt"),
        at.pid("touch.pid"),
        "touch",
        &["open-write", "create"],
    );
    assert_eq!(a["server"], "tree");
    assert!(
        a["fs"]["backend"] == "ebpf" || a["fs"]["backend"] == "fanotify",
        "{a}"
    );
    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
}

/// A strict unprivileged proxy: the daemon refuses its server's sensitive opens, and kills it at its
/// very first sensitive write even before the proxy has registered it (the shell dies at the open;
/// its next command never runs).
#[test]
fn the_daemon_kills_a_strict_proxys_server_from_its_first_instruction() {
    let test = "the_daemon_kills_a_strict_proxys_server_from_its_first_instruction";
    if !is_root() {
        eprintln!("{test}: skipped: the daemon needs root");
        return;
    }
    if let Some(why) = unavailable("ebpf") {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let Some(nobody) = as_nobody() else {
        eprintln!("{test}: skipped: setpriv (util-linux) is not installed");
        return;
    };
    let at = Layout::new();
    let bashrc = at.home.join(".bashrc");
    let ssh = at.home.join(".ssh");
    fs::create_dir(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    fs::write(&key, "PRIVATE KEY\n").unwrap();
    at.dir
        .give_to_nobody(&[&at.scope, &at.outside, &at.home, &bashrc, &ssh, &key]);
    let socket = at.dir.path("daemon.sock");
    let _daemon = start_daemon(&socket);
    let script = r#"cat "$HOME/.ssh/id_ed25519" > "$SCOPE/stolen"
echo $? > "$SCOPE/cat.rc"
echo '# added' >> "$HOME/.bashrc"
touch "$SCOPE/after""#;
    let mut wd = at.start_as_nobody_with_daemon(&nobody, &socket, script, &["--strict"]);
    let killed = wd.wait_alert("the strict kill", ALERT_WAIT, |a| {
        a["rule"] == "SCOPE-L4" && a["fs"]["path"] == bashrc.to_string_lossy().as_ref()
    });
    assert_eq!(
        (killed["action"].as_str(), killed["fs"]["outcome"].as_str()),
        (Some("killed"), Some("killed")),
        "{killed}"
    );
    assert_eq!(killed["server"], "tree");
    assert_eq!(
        fs::read_to_string(at.scope.join("stolen")).unwrap(),
        "",
        "the key was read"
    );
    assert_ne!(fs::read_to_string(at.scope.join("cat.rc")).unwrap(), "0\n");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !at.scope.join("after").exists(),
        "the server ran on after its sensitive write"
    );
    assert_eq!(fs::read_to_string(&bashrc).unwrap(), "# rc\n");
    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
}

/// The daemon is root's: started by anyone else it says so and stops.
#[test]
fn the_daemon_refuses_to_run_unprivileged() {
    let test = "the_daemon_refuses_to_run_unprivileged";
    let mut cmd = match (is_root(), as_nobody()) {
        (true, Some(nobody)) => {
            let mut c = std::process::Command::new(&nobody[0]);
            c.args(&nobody[1..]).arg(watchdog_tests::watchdog_bin());
            c
        }
        (true, None) => {
            eprintln!("{test}: skipped: setpriv (util-linux) is not installed");
            return;
        }
        (false, _) => std::process::Command::new(watchdog_tests::watchdog_bin()),
    };
    let out = cmd
        .args(["daemon", "--socket", "/nonexistent/never.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must run as root"),
        "{out:?}"
    );
}

/// Strict mode as root: a server's open of a sensitive file is refused (EPERM, by fanotify
/// permission events whichever backend attributes) and reported; an open the kernel refused needs
/// no kill, so the server lives on.
fn strict_denies_opens(backend: &str) {
    let test = format!("{backend}_strict_mode_denies_sensitive_opens");
    if let Some(why) = unavailable(backend) {
        eprintln!("{test}: skipped: {why}");
        return;
    }
    let at = Layout::new();
    fs::create_dir_all(at.home.join(".ssh")).unwrap();
    fs::write(at.home.join(".ssh/id_test"), "PRIVATE KEY\n").unwrap();
    let script = r#"cat "$HOME/.ssh/id_test" > "$SCOPE/stolen" 2> "$SCOPE/err"
echo $? > "$SCOPE/rc""#;
    let mut wd = at.start(
        &at.config(script, ""),
        &["--strict", "--fs-backend", backend],
    );
    wd.initialize();
    let key = at.home.join(".ssh/id_test").to_string_lossy().into_owned();
    let a = wd.wait_alert("denied open", ALERT_WAIT, |a| {
        a["rule"] == "SCOPE-L4" && a["fs"]["path"] == key.as_str()
    });
    assert_eq!(a["class"], "sensitive open");
    assert_eq!(a["action"], "blocked");
    assert_eq!(a["fs"]["outcome"], "denied");
    assert_eq!(a["fs"]["operation"], "open");
    assert_ne!(at.pid("rc"), 0, "cat must have failed");
    let err = fs::read_to_string(at.scope.join("err")).unwrap();
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(fs::read_to_string(at.scope.join("stolen")).unwrap(), "");
    // Refused, not killed: the server still answers.
    wd.request("ping", serde_json::json!({}));
    wd.close_stdin();
    wd.wait_exit(EXIT_TIMEOUT);
}

#[test]
fn fanotify_strict_mode_denies_sensitive_opens() {
    strict_denies_opens("fanotify");
}

#[test]
fn ebpf_strict_mode_denies_sensitive_opens() {
    strict_denies_opens("ebpf");
}
