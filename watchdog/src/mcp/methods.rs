//! MCP method names and what the gateway needs to know about each (spec revisions 2025-11-25 and
//! 2026-07-28 use the same names for everything here).

use std::sync::{Arc, OnceLock};

pub const INITIALIZE: &str = "initialize";
pub const INITIALIZED: &str = "notifications/initialized";
pub const PING: &str = "ping";
pub const CANCELLED: &str = "notifications/cancelled";
pub const TOOLS_LIST: &str = "tools/list";
pub const TOOLS_CALL: &str = "tools/call";
pub const PROMPTS_LIST: &str = "prompts/list";
pub const PROMPTS_GET: &str = "prompts/get";
pub const RESOURCES_LIST: &str = "resources/list";
pub const RESOURCE_TEMPLATES_LIST: &str = "resources/templates/list";
pub const RESOURCES_READ: &str = "resources/read";
pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
pub const COMPLETE: &str = "completion/complete";
pub const SET_LEVEL: &str = "logging/setLevel";

/// Methods most messages carry, each allocated once: a name is held per request in flight and
/// per observation, and freeing it is best left to no one.
const COMMON: [&str; 24] = [
    INITIALIZE,
    INITIALIZED,
    PING,
    CANCELLED,
    TOOLS_LIST,
    TOOLS_CALL,
    PROMPTS_LIST,
    PROMPTS_GET,
    RESOURCES_LIST,
    RESOURCE_TEMPLATES_LIST,
    RESOURCES_READ,
    RESOURCES_SUBSCRIBE,
    RESOURCES_UNSUBSCRIBE,
    COMPLETE,
    SET_LEVEL,
    "notifications/progress",
    "notifications/message",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
    "notifications/resources/updated",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
];

/// `method` as a shared name: the one kept for a common method, a new one otherwise.
pub fn shared_name(method: &str) -> Arc<str> {
    static NAMES: OnceLock<Vec<Arc<str>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| COMMON.iter().map(|&m| Arc::from(m)).collect());
    match COMMON.iter().position(|&m| m == method) {
        Some(i) => names[i].clone(),
        None => Arc::from(method),
    }
}

/// A paginated list method whose results the gateway merges across servers.
#[derive(Debug, PartialEq, Eq)]
pub struct ListMethod {
    pub method: &'static str,
    /// The result's array of items.
    pub items: &'static str,
    /// The item field the gateway namespaces with the server's prefix, if any.
    pub name_field: Option<&'static str>,
}

pub static LIST_METHODS: [ListMethod; 4] = [
    ListMethod {
        method: TOOLS_LIST,
        items: "tools",
        name_field: Some("name"),
    },
    ListMethod {
        method: PROMPTS_LIST,
        items: "prompts",
        name_field: Some("name"),
    },
    ListMethod {
        method: RESOURCES_LIST,
        items: "resources",
        name_field: None,
    },
    ListMethod {
        method: RESOURCE_TEMPLATES_LIST,
        items: "resourceTemplates",
        name_field: None,
    },
];

pub fn list_method(method: &str) -> Option<&'static ListMethod> {
    LIST_METHODS.iter().find(|l| l.method == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_common_method_is_one_shared_name_and_any_other_a_new_one() {
        assert!(Arc::ptr_eq(
            &shared_name(TOOLS_CALL),
            &shared_name("tools/call")
        ));
        assert_eq!(
            &*shared_name("notifications/progress"),
            "notifications/progress"
        );
        let odd = shared_name("x-vendor/thing");
        assert_eq!(&*odd, "x-vendor/thing");
        assert!(!Arc::ptr_eq(&odd, &shared_name("x-vendor/thing")));
        assert_eq!(&*shared_name(""), "");
    }
}
