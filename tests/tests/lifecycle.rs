//! Supervision and shutdown in wrap mode: crashes answer in-flight requests and restart the server with
//! the client's initialize replayed; shutdown (client EOF, SIGTERM, SIGINT) delivers replies in flight,
//! leaves no process behind and, in wrap mode, exits with the server's status.

use serde_json::{json, Value};
use std::fs;
use std::thread;
use std::time::{Duration, Instant};
use watchdog_tests::harness::{
    assert_all_gone, describe, init_params, is_error, is_response, parse_line, short, split_lines,
    Input, TestDir, Watchdog, EXIT_TIMEOUT, REPLY_TIMEOUT,
};

/// How long a process tree may take to disappear after the watchdog exited. The TERM→KILL grace is
/// inside the watchdog's own exit; this only absorbs reaping and scheduling on a busy machine.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls `tools/call` until it succeeds (the server may be restarting), bounded.
fn call_until_ok(wd: &mut Watchdog, args: Value, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let resp = wd.request("tools/call", json!({"name": "t", "arguments": args}));
        if resp.get("result").is_some() {
            return resp["result"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "tools/call still failing after {within:?}: {}\n{}",
            short(&resp),
            wd.stderr_tail()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn crash_mid_request_answers_it_restarts_and_replays_initialize() {
    let dir = TestDir::new();
    let state = dir.subdir("state");
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &[
            "--crash-on",
            "tools/call",
            "--state-dir",
            &state,
            "--record",
            &dir.p("in.rec"),
            "--pid-file",
            &dir.p("fake.pid"),
        ],
    );
    wd.initialize();
    let crashing = wd.request("tools/call", json!({"name": "t", "arguments": {"n": 1}}));
    assert!(
        is_error(&crashing),
        "the request in flight when the server died must get an error: {}",
        short(&crashing)
    );
    let result = call_until_ok(&mut wd, json!({"n": 2}), Duration::from_secs(30));
    assert_eq!(result["echo"]["arguments"]["n"], 2);

    let rec = dir.record_json("in.rec");
    let inits: Vec<&Value> = rec.iter().filter(|m| m["method"] == "initialize").collect();
    assert_eq!(inits.len(), 2, "initialize seen once per life: {rec:?}");
    assert_eq!(inits[0]["params"], init_params());
    assert_eq!(
        inits[1]["params"], inits[0]["params"],
        "replayed with the same params"
    );
    let second_init = rec
        .iter()
        .rposition(|m| m["method"] == "initialize")
        .unwrap();
    assert!(
        rec[second_init..]
            .iter()
            .any(|m| m["method"] == "notifications/initialized"),
        "the replayed initialize is followed by notifications/initialized: {rec:?}"
    );
    assert_eq!(dir.pids("fake.pid").len(), 2, "exactly one restart");

    // The replayed initialize's response is the watchdog's business, not the client's.
    let init_responses = wd
        .received
        .iter()
        .filter_map(|l| parse_line(l))
        .filter(|m| is_response(m) && m["result"].get("serverInfo").is_some())
        .count();
    assert_eq!(
        init_responses, 1,
        "the client saw a second initialize response"
    );

    wd.close_stdin();
    wd.read_to_eof(REPLY_TIMEOUT);
    wd.wait_exit(EXIT_TIMEOUT);
    assert_all_gone(
        &dir.pids("fake.pid"),
        GONE_TIMEOUT,
        "fake upstream processes",
    );
}

#[test]
fn a_server_that_keeps_crashing_is_marked_failed_and_requests_get_errors() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &["--exit-immediately", "3", "--pid-file", &dir.p("fake.pid")],
    );
    let id = json!(wd.fresh_id());
    wd.send(&json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":init_params()}));
    // Generous: the failure comes after several restarts with growing back-off.
    let alert = wd.wait_alert("with action failed", Duration::from_secs(90), |a| {
        a["action"] == "failed"
    });
    assert!(alert["severity"].is_string(), "{alert}");
    // Whether the initialize got its error before or after the verdict, it must get one, and it must
    // arrive even though the watchdog may be on its way out (wrap mode ends with its only server).
    let resp = wd.response(&id, REPLY_TIMEOUT);
    assert!(is_error(&resp), "{}", short(&resp));
    assert!(
        dir.pids("fake.pid").len() >= 2,
        "the server was restarted before being given up on"
    );
    wd.close_stdin();
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(3),
        "wrap mode exits with the server's status, got {}",
        describe(status)
    );
}

/// Starts a fake with a SIGTERM-ignoring grandchild, completes initialize, returns the pids to watch.
fn start_with_grandchild(dir: &TestDir) -> (Watchdog, Vec<i32>) {
    let mut wd = Watchdog::wrap(
        dir,
        &[],
        &[
            "--grandchild-ignoring-term",
            &dir.p("gc.pid"),
            "--pid-file",
            &dir.p("fake.pid"),
        ],
    );
    wd.initialize();
    let mut pids = dir.wait_pids("fake.pid", REPLY_TIMEOUT);
    pids.extend(dir.wait_pids("gc.pid", REPLY_TIMEOUT));
    assert_eq!(pids.len(), 2);
    (wd, pids)
}

#[test]
fn client_eof_leaves_no_orphans_even_a_grandchild_ignoring_sigterm() {
    let dir = TestDir::new();
    let (mut wd, pids) = start_with_grandchild(&dir);
    wd.close_stdin();
    wd.read_to_eof(EXIT_TIMEOUT);
    wd.wait_exit(EXIT_TIMEOUT);
    assert_all_gone(&pids, GONE_TIMEOUT, "server process tree after client EOF");
}

fn graceful_signal(sig: i32) {
    let dir = TestDir::new();
    let (mut wd, pids) = start_with_grandchild(&dir);
    wd.signal(sig);
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert!(
        std::os::unix::process::ExitStatusExt::signal(&status).is_none(),
        "signal {sig} must be handled (graceful exit), not kill the watchdog: {}",
        describe(status)
    );
    assert_all_gone(&pids, GONE_TIMEOUT, "server process tree after the signal");
}

#[test]
fn sigterm_shuts_down_gracefully_without_orphans() {
    graceful_signal(libc::SIGTERM);
}

#[test]
fn sigint_shuts_down_gracefully_without_orphans() {
    graceful_signal(libc::SIGINT);
}

#[test]
fn stdin_from_a_regular_file_gets_every_reply() {
    let dir = TestDir::new();
    let mut input = format!(
        "{}\n{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n",
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":init_params()})
    );
    for i in 2..=4 {
        input.push_str(&format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"test/echo\",\"params\":{{\"i\":{i}}}}}\n"
        ));
    }
    fs::write(dir.path("input.jsonl"), &input).unwrap();
    let args = vec![
        "--".to_string(),
        watchdog_tests::fake_upstream_bin()
            .to_string_lossy()
            .into_owned(),
        "--pid-file".into(),
        dir.p("fake.pid"),
    ];
    let mut wd = Watchdog::spawn(&dir, &args, Input::File(dir.path("input.jsonl")));
    let lines = wd.read_to_eof(EXIT_TIMEOUT);
    let status = wd.wait_exit(EXIT_TIMEOUT);
    let ids: Vec<Value> = lines
        .iter()
        .filter_map(|l| parse_line(l))
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!(1), json!(2), json!(3), json!(4)],
        "{}",
        wd.stderr_tail()
    );
    assert_eq!(status.code(), Some(0), "{}", describe(status));
    assert_all_gone(&dir.pids("fake.pid"), GONE_TIMEOUT, "fake upstream");
}

#[test]
fn stdin_from_dev_null_exits_cleanly_with_the_servers_status() {
    let dir = TestDir::new();
    let args = vec![
        "--".to_string(),
        watchdog_tests::fake_upstream_bin()
            .to_string_lossy()
            .into_owned(),
        "--exit-code".into(),
        "5".into(),
        "--pid-file".into(),
        dir.p("fake.pid"),
    ];
    let mut wd = Watchdog::spawn(&dir, &args, Input::Null);
    let lines = wd.read_to_eof(EXIT_TIMEOUT);
    assert!(
        lines.is_empty(),
        "nothing to answer, nothing on stdout: {lines:?}"
    );
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(5), "{}", describe(status));
    assert_all_gone(&dir.pids("fake.pid"), GONE_TIMEOUT, "fake upstream");
}

#[test]
fn client_eof_with_replies_in_flight_delivers_them_before_exit() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(&dir, &[], &["--delay-ms", "300"]);
    wd.initialize();
    for i in 10..13 {
        wd.send(&json!({"jsonrpc":"2.0","id":i,"method":"test/echo","params":{"i":i}}));
    }
    wd.close_stdin();
    let lines = wd.read_to_eof(EXIT_TIMEOUT);
    let got: Vec<Value> = lines.iter().filter_map(|l| parse_line(l)).collect();
    for i in 10..13 {
        let r = got.iter().find(|m| m["id"] == i).unwrap_or_else(|| {
            panic!(
                "reply {i} lost at shutdown; got {got:?}\n{}",
                wd.stderr_tail()
            )
        });
        assert_eq!(r["result"]["echo"]["i"], i, "{r}");
    }
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", describe(status));
}

#[test]
fn wrap_mode_exit_status_is_the_servers() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(&dir, &[], &["--exit-code", "7"]);
    wd.initialize();
    wd.close_stdin();
    wd.read_to_eof(EXIT_TIMEOUT);
    let status = wd.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(7), "{}", describe(status));
}

/// A whole session whose server writes garbage to its stdout: one FRAMING alert, recorded in
/// `dir`'s audit log.
fn session_raising_one_alert(dir: &TestDir) {
    let mut wd = Watchdog::wrap(dir, &[], &["--garbage"]);
    wd.initialize();
    wd.wait_rule("FRAMING", REPLY_TIMEOUT);
    wd.close_stdin();
    wd.read_to_eof(EXIT_TIMEOUT);
    wd.wait_exit(EXIT_TIMEOUT);
}

#[test]
fn audit_log_is_written_where_asked_and_nowhere_else() {
    // An alert-raising session with --audit-log: the record lands in the file we named, private to
    // the user, and nothing appears under $XDG_STATE_HOME.
    let dir = TestDir::new();
    session_raising_one_alert(&dir);
    let audit = fs::read(dir.path("audit.jsonl")).expect("audit log written");
    let records = split_lines(&audit);
    assert!(
        records
            .iter()
            .filter_map(|l| parse_line(l))
            .any(|r| r.to_string().contains("FRAMING")),
        "the FRAMING alert is in the audit log"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(dir.path("audit.jsonl")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "audit log mode {mode:o} must be private");
    // (Tool pins do live there by default: only the audit log is redirected.)
    assert!(
        !dir.xdg_state()
            .join("mcp-watchdog")
            .join("audit.jsonl")
            .exists(),
        "with --audit-log, no audit log goes to the default location"
    );
}

/// `mcp-watchdog audit verify FILE`: its exit status and what it printed.
fn verify_audit(path: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(watchdog_tests::watchdog_bin())
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn audit_verify_tells_an_intact_log_an_edited_one_and_an_unreadable_one_apart() {
    let dir = TestDir::new();
    session_raising_one_alert(&dir);
    let log = dir.path("audit.jsonl");
    let (code, text) = verify_audit(&log);
    assert_eq!(code, Some(0), "{text}");

    let original = fs::read_to_string(&log).unwrap();
    let edited = dir.path("edited.jsonl");
    fs::write(&edited, original.replacen("FRAMING", "FRAMINX", 1)).unwrap();
    let (code, text) = verify_audit(&edited);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("TAMPERED: line "), "{text}");

    let (code, text) = verify_audit(&dir.path("no-such-log.jsonl"));
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("cannot verify the audit log") && !text.contains("TAMPERED"),
        "{text}"
    );
}

/// Client EOF while the server sits on a request forever; returns what the client got on stdout.
fn eof_with_a_hung_server() -> Vec<Value> {
    let dir = TestDir::new();
    // A 10-minute delay stands for a hung server: the watchdog's bounded drain must give up on it.
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &["--delay-ms", "600000", "--pid-file", &dir.p("fake.pid")],
    );
    wd.send(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}));
    let pids = dir.wait_pids("fake.pid", REPLY_TIMEOUT);
    wd.close_stdin();
    let lines = wd.read_to_eof(EXIT_TIMEOUT);
    wd.wait_exit(EXIT_TIMEOUT);
    assert_all_gone(&pids, GONE_TIMEOUT, "the hung server");
    lines.iter().filter_map(|l| parse_line(l)).collect()
}

#[test]
fn client_eof_with_a_server_that_never_answers_ends_within_a_bound() {
    eof_with_a_hung_server();
}

/// Nothing is lost silently: a reply abandoned at shutdown becomes an error for the client.
#[test]
fn a_request_abandoned_at_shutdown_gets_an_error() {
    let got = eof_with_a_hung_server();
    assert!(
        got.iter().any(|m| m["id"] == 1 && is_error(m)),
        "the unanswered request got no error before exit: {got:?}"
    );
}
