//! Claude Desktop on Linux: `$XDG_CONFIG_HOME/Claude/claude_desktop_config.json` (Electron's
//! app-data directory), servers under `mcpServers`.

use crate::clients::config_file::{ConfigFile, Step, TablePath};
use crate::clients::{Client, Locations};

const TABLES: &[TablePath] = &[&[Step::Key("mcpServers")]];

pub fn config_files(at: &Locations) -> Vec<ConfigFile> {
    vec![ConfigFile {
        client: Some(Client::ClaudeDesktop),
        path: at
            .config_dir
            .join("Claude")
            .join("claude_desktop_config.json"),
        tables: TABLES,
        comments: false,
    }]
}
