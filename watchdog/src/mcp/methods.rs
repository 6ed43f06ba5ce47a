//! MCP method names and what the gateway needs to know about each (spec revisions 2025-11-25 and
//! 2026-07-28 use the same names for everything here).

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
