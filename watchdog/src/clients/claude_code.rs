//! Claude Code: `~/.claude.json` holds user-scoped servers under the top-level `mcpServers` and
//! local-scoped ones under `projects.<absolute path>.mcpServers`; project-scoped servers live in
//! `.mcp.json` at the project root (here: the current directory), also under `mcpServers`.
//!
//! Claude Code rewrites `~/.claude.json` often while it runs; install while it is closed.

use crate::clients::config_file::{ConfigFile, Step, TablePath};
use crate::clients::{Client, Locations};

const USER_TABLES: &[TablePath] = &[
    &[Step::Key("mcpServers")],
    &[
        Step::Key("projects"),
        Step::EachKey,
        Step::Key("mcpServers"),
    ],
];
const PROJECT_TABLES: &[TablePath] = &[&[Step::Key("mcpServers")]];

pub fn config_files(at: &Locations) -> Vec<ConfigFile> {
    vec![
        ConfigFile {
            client: Some(Client::ClaudeCode),
            path: at.home.join(".claude.json"),
            tables: USER_TABLES,
            comments: false,
        },
        ConfigFile {
            client: Some(Client::ClaudeCode),
            path: at.cwd.join(".mcp.json"),
            tables: PROJECT_TABLES,
            comments: false,
        },
    ]
}
