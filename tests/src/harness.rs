//! Drives a running `mcp-watchdog` as an MCP client would: writes lines to its stdin, reads lines from its
//! stdout, collects its stderr, and never waits without a deadline, so that a hang fails the test.
//!
//! Reader threads drain stdout and stderr continuously; a test may therefore write any amount before
//! reading without filling a pipe and deadlocking against the proxy.

use crate::{fake_upstream_bin, watchdog_bin};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Default patience for one reply. Generous because CI shares two cores between several builds; a
/// correct proxy answers in milliseconds, so this only decides how long a broken one takes to fail.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the watchdog may take to exit once asked to (covers its TERM→KILL grace for children).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A scratch directory for one test: audit log, record files, pid files, configs.
///
/// On drop it kills (SIGKILL) any process whose pid a fake upstream wrote into a `*.pid` file here and
/// that is still alive, so a failing test does not leave fakes or grandchildren behind.
///
/// The watchdog's own $XDG_STATE_HOME and $XDG_CONFIG_HOME live in a second directory beside it:
/// they are sensitive paths, and a directory holding them could never be a server's write scope,
/// while the fakes are told to write their records here.
pub struct TestDir {
    dir: tempfile::TempDir,
    own: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    pub fn new() -> Self {
        let temp = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("create temp dir")
        };
        TestDir {
            dir: temp("watchdog-e2e-"),
            own: temp("watchdog-e2e-own-"),
        }
    }

    /// The watchdog's $XDG_STATE_HOME (pins, default audit log).
    pub fn xdg_state(&self) -> PathBuf {
        self.own.path().join("state")
    }

    /// The watchdog's $XDG_CONFIG_HOME.
    pub fn xdg_config(&self) -> PathBuf {
        self.own.path().join("config")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Path as a String, for building argument lists.
    pub fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// A fresh sub-directory (e.g. a fake's --state-dir).
    pub fn subdir(&self, name: &str) -> String {
        let p = self.path(name);
        fs::create_dir_all(&p).expect("create subdir");
        p.to_string_lossy().into_owned()
    }

    /// Lines of a record file written by the fake upstream (each with its newline), empty if absent.
    pub fn record_lines(&self, name: &str) -> Vec<Vec<u8>> {
        split_lines(&fs::read(self.path(name)).unwrap_or_default())
    }

    /// The record file parsed as JSON, one value per line; unparsable lines are an error.
    pub fn record_json(&self, name: &str) -> Vec<Value> {
        self.record_lines(name)
            .iter()
            .map(|l| {
                serde_json::from_slice(l).unwrap_or_else(|e| {
                    panic!(
                        "record {name}: bad line {:?}: {e}",
                        String::from_utf8_lossy(l)
                    )
                })
            })
            .collect()
    }

    /// Pids written to a pid file (one per line).
    pub fn pids(&self, name: &str) -> Vec<i32> {
        fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Waits until `name` exists and holds at least one pid.
    pub fn wait_pids(&self, name: &str, timeout: Duration) -> Vec<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.pids(name);
            if !pids.is_empty() {
                return pids;
            }
            assert!(
                Instant::now() < deadline,
                "no pid in {name} after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(self.dir.path()) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().extension().and_then(|x| x.to_str()) != Some("pid") {
                continue;
            }
            for pid in fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                // Only our own processes: guards against a recycled pid.
                let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if !process_gone(pid) && (cmd.contains("fake-upstream") || cmd.contains("sleep")) {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

/// True when `pid` no longer exists or is a zombie (dead, waiting for its parent to reap it).
pub fn process_gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the command name, which is in parentheses and may contain spaces.
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            matches!(state, Some("Z") | Some("X") | None)
        }
    }
}

/// Waits for every pid to be gone; panics naming the survivors.
pub fn assert_all_gone(pids: &[i32], timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|p| !process_gone(*p)).collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let desc: Vec<String> = alive
                .iter()
                .map(|p| {
                    let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p} ({})", String::from_utf8_lossy(&cmd).replace('\0', " "))
                })
                .collect();
            panic!("{what}: still alive after {timeout:?}: {}", desc.join(", "));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Splits bytes into lines, each keeping its trailing newline (a last unterminated piece is kept too).
pub fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Argument list for the fake upstream: the binary followed by `args`.
pub fn fake_cmd(args: &[&str]) -> Vec<String> {
    let mut v = vec![fake_upstream_bin().to_string_lossy().into_owned()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// One `[[server]]` table for a gateway config running the fake upstream with `args`;
/// `extra` is appended verbatim (e.g. `prefix = "p"` or `tools.deny = ["x"]`).
pub fn server_toml(name: &str, args: &[&str], extra: &str) -> String {
    let quoted: Vec<String> = args.iter().map(|a| toml_str(a)).collect();
    format!(
        "[[server]]\nname = {}\ncommand = {}\nargs = [{}]\n{extra}\n\n",
        toml_str(name),
        toml_str(&fake_upstream_bin().to_string_lossy()),
        quoted.join(", ")
    )
}

/// A TOML basic string: JSON's string escapes are a subset TOML accepts.
pub fn toml_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Where the watchdog's stdin comes from.
pub enum Input {
    /// A pipe the test writes to (the default).
    Pipe,
    /// A regular file, read to its end.
    File(PathBuf),
    /// /dev/null.
    Null,
}

/// A running mcp-watchdog.
pub struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<Vec<u8>>,
    out_eof: bool,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Messages received while waiting for something else, in arrival order (batches flattened).
    backlog: VecDeque<Value>,
    /// Every line received on stdout, raw, in order.
    pub received: Vec<Vec<u8>>,
    next_id: i64,
    status: Option<ExitStatus>,
}

impl Watchdog {
    /// Starts `mcp-watchdog --alerts-json --audit-log <dir>/audit.jsonl <args…>`.
    pub fn spawn(dir: &TestDir, args: &[String], input: Input) -> Watchdog {
        Watchdog::spawn_with(dir, &[], args, &[], input)
    }

    /// Like `spawn`, but started through `launcher` (e.g. `setpriv --reuid=…`, empty for none) and
    /// with `env` added last (it may override HOME or the XDG directories).
    pub fn spawn_with(
        dir: &TestDir,
        launcher: &[String],
        args: &[String],
        env: &[(String, String)],
        input: Input,
    ) -> Watchdog {
        // WATCHDOG_E2E_BIN runs the suite against another build (or a reference relay) of the binary.
        let bin = std::env::var_os("WATCHDOG_E2E_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(watchdog_bin);
        let mut cmd = match launcher.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--alerts-json")
            .arg("--audit-log")
            .arg(dir.path("audit.jsonl"))
            .args(args.iter().map(OsString::from))
            // Nothing a test runs may write under the real $HOME.
            .env("XDG_STATE_HOME", dir.xdg_state())
            .env("XDG_CONFIG_HOME", dir.xdg_config())
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &input {
            Input::Pipe => cmd.stdin(Stdio::piped()),
            Input::File(p) => cmd.stdin(fs::File::open(p).expect("open stdin file")),
            Input::Null => cmd.stdin(Stdio::null()),
        };
        let mut child = cmd.spawn().expect("spawn mcp-watchdog");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");

        let (tx, out) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(stderr_pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        if std::env::var_os("WATCHDOG_E2E_STDERR").is_some() {
                            eprintln!("watchdog stderr: {line}");
                        }
                        sink.lock().unwrap().push(line);
                    }
                }
            }
        });
        Watchdog {
            child,
            stdin,
            out,
            out_eof: false,
            stderr,
            backlog: VecDeque::new(),
            received: Vec::new(),
            next_id: 1,
            status: None,
        }
    }

    /// Wrap mode around the fake upstream: `mcp-watchdog <extra…> -- fake-upstream <fake_args…>`.
    pub fn wrap(dir: &TestDir, extra: &[&str], fake_args: &[&str]) -> Watchdog {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.push("--".into());
        args.extend(fake_cmd(fake_args));
        Watchdog::spawn(dir, &args, Input::Pipe)
    }

    /// Gateway mode: writes `config` to `<dir>/watchdog.toml` and runs with `--config`.
    pub fn gateway(dir: &TestDir, extra: &[&str], config: &str) -> Watchdog {
        let path = dir.path("watchdog.toml");
        fs::write(&path, config).expect("write config");
        let mut args = vec!["--config".to_string(), path.to_string_lossy().into_owned()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Watchdog::spawn(dir, &args, Input::Pipe)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Writes raw bytes to the watchdog's stdin.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is a pipe and still open");
        if let Err(e) = stdin.write_all(bytes).and_then(|_| stdin.flush()) {
            panic!("writing to watchdog stdin: {e}\n{}", self.stderr_tail());
        }
    }

    /// Writes one message as a line.
    pub fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_vec(msg).expect("serialize");
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// Closes the watchdog's stdin (client EOF).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// A fresh numeric id for a request.
    pub fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Next raw line from stdout; None at EOF; panics on timeout.
    pub fn recv_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        if self.out_eof {
            return None;
        }
        match self.out.recv_timeout(timeout) {
            Ok(line) => {
                self.received.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.out_eof = true;
                None
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no line from the watchdog within {timeout:?}\n{}",
                    self.stderr_tail()
                )
            }
        }
    }

    /// Next message, from the backlog first; a batch array's elements come one by one.
    pub fn recv(&mut self, timeout: Duration) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.recv_raw(left) else {
                panic!(
                    "watchdog stdout closed while a message was awaited\n{}",
                    self.stderr_tail()
                );
            };
            match parse_line(&line) {
                Some(Value::Array(items)) => self.backlog.extend(items),
                Some(v) => self.backlog.push_back(v),
                None => panic!(
                    "the watchdog sent a line that is not JSON: {}",
                    short(&format!("{:?}", String::from_utf8_lossy(&line)))
                ),
            }
            if let Some(v) = self.backlog.pop_front() {
                return v;
            }
        }
    }

    /// Waits for the first message matching `pred`; the others stay in the backlog, in order.
    pub fn recv_matching(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        let mut skipped = VecDeque::new();
        loop {
            if Instant::now() >= deadline {
                self.backlog = skipped;
                panic!(
                    "waited {timeout:?} for {what}; received meanwhile: {}\n{}",
                    short_list(&self.backlog),
                    self.stderr_tail()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.recv_raw(left) else {
                panic!(
                    "watchdog stdout closed while waiting for {what}; received meanwhile: {}\n{}",
                    short_list(&skipped),
                    self.stderr_tail()
                );
            };
            let items = match parse_line(&line) {
                Some(Value::Array(items)) => items,
                Some(v) => vec![v],
                None => panic!(
                    "the watchdog sent a line that is not JSON: {}",
                    short(&format!("{:?}", String::from_utf8_lossy(&line)))
                ),
            };
            let mut found = None;
            for v in items {
                if found.is_none() && pred(&v) {
                    found = Some(v);
                } else {
                    skipped.push_back(v);
                }
            }
            if let Some(v) = found {
                skipped.extend(self.backlog.drain(..));
                self.backlog = skipped;
                return v;
            }
        }
    }

    /// Waits for the response (result or error) carrying `id`.
    pub fn response(&mut self, id: &Value, timeout: Duration) -> Value {
        let want = id.clone();
        self.recv_matching(&format!("the response to id {id}"), timeout, move |v| {
            is_response(v) && v.get("id") == Some(&want)
        })
    }

    /// Sends a request with a fresh id and returns its response (result or error).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.fresh_id());
        self.send(&json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}));
        self.response(&id, REPLY_TIMEOUT)
    }

    /// Like `request`, but the response must be a result; returns the result.
    pub fn call_ok(&mut self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params);
        match resp.get("result") {
            Some(r) => r.clone(),
            None => panic!(
                "{method}: expected a result, got {resp}\n{}",
                self.stderr_tail()
            ),
        }
    }

    /// The standard opening: initialize (returning its result) then notifications/initialized.
    pub fn initialize(&mut self) -> Value {
        let result = self.call_ok("initialize", init_params());
        self.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        result
    }

    /// Reads stdout to EOF (bounded), returning the raw lines read by this call.
    pub fn read_to_eof(&mut self, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while !self.out_eof {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "watchdog stdout still open after {timeout:?}\n{}",
                    self.stderr_tail()
                );
            }
            if let Some(l) = self.recv_raw(left) {
                lines.push(l);
            }
        }
        lines
    }

    /// Waits for the watchdog to exit on its own; kills it and panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                // Give the stderr reader a moment to collect the last lines.
                thread::sleep(Duration::from_millis(50));
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the watchdog did not exit within {timeout:?}\n{}",
                    self.stderr_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the watchdog process.
    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    /// All stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The last stderr lines, for failure messages.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr_lines();
        let start = lines.len().saturating_sub(40);
        format!(
            "--- watchdog stderr (last 40 lines) ---\n{}",
            lines[start..].join("\n")
        )
    }

    /// Alerts so far: stderr lines that are JSON objects with a `rule` key.
    pub fn alerts(&self) -> Vec<Value> {
        self.stderr_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("rule").is_some())
            .collect()
    }

    /// Waits for an alert matching `pred`.
    pub fn wait_alert(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.alerts().into_iter().find(&pred) {
                return a;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no alert {what} within {timeout:?}; alerts: {:?}\n{}",
                    self.alerts(),
                    self.stderr_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for an alert with the given rule.
    pub fn wait_rule(&self, rule: &str, timeout: Duration) -> Value {
        self.wait_alert(&format!("with rule {rule}"), timeout, |a| a["rule"] == rule)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Ok(None) = self.child.try_wait() {
                // A test that failed midway: SIGTERM first so the watchdog can still clean up its
                // children, then SIGKILL after a bounded wait.
                unsafe { libc::kill(self.pid(), libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = self.child.try_wait() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// A display of `v` cut to a few hundred characters: failure messages must stay readable even when
/// the message at fault is 100 MiB.
pub fn short(v: &impl std::fmt::Display) -> String {
    let s = v.to_string();
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
        None => s,
    }
}

/// The same for a list of messages.
pub fn short_list(vs: &VecDeque<Value>) -> String {
    let items: Vec<String> = vs.iter().take(20).map(short).collect();
    format!("[{}] ({} messages)", items.join(", "), vs.len())
}

/// Parses one received line (its newline removed); None if it is not JSON.
pub fn parse_line(line: &[u8]) -> Option<Value> {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(l).ok()
}

/// A JSON-RPC response: no method, and a result or an error.
pub fn is_response(v: &Value) -> bool {
    v.get("method").is_none() && (v.get("result").is_some() || v.get("error").is_some())
}

/// A JSON-RPC error response.
pub fn is_error(v: &Value) -> bool {
    v.get("method").is_none() && v.get("error").is_some()
}

/// The params of the client's initialize in every test.
pub fn init_params() -> Value {
    json!({
        "protocolVersion": "2025-06-18",
        "capabilities": {"sampling": {}, "roots": {"listChanged": true}, "elicitation": {}},
        "clientInfo": {"name": "watchdog-e2e", "version": "1.0.0"}
    })
}

/// Describes an exit status for assertions: "code N" or "signal N".
pub fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => format!("{s:?}"),
    }
}

/// Reads a whole file, for comparisons; empty if absent.
pub fn read_all(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    if let Ok(mut f) = fs::File::open(path) {
        f.read_to_end(&mut v).ok();
    }
    v
}

/// `setpriv` and its arguments, to put before a command so that it runs as `nobody` (uid and gid
/// 65534, no supplementary groups); `None` without util-linux's setpriv.
pub fn as_nobody() -> Option<Vec<String>> {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    Some(
        [
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
}

/// Makes `p` nobody's, mode 0755.
pub fn chown_nobody(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

impl TestDir {
    /// Hands the test directory, `more`, and the watchdog's own state and config directories to
    /// `nobody`, so that a watchdog running as nobody is refused nothing by file permissions.
    pub fn give_to_nobody(&self, more: &[&Path]) {
        fs::create_dir_all(self.xdg_state()).unwrap();
        fs::create_dir_all(self.xdg_config()).unwrap();
        let own = self.xdg_state().parent().unwrap().to_path_buf();
        for p in [self.root(), &own, &self.xdg_state(), &self.xdg_config()]
            .into_iter()
            .chain(more.iter().copied())
        {
            chown_nobody(p);
        }
    }
}
