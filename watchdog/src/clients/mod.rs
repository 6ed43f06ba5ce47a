//! Client integration: find each MCP client's config file, wrap its stdio servers with the
//! watchdog (`install`), and give the original entries back (`uninstall`).
//!
//! Files are edited span by span (see [`jsonc`]), never re-serialized, so everything the edit does
//! not touch keeps its bytes, and `uninstall` undoes `install` exactly.

pub mod apply;
pub mod claude_code;
pub mod claude_desktop;
pub mod config_file;
pub mod cursor;
pub mod edit;
pub mod entry;
pub mod install;
pub mod jsonc;
pub mod locations;
pub mod report;
pub mod servers;
pub mod uninstall;
pub mod vscode;
pub mod windsurf;

#[cfg(test)]
mod tests;

pub use config_file::ConfigFile;
pub use locations::Locations;

use clap::{Args, ValueEnum};
use std::fmt;
use std::path::PathBuf;

/// The MCP clients whose configs `install` and `uninstall` know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Windsurf,
    Vscode,
}

impl Client {
    pub const ALL: [Client; 5] = [
        Client::ClaudeDesktop,
        Client::ClaudeCode,
        Client::Cursor,
        Client::Windsurf,
        Client::Vscode,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "claude-desktop",
            Client::ClaudeCode => "claude-code",
            Client::Cursor => "cursor",
            Client::Windsurf => "windsurf",
            Client::Vscode => "vscode",
        }
    }

    /// The config files this client reads, most global first.
    pub fn config_files(self, at: &Locations) -> Vec<ConfigFile> {
        match self {
            Client::ClaudeDesktop => claude_desktop::config_files(at),
            Client::ClaudeCode => claude_code::config_files(at),
            Client::Cursor => cursor::config_files(at),
            Client::Windsurf => windsurf::config_files(at),
            Client::Vscode => vscode::config_files(at),
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--client` takes a client or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ClientChoice {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Windsurf,
    Vscode,
    #[default]
    All,
}

impl ClientChoice {
    pub fn clients(self) -> Vec<Client> {
        match self {
            ClientChoice::ClaudeDesktop => vec![Client::ClaudeDesktop],
            ClientChoice::ClaudeCode => vec![Client::ClaudeCode],
            ClientChoice::Cursor => vec![Client::Cursor],
            ClientChoice::Windsurf => vec![Client::Windsurf],
            ClientChoice::Vscode => vec![Client::Vscode],
            ClientChoice::All => Client::ALL.to_vec(),
        }
    }
}

/// What `install` and `uninstall` share on the command line.
#[derive(Debug, Args, Clone, Default)]
pub struct ClientArgs {
    /// Which client's configs to change.
    #[arg(long, value_enum, default_value = "all")]
    pub client: ClientChoice,

    /// Change nothing; print a unified diff of what would change in each file.
    #[arg(long)]
    pub dry_run: bool,

    /// Work on this one file instead of the clients' usual places (with `--client`, read it as
    /// that client's format; otherwise every known layout is looked for).
    #[arg(long, value_name = "FILE")]
    pub config_path: Option<PathBuf>,
}

impl ClientArgs {
    /// The files to work on: the one given, or every file of the chosen clients, each once.
    pub fn files(&self, at: &Locations) -> Vec<ConfigFile> {
        if let Some(path) = &self.config_path {
            return vec![match self.client {
                ClientChoice::All => ConfigFile::any_layout(path.clone()),
                one => {
                    // The client's file of the same name tells the layout (VS Code's settings.json
                    // and mcp.json differ); any other name is read like the client's first file.
                    let mut candidates = one.clients()[0].config_files(at);
                    let index = candidates
                        .iter()
                        .position(|f| f.path.file_name() == path.file_name())
                        .unwrap_or(0);
                    let mut file = candidates.swap_remove(index);
                    file.path = path.clone();
                    file
                }
            }];
        }
        let mut files: Vec<ConfigFile> = Vec::new();
        for client in self.client.clients() {
            for file in client.config_files(at) {
                // The project file and the user file coincide when run from the home directory.
                let same = |f: &ConfigFile| same_file(&f.path, &file.path);
                if !files.iter().any(same) {
                    files.push(file);
                }
            }
        }
        files
    }
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
