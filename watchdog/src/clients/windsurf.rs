//! Windsurf (Cascade): `~/.codeium/windsurf/mcp_config.json`, servers under `mcpServers`; remote
//! servers there use `serverUrl`.

use crate::clients::config_file::{ConfigFile, Step, TablePath};
use crate::clients::{Client, Locations};

const TABLES: &[TablePath] = &[&[Step::Key("mcpServers")]];

pub fn config_files(at: &Locations) -> Vec<ConfigFile> {
    vec![ConfigFile {
        client: Some(Client::Windsurf),
        path: at
            .home
            .join(".codeium")
            .join("windsurf")
            .join("mcp_config.json"),
        tables: TABLES,
        comments: false,
    }]
}
