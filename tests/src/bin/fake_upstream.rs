//! A scripted MCP server for the end-to-end tests, speaking newline-delimited JSON-RPC on stdio.
//!
//! Its behaviour is chosen by command-line flags so that each test states, in its own source, what the
//! upstream does. By default it answers `initialize`, `tools/list`, `prompts/list` and `ping`, and replies
//! to any other request with `{"jsonrpc":"2.0","id":<id>,"result":{"echo":<params>}}` where `<id>` and
//! `<params>` are the exact bytes it received: the tests can then check byte identity end to end.
//!
//! Flags (all optional):
//!   --name NAME                      serverInfo.name (default "fake")
//!   --tools a,b,c                    tools offered by tools/list
//!   --prompts a,b                    prompts offered by prompts/list
//!   --page-size N                    paginate the lists with nextCursor
//!   --record FILE                    append every line received, raw (newline included), to FILE
//!   --record-out FILE                append every JSON message sent, plus "\n", to FILE: exactly what a
//!                                    transparent proxy must deliver (garbage and CRLF are not recorded)
//!   --pid-file FILE                  append this process's pid on start (one line per life)
//!   --state-dir DIR                  survives restarts; holds the crash counter
//!   --crash-on METHOD                exit(3) without replying when METHOD arrives, while fewer than
//!                                    --crash-times crashes (default 1) are counted in --state-dir
//!                                    (without --state-dir: on every life)
//!   --crash-times N
//!   --exit-immediately N             exit with status N right at start, every life
//!   --garbage                        write a non-JSON line and an invalid-UTF-8 line before each reply
//!   --crlf                           end lines with CRLF and write a blank line before each message
//!   --reply-bytes N                  answer tools/call with a text content of exactly N bytes
//!   --grandchild-ignoring-term FILE  spawn a grandchild that ignores SIGTERM, write its pid to FILE
//!   --sampling-request-id ID         on tools/call of tool `ask`, first send sampling/createMessage with
//!                                    this id (raw JSON), wait for the client's answer, then reply with it
//!   --server-request-method M        the method of that server→client request (default
//!                                    sampling/createMessage; also elicitation/create, roots/list, ping)
//!   --resources a,b                  resources offered by resources/list (uri file:///<name>/<item>)
//!   --templates a,b                  templates offered by resources/templates/list
//!   --progress                       on tools/call with params._meta.progressToken, send two
//!                                    notifications/progress with that token (raw) before replying
//!   --exit-code N                    exit status on stdin EOF (default 0)
//!   --delay-ms N                     sleep before each reply to a request
//!   --stderr-line TEXT               write TEXT on stderr at start (repeatable)
//!   --notify-at-start TEXT           write a notifications/message with TEXT as its data at start,
//!                                    before reading anything
//!   --tools-file FILE                the tools, re-read on every tools/list (overrides --tools): one
//!                                    per line, `name` or `name: description`; a test edits it to
//!                                    change, add or remove tools while the server runs
//!   --instructions-file FILE         the initialize result's `instructions`, read on every
//!                                    initialize (none while the file is absent)
//!   --emit-token TOKEN               tools/call results carry TOKEN in their text content
//!   --notify-flood N                 on tools/call of tool `flood`, first send N
//!                                    notifications/tools/list_changed
//!   --duplicate-replies              write every reply twice (a smuggled duplicate)
//!   --unsolicited-id ID              before the first tools/call reply, write a response to ID (raw
//!                                    JSON), which nobody asked for
//!   --result-text TEXT               answer tools/call (other than `ask`) with one text content TEXT
//!   --elicitation-url URL            the elicitation/create request is URL mode, opening URL
//!   --tools-json FILE                the tools as a JSON array of whole tool definitions, served
//!                                    verbatim (re-read on every tools/list; overrides the others)
//!   --elicit-schema-file FILE        elicitation/create carries this requestedSchema (JSON)
//!   --elicit-message TEXT            …and this message
//!   --sampling-system-prompt TEXT    sampling/createMessage carries this systemPrompt
//!   --write-file PATH                on tools/call of tool `write`, create (or truncate) and write
//!                                    the file at `arguments.path`, else PATH (a leading `$TMPDIR/`
//!                                    is this process's TMPDIR), and reply with the text "ok" or the
//!                                    errno's name ("EACCES")
//!   --io-uring                       on tools/call of tool `io_uring`, call io_uring_setup(2) and
//!                                    reply "ok" or the errno's name ("EPERM")
//!
//! A notification whose method starts with `test/bounce` is answered with a `test/bounced` notification
//! carrying the same params bytes, so that server-originated traffic can be varied too.

use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Default)]
struct Opts {
    name: String,
    tools: Vec<String>,
    prompts: Vec<String>,
    page_size: Option<usize>,
    record: Option<PathBuf>,
    record_out: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    crash_on: Option<String>,
    crash_times: u32,
    exit_immediately: Option<i32>,
    garbage: bool,
    crlf: bool,
    reply_bytes: Option<usize>,
    grandchild_pidfile: Option<PathBuf>,
    sampling_request_id: Option<String>,
    server_request_method: String,
    resources: Vec<String>,
    progress: bool,
    templates: Vec<String>,
    exit_code: i32,
    delay_ms: u64,
    stderr_lines: Vec<String>,
    notify_at_start: Option<String>,
    result_text: Option<String>,
    elicitation_url: Option<String>,
    tools_file: Option<PathBuf>,
    instructions_file: Option<PathBuf>,
    emit_token: Option<String>,
    notify_flood: usize,
    duplicate_replies: bool,
    unsolicited_id: Option<String>,
    tools_json: Option<PathBuf>,
    elicit_schema_file: Option<PathBuf>,
    elicit_message: Option<String>,
    sampling_system_prompt: Option<String>,
    write_file: Option<String>,
    io_uring: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        name: "fake".into(),
        crash_times: 1,
        server_request_method: "sampling/createMessage".into(),
        ..Default::default()
    };
    let mut args = std::env::args().skip(1);
    let list = |s: String| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    while let Some(flag) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--name" => o.name = val(),
            "--tools" => o.tools = list(val()),
            "--prompts" => o.prompts = list(val()),
            "--page-size" => o.page_size = Some(num(&val())),
            "--record" => o.record = Some(val().into()),
            "--record-out" => o.record_out = Some(val().into()),
            "--pid-file" => o.pid_file = Some(val().into()),
            "--state-dir" => o.state_dir = Some(val().into()),
            "--crash-on" => o.crash_on = Some(val()),
            "--crash-times" => o.crash_times = num(&val()),
            "--exit-immediately" => o.exit_immediately = Some(num(&val())),
            "--garbage" => o.garbage = true,
            "--crlf" => o.crlf = true,
            "--reply-bytes" => o.reply_bytes = Some(num(&val())),
            "--grandchild-ignoring-term" => o.grandchild_pidfile = Some(val().into()),
            "--sampling-request-id" => {
                let id = val();
                // Validated here so that a typo fails loudly rather than producing a bad message.
                serde_json::from_str::<Value>(&id)
                    .unwrap_or_else(|e| die(&format!("--sampling-request-id {id}: {e}")));
                o.sampling_request_id = Some(id);
            }
            "--server-request-method" => o.server_request_method = val(),
            "--resources" => o.resources = list(val()),
            "--progress" => o.progress = true,
            "--templates" => o.templates = list(val()),
            "--exit-code" => o.exit_code = num(&val()),
            "--delay-ms" => o.delay_ms = num(&val()),
            "--stderr-line" => o.stderr_lines.push(val()),
            "--notify-at-start" => o.notify_at_start = Some(val()),
            "--tools-file" => o.tools_file = Some(val().into()),
            "--instructions-file" => o.instructions_file = Some(val().into()),
            "--emit-token" => o.emit_token = Some(val()),
            "--notify-flood" => o.notify_flood = num(&val()),
            "--duplicate-replies" => o.duplicate_replies = true,
            "--unsolicited-id" => {
                let id = val();
                serde_json::from_str::<Value>(&id)
                    .unwrap_or_else(|e| die(&format!("--unsolicited-id {id}: {e}")));
                o.unsolicited_id = Some(id);
            }
            "--result-text" => o.result_text = Some(val()),
            "--elicitation-url" => o.elicitation_url = Some(val()),
            "--tools-json" => o.tools_json = Some(val().into()),
            "--elicit-schema-file" => o.elicit_schema_file = Some(val().into()),
            "--elicit-message" => o.elicit_message = Some(val()),
            "--sampling-system-prompt" => o.sampling_system_prompt = Some(val()),
            "--write-file" => o.write_file = Some(val()),
            "--io-uring" => o.io_uring = true,
            other => die(&format!("unknown flag {other}")),
        }
    }
    o
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| die(&format!("not a number: {s}")))
}

fn die(msg: &str) -> ! {
    eprintln!("fake-upstream: {msg}");
    std::process::exit(2)
}

fn append(path: &PathBuf, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    f.write_all(bytes)
        .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
}

/// JSON text of a string value.
fn js(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

struct Server {
    o: Opts,
    input: BufReader<io::Stdin>,
    out: io::Stdout,
}

/// The members of one JSON-RPC object, values kept as raw bytes.
type Members<'a> = BTreeMap<String, &'a RawValue>;

impl Server {
    /// Next raw line from stdin (newline included), recorded before anything else happens with it;
    /// on EOF the process exits with the configured status.
    fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let n = self
            .input
            .read_until(b'\n', &mut line)
            .unwrap_or_else(|e| die(&format!("stdin: {e}")));
        if n == 0 {
            self.exit(self.o.exit_code);
        }
        if let Some(rec) = &self.o.record {
            append(rec, &line);
        }
        line
    }

    fn exit(&mut self, code: i32) -> ! {
        let _ = self.out.flush();
        std::process::exit(code)
    }

    /// Writes one message with the configured line ending and records it as the client should see it.
    fn send(&mut self, text: &str) {
        let mut out = self.out.lock();
        if self.o.crlf {
            out.write_all(b"\n").ok();
        }
        out.write_all(text.as_bytes()).ok();
        out.write_all(if self.o.crlf { b"\r\n" } else { b"\n" })
            .ok();
        out.flush().ok();
        drop(out);
        if let Some(rec) = &self.o.record_out {
            append(rec, format!("{text}\n").as_bytes());
        }
    }

    /// Written before replies when --garbage is set: a proxy must never forward either line.
    fn garbage(&mut self) {
        let mut out = self.out.lock();
        out.write_all(b"this is not json at all\n").ok();
        out.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"bad \xff\xfe bytes\"}}\n").ok();
        out.flush().ok();
    }

    fn run(&mut self) -> ! {
        if let Some(data) = self.o.notify_at_start.clone() {
            let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": data}});
            self.send(&note.to_string());
        }
        loop {
            let line = self.read_line();
            let text = trim_eol(&line);
            if text.is_empty() {
                continue;
            }
            let Ok(text) = std::str::from_utf8(text) else {
                eprintln!("fake-upstream: received invalid UTF-8");
                continue;
            };
            let text = text.to_owned();
            self.handle_text(&text);
        }
    }

    fn handle_text(&mut self, text: &str) {
        if text.trim_start().starts_with('[') {
            // Legacy batch: answer with a batch of the replies, as JSON-RPC 2.0 specifies.
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
                eprintln!("fake-upstream: unparsable batch");
                return;
            };
            let replies: Vec<String> = items
                .iter()
                .filter_map(|item| self.handle_one(item.get()))
                .collect();
            if !replies.is_empty() {
                self.reply_prelude();
                self.send(&format!("[{}]", replies.join(",")));
            }
        } else if let Some(reply) = self.handle_one(text) {
            self.reply_prelude();
            self.send(&reply);
            if self.o.duplicate_replies {
                self.send(&reply);
            }
        }
    }

    fn reply_prelude(&mut self) {
        if self.o.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.o.delay_ms));
        }
        if self.o.garbage {
            self.garbage();
        }
    }

    /// Handles one message; returns the reply's JSON text when it was a request.
    fn handle_one(&mut self, text: &str) -> Option<String> {
        let m: Members = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("fake-upstream: unparsable message: {e}");
                return None;
            }
        };
        let method: Option<String> = m
            .get("method")
            .and_then(|r| serde_json::from_str(r.get()).ok());
        let id = m.get("id").map(|r| r.get()).filter(|r| *r != "null");
        let params = m.get("params").map(|r| r.get());
        let Some(method) = method else {
            // A response nobody here waits for (the sampling wait loop consumes its own).
            return None;
        };
        if self.o.crash_on.as_deref() == Some(method.as_str()) && self.should_crash() {
            eprintln!("fake-upstream: crashing on {method} as scripted");
            self.exit(3);
        }
        let Some(id) = id else {
            if method.starts_with("test/bounce") {
                let p = params.unwrap_or("null");
                self.send(&format!(
                    r#"{{"jsonrpc":"2.0","method":"test/bounced","params":{p}}}"#
                ));
            }
            return None;
        };
        let id = id.to_owned();
        let result = match method.as_str() {
            "initialize" => self.initialize(params),
            "ping" => "{}".to_owned(),
            "tools/list" if self.o.tools_json.is_some() => self.tools_json(params),
            "tools/list" => {
                let (names, descriptions) = self.current_tools();
                self.list_described(&names, &descriptions, "tools", params)
            }
            "prompts/list" => self.list(&self.o.prompts.clone(), "prompts", params),
            "resources/list" => self.list(&self.o.resources.clone(), "resources", params),
            "resources/templates/list" => {
                self.list(&self.o.templates.clone(), "resourceTemplates", params)
            }
            "tools/call" => self.tools_call(params),
            _ => format!(r#"{{"echo":{}}}"#, params.unwrap_or("null")),
        };
        Some(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#
        ))
    }

    /// Counts crashes in --state-dir so that a restarted process stops crashing after --crash-times.
    fn should_crash(&self) -> bool {
        let Some(dir) = &self.o.state_dir else {
            return true;
        };
        let path = dir.join("crashes");
        let count: u32 = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if count >= self.o.crash_times {
            return false;
        }
        fs::write(&path, format!("{}\n", count + 1))
            .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        true
    }

    fn initialize(&self, params: Option<&str>) -> String {
        let version = params
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("protocolVersion").cloned())
            .unwrap_or_else(|| Value::String("2025-06-18".into()));
        let mut caps = vec![r#""tools":{"listChanged":true}"#.to_owned()];
        if !self.o.prompts.is_empty() {
            caps.push(r#""prompts":{}"#.to_owned());
        }
        if !self.o.resources.is_empty() || !self.o.templates.is_empty() {
            caps.push(r#""resources":{}"#.to_owned());
        }
        let instructions = self
            .o
            .instructions_file
            .as_ref()
            .and_then(|p| fs::read_to_string(p).ok())
            .map(|text| format!(r#","instructions":{}"#, js(text.trim())))
            .unwrap_or_default();
        format!(
            r#"{{"protocolVersion":{version},"capabilities":{{{}}},"serverInfo":{{"name":{},"version":"0.0.1"}}{instructions}}}"#,
            caps.join(","),
            js(&self.o.name)
        )
    }

    /// tools/list or prompts/list; the cursor is the decimal offset of the next page.
    fn list(&self, names: &[String], key: &str, params: Option<&str>) -> String {
        self.list_described(names, &BTreeMap::new(), key, params)
    }

    /// The tools now offered: from --tools-file when given (with any descriptions it sets), else
    /// from --tools.
    fn current_tools(&self) -> (Vec<String>, BTreeMap<String, String>) {
        let Some(path) = &self.o.tools_file else {
            return (self.o.tools.clone(), BTreeMap::new());
        };
        let text =
            fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        let mut names = Vec::new();
        let mut descriptions = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(':') {
                Some((name, desc)) => {
                    names.push(name.trim().to_owned());
                    descriptions.insert(name.trim().to_owned(), desc.trim().to_owned());
                }
                None => names.push(line.to_owned()),
            }
        }
        (names, descriptions)
    }

    /// tools/list from --tools-json: the definitions as written, paginated like the other lists.
    fn tools_json(&self, params: Option<&str>) -> String {
        let path = self.o.tools_json.as_ref().expect("checked");
        let text =
            fs::read_to_string(path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        let tools: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        let start: usize = params
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("cursor").and_then(Value::as_str).map(str::to_owned))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let end = self
            .o
            .page_size
            .map_or(tools.len(), |n| (start + n).min(tools.len()));
        let start = start.min(end);
        let mut result = serde_json::json!({ "tools": tools[start..end] });
        if end < tools.len() {
            result["nextCursor"] = Value::String(end.to_string());
        }
        result.to_string()
    }

    /// A list whose items take their description from `descriptions` when it has one.
    fn list_described(
        &self,
        names: &[String],
        descriptions: &BTreeMap<String, String>,
        key: &str,
        params: Option<&str>,
    ) -> String {
        let start: usize = params
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("cursor").and_then(Value::as_str).map(str::to_owned))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let end = match self.o.page_size {
            Some(n) => (start + n).min(names.len()),
            None => names.len(),
        };
        let start = start.min(end);
        let items: Vec<String> = names[start..end]
            .iter()
            .map(|n| {
                let desc = js(&descriptions
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| format!("Fake {key} item {n} of {}", self.o.name)));
                let uri = js(&format!("file:///{}/{n}", self.o.name));
                if key == "resources" {
                    return format!(r#"{{"uri":{uri},"name":{},"description":{desc}}}"#, js(n));
                }
                if key == "resourceTemplates" {
                    let tpl = js(&format!("file:///{}/{n}/{{id}}", self.o.name));
                    return format!(r#"{{"uriTemplate":{tpl},"name":{},"description":{desc}}}"#, js(n));
                }
                if key == "tools" {
                    format!(
                        r#"{{"name":{},"description":{desc},"inputSchema":{{"type":"object","properties":{{}}}}}}"#,
                        js(n)
                    )
                } else {
                    format!(r#"{{"name":{},"description":{desc}}}"#, js(n))
                }
            })
            .collect();
        let next = if end < names.len() {
            format!(r#","nextCursor":{}"#, js(&end.to_string()))
        } else {
            String::new()
        };
        format!(r#"{{"{key}":[{}]{next}}}"#, items.join(","))
    }

    fn tools_call(&mut self, params: Option<&str>) -> String {
        if self.o.progress {
            self.progress(params);
        }
        if let Some(id) = self.o.unsolicited_id.take() {
            self.send(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"smuggled"}}]}}}}"#
            ));
        }
        let name = params
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("name").and_then(Value::as_str).map(str::to_owned));
        if name.as_deref() == Some("flood") {
            for _ in 0..self.o.notify_flood {
                self.send(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
            }
        }
        if let Some(token) = &self.o.emit_token {
            return format!(
                r#"{{"content":[{{"type":"text","text":{}}}],"echo":{}}}"#,
                js(&format!("here is what you asked for: {token}")),
                params.unwrap_or("null")
            );
        }
        if name.as_deref() == Some("write") {
            if let Some(default) = &self.o.write_file {
                let path = params
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .and_then(|p| p["arguments"]["path"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| default.clone());
                return text_result(&try_write(&path));
            }
        }
        if name.as_deref() == Some("io_uring") && self.o.io_uring {
            return text_result(&try_io_uring());
        }
        if name.as_deref() == Some("ask") {
            if let Some(sid) = self.o.sampling_request_id.clone() {
                let answer = self.sample(&sid);
                return format!(
                    r#"{{"content":[{{"type":"text","text":"sampled"}}],"server":{},"sampled":{answer}}}"#,
                    js(&self.o.name)
                );
            }
        }
        if let Some(t) = &self.o.result_text {
            return format!(r#"{{"content":[{{"type":"text","text":{}}}]}}"#, js(t));
        }
        if let Some(n) = self.o.reply_bytes {
            let text = "x".repeat(n);
            return format!(r#"{{"content":[{{"type":"text","text":"{text}"}}]}}"#);
        }
        format!(r#"{{"echo":{}}}"#, params.unwrap_or("null"))
    }

    /// Progress notifications carrying the request's progressToken exactly as it was written.
    fn progress(&mut self, params: Option<&str>) {
        let token = params
            .and_then(|p| serde_json::from_str::<Members>(p).ok())
            .and_then(|p| p.get("_meta").map(|m| m.get().to_owned()))
            .and_then(|m| {
                serde_json::from_str::<Members>(&m)
                    .ok()
                    .and_then(|m| m.get("progressToken").map(|t| t.get().to_owned()))
            });
        let Some(token) = token else { return };
        for step in 1..=2 {
            self.send(&format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/progress","params":{{"progressToken":{token},"progress":{step},"total":2,"message":{}}}}}"#,
                js(&format!("step {step} of {}", self.o.name))
            ));
        }
    }

    /// Sends a server→client request (sampling by default) with id `sid` and waits for the matching response,
    /// handling whatever else arrives meanwhile. Returns the whole response message's JSON text.
    fn sample(&mut self, sid: &str) -> String {
        let question = js(&format!("question from {}", self.o.name));
        let method = self.o.server_request_method.clone();
        // Each method gets params of its own shape; every shape carries the question text somewhere
        // the test can read it back (roots/list and ping take no params, so it goes into _meta).
        let params = match method.as_str() {
            "elicitation/create" if self.o.elicitation_url.is_some() => format!(
                r#"{{"mode":"url","elicitationId":"e2e-elicitation","url":{},"message":{question}}}"#,
                js(self.o.elicitation_url.as_deref().unwrap_or_default())
            ),
            "sampling/createMessage" => {
                let system = self
                    .o
                    .sampling_system_prompt
                    .as_deref()
                    .map(|p| format!(r#","systemPrompt":{}"#, js(p)))
                    .unwrap_or_default();
                format!(
                    r#"{{"messages":[{{"role":"user","content":{{"type":"text","text":{question}}}}}],"maxTokens":16{system}}}"#
                )
            }
            "elicitation/create" => {
                let schema = match &self.o.elicit_schema_file {
                    Some(p) => fs::read_to_string(p)
                        .unwrap_or_else(|e| die(&format!("{}: {e}", p.display()))),
                    None => r#"{"type":"object","properties":{"answer":{"type":"string"}}}"#.into(),
                };
                let message = self.o.elicit_message.as_deref().map_or(question, js);
                format!(
                    r#"{{"message":{message},"requestedSchema":{}}}"#,
                    schema.trim()
                )
            }
            _ => format!(r#"{{"_meta":{{"question":{question}}}}}"#),
        };
        self.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{sid},"method":{},"params":{params}}}"#,
            js(&method)
        ));
        let want: Value = serde_json::from_str(sid).expect("validated at start");
        loop {
            let line = self.read_line();
            let Ok(text) = std::str::from_utf8(trim_eol(&line)) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let text = text.to_owned();
            let v: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) => continue,
            };
            let is_answer = v.get("method").is_none()
                && v.get("id") == Some(&want)
                && (v.get("result").is_some() || v.get("error").is_some());
            if is_answer {
                return text;
            }
            self.handle_text(&text);
        }
    }
}

fn text_result(text: &str) -> String {
    format!(r#"{{"content":[{{"type":"text","text":{}}}]}}"#, js(text))
}

/// "ok", or the name of the errno that creating and writing `path` failed with.
fn try_write(path: &str) -> String {
    let path = match path.strip_prefix("$TMPDIR/") {
        Some(rest) => std::env::temp_dir().join(rest),
        None => PathBuf::from(path),
    };
    match File::create(&path).and_then(|mut f| f.write_all(b"written by fake-upstream\n")) {
        Ok(()) => "ok".into(),
        Err(e) => errno_name(&e),
    }
}

/// "ok" (the ring is closed again), or the errno's name.
fn try_io_uring() -> String {
    // struct io_uring_params is 120 bytes; zeroed asks for defaults.
    let mut params = [0u8; 120];
    // SAFETY: a valid pointer to a buffer of the size the kernel reads and writes.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: the fd the kernel just returned.
        unsafe { libc::close(fd as i32) };
        return "ok".into();
    }
    errno_name(&io::Error::last_os_error())
}

fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::EROFS) => "EROFS".into(),
        Some(libc::ENOSYS) => "ENOSYS".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn main() {
    let o = parse_opts();
    if let Some(p) = &o.pid_file {
        append(p, format!("{}\n", std::process::id()).as_bytes());
    }
    for l in &o.stderr_lines {
        eprintln!("{l}");
    }
    if let Some(code) = o.exit_immediately {
        std::process::exit(code);
    }
    if let Some(p) = &o.grandchild_pidfile {
        // `exec` keeps the pid, and an ignored signal stays ignored across exec, so the pid written is
        // that of a process that survives SIGTERM. It keeps our stdout open on purpose, like a real
        // helper started from a shell script would. The sleep is bounded so a failing test leaks little.
        // Never waited for on purpose: this process must leave it behind for the watchdog to clean up.
        #[allow(clippy::zombie_processes)]
        let child = Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 60"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn grandchild: {e}")));
        // Publish the pid only once `sleep` runs, i.e. after the trap is set: a test that sends SIGTERM
        // as soon as it reads the pid must not catch the shell before it ignores the signal.
        let comm = format!("/proc/{}/comm", child.id());
        for _ in 0..500 {
            if fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut f = File::create(p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
        writeln!(f, "{}", child.id()).ok();
    }
    let mut server = Server {
        o,
        input: BufReader::with_capacity(1 << 16, io::stdin()),
        out: io::stdout(),
    };
    server.run()
}
