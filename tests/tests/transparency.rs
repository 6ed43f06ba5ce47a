//! Transparency and framing in wrap mode: clean messages leave with the bytes they arrived with, in
//! order; frames are delimited by newlines (CR tolerated, blank lines skipped); oversize frames and
//! non-JSON upstream output are refused loudly without stopping the flow.

use serde_json::{json, Value};
use std::time::Duration;
use watchdog_tests::harness::{
    init_params, is_error, is_response, parse_line, short, TestDir, Watchdog, REPLY_TIMEOUT,
};

/// A small deterministic generator (xorshift64*) so that a failure reproduces exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// JSON value texts, as they are written on the wire (escapes kept as escapes). Benign on purpose:
/// this suite checks relaying, not detection.
// A byte order mark mid-text is an SMAC-1 finding (DETECTIONS.md), so it is not among them.
const VALUES: &[&str] = &[
    r#""plain ascii text""#,
    r#""Grüße aus Köln, 日本語のテキスト, Ελληνικά, العربية, עברית, हिन्दी""#,
    r#""emoji 😀🚀 family 👩‍👩‍👧‍👦 flag 🇫🇷 skin 👍🏽""#,
    r#""escaped pair \ud83d\ude00 and lone-looking \u00e9 vs é""#,
    r#""nul \u0000 bell \u0007 del \u007f""#,
    r#""quotes \" backslash \\ slash \/ controls \b\f\n\r\t""#,
    r#""\u2028 line sep \u2029 para sep \u00a0 nbsp""#,
    "1e400",
    "-1e-400",
    "123456789012345678901234567890",
    "-98765432109876543210987654321098765432100",
    "3.14159265358979323846264338327950288419716939937510",
    "-0",
    "0.1",
    "1E+2",
    "2.5e-3",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    r#"[1, "two" , 3.0,{"four" :4}]"#,
    r#"{"_meta":{"progressToken":"tok-ü"},"x-unknown-field":[null,{"nested":{"deeper":true}}]}"#,
];

fn deep_array(depth: usize) -> String {
    format!("{}42{}", "[".repeat(depth), "]".repeat(depth))
}

fn deep_object(depth: usize) -> String {
    format!("{}\"leaf\"{}", "{\"k\":".repeat(depth), "}".repeat(depth))
}

fn value(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => deep_array(90),
        1 => deep_object(60),
        2 => format!("\"{}\"", "long-ü😀-".repeat(300 + rng.below(700))),
        _ => rng.pick(VALUES).to_owned(),
    }
}

fn params(rng: &mut Rng) -> String {
    if rng.below(5) == 0 {
        let items: Vec<String> = (0..1 + rng.below(4)).map(|_| value(rng)).collect();
        return format!("[{}]", items.join(","));
    }
    object_params(rng)
}

/// Methods the proxy does not know get arbitrary params; methods MCP defines get params of the right
/// shape (with arbitrary contents), since a proxy may fairly refuse a malformed `tools/call`.
const UNKNOWN_METHODS: &[&str] = &["test/echo", "x-vendor/frobnicate", "méthode/unicode"];

fn method_and_params(rng: &mut Rng) -> (String, String) {
    match rng.below(6) {
        0 => {
            let args = object_params(rng);
            (
                "tools/call".into(),
                format!(r#"{{"name":"echo_tool","arguments":{args}}}"#),
            )
        }
        1 => (
            "resources/read".into(),
            r#"{"uri":"file:///srv/d%C3%A9mo/\u00fcber-😀.txt"}"#.into(),
        ),
        2 => {
            let args = object_params(rng);
            (
                "prompts/get".into(),
                format!(r#"{{"name":"greet","arguments":{args}}}"#),
            )
        }
        _ => (rng.pick(UNKNOWN_METHODS).to_owned(), params(rng)),
    }
}

/// An object whose members have arbitrary values.
fn object_params(rng: &mut Rng) -> String {
    let members: Vec<String> = (0..rng.below(6))
        .map(|i| {
            let key = rng.pick(&[
                "k",
                "ключ",
                "键",
                "key\\u0000",
                "emoji😀",
                "_meta_like",
                "a\\\"b",
            ]);
            format!("\"{key}{i}\":{}", value(rng))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

/// One client→server message line; returns (line, expects_reply, expects_bounce).
fn message(rng: &mut Rng, n: usize) -> (String, bool, bool) {
    let (method, p) = method_and_params(rng);
    let extra = match rng.below(4) {
        0 => r#","x-extension":{"vendor":"e2e","n":1e400}"#,
        1 => r#","_meta":{"trace":"\ud83d\ude00"}"#,
        _ => "",
    };
    match rng.below(10) {
        0 => (
            format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/x-unknown-{n}","params":{p}{extra}}}"#
            ),
            false,
            false,
        ),
        1 => (
            format!(r#"{{"jsonrpc":"2.0","method":"test/bounce","params":{p}{extra}}}"#),
            false,
            true,
        ),
        k => {
            let id = match k % 3 {
                0 => format!("{n}"),
                1 => format!(r#""id-{n}-ü😀""#),
                _ => format!(r#""esc-{n}-\u0000\ud83d\ude00""#),
            };
            let line = if rng.below(2) == 0 {
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{p}{extra}}}"#)
            } else {
                // Members in an unusual order, with insignificant whitespace.
                format!(
                    r#"{{ "params" : {p} , "method":"{method}", "id" :{id},"jsonrpc":"2.0"{extra}}}"#
                )
            };
            (line, true, false)
        }
    }
}

fn init_line() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}}"#,
        init_params()
    )
}

/// Shows where two byte strings first differ, without printing megabytes.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let ctx = |s: &[u8]| {
        String::from_utf8_lossy(&s[i.saturating_sub(80)..(i + 80).min(s.len())]).into_owned()
    };
    format!(
        "lengths {} vs {}, first difference at byte {i}:\n  left:  {:?}\n  right: {:?}",
        a.len(),
        b.len(),
        ctx(a),
        ctx(b)
    )
}

fn assert_same_bytes(what: &str, left: &[u8], right: &[u8]) {
    assert!(left == right, "{what}: {}", first_difference(left, right));
}

#[test]
fn thousand_varied_messages_pass_byte_identical_both_ways() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut sent = Vec::new();
    let mut replies = 0usize;
    let mut lines = vec![
        init_line(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
    ];
    replies += 1;
    for n in 1..=1200 {
        let (line, reply, bounce) = message(&mut rng, n);
        replies += usize::from(reply) + usize::from(bounce);
        lines.push(line);
    }
    for l in &lines {
        // Each line must itself be valid JSON: otherwise the test, not the proxy, would be wrong.
        // RawValue validates syntax without converting numbers (Value would reject 1e400).
        assert!(
            serde_json::from_str::<&serde_json::value::RawValue>(l).is_ok(),
            "generator produced invalid JSON: {l}"
        );
        sent.extend_from_slice(l.as_bytes());
        sent.push(b'\n');
    }
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &[
            "--record",
            &dir.p("in.rec"),
            "--record-out",
            &dir.p("out.rec"),
        ],
    );
    wd.send_raw(&sent);
    for _ in 0..replies {
        wd.recv_raw(REPLY_TIMEOUT).expect("stdout closed early");
    }
    wd.close_stdin();
    wd.read_to_eof(REPLY_TIMEOUT);
    let status = wd.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");

    assert_same_bytes(
        "client→server: what the server received vs what the client sent",
        &std::fs::read(dir.path("in.rec")).unwrap(),
        &sent,
    );
    let received: Vec<u8> = wd.received.concat();
    assert_same_bytes(
        "server→client: what the client received vs what the server sent",
        &received,
        &std::fs::read(dir.path("out.rec")).unwrap(),
    );
    // Hundreds of tool calls within a second are, rightly, a RATE-LIMIT burst (alert only); the
    // bytes are what this test is about.
    let alerts: Vec<_> = wd
        .alerts()
        .into_iter()
        .filter(|a| a["rule"] != "RATE-LIMIT")
        .collect();
    assert!(alerts.is_empty(), "clean traffic raised alerts: {alerts:?}");
}

#[test]
fn order_is_preserved_per_direction() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(&dir, &[], &["--record", &dir.p("in.rec")]);
    wd.initialize();
    let mut batch = Vec::new();
    for i in 1000..1300 {
        batch.extend_from_slice(
            format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"test/echo","params":{{"i":{i}}}}}"#)
                .as_bytes(),
        );
        batch.push(b'\n');
    }
    wd.send_raw(&batch);
    let mut ids = Vec::new();
    while ids.len() < 300 {
        let v = wd.recv(REPLY_TIMEOUT);
        if is_response(&v) {
            ids.push(v["id"].as_i64().expect("numeric id"));
        }
    }
    assert_eq!(
        ids,
        (1000..1300).collect::<Vec<_>>(),
        "responses out of order"
    );
    let seen: Vec<i64> = dir
        .record_json("in.rec")
        .iter()
        .filter(|m| m["method"] == "test/echo")
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seen,
        (1000..1300).collect::<Vec<_>>(),
        "requests reached the server out of order"
    );
}

#[test]
fn hundred_mib_message_within_a_raised_limit_passes_intact() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &["--max-frame-bytes", "300M"],
        &["--record", &dir.p("in.rec")],
    );
    wd.initialize();
    let pattern = "abcdefghijklmnopqrstuvwxyz0123456789 é😀 \\u0041 \\n ";
    let target = 100 * 1024 * 1024;
    let mut params = String::with_capacity(target + 64);
    params.push_str(r#"{"blob":""#);
    while params.len() < target {
        params.push_str(pattern);
    }
    params.push_str(r#""}"#);
    let line = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":\"big\",\"method\":\"test/echo\",\"params\":{params}}}\n"
    );
    wd.send_raw(line.as_bytes());
    let reply = wd
        .recv_raw(Duration::from_secs(240))
        .expect("stdout closed before the big reply");
    let expected =
        format!("{{\"jsonrpc\":\"2.0\",\"id\":\"big\",\"result\":{{\"echo\":{params}}}}}\n");
    assert_same_bytes("the 100 MiB reply", &reply, expected.as_bytes());
    drop(expected);
    let rec = std::fs::read(dir.path("in.rec")).unwrap();
    let last = watchdog_tests::harness::split_lines(&rec).pop().unwrap();
    assert_same_bytes(
        "the 100 MiB request as the server got it",
        &last,
        line.as_bytes(),
    );
    // The session goes on.
    wd.call_ok("ping", json!({}));
    assert!(
        wd.alerts().iter().all(|a| a["rule"] != "FRAMING"),
        "a frame within the limit was treated as oversize: {:?}",
        wd.alerts()
    );
}

#[test]
fn oversize_client_frame_is_skipped_answered_and_alerted_and_the_next_flows() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &["--max-frame-bytes", "1M"],
        &["--record", &dir.p("in.rec")],
    );
    wd.initialize();
    let blob = "y".repeat(3 * 1024 * 1024);
    wd.send_raw(
        format!("{{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"test/echo\",\"params\":{{\"blob\":\"{blob}\"}}}}\n")
            .as_bytes(),
    );
    // An oversize notification too: nobody waits for an answer, but it must still be alerted.
    wd.send_raw(
        format!("{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"params\":{{\"blob\":\"{blob}\"}}}}\n")
            .as_bytes(),
    );
    wd.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":78,\"method\":\"test/echo\",\"params\":{\"after\":true}}\n",
    );

    let err = wd.response(&json!(77), REPLY_TIMEOUT);
    assert!(
        is_error(&err),
        "oversize request must get an error: {}",
        short(&err)
    );
    let ok = wd.response(&json!(78), REPLY_TIMEOUT);
    assert_eq!(
        ok["result"]["echo"],
        json!({"after": true}),
        "{}",
        short(&ok)
    );
    wd.wait_rule("FRAMING", REPLY_TIMEOUT);

    let rec = dir.record_lines("in.rec");
    assert!(
        rec.iter().all(|l| l.len() < 1024 * 1024),
        "an oversize frame reached the server"
    );
    assert!(
        !dir.record_json("in.rec").iter().any(|m| m["id"] == 77),
        "the oversize request reached the server"
    );
}

#[test]
fn oversize_server_frame_is_not_forwarded_and_the_caller_gets_an_error() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &["--max-frame-bytes", "1M"],
        &["--reply-bytes", "3000000"],
    );
    wd.initialize();
    let resp = wd.request("tools/call", json!({"name": "big", "arguments": {}}));
    assert!(
        is_error(&resp),
        "the client waits for this answer: it must get an error, not the oversize reply: {}",
        short(&resp)
    );
    wd.wait_rule("FRAMING", REPLY_TIMEOUT);
    wd.call_ok("ping", json!({}));
    assert!(wd.received.iter().all(|l| l.len() < 1024 * 1024));
}

#[test]
fn what_a_server_writes_before_the_client_speaks_reaches_the_client_intact() {
    // The watchdog reads the client only once its inspection is built, while the server starts;
    // a server quicker than that, writing first, must lose nothing meanwhile.
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &[
            "--notify-at-start",
            "warming up",
            "--record-out",
            &dir.p("out.rec"),
        ],
    );
    let first = wd
        .recv_raw(REPLY_TIMEOUT)
        .expect("the server's first message");
    let sent = dir.record_lines("out.rec");
    assert_same_bytes("the early notification", &first, &sent[0]);
    wd.initialize();
    wd.call_ok("ping", json!({}));
}

#[test]
fn crlf_and_blank_lines_are_tolerated_both_ways() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &[
            "--crlf",
            "--record",
            &dir.p("in.rec"),
            "--record-out",
            &dir.p("out.rec"),
        ],
    );
    let init = init_line();
    wd.send_raw(format!("{init}\r\n\n\r\n").as_bytes());
    wd.response(&json!(0), REPLY_TIMEOUT);
    wd.send_raw(b"\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\r\n");
    wd.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test/echo\",\"params\":{\"crlf\":1}}\r\n\r\n",
    );
    wd.send_raw(
        b"   \n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"test/echo\",\"params\":{\"lf\":2}}\n",
    );
    wd.response(&json!(1), REPLY_TIMEOUT);
    wd.response(&json!(2), REPLY_TIMEOUT);
    wd.close_stdin();
    wd.read_to_eof(REPLY_TIMEOUT);
    wd.wait_exit(Duration::from_secs(30));

    let expected_in = format!(
        "{init}\n{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n\
         {{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"test/echo\",\"params\":{{\"crlf\":1}}}}\n\
         {{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"test/echo\",\"params\":{{\"lf\":2}}}}\n"
    );
    assert_same_bytes(
        "what the server received (CR removed, blank lines skipped)",
        &std::fs::read(dir.path("in.rec")).unwrap(),
        expected_in.as_bytes(),
    );
    // The fake wrote "\n" + message + "\r\n" each time; the client gets message + "\n" only.
    assert_same_bytes(
        "what the client received",
        &wd.received.concat(),
        &std::fs::read(dir.path("out.rec")).unwrap(),
    );
}

#[test]
fn non_json_and_invalid_utf8_upstream_output_is_not_forwarded_but_alerted() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(&dir, &[], &["--garbage", "--record-out", &dir.p("out.rec")]);
    wd.initialize();
    for i in 0..3 {
        let r = wd.call_ok("test/echo", json!({"i": i}));
        assert_eq!(r["echo"]["i"], i);
    }
    let alert = wd.wait_rule("FRAMING", REPLY_TIMEOUT);
    for key in ["rule", "class", "severity", "action", "server", "detail"] {
        assert!(alert.get(key).is_some(), "alert without {key}: {alert}");
    }
    wd.close_stdin();
    wd.read_to_eof(REPLY_TIMEOUT);
    for l in &wd.received {
        assert!(
            std::str::from_utf8(l).is_ok(),
            "invalid UTF-8 forwarded: {l:?}"
        );
        assert!(
            parse_line(l).is_some(),
            "non-JSON forwarded: {:?}",
            String::from_utf8_lossy(l)
        );
    }
    assert_same_bytes(
        "the client gets exactly the valid messages",
        &wd.received.concat(),
        &std::fs::read(dir.path("out.rec")).unwrap(),
    );
}

#[test]
fn batch_array_is_handled_element_by_element() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(&dir, &[], &["--record", &dir.p("in.rec")]);
    wd.initialize();
    wd.send_raw(
        concat!(
            r#"[{"jsonrpc":"2.0","id":10,"method":"test/echo","params":{"n":"ten"}},"#,
            r#"{"jsonrpc":"2.0","method":"notifications/x-batch"},"#,
            r#"{"jsonrpc":"2.0","id":11,"method":"test/echo","params":{"n":"eleven"}}]"#,
            "\n"
        )
        .as_bytes(),
    );
    let r10 = wd.response(&json!(10), REPLY_TIMEOUT);
    let r11 = wd.response(&json!(11), REPLY_TIMEOUT);
    assert_eq!(r10["result"]["echo"]["n"], "ten", "{r10}");
    assert_eq!(r11["result"]["echo"]["n"], "eleven", "{r11}");
    // The server saw all three elements, whether relayed as one array or one by one.
    let mut seen = Vec::new();
    for m in dir.record_json("in.rec") {
        match m {
            Value::Array(items) => seen.extend(items),
            v => seen.push(v),
        }
    }
    assert!(seen.iter().any(|m| m["method"] == "notifications/x-batch"));
    assert!(seen.iter().any(|m| m["id"] == 10));
    assert!(seen.iter().any(|m| m["id"] == 11));
    wd.call_ok("ping", json!({}));
}

#[test]
fn server_stderr_is_relayed_prefixed_and_never_on_stdout() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &["--stderr-line", "hello from the fake's stderr"],
    );
    wd.initialize();
    wd.close_stdin();
    wd.read_to_eof(REPLY_TIMEOUT);
    wd.wait_exit(Duration::from_secs(30));
    let lines = wd.stderr_lines();
    let relayed = lines
        .iter()
        .find(|l| l.ends_with("hello from the fake's stderr"))
        .unwrap_or_else(|| panic!("not relayed:\n{}", lines.join("\n")));
    assert!(
        relayed.starts_with('['),
        "prefixed with [<server>]: {relayed}"
    );
    assert!(serde_json::from_str::<Value>(relayed).is_err());
    assert!(wd
        .received
        .iter()
        .all(|l| !String::from_utf8_lossy(l).contains("hello from")));
}

#[test]
fn server_to_client_request_round_trip_in_wrap_mode() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(
        &dir,
        &[],
        &[
            "--name",
            "solo",
            "--tools",
            "ask",
            "--sampling-request-id",
            "\"s-1\"",
        ],
    );
    wd.initialize();
    let call = json!(wd.fresh_id());
    wd.send(&json!({"jsonrpc":"2.0","id":call,"method":"tools/call","params":{"name":"ask","arguments":{}}}));
    let req = wd.recv_matching("the sampling request", REPLY_TIMEOUT, |m| {
        m["method"] == "sampling/createMessage"
    });
    wd.send(&json!({"jsonrpc":"2.0","id":req["id"],"result":{
        "role":"assistant","model":"e2e","content":{"type":"text","text":"réponse 😀"}}}));
    let r = wd.response(&call, REPLY_TIMEOUT);
    let sampled = &r["result"]["sampled"];
    assert_eq!(
        sampled["id"], "s-1",
        "the server gets its own id back: {sampled}"
    );
    assert_eq!(sampled["result"]["content"]["text"], "réponse 😀");
}

#[test]
fn client_garbage_is_refused_with_an_alert_and_the_session_goes_on() {
    let dir = TestDir::new();
    let mut wd = Watchdog::wrap(&dir, &[], &["--record", &dir.p("in.rec")]);
    wd.initialize();
    wd.send_raw(b"this is not json\n");
    wd.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"test/echo\",\"params\":{\"bad\":\"\xff\xfe\"}}\n");
    wd.send_raw(
        b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"test/echo\",\"params\":{\"good\":true}}\n",
    );
    let ok = wd.response(&json!(6), REPLY_TIMEOUT);
    assert_eq!(ok["result"]["echo"]["good"], true, "{}", short(&ok));
    wd.wait_alert("about the client's bad input", REPLY_TIMEOUT, |a| {
        a["direction"] == "client_to_server" || a["rule"] == "FRAMING"
    });
    let rec = std::fs::read(dir.path("in.rec")).unwrap();
    assert!(
        std::str::from_utf8(&rec).is_ok() && !String::from_utf8_lossy(&rec).contains("not json"),
        "bad client input reached the server"
    );
}
