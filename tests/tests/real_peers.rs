//! Real MCP peers through the watchdog.
//!
//! `tests/peers/session.py` drives a full session with the official MCP Python SDK client
//! against the real reference servers (`@modelcontextprotocol/server-everything` and
//! `server-filesystem`, pinned in `tests/peers/package.json`) and prints one canonical JSON
//! document of everything it observed. Each test runs it once directly against the server
//! and once through `mcp-watchdog` (stdio wrap or gateway), and asserts the documents are
//! equal: a transparent proxy changes nothing a real client can see.
//!
//! Needs `npm ci --prefix tests/peers` and `pip install -r tests/peers/requirements.txt`
//! (`.ci/run` does both). Without them the tests skip, except under `CI`, where they fail.

use serde_json::Value;
use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A session (direct or proxied) that takes longer than this is killed and the test fails.
const SESSION_TIMEOUT: Duration = Duration::from_secs(120);

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

fn everything_entry() -> PathBuf {
    peers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

fn filesystem_entry() -> PathBuf {
    peers_dir().join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js")
}

/// The Python that has the pinned SDK: `WATCHDOG_TEST_PYTHON`, else `tests/peers/.venv`, else `python3`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("WATCHDOG_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = peers_dir().join(".venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `Ok` when the real peers are installed; otherwise why not.
fn missing_prerequisite() -> Option<String> {
    for entry in [everything_entry(), filesystem_entry()] {
        if !entry.exists() {
            return Some(format!(
                "{} is missing (npm ci --prefix tests/peers)",
                entry.display()
            ));
        }
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Some("`node` is not on PATH".into()),
    }
    let py = python();
    match Command::new(&py)
        .args(["-c", "import mcp, mcp.client.stdio"])
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => None,
        _ => Some(format!(
            "the Python MCP SDK is not importable by {} (pip install -r tests/peers/requirements.txt)",
            py.display()
        )),
    }
}

/// True when the test should go on. Skips (returns false) locally; fails under CI.
fn peers_available(test: &str) -> bool {
    match missing_prerequisite() {
        None => true,
        Some(why) if in_ci() => panic!(
            "{test}: the real MCP peers are not installed: {why}. Run .ci/run, which installs them."
        ),
        Some(why) => {
            eprintln!(
                "skipping {test}: {why}. Run .ci/run (or its npm/pip steps) to install them."
            );
            false
        }
    }
}

/// A scratch directory under cargo's per-target temp dir, removed when dropped after success.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "real_peers-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    fn sub(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p).expect("create scratch subdir");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

struct Finished {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `cmd` in its own process group; kills the whole group after `SESSION_TIMEOUT`.
fn run_with_timeout(mut cmd: Command, what: &str) -> Finished {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let pgid = child.id() as i32;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for session") {
            break status;
        }
        if started.elapsed() > SESSION_TIMEOUT {
            // SAFETY: plain kill(2) of the process group this test created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "{what}: no result after {} s; killed it. stderr:\n{stderr}",
                SESSION_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the session left behind in its group (a server that outlived it) goes too.
    // SAFETY: as above; ESRCH when the group is already gone is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    Finished {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// Which script session.py runs, and how.
struct Session<'a> {
    server: &'a str,
    prefix: Option<&'a str>,
    dir: Option<&'a Path>,
}

/// Runs session.py against `command` and returns its document.
fn run_session(label: &str, s: &Session, command: &[String]) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(peers_dir().join("session.py"))
        .args(["--server", s.server]);
    if let Some(p) = s.prefix {
        cmd.args(["--prefix", p]);
    }
    if let Some(d) = s.dir {
        cmd.arg("--dir").arg(d);
    }
    cmd.arg("--").args(command);
    let done = run_with_timeout(cmd, label);
    eprintln!("{label}: {:.1} s", done.elapsed.as_secs_f64());
    assert!(
        done.status.success(),
        "{label}: session.py failed ({}).\ncommand: {command:?}\nstderr:\n{}",
        done.status,
        done.stderr
    );
    serde_json::from_str(&done.stdout).unwrap_or_else(|e| {
        panic!(
            "{label}: session.py printed no JSON document ({e}). stdout:\n{}\nstderr:\n{}",
            done.stdout, done.stderr
        )
    })
}

fn node_command(entry: &Path, args: &[&str]) -> Vec<String> {
    let mut v = vec!["node".to_string(), entry.display().to_string()];
    v.extend(args.iter().map(|a| a.to_string()));
    v
}

fn watchdog_wrap(audit: &Path, server: &[String]) -> Vec<String> {
    let mut v = vec![
        watchdog_tests::watchdog_bin().display().to_string(),
        "--quiet".into(),
        "--audit-log".into(),
        audit.display().to_string(),
        // Pins beside the audit log: a test never writes under the real $HOME.
        "--pins".into(),
        audit.with_file_name("pins.json").display().to_string(),
        "--".into(),
    ];
    v.extend(server.iter().cloned());
    v
}

fn watchdog_gateway(audit: &Path, config: &Path) -> Vec<String> {
    vec![
        watchdog_tests::watchdog_bin().display().to_string(),
        "--quiet".into(),
        "--audit-log".into(),
        audit.display().to_string(),
        // Pins beside the audit log: a test never writes under the real $HOME.
        "--pins".into(),
        audit.with_file_name("pins.json").display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ]
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_gateway_config(path: &Path, fs_dir: &Path) {
    let everything = everything_entry().display().to_string();
    let filesystem = filesystem_entry().display().to_string();
    let fs_dir = fs_dir.display().to_string();
    let text = format!(
        "[[server]]\nname = \"everything\"\ncommand = \"node\"\nargs = [{}, \"stdio\"]\n\n\
         [[server]]\nname = \"fs\"\ncommand = \"node\"\nargs = [{}, {}]\n",
        toml_str(&everything),
        toml_str(&filesystem),
        toml_str(&fs_dir),
    );
    std::fs::write(path, text).expect("write watchdog.toml");
}

/// Checks the audit log the proxied run wrote, if it wrote one: JSON lines, chain intact.
fn check_audit_log(label: &str, audit: &Path) {
    let Ok(text) = std::fs::read_to_string(audit) else {
        eprintln!("{label}: no audit log written at {}", audit.display());
        return;
    };
    for (i, line) in text.lines().enumerate() {
        if let Err(e) = serde_json::from_str::<Value>(line) {
            panic!(
                "{label}: audit log line {} is not JSON ({e}): {line}",
                i + 1
            );
        }
    }
    let mut cmd = Command::new(watchdog_tests::watchdog_bin());
    cmd.args(["audit", "verify"]).arg(audit);
    let done = run_with_timeout(cmd, &format!("{label}: audit verify"));
    assert!(
        done.status.success(),
        "{label}: `mcp-watchdog audit verify` rejected the audit log ({}):\n{}{}",
        done.status,
        done.stdout,
        done.stderr
    );
    eprintln!(
        "{label}: audit log {} lines, verified",
        text.lines().count()
    );
}

// ------------------------------------------------------------------------------------------
// Comparing documents
// ------------------------------------------------------------------------------------------

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 400 {
        let head: String = s.chars().take(400).collect();
        format!("{head}… ({} chars)", s.len())
    } else {
        s
    }
}

/// Every place `a` and `b` differ, as `path: expected … / got …` lines.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => differences(&p, va, vb, out),
                    (Some(va), None) => out.push(format!(
                        "{p}: missing through the watchdog (direct: {})",
                        short(va)
                    )),
                    (None, Some(vb)) => {
                        out.push(format!("{p}: only through the watchdog: {}", short(vb)))
                    }
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            // Name the elements by `name`/`step` where they have one: easier to read.
            let label = |v: &Value, i: usize| {
                v.get("step")
                    .or_else(|| v.get("name"))
                    .and_then(Value::as_str)
                    .map(|n| format!("{i}({n})"))
                    .unwrap_or_else(|| i.to_string())
            };
            for i in 0..x.len().max(y.len()) {
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => {
                        differences(&format!("{path}/{}", label(va, i)), va, vb, out)
                    }
                    (Some(va), None) => out.push(format!(
                        "{path}/{}: missing through the watchdog (direct: {})",
                        label(va, i),
                        short(va)
                    )),
                    (None, Some(vb)) => out.push(format!(
                        "{path}/{}: only through the watchdog: {}",
                        label(vb, i),
                        short(vb)
                    )),
                    (None, None) => unreachable!(),
                }
            }
        }
        _ if a == b => {}
        _ => out.push(format!(
            "{path}:\n    direct:   {}\n    watchdog: {}",
            short(a),
            short(b)
        )),
    }
}

/// Asserts the documents are equal; on failure prints every difference and keeps both files.
fn assert_same(label: &str, direct: &Value, proxied: &Value, keep: &Path) {
    let mut diffs = Vec::new();
    differences("", direct, proxied, &mut diffs);
    if diffs.is_empty() {
        return;
    }
    let d = keep.join("direct.json");
    let p = keep.join("watchdog.json");
    let _ = std::fs::write(&d, serde_json::to_string_pretty(direct).unwrap());
    let _ = std::fs::write(&p, serde_json::to_string_pretty(proxied).unwrap());
    let shown = diffs.len().min(40);
    panic!(
        "{label}: what the client saw through the watchdog differs from the direct session \
         in {} place(s){}:\n{}\n(full documents: {} and {})",
        diffs.len(),
        if shown < diffs.len() {
            format!(", first {shown}")
        } else {
            String::new()
        },
        diffs[..shown].join("\n"),
        d.display(),
        p.display()
    );
}

/// The gateway answers `initialize` for all its servers and relays every server's
/// notifications, so those two parts are compared for inclusion, the rest for equality.
fn split_gateway_parts(label: &str, direct: &mut Value, gateway: &mut Value) {
    let d_init = direct["initialize"].take();
    let g_init = gateway["initialize"].take();
    assert_eq!(
        d_init["protocolVersion"], g_init["protocolVersion"],
        "{label}: the gateway negotiated another protocol version"
    );
    let d_caps = d_init["capabilities"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let g_caps = g_init["capabilities"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let missing: Vec<&String> = d_caps.keys().filter(|k| !g_caps.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{label}: the gateway does not advertise the server's capabilities {missing:?}\n\
         server: {}\ngateway: {}",
        short(&d_init["capabilities"]),
        short(&g_init["capabilities"])
    );

    let d_notes = direct["notifications"].take();
    let g_notes = gateway["notifications"].take();
    let mut lost = Vec::new();
    if let Some(d) = d_notes.as_object() {
        for (method, params) in d {
            for p in params.as_array().into_iter().flatten() {
                let relayed = g_notes[method.as_str()]
                    .as_array()
                    .is_some_and(|g| g.contains(p));
                if !relayed {
                    lost.push(format!("{method} {}", short(p)));
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{label}: notifications the server sent that the client did not get through the gateway:\n{}\n\
         (through the gateway: {})",
        lost.join("\n"),
        short(&g_notes)
    );
}

// ------------------------------------------------------------------------------------------
// The tests
// ------------------------------------------------------------------------------------------

#[test]
fn everything_server_through_stdio_proxy() {
    if !peers_available("everything_server_through_stdio_proxy") {
        return;
    }
    let scratch = Scratch::new("everything-wrap");
    let server = node_command(&everything_entry(), &["stdio"]);
    let s = Session {
        server: "everything",
        prefix: None,
        dir: None,
    };
    let direct = run_session("everything direct", &s, &server);
    let audit = scratch.path.join("audit.jsonl");
    let proxied = run_session(
        "everything via watchdog",
        &s,
        &watchdog_wrap(&audit, &server),
    );
    assert_same("everything via watchdog", &direct, &proxied, &scratch.path);
    check_audit_log("everything via watchdog", &audit);
}

#[test]
fn filesystem_server_through_stdio_proxy() {
    if !peers_available("filesystem_server_through_stdio_proxy") {
        return;
    }
    let scratch = Scratch::new("filesystem-wrap");
    let (d1, d2) = (scratch.sub("direct-root"), scratch.sub("proxied-root"));
    let direct = run_session(
        "filesystem direct",
        &Session {
            server: "filesystem",
            prefix: None,
            dir: Some(&d1),
        },
        &node_command(&filesystem_entry(), &[&d1.display().to_string()]),
    );
    let audit = scratch.path.join("audit.jsonl");
    let proxied = run_session(
        "filesystem via watchdog",
        &Session {
            server: "filesystem",
            prefix: None,
            dir: Some(&d2),
        },
        &watchdog_wrap(
            &audit,
            &node_command(&filesystem_entry(), &[&d2.display().to_string()]),
        ),
    );
    assert_same("filesystem via watchdog", &direct, &proxied, &scratch.path);
    check_audit_log("filesystem via watchdog", &audit);
}

#[test]
fn everything_server_through_gateway() {
    if !peers_available("everything_server_through_gateway") {
        return;
    }
    let scratch = Scratch::new("everything-gateway");
    let fs_root = scratch.sub("fs-root");
    let config = scratch.path.join("watchdog.toml");
    write_gateway_config(&config, &fs_root);
    let mut direct = run_session(
        "everything direct",
        &Session {
            server: "everything",
            prefix: None,
            dir: None,
        },
        &node_command(&everything_entry(), &["stdio"]),
    );
    let audit = scratch.path.join("audit.jsonl");
    let mut gateway = run_session(
        "everything via gateway",
        &Session {
            server: "everything",
            prefix: Some("everything__"),
            dir: None,
        },
        &watchdog_gateway(&audit, &config),
    );
    split_gateway_parts("everything via gateway", &mut direct, &mut gateway);
    assert_same("everything via gateway", &direct, &gateway, &scratch.path);
    check_audit_log("everything via gateway", &audit);
}

#[test]
fn filesystem_server_through_gateway() {
    if !peers_available("filesystem_server_through_gateway") {
        return;
    }
    let scratch = Scratch::new("filesystem-gateway");
    let (d1, d2) = (scratch.sub("direct-root"), scratch.sub("fs-root"));
    let config = scratch.path.join("watchdog.toml");
    write_gateway_config(&config, &d2);
    let mut direct = run_session(
        "filesystem direct",
        &Session {
            server: "filesystem",
            prefix: None,
            dir: Some(&d1),
        },
        &node_command(&filesystem_entry(), &[&d1.display().to_string()]),
    );
    let audit = scratch.path.join("audit.jsonl");
    let mut gateway = run_session(
        "filesystem via gateway",
        &Session {
            server: "filesystem",
            prefix: Some("fs__"),
            dir: Some(&d2),
        },
        &watchdog_gateway(&audit, &config),
    );
    split_gateway_parts("filesystem via gateway", &mut direct, &mut gateway);
    assert_same("filesystem via gateway", &direct, &gateway, &scratch.path);
    check_audit_log("filesystem via gateway", &audit);
}
