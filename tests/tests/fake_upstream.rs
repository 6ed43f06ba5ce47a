//! The scripted upstream itself, driven directly (no watchdog): the other suites trust its behaviour,
//! so its scripts are checked here where a failure cannot be blamed on the proxy.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use watchdog_tests::fake_upstream_bin;
use watchdog_tests::harness::{split_lines, TestDir};

/// Runs the fake with `args`, feeds it `input` then EOF, returns (status code, stdout) within 20 s.
fn run(args: &[&str], input: &[u8]) -> (Option<i32>, Vec<u8>) {
    let mut child = Command::new(fake_upstream_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fake-upstream");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: the fake may fill its stdout pipe before we read it.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fake-upstream did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    (status.code(), reader.join().unwrap())
}

#[test]
fn echoes_id_and_params_bytes_and_exits_with_the_scripted_code() {
    let dir = TestDir::new();
    let rec = dir.p("rec");
    let out_rec = dir.p("out");
    let input = concat!(
        "{\"jsonrpc\":\"2.0\",\"id\":\"\\u0000é\",\"method\":\"x/y\",\"params\":{\"n\":1e400, \"b\":123456789012345678901234567890}}\r\n",
        "\n",
        "{\"jsonrpc\":\"2.0\",\"method\":\"test/bounce\",\"params\":[\"\\ud83d\\ude00\"]}\n"
    );
    let (code, out) = run(
        &[
            "--exit-code",
            "7",
            "--record",
            &rec,
            "--record-out",
            &out_rec,
        ],
        input.as_bytes(),
    );
    assert_eq!(code, Some(7));
    let expected = concat!(
        "{\"jsonrpc\":\"2.0\",\"id\":\"\\u0000é\",\"result\":{\"echo\":{\"n\":1e400, \"b\":123456789012345678901234567890}}}\n",
        "{\"jsonrpc\":\"2.0\",\"method\":\"test/bounced\",\"params\":[\"\\ud83d\\ude00\"]}\n"
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(std::fs::read(dir.path("rec")).unwrap(), input.as_bytes());
    assert_eq!(std::fs::read(dir.path("out")).unwrap(), expected.as_bytes());
}

#[test]
fn paginates_tools_and_crashes_once_per_state_dir() {
    let dir = TestDir::new();
    let state = dir.subdir("state");
    let args = [
        "--tools",
        "a,b,c",
        "--page-size",
        "2",
        "--crash-on",
        "tools/call",
        "--state-dir",
        &state,
    ];
    let input = concat!(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{\"cursor\":\"2\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"a\"}}\n"
    );
    let (code, out) = run(&args, input.as_bytes());
    assert_eq!(code, Some(3), "first life crashes on tools/call");
    let msgs: Vec<Value> = split_lines(&out)
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(msgs.len(), 2, "no reply to the crashing call: {msgs:?}");
    assert_eq!(msgs[0]["result"]["nextCursor"], "2");
    assert_eq!(msgs[0]["result"]["tools"].as_array().unwrap().len(), 2);
    assert_eq!(msgs[1]["result"]["tools"][0]["name"], "c");
    assert!(msgs[1]["result"].get("nextCursor").is_none());

    let (code, out) = run(&args, input.as_bytes());
    assert_eq!(code, Some(0), "second life behaves");
    assert_eq!(split_lines(&out).len(), 3);
}

#[test]
fn garbage_and_crlf_surround_replies() {
    let (_, out) = run(
        &["--garbage", "--crlf"],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n",
    );
    assert!(std::str::from_utf8(&out).is_err(), "an invalid UTF-8 line");
    assert!(out.windows(4).any(|w| w == b"not "), "a non-JSON line");
    assert!(out.ends_with(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n"));
}

#[test]
fn sampling_round_trip_waits_for_the_clients_answer() {
    let input = concat!(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"ask\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"wrong\":true}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"result\":{\"model\":\"m\"}}\n"
    );
    let (_, out) = run(
        &["--name", "srv", "--sampling-request-id", "\"s\""],
        input.as_bytes(),
    );
    let msgs: Vec<Value> = split_lines(&out)
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(msgs[0]["method"], "sampling/createMessage");
    assert_eq!(msgs[0]["id"], "s");
    assert_eq!(
        msgs[1]["result"]["sampled"],
        json!({"jsonrpc":"2.0","id":"s","result":{"model":"m"}})
    );
    assert_eq!(msgs[1]["result"]["server"], "srv");
}

#[test]
fn grandchild_ignores_sigterm() {
    let dir = TestDir::new();
    let pidfile = dir.p("gc.pid");
    // stdout to /dev/null: the grandchild holds it open, and `run` would wait for its EOF.
    let status = Command::new(fake_upstream_bin())
        .args(["--grandchild-ignoring-term", &pidfile])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run fake-upstream");
    assert!(status.success());
    let pid = dir.wait_pids("gc.pid", Duration::from_secs(5))[0];
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !watchdog_tests::harness::process_gone(pid),
        "the grandchild must survive SIGTERM, or the orphan tests prove nothing"
    );
    // TestDir's drop SIGKILLs it.
}
