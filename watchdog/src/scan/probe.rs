//! Starting one server briefly and asking it, as an MCP client, what it offers.
//!
//! initialize (protocol 2025-11-25, no client capabilities, so the server has no reason to send
//! requests back), notifications/initialized, then each list method whose capability the server
//! declared, following nextCursor to the last page. Every step has its own deadline; whatever was
//! received before a failure is kept so that it can still be inspected. The server's process tree
//! is terminated afterwards in every case.

use crate::jsonrpc::{Frame, FrameReader, DEFAULT_MAX_FRAME};
use crate::mcp::methods::*;
use crate::supervisor::process_tree::ProcessTree;
use crate::supervisor::spawn::{spawn_server, ServerCommand};
use crate::supervisor::terminate::terminate_tree;
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::time::Instant;

/// The protocol revision a scan asks for.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Pages of one list followed at most: a server handing out cursors without end is cut off.
const MAX_PAGES: usize = 1000;

/// Lines of the server's stderr kept to explain a failure.
const STDERR_TAIL: usize = 20;

/// Characters of one stderr line kept.
const STDERR_LINE_CHARS: usize = 400;

/// How long SIGTERM gets before SIGKILL when the scan is done with a server.
const TERMINATION_GRACE: Duration = Duration::from_millis(1000);

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

/// What a server answered.
#[derive(Debug, Default)]
pub struct Probe {
    /// The initialize result.
    pub initialize: Option<Value>,
    pub lists: Vec<Listing>,
    /// Worth knowing, not a failure (a list the server declared but does not implement).
    pub notes: Vec<String>,
    /// Why the scan of this server is incomplete: it did not start, answer in time, or follow
    /// the protocol.
    pub failure: Option<String>,
    /// The last lines the server wrote on stderr.
    pub stderr_tail: Vec<String>,
}

/// The pages of one list method, in order.
#[derive(Debug)]
pub struct Listing {
    pub method: &'static str,
    /// Each page's `result` object.
    pub pages: Vec<Value>,
    /// The last page was reached.
    pub complete: bool,
}

/// How the server's stderr is treated.
#[derive(Debug, Clone)]
pub enum StderrEcho {
    /// Kept for the report only.
    Quiet,
    /// Also copied to our stderr, each line prefixed with the server's name.
    Echo(String),
}

/// Starts `command`, lists what it offers within `timeout` per step, and ends its process tree.
pub async fn probe(command: &ServerCommand, timeout: Duration, echo: StderrEcho) -> Probe {
    let mut probe = Probe::default();
    // A scanned server runs in the sandbox it would get behind the proxy (default scope).
    let plan = crate::sandbox::scope::resolve(
        &Default::default(),
        command,
        &crate::sandbox::scope::UserDirs::from_env(),
    )
    .map(|scope| crate::sandbox::SandboxPlan {
        enabled: true,
        scope,
    });
    let confinement = match plan
        .and_then(|p| crate::sandbox::Confinement::prepare("scan", &p).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            probe.failure = Some(format!("sandbox: {e}"));
            return probe;
        }
    };
    let mut child = match spawn_server(command, &confinement) {
        Ok(child) => child,
        Err(e) => {
            probe.failure = Some(e.to_string());
            return probe;
        }
    };
    let tree = ProcessTree::new(child.id().unwrap_or_default());
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_task = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(keep_stderr(stderr, tail.clone(), echo)));
    let mut peer = Peer {
        stdin: child.stdin.take().expect("stdin is piped"),
        frames: FrameReader::new(
            child.stdout.take().expect("stdout is piped"),
            DEFAULT_MAX_FRAME,
        ),
        next_id: 1,
        timeout,
    };
    if let Err(failure) = converse(&mut peer, &mut probe).await {
        probe.failure = Some(failure);
    }
    // Closing stdin lets a well-behaved server exit by itself; the tree goes in any case.
    drop(peer);
    terminate_tree(&tree, TERMINATION_GRACE).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    if let Some(task) = stderr_task {
        // Stderr ends with the last process holding it; one stuck in the kernel is not waited for.
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    probe.stderr_tail = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    probe
}

async fn keep_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    echo: StderrEcho,
) {
    let mut lines = BufReader::new(stderr).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        let text: String = String::from_utf8_lossy(&line)
            .trim_end()
            .chars()
            .filter(|c| !c.is_control())
            .take(STDERR_LINE_CHARS)
            .collect();
        if let StderrEcho::Echo(name) = &echo {
            eprintln!("[{name}] {text}");
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    }
}

/// initialize, initialized, and the declared lists.
async fn converse(peer: &mut Peer, probe: &mut Probe) -> Result<(), String> {
    let init = peer
        .request(
            INITIALIZE,
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcp-watchdog-scan", "version": env!("CARGO_PKG_VERSION")},
            }),
        )
        .await?
        .map_err(|e| format!("initialize was refused: {}", error_text(&e)))?;
    if !init.is_object() {
        return Err(format!("the initialize result is not an object: {init}"));
    }
    let capabilities = init.get("capabilities").cloned().unwrap_or(Value::Null);
    probe.initialize = Some(init);
    peer.notify(INITIALIZED).await?;
    let declared = |cap: &str| capabilities.get(cap).is_some_and(|c| !c.is_null());
    let wanted = [
        (TOOLS_LIST, "tools"),
        (PROMPTS_LIST, "prompts"),
        (RESOURCES_LIST, "resources"),
        (RESOURCE_TEMPLATES_LIST, "resources"),
    ];
    for (method, capability) in wanted {
        if !declared(capability) {
            continue;
        }
        let mut listing = Listing {
            method,
            pages: Vec::new(),
            complete: false,
        };
        let done = list_all(peer, &mut listing, &mut probe.notes).await;
        probe.lists.push(listing);
        done?;
    }
    Ok(())
}

/// Follows one list method's cursors to the end.
async fn list_all(
    peer: &mut Peer,
    listing: &mut Listing,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let method = listing.method;
    let mut cursor: Option<String> = None;
    let mut cursors_seen = HashSet::new();
    while listing.pages.len() < MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = match peer.request(method, params).await? {
            Ok(page) => page,
            // Servers that declare `resources` often implement only resources/list.
            Err(e)
                if method == RESOURCE_TEMPLATES_LIST
                    && error_code(&e) == Some(METHOD_NOT_FOUND) =>
            {
                notes.push(format!("{method}: {}", error_text(&e)));
                listing.complete = true;
                return Ok(());
            }
            Err(e) => return Err(format!("{method} was refused: {}", error_text(&e))),
        };
        if !page.is_object() {
            return Err(format!("the {method} result is not an object"));
        }
        let next = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        listing.pages.push(page);
        match next {
            None => {
                listing.complete = true;
                return Ok(());
            }
            Some(c) if !cursors_seen.insert(c.clone()) => {
                notes.push(format!(
                    "{method}: the server repeated cursor {c:?}; listing stopped there"
                ));
                return Ok(());
            }
            Some(c) => cursor = Some(c),
        }
    }
    notes.push(format!("{method}: stopped after {MAX_PAGES} pages"));
    Ok(())
}

fn error_code(error: &Value) -> Option<i64> {
    error.get("code").and_then(Value::as_i64)
}

fn error_text(error: &Value) -> String {
    match (
        error_code(error),
        error.get("message").and_then(Value::as_str),
    ) {
        (Some(code), Some(message)) => format!("error {code}: {message}"),
        _ => error.to_string(),
    }
}

/// The server's end of the conversation.
struct Peer {
    stdin: ChildStdin,
    frames: FrameReader<ChildStdout>,
    next_id: i64,
    timeout: Duration,
}

impl Peer {
    async fn send(&mut self, message: &Value) -> Result<(), String> {
        let mut line = serde_json::to_vec(message).expect("JSON values serialize");
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .await
            .map_err(|e| format!("cannot write to the server: {e} (did it exit?)"))
    }

    async fn notify(&mut self, method: &str) -> Result<(), String> {
        self.send(&json!({"jsonrpc": "2.0", "method": method}))
            .await
    }

    /// Sends a request and waits for its response: `Ok(Ok(result))`, `Ok(Err(error object))`, or
    /// `Err` when the server went away, broke the protocol, or took longer than the timeout.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, Value>, String> {
        let id = self.next_id;
        self.next_id += 1;
        // A server that exits at once may be gone before the request is written, or after: the
        // same failure either way, and said the same way.
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await
            .map_err(|_| {
                format!("the server stopped reading before {method} was sent (did it exit?)")
            })?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.frames.next_frame())
                .await
                .map_err(|_| {
                    format!(
                        "no answer to {method} within {}s (raise --timeout?)",
                        self.timeout.as_secs()
                    )
                })?
                .map_err(|e| format!("cannot read from the server: {e}"))?;
            let line = match frame {
                None => {
                    return Err(format!(
                        "the server closed its output before answering {method} (did it exit?)"
                    ))
                }
                Some(Frame::Oversize { len, .. }) => {
                    return Err(format!(
                        "the server sent a {len}-byte line, more than the frame limit"
                    ))
                }
                Some(Frame::Line(line)) => line,
            };
            // Some servers log to stdout; such lines are not messages and are passed over.
            let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(their_method) = message.get("method").and_then(Value::as_str) {
                if let Some(their_id) = message.get("id") {
                    self.answer(their_method, their_id.clone()).await?;
                }
                continue;
            }
            if message.get("id").and_then(Value::as_i64) != Some(id) {
                continue;
            }
            if let Some(result) = message.get("result") {
                return Ok(Ok(result.clone()));
            }
            if let Some(error) = message.get("error") {
                return Ok(Err(error.clone()));
            }
            return Err(format!(
                "the response to {method} has neither result nor error"
            ));
        }
    }

    /// A request from the server: ping is answered, anything else declined (a scan has no
    /// model, user or roots to offer).
    async fn answer(&mut self, method: &str, id: Value) -> Result<(), String> {
        let reply = if method == PING {
            json!({"jsonrpc": "2.0", "id": id, "result": {}})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": METHOD_NOT_FOUND, "message": "not offered by mcp-watchdog scan"}})
        };
        self.send(&reply).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ServerCommand {
        ServerCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            cwd: None,
        }
    }

    fn run(cmd: &ServerCommand, timeout: Duration) -> Probe {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(probe(cmd, timeout, StderrEcho::Quiet))
    }

    #[test]
    fn a_silent_server_times_out_and_is_ended() {
        let started = std::time::Instant::now();
        let p = run(
            &sh("echo starting >&2; exec sleep 300"),
            Duration::from_secs(1),
        );
        let failure = p.failure.unwrap();
        assert!(
            failure.contains("no answer to initialize within 1s"),
            "{failure}"
        );
        assert_eq!(p.stderr_tail, ["starting"]);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_server_that_exits_is_a_failure_with_its_stderr() {
        let p = run(
            &sh("echo 'missing API key' >&2; exit 1"),
            Duration::from_secs(5),
        );
        let failure = p.failure.unwrap();
        assert!(
            failure.contains("initialize") && failure.contains("did it exit?"),
            "{failure}"
        );
        assert_eq!(p.stderr_tail, ["missing API key"]);
    }

    #[test]
    fn a_missing_program_is_a_failure() {
        let mut cmd = sh("");
        cmd.program = "/nonexistent/server".into();
        let p = run(&cmd, Duration::from_secs(5));
        assert!(p.failure.unwrap().contains("No such file"));
    }

    /// A scripted server: answers initialize with tools only, and tools/list in two pages, with a
    /// log line on stdout and a ping request in between.
    #[test]
    fn lists_follow_cursors_and_only_declared_capabilities() {
        let script = r#"
read init
echo 'a log line, not JSON'
echo '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"s","version":"1"}}}'
read initialized
read list1
echo '{"jsonrpc":"2.0","id":"srv","method":"ping"}'
read pong
echo '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a"}],"nextCursor":"p2"}}'
read list2
case "$list2" in *'"cursor":"p2"'*) ;; *) exit 9;; esac
echo '{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"b"}]}}'
read eof
"#;
        let p = run(&sh(script), Duration::from_secs(10));
        assert_eq!(p.failure, None, "{:?}", p.stderr_tail);
        assert_eq!(p.lists.len(), 1);
        assert_eq!(p.lists[0].method, TOOLS_LIST);
        assert!(p.lists[0].complete);
        let names: Vec<_> = p.lists[0]
            .pages
            .iter()
            .map(|page| page["tools"][0]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
