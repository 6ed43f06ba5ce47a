//! `mcp-watchdog scan-text`: the inline inspectors on one message or a piece of text, for users
//! tuning their policy. Prints every finding and what the policy would do; exits 1 if anything was
//! found, 0 if the text passes, 2 on bad input.

use crate::alert::{human_line, Direction};
use crate::cli::{ProxyArgs, ScanDirection, ScanTextArgs};
use crate::inspect::{Outcome, SubjectMeta};
use crate::jsonrpc::{Id, Kind, Message, Parsed};
use crate::policy::{Mode, Policy};
use bytes::Bytes;
use serde_json::json;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

pub fn run(args: &ScanTextArgs, proxy: &ProxyArgs) -> ExitCode {
    match scan(args, proxy) {
        Ok(found) => ExitCode::from(u8::from(found)),
        Err(e) => {
            eprintln!("mcp-watchdog scan-text: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read_input(args: &ScanTextArgs) -> anyhow::Result<Vec<u8>> {
    let mut input = Vec::new();
    match args.file.as_deref() {
        None => std::io::stdin().read_to_end(&mut input)?,
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_end(&mut input)?,
        Some(p) => {
            input = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            input.len()
        }
    };
    Ok(input)
}

fn policy(proxy: &ProxyArgs) -> anyhow::Result<Policy> {
    let file = match &proxy.config {
        Some(path) => crate::config::load_file(path)?,
        None => Default::default(),
    };
    let mode = if proxy.monitor {
        Mode::Monitor
    } else {
        file.mode
    };
    Ok(Policy::new(mode, file.rules.into_iter().collect()))
}

/// Returns whether anything was found.
fn scan(args: &ScanTextArgs, proxy: &ProxyArgs) -> anyhow::Result<bool> {
    let input = read_input(args)?;
    let direction = match args.direction {
        ScanDirection::Request => Direction::ClientToServer,
        ScanDirection::Response => Direction::ServerToClient,
    };
    // A JSON-RPC message is scanned as it is; anything else as the text of a tools/call.
    let trimmed = input.strip_suffix(b"\n").unwrap_or(&input);
    let message = match Message::parse_frame(Bytes::copy_from_slice(trimmed)) {
        Ok(Parsed::Single(m)) => m,
        _ => {
            let text = String::from_utf8(input).map_err(|_| {
                anyhow::anyhow!("input is neither a JSON-RPC message nor UTF-8 text")
            })?;
            let wrapped = match direction {
                Direction::ServerToClient => {
                    json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": text}]}})
                }
                Direction::ClientToServer => {
                    json!({"jsonrpc": "2.0", "id": 1, "method": args.method, "params": {"name": "tool", "arguments": {"text": text}}})
                }
            };
            match Message::parse_frame(Bytes::from(serde_json::to_vec(&wrapped)?))? {
                Parsed::Single(m) => m,
                Parsed::Batch(_) => unreachable!("an object is not a batch"),
            }
        }
    };
    let method = message
        .method()
        .map(str::to_owned)
        .unwrap_or_else(|| args.method.clone());
    let pipeline = crate::inspect::registry::pipeline_for(policy(proxy)?, Default::default());
    let id = message.id.clone().unwrap_or_else(|| Id("null".into()));
    let meta = SubjectMeta {
        direction,
        server: "scan-text",
        kind: message.kind,
        method: Some(&method),
        id: Some(&id),
    };
    let inspection = pipeline.inspect(meta, &message.raw);
    for alert in &inspection.alerts {
        println!(
            "{}",
            human_line(alert, false, Duration::ZERO).trim_start_matches("mcp-watchdog: ")
        );
    }
    match &inspection.outcome {
        Outcome::Pass if inspection.alerts.is_empty() => println!(
            "clean: nothing found ({} {})",
            kind_name(message.kind),
            method
        ),
        Outcome::Pass => println!("verdict: passed unchanged (the policy only alerts)"),
        Outcome::Rewrite(bytes) => println!(
            "verdict: rewritten; the other side would receive:\n{}",
            String::from_utf8_lossy(bytes)
        ),
        Outcome::Block { reason, .. } => {
            println!("verdict: blocked ({reason}); the requester would get a JSON-RPC error")
        }
        Outcome::Answer(result) => println!(
            "verdict: answered on the recipient's behalf with:\n{}",
            String::from_utf8_lossy(result)
        ),
    }
    Ok(!inspection.alerts.is_empty())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Request => "request",
        Kind::Notification => "notification",
        Kind::Result => "result of",
        Kind::Error => "error for",
    }
}
