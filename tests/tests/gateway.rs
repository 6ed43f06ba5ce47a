//! Gateway mode: several fake upstreams behind one watchdog. Merged initialize and lists (with the
//! gateway's own pagination), `<server>__<name>` namespacing, routing, id remapping both ways, and the
//! per-server tool allow/deny policy.

use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use watchdog_tests::harness::{
    is_error, server_toml, short, TestDir, Watchdog, EXIT_TIMEOUT, REPLY_TIMEOUT,
};

/// Follows nextCursor through a list method, bounded; returns the items' names in order.
fn list_all(wd: &mut Watchdog, method: &str, key: &str) -> Vec<String> {
    list_field(wd, method, key, "name")
}

/// Like `list_all`, collecting `field` of each item.
fn list_field(wd: &mut Watchdog, method: &str, key: &str, field: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let result = wd.call_ok(method, params);
        let items = result[key]
            .as_array()
            .unwrap_or_else(|| panic!("{method}: no {key} array in {}", short(&result)));
        names.extend(items.iter().map(|t| {
            t[field]
                .as_str()
                .unwrap_or_else(|| panic!("{method}: item without {field}: {t}"))
                .to_owned()
        }));
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => return names,
        }
    }
    panic!("{method}: still paginating after 50 pages: {names:?}");
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The tools/call messages a fake recorded.
fn calls(dir: &TestDir, rec: &str) -> Vec<Value> {
    dir.record_json(rec)
        .into_iter()
        .filter(|m| m["method"] == "tools/call")
        .collect()
}

#[test]
fn merges_initialize_and_lists_with_namespaced_names_and_routes_calls() {
    let dir = TestDir::new();
    let config = server_toml(
        "alpha",
        &[
            "--name",
            "alpha-srv",
            "--tools",
            "x,y",
            "--prompts",
            "hello",
            "--record",
            &dir.p("a.rec"),
        ],
        "",
    ) + &server_toml(
        "beta",
        &[
            "--name",
            "beta-srv",
            "--tools",
            "x,z",
            "--prompts",
            "hello",
            "--record",
            &dir.p("b.rec"),
        ],
        "",
    );
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    let init = wd.initialize();
    assert_eq!(init["serverInfo"]["name"], "mcp-watchdog", "{init}");
    assert!(init["capabilities"].get("tools").is_some(), "{init}");
    assert!(init["capabilities"].get("prompts").is_some(), "{init}");

    let tools = list_all(&mut wd, "tools/list", "tools");
    assert_eq!(
        sorted(&tools),
        strs(&["alpha__x", "alpha__y", "beta__x", "beta__z"])
    );
    let prompts = list_all(&mut wd, "prompts/list", "prompts");
    assert_eq!(sorted(&prompts), strs(&["alpha__hello", "beta__hello"]));

    let r = wd.call_ok(
        "tools/call",
        json!({"name": "beta__x", "arguments": {"q": "ünïcødé 😀"}}),
    );
    assert_eq!(r["echo"]["name"], "x", "prefix removed: {r}");
    assert_eq!(r["echo"]["arguments"]["q"], "ünïcødé 😀");
    let r = wd.call_ok("tools/call", json!({"name": "alpha__y", "arguments": {}}));
    assert_eq!(r["echo"]["name"], "y", "{r}");

    let a: Vec<Value> = calls(&dir, "a.rec");
    let b: Vec<Value> = calls(&dir, "b.rec");
    assert_eq!(a.len(), 1, "alpha got only its call: {a:?}");
    assert_eq!(a[0]["params"]["name"], "y");
    assert_eq!(b.len(), 1, "beta got only its call: {b:?}");
    assert_eq!(b[0]["params"]["name"], "x");

    let r = wd.call_ok(
        "prompts/get",
        json!({"name": "alpha__hello", "arguments": {}}),
    );
    assert_eq!(r["echo"]["name"], "hello", "{r}");
    assert!(dir
        .record_json("a.rec")
        .iter()
        .any(|m| m["method"] == "prompts/get" && m["params"]["name"] == "hello"));

    let unknown = wd.request("tools/call", json!({"name": "gamma__x", "arguments": {}}));
    assert!(
        is_error(&unknown),
        "a tool no server has: {}",
        short(&unknown)
    );

    wd.close_stdin();
    wd.read_to_eof(EXIT_TIMEOUT);
    wd.wait_exit(EXIT_TIMEOUT);
}

#[test]
fn a_configured_prefix_replaces_the_server_name() {
    let dir = TestDir::new();
    let config = server_toml("alpha", &["--tools", "x"], "prefix = \"fs\"")
        + &server_toml("beta", &["--tools", "x"], "");
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    let tools = list_all(&mut wd, "tools/list", "tools");
    assert_eq!(sorted(&tools), strs(&["beta__x", "fs__x"]));
    let r = wd.call_ok("tools/call", json!({"name": "fs__x", "arguments": {}}));
    assert_eq!(r["echo"]["name"], "x", "{r}");
}

#[test]
fn paginates_across_upstreams_with_its_own_cursor() {
    let dir = TestDir::new();
    let config = server_toml("a", &["--tools", "t1,t2,t3,t4,t5", "--page-size", "2"], "")
        + &server_toml("b", &["--tools", "u1,u2,u3", "--page-size", "2"], "");
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    let tools = list_all(&mut wd, "tools/list", "tools");
    let unique: HashSet<&String> = tools.iter().collect();
    assert_eq!(unique.len(), tools.len(), "a tool listed twice: {tools:?}");
    assert_eq!(
        sorted(&tools),
        strs(&["a__t1", "a__t2", "a__t3", "a__t4", "a__t5", "b__u1", "b__u2", "b__u3"])
    );
}

#[test]
fn client_ids_are_kept_apart_on_each_upstream_and_answers_come_back_right() {
    let dir = TestDir::new();
    let config = server_toml("a", &["--tools", "t", "--record", &dir.p("a.rec")], "")
        + &server_toml("b", &["--tools", "t", "--record", &dir.p("b.rec")], "");
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    // Numbers and strings that look alike (5 and "5"), zero, negatives, a huge number, unicode: all
    // in flight at once, alternating between the upstreams.
    let mut ids: Vec<Value> = Vec::new();
    for i in 0..20 {
        ids.push(json!(i + 100));
        ids.push(json!(format!("{}", i + 100)));
    }
    ids.extend([
        json!(-1),
        json!(0),
        json!("ü-😀"),
        json!(""),
        json!(9007199254740993u64),
    ]);
    for (n, id) in ids.iter().enumerate() {
        let server = if n % 2 == 0 { "a" } else { "b" };
        wd.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":format!("{server}__t"),"arguments":{"marker":n}}}));
    }
    for (n, id) in ids.iter().enumerate() {
        let r = wd.response(id, REPLY_TIMEOUT);
        assert_eq!(
            r["result"]["echo"]["arguments"]["marker"],
            n,
            "id {id} answered with another request's result: {}",
            short(&r)
        );
    }
    for rec in ["a.rec", "b.rec"] {
        let seen: Vec<String> = calls(&dir, rec)
            .iter()
            .map(|m| m["id"].to_string())
            .collect();
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "colliding ids on upstream {rec}: {seen:?}"
        );
        // Even positions went to a, odd ones to b.
        let expected = (0..ids.len())
            .filter(|n| (n % 2 == 0) == (rec == "a.rec"))
            .count();
        assert_eq!(seen.len(), expected, "calls on {rec}: {seen:?}");
    }
}

/// Both upstreams send the same server→client request with the same id while both calls are in
/// flight; the client must see two distinct ids, and each answer must reach the upstream that asked,
/// under its own id.
fn same_id_server_requests(method: &str, id: &str) {
    let dir = TestDir::new();
    let fake = |name: &str| {
        server_toml(
            name,
            &[
                "--name",
                name,
                "--tools",
                "ask",
                "--sampling-request-id",
                id,
                "--server-request-method",
                method,
            ],
            "",
        )
    };
    let mut wd = Watchdog::gateway(&dir, &[], &(fake("a") + &fake("b")));
    wd.initialize();
    wd.send(&json!({"jsonrpc":"2.0","id":100,"method":"tools/call","params":{"name":"a__ask","arguments":{}}}));
    wd.send(&json!({"jsonrpc":"2.0","id":101,"method":"tools/call","params":{"name":"b__ask","arguments":{}}}));

    let is_ours = |m: &Value| m["method"] == method && m.get("id").is_some();
    let s1 = wd.recv_matching("a server request", REPLY_TIMEOUT, is_ours);
    let s2 = wd.recv_matching("a second server request", REPLY_TIMEOUT, is_ours);
    assert_ne!(
        s1["id"], s2["id"],
        "{method}: both upstreams used id {id}; the client must see distinct ids"
    );
    // Answer in the opposite order, each naming the question it answers, so a mix-up shows.
    for s in [&s2, &s1] {
        let p = &s["params"];
        let question = p["messages"][0]["content"]["text"]
            .as_str()
            .or(p["message"].as_str())
            .or(p["_meta"]["question"].as_str())
            .unwrap_or_else(|| panic!("no question in {s}"));
        let answer = format!("answer to {question}");
        let mut result = match method {
            "sampling/createMessage" => json!({"role":"assistant","model":"e2e",
                "content":{"type":"text","text":answer}}),
            "elicitation/create" => json!({"action":"accept","content":{"answer":answer}}),
            "roots/list" => json!({"roots":[{"uri":"file:///tmp/e2e-root","name":answer}]}),
            _ => json!({}),
        };
        result["_meta"] = json!({ "answer": answer });
        wd.send(&json!({"jsonrpc":"2.0","id":s["id"],"result":result}));
    }
    let want_id: Value = serde_json::from_str(id).unwrap();
    for (call, server) in [(100, "a"), (101, "b")] {
        let r = wd.response(&json!(call), REPLY_TIMEOUT);
        let sampled = &r["result"]["sampled"];
        assert_eq!(r["result"]["server"], server, "{}", short(&r));
        assert_eq!(
            sampled["id"], want_id,
            "{method}: upstream {server} got its own id back: {sampled}"
        );
        assert_eq!(
            sampled["result"]["_meta"]["answer"],
            format!("answer to question from {server}"),
            "{method}: upstream {server} got the other one's answer: {sampled}"
        );
    }
}

#[test]
fn sampling_requests_with_the_same_id_from_two_upstreams_are_told_apart() {
    same_id_server_requests("sampling/createMessage", "7");
}

#[test]
fn elicitation_requests_with_the_same_id_from_two_upstreams_are_told_apart() {
    same_id_server_requests("elicitation/create", "\"q\"");
}

#[test]
fn roots_requests_with_the_same_id_from_two_upstreams_are_told_apart() {
    same_id_server_requests("roots/list", "0");
}

#[test]
fn pings_with_the_same_id_from_two_upstreams_are_told_apart() {
    same_id_server_requests("ping", "1");
}

#[test]
fn resources_and_templates_are_merged_across_pages_and_upstreams() {
    let dir = TestDir::new();
    let config = server_toml(
        "a",
        &[
            "--name",
            "a",
            "--resources",
            "r1,r2,r3",
            "--templates",
            "t1",
            "--page-size",
            "2",
        ],
        "",
    ) + &server_toml(
        "b",
        &[
            "--name",
            "b",
            "--resources",
            "s1",
            "--templates",
            "t2,t3",
            "--page-size",
            "1",
        ],
        "",
    );
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    let init = wd.initialize();
    assert!(init["capabilities"].get("resources").is_some(), "{init}");
    let uris = list_field(&mut wd, "resources/list", "resources", "uri");
    assert_eq!(
        sorted(&uris),
        strs(&[
            "file:///a/r1",
            "file:///a/r2",
            "file:///a/r3",
            "file:///b/s1"
        ])
    );
    let templates = list_field(
        &mut wd,
        "resources/templates/list",
        "resourceTemplates",
        "uriTemplate",
    );
    assert_eq!(
        sorted(&templates),
        strs(&[
            "file:///a/t1/{id}",
            "file:///b/t2/{id}",
            "file:///b/t3/{id}"
        ])
    );
}

/// A second upstream for the policy tests: with a single `[[server]]` the gateway behaves like wrap mode
/// (no prefixes), and these tests are about the gateway.
fn other_server() -> String {
    server_toml("other", &["--tools", "misc"], "")
}

/// The list filtering raises its own TOOL-POLICY alert; the call's is the one with method tools/call.
fn call_policy_alert(a: &Value) -> bool {
    a["rule"] == "TOOL-POLICY" && a["method"] == "tools/call"
}

#[test]
fn denied_tools_vanish_from_the_list_and_are_blocked_at_call_time() {
    let dir = TestDir::new();
    let config = server_toml(
        "files",
        &[
            "--tools",
            "read_file,delete_file,delete_all",
            "--record",
            &dir.p("f.rec"),
        ],
        "tools.deny = [\"delete_*\"]",
    ) + &other_server();
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    assert_eq!(
        sorted(&list_all(&mut wd, "tools/list", "tools")),
        strs(&["files__read_file", "other__misc"])
    );

    let blocked = wd.request(
        "tools/call",
        json!({"name": "files__delete_file", "arguments": {}}),
    );
    assert!(is_error(&blocked), "{}", short(&blocked));
    let alert = wd.wait_alert("TOOL-POLICY for the call", REPLY_TIMEOUT, call_policy_alert);
    assert_eq!(alert["action"], "blocked", "{alert}");
    assert_eq!(alert["server"], "files", "{alert}");

    let ok = wd.call_ok(
        "tools/call",
        json!({"name": "files__read_file", "arguments": {}}),
    );
    assert_eq!(ok["echo"]["name"], "read_file");
    let seen: Vec<Value> = calls(&dir, "f.rec");
    assert!(
        seen.iter().all(|m| m["params"]["name"] == "read_file"),
        "a denied call reached the server: {seen:?}"
    );
}

#[test]
fn an_allow_list_admits_only_matching_tools() {
    let dir = TestDir::new();
    let config = server_toml(
        "files",
        &[
            "--tools",
            "read_file,read_dir,write_file",
            "--record",
            &dir.p("f.rec"),
        ],
        "tools.allow = [\"read_*\"]",
    ) + &other_server();
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    assert_eq!(
        sorted(&list_all(&mut wd, "tools/list", "tools")),
        strs(&["files__read_dir", "files__read_file", "other__misc"])
    );
    let blocked = wd.request(
        "tools/call",
        json!({"name": "files__write_file", "arguments": {}}),
    );
    assert!(is_error(&blocked), "{}", short(&blocked));
    let alert = wd.wait_alert("TOOL-POLICY for the call", REPLY_TIMEOUT, call_policy_alert);
    assert_eq!(alert["action"], "blocked", "{alert}");
    assert!(calls(&dir, "f.rec").is_empty());
}

#[test]
fn monitor_mode_reports_a_denied_call_but_lets_it_through() {
    let dir = TestDir::new();
    let config = server_toml(
        "files",
        &[
            "--tools",
            "read_file,delete_file",
            "--record",
            &dir.p("f.rec"),
        ],
        "tools.deny = [\"delete_*\"]",
    ) + &other_server();
    let mut wd = Watchdog::gateway(&dir, &["--monitor"], &config);
    wd.initialize();
    let r = wd.call_ok(
        "tools/call",
        json!({"name": "files__delete_file", "arguments": {}}),
    );
    assert_eq!(r["echo"]["name"], "delete_file");
    let alert = wd.wait_alert("TOOL-POLICY for the call", REPLY_TIMEOUT, call_policy_alert);
    assert_eq!(
        alert["action"], "alerted",
        "monitor mode only reports: {alert}"
    );
}

#[test]
fn one_failing_upstream_does_not_take_the_gateway_down() {
    let dir = TestDir::new();
    let config = server_toml("good", &["--tools", "x"], "")
        + &server_toml("bad", &["--exit-immediately", "3"], "");
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.send(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":watchdog_tests::harness::init_params()}));
    let init = wd.response(&json!(1), std::time::Duration::from_secs(60));
    assert!(
        init.get("result").is_some(),
        "initialize succeeds with one healthy server: {}",
        short(&init)
    );
    wd.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    let alert = wd.wait_alert(
        "marking server bad failed",
        std::time::Duration::from_secs(90),
        |a| a["action"] == "failed" && a["server"] == "bad",
    );
    assert!(alert["detail"].is_string());
    let r = wd.call_ok("tools/call", json!({"name": "good__x", "arguments": {}}));
    assert_eq!(r["echo"]["name"], "x");
    let err = wd.request("tools/call", json!({"name": "bad__x", "arguments": {}}));
    assert!(is_error(&err), "{}", short(&err));
}

#[test]
fn progress_notifications_reach_the_client_with_its_own_tokens() {
    let dir = TestDir::new();
    let config = server_toml("a", &["--name", "a", "--tools", "t", "--progress"], "")
        + &server_toml("b", &["--name", "b", "--tools", "t", "--progress"], "");
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    // Tokens the client chose, one a string and one a number; the gateway may rewrite them on the way
    // up, but the client must get back exactly its own.
    for (id, name, token) in [(200, "a__t", json!("tok-a-ü")), (201, "b__t", json!(5))] {
        wd.send(&json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":name,"arguments":{},"_meta":{"progressToken":token}}}));
    }
    for (id, server, token) in [(200, "a", json!("tok-a-ü")), (201, "b", json!(5))] {
        wd.response(&json!(id), REPLY_TIMEOUT);
        for step in 1..=2 {
            let want = format!("step {step} of {server}");
            let n = wd.recv_matching(&format!("progress '{want}'"), REPLY_TIMEOUT, |m| {
                m["method"] == "notifications/progress" && m["params"]["message"] == want
            });
            assert_eq!(n["params"]["progressToken"], token, "{n}");
        }
    }
}

#[test]
fn a_cancellation_reaches_the_right_upstream_under_the_id_it_knows() {
    let dir = TestDir::new();
    // The delay keeps the call in flight while the cancellation travels.
    let config = server_toml("a", &["--tools", "t", "--record", &dir.p("a.rec")], "")
        + &server_toml(
            "b",
            &[
                "--tools",
                "t",
                "--delay-ms",
                "500",
                "--record",
                &dir.p("b.rec"),
            ],
            "",
        );
    let mut wd = Watchdog::gateway(&dir, &[], &config);
    wd.initialize();
    wd.send(&json!({"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"b__t","arguments":{}}}));
    wd.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled",
        "params":{"requestId":"c-1","reason":"user cancelled"}}));
    // The fake answers anyway after its delay; a proxy may forward or drop that late answer.
    let deadline = std::time::Instant::now() + REPLY_TIMEOUT;
    let (call_id, cancelled) = loop {
        let rec = dir.record_json("b.rec");
        let call = rec.iter().find(|m| m["method"] == "tools/call").cloned();
        let cancel = rec
            .iter()
            .find(|m| m["method"] == "notifications/cancelled")
            .cloned();
        if let (Some(c), Some(n)) = (call, cancel) {
            break (c["id"].clone(), n);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b never got both the call and its cancellation: {rec:?}\n{}",
            wd.stderr_tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        cancelled["params"]["requestId"], call_id,
        "the cancellation must name the call by the id upstream b saw"
    );
    assert!(
        !dir.record_json("a.rec")
            .iter()
            .any(|m| m["method"] == "notifications/cancelled"),
        "the cancellation went to the wrong upstream"
    );
}
