//! Merging the answers of several upstreams into the one answer the client sees (gateway mode).

use super::routing::{encode_cursor, Directory};
use crate::config::NAME_SEPARATOR;
use crate::mcp::ListMethod;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One upstream's answer to a fanned-out request.
#[derive(Debug, Clone)]
pub enum PartAnswer {
    Result(Value),
    Error(Value),
    /// The upstream went away before answering.
    Gone,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub upstream: usize,
    pub answer: PartAnswer,
}

/// What the client gets back.
#[derive(Debug, PartialEq)]
pub enum Merged {
    Result(Value),
    Error(Value),
}

/// An error object for when no upstream could answer.
pub fn no_upstream_error(parts: &[Part]) -> Merged {
    let first_error = parts.iter().find_map(|p| match &p.answer {
        PartAnswer::Error(e) => Some(e.clone()),
        _ => None,
    });
    Merged::Error(first_error.unwrap_or_else(|| {
        json!({"code": crate::jsonrpc::error::code::UPSTREAM_UNAVAILABLE, "message": "No upstream server could answer"})
    }))
}

fn results(parts: &[Part]) -> impl Iterator<Item = (usize, &Value)> {
    parts.iter().filter_map(|p| match &p.answer {
        PartAnswer::Result(v) => Some((p.upstream, v)),
        _ => None,
    })
}

/// `initialize`: one server made of all of them.
pub fn merge_initialize(
    parts: &[Part],
    names: &[String],
    requested_version: Option<&str>,
) -> Merged {
    let answered: Vec<(usize, &Value)> = results(parts).collect();
    if answered.is_empty() {
        return no_upstream_error(parts);
    }
    let versions: Vec<&str> = answered
        .iter()
        .filter_map(|(_, r)| r.get("protocolVersion")?.as_str())
        .collect();
    // Every upstream must speak the version announced: the oldest one answered is safe for all.
    let version = match requested_version {
        Some(v) if versions.iter().all(|x| *x == v) => v.to_string(),
        _ => versions
            .iter()
            .min()
            .map(|v| v.to_string())
            .unwrap_or_default(),
    };
    let mut capabilities = Map::new();
    for (_, r) in &answered {
        if let Some(Value::Object(caps)) = r.get("capabilities") {
            union_into(&mut capabilities, caps);
        }
    }
    let instructions: Vec<String> = answered
        .iter()
        .filter_map(|(u, r)| {
            Some(format!(
                "[{}] {}",
                names[*u],
                r.get("instructions")?.as_str()?
            ))
        })
        .collect();
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": capabilities,
        "serverInfo": {"name": "mcp-watchdog", "version": env!("CARGO_PKG_VERSION")},
    });
    if !instructions.is_empty() {
        result["instructions"] = instructions.join("\n\n").into();
    }
    Merged::Result(result)
}

/// Union of capability objects: nested objects merged, flags true if any upstream has them.
fn union_into(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => union_into(a, b),
            (Some(Value::Bool(a)), Value::Bool(b)) => *a |= *b,
            (Some(_), _) => {}
            (None, v) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// A paginated list: items of every upstream, names namespaced, one cursor for what remains.
/// Names the client sees are recorded in `directory` so later calls route back.
pub fn merge_list(
    list: &'static ListMethod,
    parts: &[Part],
    prefixes: &[String],
    directory: &mut Directory,
) -> (Merged, Vec<String>) {
    let mut items = Vec::new();
    let mut next = BTreeMap::new();
    let mut duplicates = Vec::new();
    let answered: Vec<(usize, &Value)> = results(parts).collect();
    if answered.is_empty() {
        return (no_upstream_error(parts), duplicates);
    }
    for (upstream, result) in answered {
        if let Some(c) = result.get("nextCursor").and_then(Value::as_str) {
            next.insert(upstream, c.to_string());
        }
        let Some(Value::Array(list_items)) = result.get(list.items) else {
            continue;
        };
        for item in list_items {
            let mut item = item.clone();
            if let Some(field) = list.name_field {
                let Some(local) = item.get(field).and_then(Value::as_str).map(str::to_owned) else {
                    continue;
                };
                let shown = if prefixes[upstream].is_empty() {
                    local.clone()
                } else {
                    format!("{}{NAME_SEPARATOR}{local}", prefixes[upstream])
                };
                if !directory.learn_name(list.method, shown.clone(), upstream, local) {
                    duplicates.push(shown);
                    continue;
                }
                item[field] = Value::String(shown);
            } else if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                directory.learn_resource(uri.to_string(), upstream);
            } else if let Some(t) = item.get("uriTemplate").and_then(Value::as_str) {
                directory.learn_template(t, upstream);
            }
            items.push(item);
        }
    }
    let mut result = Map::new();
    result.insert(list.items.to_string(), Value::Array(items));
    if !next.is_empty() {
        result.insert("nextCursor".into(), Value::String(encode_cursor(&next)));
    }
    (Merged::Result(Value::Object(result)), duplicates)
}

/// Methods without a routing key: the first upstream that succeeded answers.
pub fn merge_broadcast(parts: &[Part]) -> Merged {
    match results(parts).next() {
        Some((_, r)) => Merged::Result(r.clone()),
        None => no_upstream_error(parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::LIST_METHODS;
    use crate::proxy::routing::decode_cursor;

    fn ok(upstream: usize, v: Value) -> Part {
        Part {
            upstream,
            answer: PartAnswer::Result(v),
        }
    }

    #[test]
    fn initialize_merges_capabilities_and_keeps_a_common_version() {
        let parts = vec![
            ok(
                0,
                json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": false}}, "instructions": "Use A"}),
            ),
            ok(
                1,
                json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {"listChanged": true}, "prompts": {}}}),
            ),
            Part {
                upstream: 2,
                answer: PartAnswer::Gone,
            },
        ];
        let names = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let Merged::Result(r) = merge_initialize(&parts, &names, Some("2025-11-25")) else {
            panic!()
        };
        assert_eq!(r["protocolVersion"], "2025-06-18");
        assert_eq!(r["capabilities"]["tools"]["listChanged"], true);
        assert!(r["capabilities"]["prompts"].is_object());
        assert_eq!(r["serverInfo"]["name"], "mcp-watchdog");
        assert_eq!(r["instructions"], "[a] Use A");
        assert!(matches!(
            merge_initialize(&parts[2..], &names, None),
            Merged::Error(_)
        ));
    }

    #[test]
    fn lists_are_namespaced_and_paginated_across_upstreams() {
        let mut d = Directory::default();
        let parts = vec![
            ok(
                0,
                json!({"tools": [{"name": "read", "description": "r"}], "nextCursor": "p2"}),
            ),
            ok(1, json!({"tools": [{"name": "read"}]})),
        ];
        let prefixes = vec!["fs".to_string(), "git".to_string()];
        let (Merged::Result(r), dups) = merge_list(&LIST_METHODS[0], &parts, &prefixes, &mut d)
        else {
            panic!()
        };
        assert!(dups.is_empty());
        let names: Vec<&str> = r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["fs__read", "git__read"]);
        assert_eq!(r["tools"][0]["description"], "r");
        let cursors = decode_cursor(r["nextCursor"].as_str().unwrap()).unwrap();
        assert_eq!(
            cursors.into_iter().collect::<Vec<_>>(),
            vec![(0, "p2".to_string())]
        );
    }

    #[test]
    fn unprefixed_duplicates_keep_the_first_server() {
        let mut d = Directory::default();
        let parts = vec![
            ok(0, json!({"tools": [{"name": "read"}]})),
            ok(1, json!({"tools": [{"name": "read"}]})),
        ];
        let (Merged::Result(r), dups) =
            merge_list(&LIST_METHODS[0], &parts, &["".into(), "".into()], &mut d)
        else {
            panic!()
        };
        assert_eq!(r["tools"].as_array().unwrap().len(), 1);
        assert_eq!(dups, vec!["read".to_string()]);
    }
}
