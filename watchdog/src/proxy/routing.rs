//! Where a client request goes: one upstream (with its name un-namespaced), or every upstream.

use crate::config::NAME_SEPARATOR;
use crate::jsonrpc::error::code;
use crate::mcp::methods::*;
use crate::mcp::{list_method, ListMethod};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Which parameter carries the name or URI that picks the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameField {
    /// `params.name` (tools/call, prompts/get).
    Name,
    /// `params.ref.name` (completion for a prompt argument).
    RefName,
}

#[derive(Debug, PartialEq)]
pub enum Route {
    /// Send to one upstream; in gateway mode, with the server's own name put back.
    One {
        upstream: usize,
        rename: Option<(NameField, String)>,
    },
    /// Ask every upstream (or those a cursor names) and merge the answers.
    FanOut(FanOut),
    /// Answer the client with an error; nothing is sent upstream.
    Reject { code: i64, message: String },
}

#[derive(Debug, PartialEq)]
pub enum FanOut {
    Initialize,
    /// A paginated list; `cursors` holds each upstream's cursor when the client continues a listing.
    List {
        list: &'static ListMethod,
        cursors: Option<BTreeMap<usize, String>>,
    },
    /// Methods without a routing key: every upstream, first success answers.
    Broadcast,
}

/// Names and URIs the client has seen, learned from merged lists.
#[derive(Debug, Default)]
pub struct Directory {
    names: HashMap<(&'static str, String), (usize, String)>,
    resources: HashMap<String, usize>,
    /// URI template text before its first `{`, with the upstream that offers it.
    template_prefixes: Vec<(String, usize)>,
}

impl Directory {
    /// Remembers a name the client sees (`method` = the list it came from).
    pub fn learn_name(
        &mut self,
        list: &'static str,
        shown: String,
        upstream: usize,
        local: String,
    ) -> bool {
        match self.names.entry((list, shown)) {
            std::collections::hash_map::Entry::Occupied(e) => e.get().0 == upstream,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((upstream, local));
                true
            }
        }
    }

    pub fn learn_resource(&mut self, uri: String, upstream: usize) {
        self.resources.entry(uri).or_insert(upstream);
    }

    pub fn learn_template(&mut self, template: &str, upstream: usize) {
        let prefix = template.split('{').next().unwrap_or(template).to_string();
        if !self.template_prefixes.iter().any(|(p, _)| *p == prefix) {
            self.template_prefixes.push((prefix, upstream));
        }
    }

    fn resolve_name(
        &self,
        list: &'static str,
        shown: &str,
        prefixes: &[String],
    ) -> Option<(usize, String)> {
        if let Some(found) = self.names.get(&(list, shown.to_string())) {
            return Some(found.clone());
        }
        // Not listed yet: a client may call a name it knows; the prefix says where it goes.
        prefixes.iter().enumerate().find_map(|(i, p)| {
            let rest = shown
                .strip_prefix(p.as_str())?
                .strip_prefix(NAME_SEPARATOR)?;
            (!p.is_empty()).then(|| (i, rest.to_string()))
        })
    }

    fn resolve_uri(&self, uri: &str) -> Option<usize> {
        if let Some(u) = self.resources.get(uri) {
            return Some(*u);
        }
        self.template_prefixes
            .iter()
            .filter(|(p, _)| !p.is_empty() && uri.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, u)| *u)
    }
}

/// Decides the route of a client request. `prefixes[i]` is upstream i's namespace.
pub fn route(
    method: &str,
    params: Option<&Value>,
    prefixes: &[String],
    directory: &Directory,
) -> Route {
    // Wrap mode: one server whose names are not rewritten gets everything as it is.
    if prefixes.len() == 1 && prefixes[0].is_empty() {
        return Route::One {
            upstream: 0,
            rename: None,
        };
    }
    if method == INITIALIZE {
        return Route::FanOut(FanOut::Initialize);
    }
    if let Some(list) = list_method(method) {
        let cursor = params.and_then(|p| p.get("cursor")).and_then(Value::as_str);
        return match cursor.map(decode_cursor) {
            None => Route::FanOut(FanOut::List {
                list,
                cursors: None,
            }),
            Some(Some(cursors)) => Route::FanOut(FanOut::List {
                list,
                cursors: Some(cursors),
            }),
            Some(None) => reject(code::INVALID_PARAMS, "Invalid cursor"),
        };
    }
    let str_at = |path: &str| params.and_then(|p| p.pointer(path)).and_then(Value::as_str);
    match method {
        TOOLS_CALL | PROMPTS_GET => {
            let list = if method == TOOLS_CALL {
                TOOLS_LIST
            } else {
                PROMPTS_LIST
            };
            let Some(shown) = str_at("/name") else {
                return reject(code::INVALID_PARAMS, "Missing name");
            };
            match directory.resolve_name(list, shown, prefixes) {
                Some((upstream, local)) => Route::One {
                    upstream,
                    rename: Some((NameField::Name, local)),
                },
                None => reject(
                    code::INVALID_PARAMS,
                    &format!(
                        "Unknown {}: {shown}",
                        if method == TOOLS_CALL {
                            "tool"
                        } else {
                            "prompt"
                        }
                    ),
                ),
            }
        }
        RESOURCES_READ | RESOURCES_SUBSCRIBE | RESOURCES_UNSUBSCRIBE => match str_at("/uri") {
            Some(uri) => uri_route(uri, directory),
            None => reject(code::INVALID_PARAMS, "Missing uri"),
        },
        COMPLETE => match str_at("/ref/type") {
            Some("ref/prompt") => match str_at("/ref/name")
                .and_then(|n| directory.resolve_name(PROMPTS_LIST, n, prefixes))
            {
                Some((upstream, local)) => Route::One {
                    upstream,
                    rename: Some((NameField::RefName, local)),
                },
                None => reject(code::INVALID_PARAMS, "Unknown prompt"),
            },
            Some("ref/resource") => match str_at("/ref/uri") {
                Some(uri) => uri_route(uri, directory),
                None => reject(code::INVALID_PARAMS, "Missing uri"),
            },
            _ => reject(code::INVALID_PARAMS, "Unknown completion reference"),
        },
        _ => Route::FanOut(FanOut::Broadcast),
    }
}

fn uri_route(uri: &str, directory: &Directory) -> Route {
    match directory.resolve_uri(uri) {
        Some(upstream) => Route::One {
            upstream,
            rename: None,
        },
        None => reject(code::INVALID_PARAMS, &format!("Unknown resource: {uri}")),
    }
}

fn reject(code: i64, message: &str) -> Route {
    Route::Reject {
        code,
        message: message.to_string(),
    }
}

const CURSOR_TAG: &str = "mcp-watchdog.";

/// The gateway's own cursor: which upstreams have more, and their cursors.
pub fn encode_cursor(cursors: &BTreeMap<usize, String>) -> String {
    let json = serde_json::to_vec(cursors).expect("map serializes");
    format!("{CURSOR_TAG}{}", URL_SAFE_NO_PAD.encode(json))
}

pub fn decode_cursor(cursor: &str) -> Option<BTreeMap<usize, String>> {
    let body = cursor.strip_prefix(CURSOR_TAG)?;
    let json = URL_SAFE_NO_PAD.decode(body).ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prefixes() -> Vec<String> {
        vec!["fs".into(), "git".into()]
    }

    #[test]
    fn wrap_mode_sends_everything_to_the_one_server_unchanged() {
        let r = route(
            TOOLS_CALL,
            Some(&json!({"name": "x"})),
            &["".into()],
            &Directory::default(),
        );
        assert_eq!(
            r,
            Route::One {
                upstream: 0,
                rename: None
            }
        );
        let r = route(INITIALIZE, None, &["".into()], &Directory::default());
        assert_eq!(
            r,
            Route::One {
                upstream: 0,
                rename: None
            }
        );
    }

    #[test]
    fn gateway_routes_by_prefix_and_learned_names() {
        let mut d = Directory::default();
        let r = route(
            TOOLS_CALL,
            Some(&json!({"name": "git__log"})),
            &prefixes(),
            &d,
        );
        assert_eq!(
            r,
            Route::One {
                upstream: 1,
                rename: Some((NameField::Name, "log".into()))
            }
        );
        assert!(matches!(
            route(TOOLS_CALL, Some(&json!({"name": "log"})), &prefixes(), &d),
            Route::Reject { .. }
        ));
        assert!(d.learn_name(TOOLS_LIST, "log".into(), 0, "log".into()));
        assert!(
            !d.learn_name(TOOLS_LIST, "log".into(), 1, "log".into()),
            "second owner of a name is refused"
        );
        assert_eq!(
            route(TOOLS_CALL, Some(&json!({"name": "log"})), &prefixes(), &d),
            Route::One {
                upstream: 0,
                rename: Some((NameField::Name, "log".into()))
            }
        );
        let r = route(
            COMPLETE,
            Some(&json!({"ref": {"type": "ref/prompt", "name": "fs__p"}})),
            &prefixes(),
            &d,
        );
        assert_eq!(
            r,
            Route::One {
                upstream: 0,
                rename: Some((NameField::RefName, "p".into()))
            }
        );
    }

    #[test]
    fn resources_route_by_uri_and_template_prefix() {
        let mut d = Directory::default();
        d.learn_resource("file:///a".into(), 1);
        d.learn_template("repo://{owner}/{name}", 0);
        assert_eq!(
            route(
                RESOURCES_READ,
                Some(&json!({"uri": "file:///a"})),
                &prefixes(),
                &d
            ),
            Route::One {
                upstream: 1,
                rename: None
            }
        );
        assert_eq!(
            route(
                RESOURCES_READ,
                Some(&json!({"uri": "repo://x/y"})),
                &prefixes(),
                &d
            ),
            Route::One {
                upstream: 0,
                rename: None
            }
        );
        assert!(matches!(
            route(
                RESOURCES_READ,
                Some(&json!({"uri": "other://"})),
                &prefixes(),
                &d
            ),
            Route::Reject { .. }
        ));
    }

    #[test]
    fn lists_fan_out_and_cursors_round_trip() {
        let d = Directory::default();
        assert_eq!(
            route(TOOLS_LIST, None, &prefixes(), &d),
            Route::FanOut(FanOut::List {
                list: &crate::mcp::LIST_METHODS[0],
                cursors: None
            })
        );
        let mut c = BTreeMap::new();
        c.insert(1, "page-2".to_string());
        let token = encode_cursor(&c);
        match route(TOOLS_LIST, Some(&json!({"cursor": token})), &prefixes(), &d) {
            Route::FanOut(FanOut::List {
                cursors: Some(got), ..
            }) => assert_eq!(got, c),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            route(
                TOOLS_LIST,
                Some(&json!({"cursor": "forged"})),
                &prefixes(),
                &d
            ),
            Route::Reject { .. }
        ));
        assert_eq!(
            route(PING, None, &prefixes(), &d),
            Route::FanOut(FanOut::Broadcast)
        );
    }
}
