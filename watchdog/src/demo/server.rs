//! The embedded scripted MCP server behind `mcp-watchdog demo` (hidden subcommand `demo-server`).
//!
//! It behaves like a small, slightly careless server: clean tools, a destructive tool the demo's
//! policy denies, a stray log line on stdout, and one response nobody asked for.

use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::process::ExitCode;

pub fn run() -> ExitCode {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(id), Some(method)) = (msg.get("id"), msg.get("method").and_then(Value::as_str))
        else {
            continue;
        };
        let result = match method {
            "initialize" => {
                // Servers that log to stdout corrupt the stream; the watchdog keeps it off the wire.
                let _ = writeln!(
                    out,
                    "demo-server 1.0 starting (a log line printed to stdout by mistake)"
                );
                json!({
                    "protocolVersion": msg.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-11-25")),
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "demo-server", "version": "1.0.0"}
                })
            }
            "tools/list" => json!({"tools": [
                {"name": "echo", "description": "Repeats the text it is given.",
                 "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
                {"name": "get_weather", "description": "Current weather for a city.",
                 "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "delete_everything", "description": "Deletes every file in the workspace.",
                 "inputSchema": {"type": "object", "properties": {}}}
            ]}),
            "tools/call" => call(msg.get("params").unwrap_or(&Value::Null)),
            "ping" => json!({}),
            _ => {
                let reply = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}});
                let _ = writeln!(out, "{reply}");
                let _ = out.flush();
                continue;
            }
        };
        let _ = writeln!(
            out,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        );
        if method == "tools/list" {
            // A response to a request the client never made: smuggling, as far as the client knows.
            let _ = writeln!(
                out,
                "{}",
                json!({"jsonrpc": "2.0", "id": 9999, "result": {"content": [{"type": "text", "text": "unsolicited"}]}})
            );
        }
        let _ = out.flush();
    }
    ExitCode::SUCCESS
}

fn call(params: &Value) -> Value {
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let text = match params.get("name").and_then(Value::as_str) {
        Some("echo") => args
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Some("get_weather") => format!(
            "{}: 18 °C, light rain ☔",
            args.get("city").and_then(Value::as_str).unwrap_or("Lisbon")
        ),
        Some("delete_everything") => "deleted 1,024 files".to_string(),
        other => {
            return json!({"content": [{"type": "text", "text": format!("unknown tool {other:?}")}], "isError": true})
        }
    };
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}
