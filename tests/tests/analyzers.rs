//! The stateful detectors end to end, through the binary: FLOW across two scripted upstreams,
//! SESSION smuggling, notification floods coalesced, call bursts, DRIFT baselines across a restart,
//! and a benign ping/roots/sampling sequence that raises nothing.

use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::Duration;
use watchdog_tests::harness::{
    fake_cmd, is_error, server_toml, Input, TestDir, Watchdog, EXIT_TIMEOUT, REPLY_TIMEOUT,
};

/// Error code of a request the policy stopped.
const BLOCKED: i64 = -32001;

const UUID: &str = "3f2c9a4e-8b1d-4c7a-9e2f-1a2b3c4d5e6f";
const KEY: &str = "sk-ant-api03-Zx8Kq2Lm9Pw4Rt7Yv3Bn6Hc1Jd5Fg";

/// Long enough for an asynchronous analyzer to have spoken, if it was going to.
const SETTLE: Duration = Duration::from_millis(500);

fn rule_alerts(wd: &Watchdog, rule: &str) -> Vec<Value> {
    wd.alerts()
        .into_iter()
        .filter(|a| a["rule"] == rule)
        .collect()
}

fn stop(mut wd: Watchdog) {
    finish(&mut wd);
}

/// Closes the client's side and waits for the watchdog to exit, keeping it for inspection.
fn finish(wd: &mut Watchdog) {
    wd.close_stdin();
    wd.read_to_eof(EXIT_TIMEOUT);
    wd.wait_exit(EXIT_TIMEOUT);
}

fn tool_call(wd: &mut Watchdog, tool: &str, args: Value) -> Value {
    wd.request("tools/call", json!({"name": tool, "arguments": args}))
}

/// The tools/call requests one fake received.
fn calls(dir: &TestDir, rec: &str) -> Vec<Value> {
    dir.record_json(rec)
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .collect()
}

/// Wrap mode around the fake with a watchdog.toml (e.g. `[rate]`, `[drift]`) and no server entry.
fn wrapped_with_config(dir: &TestDir, config: &str, fake_args: &[&str]) -> Watchdog {
    let path = dir.path("watchdog.toml");
    fs::write(&path, config).unwrap();
    let mut args = vec!["--config".to_string(), path.to_string_lossy().into_owned()];
    args.push("--".into());
    args.extend(fake_cmd(fake_args));
    let mut wd = Watchdog::spawn(dir, &args, Input::Pipe);
    wd.initialize();
    wd
}

// ---- FLOW ---------------------------------------------------------------------------------

/// Server `a` hands out `token` in its results; server `b` records what it receives.
fn flow_gateway(dir: &TestDir, token: &str) -> Watchdog {
    let a_rec = dir.p("a.rec");
    let b_rec = dir.p("b.rec");
    let config = server_toml(
        "a",
        &[
            "--name",
            "a",
            "--tools",
            "lookup",
            "--emit-token",
            token,
            "--record",
            &a_rec,
        ],
        "",
    ) + &server_toml(
        "b",
        &["--name", "b", "--tools", "post", "--record", &b_rec],
        "",
    );
    let mut wd = Watchdog::gateway(dir, &[], &config);
    wd.initialize();
    let r = tool_call(&mut wd, "a__lookup", json!({"q": "ticket"}));
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains(token),
        "{r}"
    );
    wd
}

#[test]
fn an_id_from_one_server_sent_to_another_is_reported_and_delivered() {
    let dir = TestDir::new();
    let mut wd = flow_gateway(&dir, UUID);
    let r = tool_call(&mut wd, "b__post", json!({"ticket": UUID}));
    assert!(r.get("result").is_some(), "{r}");
    let alert = wd.wait_rule("FLOW", REPLY_TIMEOUT);
    assert_eq!(alert["severity"], "medium", "{alert}");
    assert_eq!(alert["action"], "alerted");
    assert_eq!(alert["server"], "b");
    assert!(alert["detail"].as_str().unwrap().contains("`a`"), "{alert}");
    assert_eq!(calls(&dir, "b.rec").len(), 1);
    stop(wd);
}

#[test]
fn a_secret_from_one_server_is_not_sent_to_another_but_may_go_back_to_its_own() {
    let dir = TestDir::new();
    let mut wd = flow_gateway(&dir, KEY);
    let r = tool_call(&mut wd, "b__post", json!({"body": format!("use {KEY}")}));
    assert!(is_error(&r), "{r}");
    assert_eq!(r["error"]["code"], BLOCKED);
    assert!(calls(&dir, "b.rec").is_empty(), "b received the secret");
    let alert = wd.wait_rule("FLOW", REPLY_TIMEOUT);
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["action"], "blocked");
    assert!(
        !alert.to_string().contains(KEY),
        "the alert leaks the key: {alert}"
    );
    // Benign twin: the same key back to the server that produced it.
    let r = tool_call(&mut wd, "a__lookup", json!({"key": KEY}));
    assert!(r.get("result").is_some(), "{r}");
    thread::sleep(SETTLE);
    assert_eq!(rule_alerts(&wd, "FLOW").len(), 1, "{:?}", wd.alerts());
    stop(wd);
}

#[test]
fn a_value_the_user_typed_first_flows_anywhere_quietly() {
    let dir = TestDir::new();
    let mut wd = flow_gateway(&dir, "octocat/Hello-World");
    // The user's own id reaches a (and comes back in its echo), then goes to b.
    tool_call(&mut wd, "a__lookup", json!({"issue": UUID}));
    for args in [
        json!({"issue": UUID}),
        json!({"repo": "octocat/Hello-World", "dir": "/tmp/out"}),
    ] {
        let r = tool_call(&mut wd, "b__post", args);
        assert!(r.get("result").is_some(), "{r}");
    }
    thread::sleep(SETTLE);
    assert!(rule_alerts(&wd, "FLOW").is_empty(), "{:?}", wd.alerts());
    stop(wd);
}

// ---- SESSION ------------------------------------------------------------------------------

#[test]
fn duplicate_and_unsolicited_responses_are_dropped_with_an_alert() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &[
            "--tools",
            "t",
            "--duplicate-replies",
            "--unsolicited-id",
            "999",
        ],
    );
    // The duplicate of initialize's reply comes too: it is dropped like the others.
    wd.initialize();
    let first = tool_call(&mut wd, "t", json!({"n": 1}));
    assert!(first.get("result").is_some(), "{first}");
    let second = tool_call(&mut wd, "t", json!({"n": 2}));
    assert_eq!(second["result"]["echo"]["arguments"]["n"], 2, "{second}");
    wd.call_ok("ping", json!({}));
    finish(&mut wd);
    let responses: Vec<Value> = wd
        .received
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v.get("method").is_none())
        .collect();
    let ids: Vec<&Value> = responses.iter().map(|v| &v["id"]).collect();
    assert_eq!(
        ids,
        [&json!(1), &json!(2), &json!(3), &json!(4)],
        "{responses:?}"
    );
    let session = rule_alerts(&wd, "SESSION");
    assert!(
        session
            .iter()
            .any(|a| a["jsonrpc_id"] == "999" && a["action"] == "dropped"),
        "{session:?}"
    );
    assert!(session.len() >= 2, "{session:?}");
}

/// The server asks the client things in the middle of tool calls (sampling, roots, ping), the
/// client answers, list_changed comes now and then: nothing here is an attack.
#[test]
fn a_benign_ping_roots_sampling_sequence_stays_quiet() {
    let dir = TestDir::new();
    let server = |name: &str, method: &str| {
        server_toml(
            name,
            &[
                "--name",
                name,
                "--tools",
                "ask,flood",
                "--sampling-request-id",
                "\"q-1\"",
                "--server-request-method",
                method,
                "--notify-flood",
                "1",
                "--progress",
            ],
            "",
        )
    };
    let config =
        server("s", "sampling/createMessage") + &server("r", "roots/list") + &server("p", "ping");
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    for round in 0..3 {
        for (name, method) in [
            ("s", "sampling/createMessage"),
            ("r", "roots/list"),
            ("p", "ping"),
        ] {
            let id = json!(format!("{name}-{round}"));
            wd.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
                "params":{"name":format!("{name}__ask"),"arguments":{},"_meta":{"progressToken":round}}}));
            let req = wd.recv_matching(method, REPLY_TIMEOUT, |m| {
                m["method"] == method && m.get("id").is_some()
            });
            let result = match method {
                "sampling/createMessage" => {
                    json!({"role":"assistant","model":"e2e","content":{"type":"text","text":"Bonjour 👋"}})
                }
                "roots/list" => json!({"roots":[{"uri":"file:///tmp/project","name":"project"}]}),
                _ => json!({}),
            };
            wd.send(&json!({"jsonrpc":"2.0","id":req["id"],"result":result}));
            let r = wd.response(&id, REPLY_TIMEOUT);
            assert!(r.get("result").is_some(), "{r}");
            // One list_changed per call, well apart from the last: not a flood.
            let r = tool_call(&mut wd, &format!("{name}__flood"), json!({}));
            assert!(r.get("result").is_some(), "{r}");
        }
        thread::sleep(Duration::from_millis(1100));
    }
    wd.call_ok("ping", json!({}));
    thread::sleep(SETTLE);
    assert!(wd.alerts().is_empty(), "{:?}", wd.alerts());
    stop(wd);
}

// ---- RATE-LIMIT / NOTIF-INJECT ------------------------------------------------------------

#[test]
fn a_notification_flood_reaches_the_client_as_the_first_and_the_last() {
    let dir = TestDir::new();
    let mut wd = wrapped_with_config(
        &dir,
        "[rate]\nlist_changed_window_ms = 3000\n",
        &["--tools", "flood", "--notify-flood", "500"],
    );
    let r = tool_call(&mut wd, "flood", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    let alert = wd.wait_rule("NOTIF-INJECT", Duration::from_secs(10));
    assert_eq!(alert["action"], "dropped");
    assert!(alert["detail"].as_str().unwrap().contains("498"), "{alert}");
    wd.call_ok("ping", json!({}));
    finish(&mut wd);
    let changed = wd
        .received
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v["method"] == "notifications/tools/list_changed")
        .count();
    assert_eq!(changed, 2, "the client got {changed} of 500");
    assert_eq!(
        rule_alerts(&wd, "NOTIF-INJECT").len(),
        1,
        "{:?}",
        wd.alerts()
    );
}

#[test]
fn a_burst_of_tool_calls_is_reported_once_and_refused_beyond_the_hard_limit() {
    let dir = TestDir::new();
    let mut wd = wrapped_with_config(
        &dir,
        "[rate]\ncalls_per_10s = 10\ncalls_hard_limit_per_10s = 20\n",
        &["--tools", "t"],
    );
    let outcomes: Vec<bool> = (0..25)
        .map(|n| is_error(&tool_call(&mut wd, "t", json!({"n": n}))))
        .collect();
    assert!(outcomes[..20].iter().all(|e| !e), "{outcomes:?}");
    assert!(outcomes[20..].iter().all(|e| *e), "{outcomes:?}");
    wd.wait_alert("RATE-LIMIT refusals", REPLY_TIMEOUT, |a| {
        a["rule"] == "RATE-LIMIT" && a["action"] == "blocked"
    });
    let rate = rule_alerts(&wd, "RATE-LIMIT");
    assert!(
        rate.iter()
            .any(|a| a["severity"] == "medium" && a["action"] == "alerted"),
        "{rate:?}"
    );
    assert!(rate.iter().any(|a| a["action"] == "blocked"), "{rate:?}");
    assert!(rate.len() <= 3, "not aggregated: {rate:?}");
    stop(wd);
}

#[test]
fn a_steady_pace_of_calls_stays_quiet() {
    let dir = TestDir::new();
    let mut wd = wrapped_with_config(&dir, "[rate]\ncalls_per_10s = 10\n", &["--tools", "t"]);
    for n in 0..10 {
        tool_call(&mut wd, "t", json!({"n": n}));
    }
    thread::sleep(SETTLE);
    assert!(wd.alerts().is_empty(), "{:?}", wd.alerts());
    stop(wd);
}

// ---- DRIFT --------------------------------------------------------------------------------

const DRIFT_CONFIG: &str = "[drift]\nbaseline_calls = 5\n";

fn drift_run(dir: &TestDir) -> Watchdog {
    wrapped_with_config(dir, DRIFT_CONFIG, &["--tools", "git_status,git_log"])
}

fn learn_baseline(dir: &TestDir) {
    let mut wd = drift_run(dir);
    for _ in 0..5 {
        tool_call(&mut wd, "git_status", json!({"repo_path": "/srv/repo"}));
    }
    wd.call_ok("ping", json!({}));
    thread::sleep(SETTLE);
    assert!(rule_alerts(&wd, "DRIFT").is_empty(), "{:?}", wd.alerts());
    stop(wd);
    let file = dir.xdg_state().join("mcp-watchdog/baselines.json");
    let stored: Value = serde_json::from_slice(&fs::read(&file).expect("baselines.json")).unwrap();
    assert_eq!(
        stored["servers"]["fake-upstream"]["complete"], true,
        "{stored}"
    );
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_baseline_survives_a_restart_and_fingerprinting_after_it_is_reported() {
    let dir = TestDir::new();
    learn_baseline(&dir);
    let mut wd = drift_run(&dir);
    tool_call(&mut wd, "git_status", json!({"repo_path": "/srv/repo"}));
    tool_call(
        &mut wd,
        "git_log",
        json!({"repo_path": "/srv/repo", "commit_timestamps": true, "author_timezone": "?"}),
    );
    let alert = wd.wait_alert("DRIFT fingerprinting", REPLY_TIMEOUT, |a| {
        a["rule"] == "DRIFT" && a["class"] == "fingerprinting"
    });
    assert_eq!(alert["severity"], "medium");
    assert_eq!(alert["action"], "alerted");
    assert_eq!(alert["server"], "fake-upstream");
    stop(wd);
}

#[test]
fn a_session_within_its_baseline_after_a_restart_stays_quiet() {
    let dir = TestDir::new();
    learn_baseline(&dir);
    let mut wd = drift_run(&dir);
    for _ in 0..5 {
        tool_call(&mut wd, "git_status", json!({"repo_path": "/srv/repo"}));
    }
    // One more tool, with ordinary arguments: gradual growth.
    tool_call(
        &mut wd,
        "git_log",
        json!({"repo_path": "/srv/repo", "max_count": 5}),
    );
    wd.call_ok("ping", json!({}));
    thread::sleep(SETTLE);
    assert!(wd.alerts().is_empty(), "{:?}", wd.alerts());
    stop(wd);
}
