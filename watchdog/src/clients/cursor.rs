//! Cursor: `~/.cursor/mcp.json` (every project) and `.cursor/mcp.json` in the project (here: the
//! current directory), servers under `mcpServers`.

use crate::clients::config_file::{ConfigFile, Step, TablePath};
use crate::clients::{Client, Locations};

const TABLES: &[TablePath] = &[&[Step::Key("mcpServers")]];

pub fn config_files(at: &Locations) -> Vec<ConfigFile> {
    [at.home.join(".cursor"), at.cwd.join(".cursor")]
        .into_iter()
        .map(|dir| ConfigFile {
            client: Some(Client::Cursor),
            path: dir.join("mcp.json"),
            tables: TABLES,
            comments: false,
        })
        .collect()
}
