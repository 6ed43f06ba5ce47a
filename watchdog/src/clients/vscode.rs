//! VS Code: the user profile's `mcp.json` (`$XDG_CONFIG_HOME/Code/User/mcp.json`, servers under
//! `servers`), the older `mcp.servers` in the user `settings.json`, and the workspace's
//! `.vscode/mcp.json` (here: under the current directory). All are JSONC: comments and trailing
//! commas are allowed, and kept.

use crate::clients::config_file::{ConfigFile, Step, TablePath};
use crate::clients::{Client, Locations};

const MCP_JSON_TABLES: &[TablePath] = &[&[Step::Key("servers")]];
const SETTINGS_TABLES: &[TablePath] = &[&[Step::Key("mcp"), Step::Key("servers")]];

pub fn config_files(at: &Locations) -> Vec<ConfigFile> {
    let user = at.config_dir.join("Code").join("User");
    let file = |path, tables| ConfigFile {
        client: Some(Client::Vscode),
        path,
        tables,
        comments: true,
    };
    vec![
        file(user.join("mcp.json"), MCP_JSON_TABLES),
        file(user.join("settings.json"), SETTINGS_TABLES),
        file(at.cwd.join(".vscode").join("mcp.json"), MCP_JSON_TABLES),
    ]
}
