//! Where text hides in MCP messages, and how each place is judged.

use crate::alert::Direction;
use crate::inspect::SubjectMeta;
use crate::jsonrpc::Kind;
use crate::mcp::methods::*;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Tool, resource and prompt definitions, schemas, server instructions, elicitation forms,
    /// sampling system prompts: no legitimate need for hidden content.
    Metadata,
    /// What the model reads as data: tool results, file contents, fetched pages, logs, prompt
    /// messages, errors. Ordinary HTML comments, emoji and non-Latin text live here.
    Content,
    /// What the client sends to a server: tool arguments, URIs, prompt arguments, completion values,
    /// answers to server requests.
    Argument,
}

/// One string's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub role: Role,
    /// JSON pointer from the message root (`/result/tools/0/description`).
    pub pointer: String,
    /// The object key the string is the value of (or, when `is_key`, the key itself).
    pub key: Option<String>,
    /// The string is an object key (a schema property name), not a value.
    pub is_key: bool,
    /// For `tools/call` arguments: the tool's (server-local) name.
    pub tool: Option<String>,
}

/// Calls `f` for every string of `message` that can carry words to a model or a server, with its
/// site. Binary payloads (image/audio `data`, `blob`) and protocol fields (`type`, `mimeType`,
/// `jsonrpc`, ids, cursors, progress tokens) are skipped.
pub fn visit_texts(message: &Value, meta: &SubjectMeta<'_>, f: &mut dyn FnMut(&Site, &str)) {
    let method = meta.method.unwrap_or_default();
    let regions: Vec<(&str, Role)> = match (meta.direction, meta.kind) {
        (Direction::ClientToServer, Kind::Request) => match method {
            TOOLS_CALL | PROMPTS_GET => vec![("/params/arguments", Role::Argument)],
            RESOURCES_READ | RESOURCES_SUBSCRIBE | RESOURCES_UNSUBSCRIBE => {
                vec![("/params/uri", Role::Argument)]
            }
            COMPLETE => vec![
                ("/params/argument", Role::Argument),
                ("/params/context", Role::Argument),
            ],
            _ => vec![("/params", Role::Argument)],
        },
        (Direction::ClientToServer, Kind::Result) => vec![("/result", Role::Argument)],
        (Direction::ClientToServer, _) => vec![],
        (Direction::ServerToClient, Kind::Result) => match method {
            INITIALIZE | TOOLS_LIST | PROMPTS_LIST | RESOURCES_LIST | RESOURCE_TEMPLATES_LIST => {
                vec![("/result", Role::Metadata)]
            }
            PROMPTS_GET => vec![
                ("/result/description", Role::Metadata),
                ("/result/messages", Role::Content),
            ],
            _ => vec![("/result", Role::Content)],
        },
        (Direction::ServerToClient, Kind::Error) => vec![("/error", Role::Content)],
        (Direction::ServerToClient, Kind::Request) => match method {
            "sampling/createMessage" => vec![
                ("/params/systemPrompt", Role::Metadata),
                ("/params/messages", Role::Content),
            ],
            "elicitation/create" => vec![("/params", Role::Metadata)],
            _ => vec![("/params", Role::Content)],
        },
        (Direction::ServerToClient, Kind::Notification) => vec![("/params", Role::Content)],
    };
    let tool = (meta.direction == Direction::ClientToServer && method == TOOLS_CALL)
        .then(|| {
            message
                .pointer("/params/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .flatten();
    for (pointer, role) in regions {
        if let Some(v) = message.pointer(pointer) {
            let key = pointer.rsplit('/').next().map(str::to_owned);
            walk(v, role, &mut pointer.to_string(), key, tool.as_deref(), f);
        }
    }
}

/// Keys whose values are protocol plumbing or binary, never text for a model.
fn skipped(key: &str, parent: &serde_json::Map<String, Value>) -> bool {
    match key {
        "type" | "mimeType" | "jsonrpc" | "blob" | "progressToken" | "nextCursor" | "cursor"
        | "protocolVersion" => true,
        "data" => matches!(
            parent.get("type").and_then(Value::as_str),
            Some("image" | "audio")
        ),
        _ => false,
    }
}

fn walk(
    v: &Value,
    role: Role,
    pointer: &mut String,
    key: Option<String>,
    tool: Option<&str>,
    f: &mut dyn FnMut(&Site, &str),
) {
    match v {
        Value::String(s) => f(
            &Site {
                role,
                pointer: pointer.clone(),
                key,
                is_key: false,
                tool: tool.map(str::to_owned),
            },
            s,
        ),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, role, pointer, key.clone(), tool, f);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                if skipped(k, map) {
                    continue;
                }
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                // Property names in definitions are text a model reads too.
                if role == Role::Metadata {
                    f(
                        &Site {
                            role,
                            pointer: pointer.clone(),
                            key: Some(k.clone()),
                            is_key: true,
                            tool: tool.map(str::to_owned),
                        },
                        k,
                    );
                }
                walk(item, role, pointer, Some(k.clone()), tool, f);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::Id;
    use serde_json::json;

    fn collect(msg: Value, direction: Direction, kind: Kind, method: &str) -> Vec<(Site, String)> {
        let id = Id("1".into());
        let meta = SubjectMeta::for_test(direction, kind, method, &id);
        let mut out = Vec::new();
        visit_texts(&msg, &meta, &mut |site, s| {
            out.push((site.clone(), s.to_string()))
        });
        out
    }

    #[test]
    fn tool_lists_are_metadata_at_every_depth() {
        let msg = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "t", "description": "d",
            "inputSchema": {"type": "object", "properties": {"p": {"type": "string", "description": "pd", "enum": ["e1"]}}}}]}});
        let got = collect(msg, Direction::ServerToClient, Kind::Result, TOOLS_LIST);
        let texts: Vec<&str> = got.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            texts,
            [
                "tools",
                "name",
                "t",
                "description",
                "d",
                "inputSchema",
                "properties",
                "p",
                "description",
                "pd",
                "enum",
                "e1"
            ]
        );
        assert!(got.iter().all(|(s, _)| s.role == Role::Metadata));
        assert_eq!(
            got[9].0.pointer,
            "/result/tools/0/inputSchema/properties/p/description"
        );
        assert!(got[7].0.is_key && !got[9].0.is_key);
    }

    #[test]
    fn results_are_content_and_binary_is_skipped() {
        let msg = json!({"result": {"content": [{"type": "text", "text": "hello"}, {"type": "image", "data": "iVBOR", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "file body", "blob": "AAAA"}}], "structuredContent": {"k": "v"}}});
        let got = collect(msg, Direction::ServerToClient, Kind::Result, TOOLS_CALL);
        let texts: Vec<&str> = got.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(texts, ["hello", "file:///a", "file body", "v"]);
        assert!(got.iter().all(|(s, _)| s.role == Role::Content));
    }

    #[test]
    fn tool_arguments_carry_their_key_and_tool() {
        let msg = json!({"params": {"name": "fetch", "arguments": {"url": "http://x", "opts": {"headers": ["a"]}}}});
        let got = collect(msg, Direction::ClientToServer, Kind::Request, TOOLS_CALL);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (
                got[0].0.key.as_deref(),
                got[0].0.tool.as_deref(),
                got[0].0.role
            ),
            (Some("url"), Some("fetch"), Role::Argument)
        );
        assert_eq!(got[1].0.key.as_deref(), Some("headers"));
    }
}
