//! Property: random benign JSON-RPC messages pass the full inspection pipeline byte-identical and
//! raise no alert, in every place text hides.

use proptest::prelude::*;
use serde_json::{json, Value};
use watchdog::alert::Direction;
use watchdog::inspect::{Outcome, Pipeline, SubjectMeta};
use watchdog::jsonrpc::{Id, Kind};
use watchdog::policy::Policy;

/// Words a benign message is made of: prose, code, paths, non-Latin scripts, emoji with joiners.
const WORDS: &[&str] = &[
    "the",
    "quick",
    "brown",
    "fox",
    "returns",
    "a",
    "list",
    "of",
    "files",
    "in",
    "directory",
    "README.md",
    "src/main.rs",
    "Cargo.toml",
    "fn",
    "main()",
    "{",
    "}",
    "let",
    "x",
    "=",
    "42;",
    "SELECT",
    "name",
    "FROM",
    "users",
    "WHERE",
    "id",
    "=",
    "7",
    "échec",
    "naïve",
    "café",
    "東京",
    "こんにちは",
    "Привет",
    "مرحبا",
    "می‌خواهم",
    "नमस्ते",
    "👋",
    "👨‍👩‍👧",
    "🏳️‍🌈",
    "👍🏽",
    "✅",
    "—",
    "…",
    "“quoted”",
    "50%",
    "a|b",
    "2026-11-24",
    "v1.2.3",
    "sha256:9f86d081884c7d659a2feaa0c55ad015",
    "550e8400-e29b-41d4-a716-446655440000",
    "https://docs.rs/tokio",
    "http://example.com/page?x=1",
    "user@example.com",
    "note:",
    "error:",
    "warning",
    "TODO",
    "#",
    "##",
    "-",
    "*",
];

fn sentence() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..40).prop_map(|w| w.join(" "))
}

fn text_block() -> impl Strategy<Value = Value> {
    sentence().prop_map(|t| json!({"type": "text", "text": t}))
}

fn tool_result() -> impl Strategy<Value = Value> {
    (prop::collection::vec(text_block(), 1..4), any::<bool>(), sentence())
        .prop_map(|(content, is_error, s)| json!({"content": content, "isError": is_error, "structuredContent": {"summary": s, "count": 3}}))
}

fn tool_def() -> impl Strategy<Value = Value> {
    ("[a-z][a-z_]{2,12}", sentence(), sentence()).prop_map(|(name, d, pd)| {
        json!({"name": name, "description": d, "inputSchema": {"type": "object", "properties": {"path": {"type": "string", "description": pd}}, "required": ["path"]}})
    })
}

/// Built once: compiling every detector's patterns per case would dominate the run.
fn pipeline() -> &'static Pipeline {
    static PIPELINE: std::sync::OnceLock<Pipeline> = std::sync::OnceLock::new();
    PIPELINE.get_or_init(|| {
        watchdog::inspect::registry::pipeline_for(Policy::default(), Default::default())
    })
}

fn assert_passes(
    p: &Pipeline,
    direction: Direction,
    kind: Kind,
    method: &str,
    msg: &Value,
) -> Result<(), TestCaseError> {
    let raw = serde_json::to_vec(msg).unwrap();
    let id = Id("1".into());
    let meta = SubjectMeta {
        direction,
        server: "server",
        kind,
        method: Some(method),
        id: Some(&id),
    };
    let i = p.inspect(meta, &raw);
    prop_assert_eq!(
        &i.outcome,
        &Outcome::Pass,
        "changed: {}",
        String::from_utf8_lossy(&raw)
    );
    prop_assert!(
        i.alerts.is_empty(),
        "alerts {:?} on {}",
        i.alerts,
        String::from_utf8_lossy(&raw)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn benign_tool_results_pass_unchanged(result in tool_result()) {
        let p = pipeline();
        assert_passes(p, Direction::ServerToClient, Kind::Result, "tools/call", &json!({"jsonrpc": "2.0", "id": 1, "result": result}))?;
    }

    #[test]
    fn benign_tool_lists_pass_unchanged(tools in prop::collection::vec(tool_def(), 0..6)) {
        let p = pipeline();
        assert_passes(p, Direction::ServerToClient, Kind::Result, "tools/list", &json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}))?;
    }

    #[test]
    fn benign_requests_and_logs_pass_unchanged(q in sentence(), data in sentence()) {
        let p = pipeline();
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "arguments": {"query": q, "path": "src/lib.rs", "limit": 10}}});
        assert_passes(p, Direction::ClientToServer, Kind::Request, "tools/call", &call)?;
        let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": data}});
        assert_passes(p, Direction::ServerToClient, Kind::Notification, "notifications/message", &log)?;
    }
}
