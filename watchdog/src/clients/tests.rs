//! Install and uninstall on copies of real-format configs of every client: the wrap is what the
//! client should run, uninstall gives back the original bytes, and install is idempotent.

use crate::clients::config_file::find_tables;
use crate::clients::entry::{classify, Entry};
use crate::clients::jsonc::{self, Node, NodeKind};
use crate::clients::report::Status;
use crate::clients::{install, uninstall, Client, ConfigFile, Locations};
use serde_json::{json, Value};

const WATCHDOG: &str = "/opt/mcp watchdog/bin/mcp-watchdog";

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../tests/fixtures/clients/", $name)),
        )
    };
}

/// Each fixture with the client file whose layout it has.
fn fixtures() -> Vec<(&'static str, &'static str, ConfigFile)> {
    let at = Locations::under("/home/me", "/home/me/src/app");
    let file = |client: Client, index: usize| client.config_files(&at).swap_remove(index);
    [
        (
            fixture!("claude_desktop_config.json"),
            file(Client::ClaudeDesktop, 0),
        ),
        (fixture!("claude.json"), file(Client::ClaudeCode, 0)),
        (
            fixture!("claude-code-project-mcp.json"),
            file(Client::ClaudeCode, 1),
        ),
        (fixture!("cursor-mcp.json"), file(Client::Cursor, 0)),
        (
            fixture!("windsurf-mcp_config.json"),
            file(Client::Windsurf, 0),
        ),
        (fixture!("vscode-mcp.json"), file(Client::Vscode, 0)),
        (fixture!("vscode-settings.json"), file(Client::Vscode, 1)),
        (
            fixture!("vscode-workspace-crlf.json"),
            file(Client::Vscode, 2),
        ),
    ]
    .into_iter()
    .map(|((name, text), file)| (name, text, file))
    .collect()
}

/// The document as a `serde_json::Value` (comments dropped), to compare meaning, not bytes.
fn to_value(text: &str, node: &Node) -> Value {
    match &node.kind {
        NodeKind::Object(members) => Value::Object(
            members
                .iter()
                .map(|m| (m.key.clone(), to_value(text, &m.value)))
                .collect(),
        ),
        NodeKind::Array(items) => Value::Array(items.iter().map(|i| to_value(text, i)).collect()),
        NodeKind::String(s) => Value::from(s.as_str()),
        NodeKind::Number => serde_json::from_str(&text[node.span.clone()]).unwrap(),
        NodeKind::Bool(b) => Value::from(*b),
        NodeKind::Null => Value::Null,
    }
}

/// The server entries of every table, by name, as values.
fn entries(text: &str, file: &ConfigFile) -> Vec<(String, Value, bool)> {
    let root = jsonc::parse(text, file.comments).unwrap();
    let mut out = Vec::new();
    for table in find_tables(text, &root, file.tables).unwrap() {
        let NodeKind::Object(members) = &table.node.kind else {
            panic!()
        };
        for m in members {
            let stdio = matches!(classify(&m.value), Entry::Stdio(_));
            out.push((m.key.clone(), to_value(text, &m.value), stdio));
        }
    }
    out
}

/// What a wrapped entry must be: command → the watchdog, args → `--`, command, args; every other
/// key kept, in order.
fn expected_wrap(original: &Value) -> Value {
    let Value::Object(map) = original else {
        panic!()
    };
    let mut args = vec![json!("--"), map["command"].clone()];
    if let Some(Value::Array(old)) = map.get("args") {
        args.extend(old.iter().cloned());
    }
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        match key.as_str() {
            "command" => {
                out.insert(key.clone(), json!(WATCHDOG));
                if !map.contains_key("args") {
                    out.insert("args".into(), Value::Array(args.clone()));
                }
            }
            "args" => {
                out.insert(key.clone(), Value::Array(args.clone()));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[test]
fn every_client_round_trips_to_the_same_bytes() {
    for (name, original, file) in fixtures() {
        let wrapped = install::plan(original, &file, WATCHDOG)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .new_text;
        assert_ne!(wrapped, original, "{name}: nothing was wrapped");
        let restored = uninstall::plan(&wrapped, &file).unwrap().new_text;
        assert_eq!(restored, original, "{name}: uninstall is not exact");
    }
}

#[test]
fn wrapped_entries_run_the_original_command_behind_the_watchdog() {
    for (name, original, file) in fixtures() {
        let wrapped = install::plan(original, &file, WATCHDOG).unwrap().new_text;
        let before = entries(original, &file);
        let after = entries(&wrapped, &file);
        assert_eq!(before.len(), after.len(), "{name}");
        for ((key, old, was_stdio), (key_after, new, still_stdio)) in before.iter().zip(&after) {
            assert_eq!(key, key_after, "{name}: order of servers changed");
            assert!(!still_stdio, "{name}: {key} is still unwrapped");
            if *was_stdio {
                assert_eq!(new, &expected_wrap(old), "{name}: {key}");
                let keys_old: Vec<_> = old.as_object().unwrap().keys().collect();
                let keys_new: Vec<_> = new.as_object().unwrap().keys().collect();
                let kept: Vec<_> = keys_new.iter().filter(|k| keys_old.contains(k)).collect();
                assert_eq!(kept.len(), keys_old.len(), "{name}: {key} lost a key");
                assert!(
                    kept.iter().zip(&keys_old).all(|(a, b)| **a == *b),
                    "{name}: {key}"
                );
            } else {
                assert_eq!(
                    new, old,
                    "{name}: {key} is not stdio and must stay as it was"
                );
            }
        }
        // Outside the server entries, nothing moved.
        let root_before = to_value(original, &jsonc::parse(original, true).unwrap());
        let root_after = to_value(&wrapped, &jsonc::parse(&wrapped, true).unwrap());
        let strip = |mut v: Value| {
            for key in ["mcpServers", "servers", "mcp", "projects"] {
                v.as_object_mut().unwrap().remove(key);
            }
            v
        };
        assert_eq!(strip(root_before), strip(root_after), "{name}");
    }
}

#[test]
fn strict_json_stays_strict_json() {
    for (name, original, file) in fixtures().into_iter().filter(|(_, _, f)| !f.comments) {
        let wrapped = install::plan(original, &file, WATCHDOG).unwrap().new_text;
        serde_json::from_str::<Value>(&wrapped).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn install_twice_is_install_once_and_uninstall_of_the_original_changes_nothing() {
    for (name, original, file) in fixtures() {
        let once = install::plan(original, &file, WATCHDOG).unwrap();
        let twice = install::plan(&once.new_text, &file, WATCHDOG).unwrap();
        assert_eq!(twice.new_text, once.new_text, "{name}");
        assert!(
            twice.rows.iter().all(|r| r.status != Status::Wrapped),
            "{name}"
        );
        let nothing = uninstall::plan(original, &file).unwrap();
        assert_eq!(nothing.new_text, original, "{name}");
    }
}

#[test]
fn rows_say_what_happened_to_each_server() {
    let (_, text, file) = fixtures().swap_remove(1); // ~/.claude.json
    let rows = install::plan(text, &file, WATCHDOG).unwrap().rows;
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r.server.as_str(), r.status.label()))
        .collect();
    assert_eq!(
        summary,
        [
            ("mcpServers › everything", "wrapped"),
            ("mcpServers › sentry", "not yet covered"),
            ("mcpServers › linear", "not yet covered"),
            (
                "projects[\"/home/me/src/app\"].mcpServers › playwright",
                "wrapped"
            ),
            (
                "projects[\"/home/me/src/app\"].mcpServers › sqlite",
                "wrapped"
            ),
        ]
    );
    assert_eq!(
        rows[1].detail,
        "http https://mcp.sentry.dev/mcp (HTTP/SSE servers are not proxied yet)"
    );
}

#[test]
fn risky_arguments_are_noted_and_still_wrapped_one_by_one() {
    let (_, text, file) = fixtures().swap_remove(3); // cursor
    let plan = install::plan(text, &file, WATCHDOG).unwrap();
    let echo = plan.rows.iter().find(|r| r.server == "echo").unwrap();
    assert_eq!(echo.status, Status::Wrapped);
    assert_eq!(echo.notes.len(), 1, "{:?}", echo.notes);
    assert!(
        echo.notes[0].starts_with("argument 4 ('hello world; rm -rf ~')"),
        "{:?}",
        echo.notes
    );
    assert!(plan.new_text.contains(
        r#"{"command": "/opt/mcp watchdog/bin/mcp-watchdog", "args": ["--", "python3", "-m", "echo_server", "--greeting", "hello world; rm -rf ~"]}"#
    ));
    let git = plan.rows.iter().find(|r| r.server == "git").unwrap();
    assert!(git.notes.is_empty(), "{:?}", git.notes);
}

#[test]
fn layouts_of_the_wrap_follow_the_file() {
    let file = ConfigFile::any_layout("x.json".into());
    let cases = [
        // no args: a member after command, same indentation
        (
            "{\"mcpServers\": {\"a\": {\n    \"command\": \"x\"\n  }}}",
            "{\"mcpServers\": {\"a\": {\n    \"command\": \"/w/mcp-watchdog\",\n    \"args\": [\"--\", \"x\"]\n  }}}",
        ),
        // empty args: filled in place
        (
            "{\"mcpServers\": {\"a\": {\"command\": \"x\", \"args\": []}}}",
            "{\"mcpServers\": {\"a\": {\"command\": \"/w/mcp-watchdog\", \"args\": [\"--\",\"x\"]}}}",
        ),
        // one element on its own line
        (
            "{\"servers\": {\"a\": {\"command\": \"x\", \"args\": [\n  \"y\"\n]}}}",
            "{\"servers\": {\"a\": {\"command\": \"/w/mcp-watchdog\", \"args\": [\n  \"--\",\n  \"x\",\n  \"y\"\n]}}}",
        ),
        // escapes in the command are carried verbatim
        (
            "{\"mcpServers\": {\"a\": {\"command\": \"caf\\u00e9\", \"args\": [\"1\",\"2\"]}}}",
            "{\"mcpServers\": {\"a\": {\"command\": \"/w/mcp-watchdog\", \"args\": [\"--\",\"caf\\u00e9\",\"1\",\"2\"]}}}",
        ),
    ];
    for (before, after) in cases {
        let plan = install::plan(before, &file, "/w/mcp-watchdog").unwrap();
        assert_eq!(plan.new_text, after);
        assert_eq!(uninstall::plan(after, &file).unwrap().new_text, before);
    }
}

#[test]
fn watchdog_flags_before_the_separator_are_dropped_on_uninstall() {
    let file = ConfigFile::any_layout("x.json".into());
    let wrapped = r#"{"mcpServers": {"a": {"command": "/usr/local/bin/mcp-watchdog", "args": ["--monitor", "--config", "w.toml", "--", "npx", "-y", "pkg"], "env": {}}}}"#;
    let restored = uninstall::plan(wrapped, &file).unwrap();
    assert_eq!(
        restored.new_text,
        r#"{"mcpServers": {"a": {"command": "npx", "args": ["-y", "pkg"], "env": {}}}}"#
    );
    assert_eq!(restored.rows[0].detail, "npx -y pkg");
}

#[test]
fn a_gateway_entry_is_left_alone_by_both() {
    let file = ConfigFile::any_layout("x.json".into());
    let text = r#"{"mcpServers": {"all": {"command": "/usr/local/bin/mcp-watchdog", "args": ["--config", "/etc/w.toml"]}}}"#;
    let install = install::plan(text, &file, WATCHDOG).unwrap();
    assert_eq!(install.new_text, text);
    assert_eq!(install.rows[0].status, Status::AlreadyWrapped);
    let uninstall = uninstall::plan(text, &file).unwrap();
    assert_eq!(uninstall.new_text, text);
    assert_eq!(uninstall.rows[0].status, Status::LeftAlone);
}

#[test]
fn entries_it_cannot_understand_are_left_alone_with_the_reason() {
    let file = ConfigFile::any_layout("x.json".into());
    let text = r#"{"mcpServers": {"a": {"command": ["x"]}, "b": {"command": "x", "args": "y"}, "c": 3, "d": {"type": "ws", "command": "x"}, "e": {}}}"#;
    let plan = install::plan(text, &file, WATCHDOG).unwrap();
    assert_eq!(plan.new_text, text);
    let reasons: Vec<_> = plan
        .rows
        .iter()
        .map(|r| (r.status, r.detail.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (Status::LeftAlone, "`command` is an array, not a string"),
            (Status::LeftAlone, "`args` is not an array of strings"),
            (Status::LeftAlone, "the entry is a number, not an object"),
            (Status::LeftAlone, "transport type `ws` is not known"),
            (Status::LeftAlone, "no `command`"),
        ]
    );
}

#[test]
fn malformed_configs_are_refused_with_line_and_column() {
    let file = ConfigFile::any_layout("x.json".into());
    let err = install::plan(
        "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n}",
        &file,
        WATCHDOG,
    );
    // `any_layout` reads JSONC, where the trailing comma is fine; a client's strict file is not.
    assert!(err.is_ok());
    let strict = Client::Cursor.config_files(&Locations::under("/h", "/h"))[0].clone();
    let err = install::plan(
        "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",}\n  }\n}",
        &strict,
        WATCHDOG,
    )
    .unwrap_err();
    assert_eq!(
        err,
        "line 3, column 26: expected a key in double quotes, found `}`"
    );
    let err = install::plan("{\"mcpServers\": [1]}", &strict, WATCHDOG).unwrap_err();
    assert_eq!(
        err,
        "line 1, column 16: expected mcpServers to be an object, found an array"
    );
}

#[test]
fn vscode_variables_raise_no_quoting_note() {
    let (_, text, file) = fixtures().swap_remove(5); // VS Code mcp.json
    let rows = install::plan(text, &file, WATCHDOG).unwrap().rows;
    let local = rows.iter().find(|r| r.server == "local").unwrap();
    assert_eq!(local.status, Status::Wrapped);
    assert!(local.notes.is_empty(), "{:?}", local.notes);
}
