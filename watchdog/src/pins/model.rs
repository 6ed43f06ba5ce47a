//! What the pins file holds: per server identity, the approved and pending definition of every item.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Version of the file format written; a file of another version is not guessed at.
pub const FORMAT_VERSION: u32 = 1;

/// The kinds of definitions a server publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Tool,
    Prompt,
    Resource,
    ResourceTemplate,
    /// The `instructions` of the initialize result: a single item keyed [`INSTRUCTIONS_KEY`].
    Instructions,
}

/// The key of the one instructions item.
pub const INSTRUCTIONS_KEY: &str = "instructions";

impl ItemKind {
    pub const ALL: [ItemKind; 5] = [
        ItemKind::Tool,
        ItemKind::Prompt,
        ItemKind::Resource,
        ItemKind::ResourceTemplate,
        ItemKind::Instructions,
    ];

    /// The word users read in alerts and listings.
    pub fn label(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::Resource => "resource",
            ItemKind::ResourceTemplate => "resource template",
            ItemKind::Instructions => "instructions",
        }
    }

    /// Whether an item appearing or disappearing after the first complete listing is a change.
    ///
    /// Tools, prompts and instructions are fixed by the server's code, so a new or vanished one is
    /// a redefinition. Resources and templates are data (a filesystem server lists files as they
    /// come and go): flagging their membership would bury the user in noise, so only a pinned one
    /// changing counts.
    pub fn membership_tracked(self) -> bool {
        matches!(
            self,
            ItemKind::Tool | ItemKind::Prompt | ItemKind::Instructions
        )
    }

    /// The list method's result array and the member that keys its items.
    pub fn of_list_method(method: &str) -> Option<(ItemKind, &'static str, &'static str)> {
        use crate::mcp::methods::*;
        Some(match method {
            TOOLS_LIST => (ItemKind::Tool, "tools", "name"),
            PROMPTS_LIST => (ItemKind::Prompt, "prompts", "name"),
            RESOURCES_LIST => (ItemKind::Resource, "resources", "uri"),
            RESOURCE_TEMPLATES_LIST => (
                ItemKind::ResourceTemplate,
                "resourceTemplates",
                "uriTemplate",
            ),
            _ => return None,
        })
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinsFile {
    pub version: u32,
    /// Set when the file was found corrupt: until every pending item is approved, nothing is
    /// trusted on first use (a corrupt file must not turn into a fresh, trusting one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_use_suspended: Option<Suspension>,
    /// Keyed by [`super::ServerIdentity::id`].
    #[serde(default)]
    pub servers: BTreeMap<String, ServerPins>,
}

impl Default for PinsFile {
    fn default() -> Self {
        PinsFile {
            version: FORMAT_VERSION,
            first_use_suspended: None,
            servers: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    pub since: String,
    pub reason: String,
}

/// One server identity's pins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPins {
    /// The readable parts of the identity (the id is their hash).
    pub name: String,
    pub command: Vec<String>,
    pub server_info_name: String,
    pub first_seen: String,
    /// Kinds of which a complete listing has been pinned: from then on, a new item is an addition.
    #[serde(default)]
    pub listed: BTreeSet<ItemKind>,
    #[serde(default)]
    pub items: BTreeMap<ItemKind, BTreeMap<String, ItemPin>>,
}

impl ServerPins {
    pub fn item(&self, kind: ItemKind, key: &str) -> Option<&ItemPin> {
        self.items.get(&kind).and_then(|m| m.get(key))
    }

    pub fn has_pending(&self) -> bool {
        self.items
            .values()
            .flat_map(|m| m.values())
            .any(|i| i.pending.is_some() || i.approved.is_none())
    }
}

/// One item: what the user approved, and what the server offers now if that differs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemPin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Pinned>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// Full hex SHA-256 of the canonical JSON of `definition`.
    pub sha256: String,
    pub definition: Value,
    pub at: String,
}

/// A definition seen but not approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingChange {
    pub change: Change,
    /// The definition now offered; `None` when the item disappeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Pinned>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The definition differs from the approved one.
    Changed,
    /// The item was not there when the server was first listed (or nothing is trusted: see
    /// [`PinsFile::first_use_suspended`]).
    Added,
    /// The item is no longer offered.
    Removed,
}

impl Change {
    /// The alert class suffix.
    pub fn class_word(self) -> &'static str {
        match self {
            Change::Changed => "redefinition",
            Change::Added => "added",
            Change::Removed => "removed",
        }
    }
}

/// What the user sees for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    Approved,
    /// Offered, never approved.
    Pending,
    Changed,
    Removed,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Approved => "approved",
            ItemState::Pending => "pending",
            ItemState::Changed => "changed",
            ItemState::Removed => "removed",
        }
    }
}

impl ItemPin {
    pub fn state(&self) -> ItemState {
        match (&self.approved, &self.pending) {
            (Some(_), None) => ItemState::Approved,
            (_, Some(p)) if p.change == Change::Removed => ItemState::Removed,
            (Some(_), Some(_)) => ItemState::Changed,
            (None, _) => ItemState::Pending,
        }
    }

    /// Approves what is pending; returns false when the item is to be forgotten (an approved
    /// removal, or nothing left).
    pub fn approve(&mut self) -> bool {
        match self.pending.take() {
            Some(PendingChange {
                current: Some(current),
                ..
            }) => {
                self.approved = Some(current);
                true
            }
            Some(PendingChange { current: None, .. }) => false,
            None => self.approved.is_some(),
        }
    }
}
