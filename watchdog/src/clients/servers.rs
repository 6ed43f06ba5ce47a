//! Reading the server entries of a client config without changing it, for `scan` (which starts
//! them) and `status` (which says which of them run through the watchdog).
//!
//! Uses the same parser, table layout and entry classification as `install`, so that the three
//! commands agree on what a file holds and report a malformed file with the same words.

use crate::clients::config_file::find_tables;
use crate::clients::entry::{classify, Entry, Stdio};
use crate::clients::jsonc::{self, Node, NodeKind};
use crate::clients::ConfigFile;
use std::io;
use std::path::PathBuf;

/// One entry of a client config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientServer {
    /// The entry's key, prefixed with its table when the file has several (as `install` shows it).
    pub name: String,
    pub kind: ServerKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    /// Started by the client directly.
    Stdio(Launch),
    /// Started through the watchdog; `inner` is the server after `--` (none for a gateway entry,
    /// which runs `mcp-watchdog --config FILE`).
    Wrapped {
        watchdog: Launch,
        inner: Option<Launch>,
    },
    /// HTTP or SSE: not proxied yet.
    Remote { description: String },
    /// Not understood; `install` leaves it alone.
    Other { reason: String },
}

/// A command line as the client would start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub command: String,
    pub args: Vec<String>,
    /// The entry's `env` strings (other values are left out).
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

impl Launch {
    /// `command args…`, quoted for a POSIX shell.
    pub fn command_line(&self) -> String {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        crate::clients::entry::command_line(&self.command, &args)
    }
}

/// The entries of `file`; `Ok(None)` when the file does not exist. Errors name the position:
/// `line 3, column 7: expected …`.
pub fn read_servers(file: &ConfigFile) -> Result<Option<Vec<ClientServer>>, String> {
    let text = match std::fs::read(&file.path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&e.as_bytes()[..valid]);
            let (line, column) = jsonc::line_column(&text, valid);
            format!("line {line}, column {column}: expected UTF-8 text, found an invalid byte")
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    parse_servers(&text, file).map(Some)
}

/// The entries of a config file's text.
pub fn parse_servers(text: &str, file: &ConfigFile) -> Result<Vec<ClientServer>, String> {
    let root = jsonc::parse(text, file.comments).map_err(|e| e.to_string())?;
    let tables = find_tables(text, &root, file.tables)?;
    let several = tables.len() > 1;
    let mut servers = Vec::new();
    for table in &tables {
        let NodeKind::Object(members) = &table.node.kind else {
            unreachable!("find_tables returns objects");
        };
        for member in members {
            let name = if several {
                format!("{} › {}", table.label, member.key)
            } else {
                member.key.clone()
            };
            let kind = match classify(&member.value) {
                Entry::Stdio(stdio) => ServerKind::Stdio(launch(&stdio)),
                Entry::Wrapped(stdio) => {
                    let watchdog = launch(&stdio);
                    let inner = watchdog
                        .args
                        .iter()
                        .position(|a| a == "--")
                        .and_then(|dash| {
                            let command = watchdog.args.get(dash + 1)?.clone();
                            Some(Launch {
                                command,
                                args: watchdog.args[dash + 2..].to_vec(),
                                env: watchdog.env.clone(),
                                cwd: watchdog.cwd.clone(),
                            })
                        });
                    ServerKind::Wrapped { watchdog, inner }
                }
                Entry::Remote { description } => ServerKind::Remote { description },
                Entry::Other { reason } => ServerKind::Other { reason },
            };
            servers.push(ClientServer { name, kind });
        }
    }
    Ok(servers)
}

fn launch(stdio: &Stdio<'_>) -> Launch {
    let env = match stdio.entry.get("env").map(|e| &e.kind) {
        Some(NodeKind::Object(members)) => members
            .iter()
            .filter_map(|m| Some((m.key.clone(), m.value.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    Launch {
        command: stdio.command().to_owned(),
        args: stdio.args().iter().map(|s| s.to_string()).collect(),
        env,
        cwd: stdio
            .entry
            .get("cwd")
            .and_then(Node::as_str)
            .map(PathBuf::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        ConfigFile::any_layout(PathBuf::from("/x/mcp.json"))
    }

    #[test]
    fn entries_are_classified_with_their_launch() {
        let text = r#"{"mcpServers": {
            "fs": {"command": "npx", "args": ["-y", "pkg", "/tmp"], "env": {"K": "v", "N": 1}, "cwd": "/w"},
            "wrapped": {"command": "/usr/bin/mcp-watchdog", "args": ["-q", "--", "uvx", "git"]},
            "gateway": {"command": "mcp-watchdog", "args": ["--config", "w.toml"]},
            "web": {"url": "https://example.com/mcp"}
        }}"#;
        let servers = parse_servers(text, &file()).unwrap();
        let names: Vec<_> = servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fs", "wrapped", "gateway", "web"]);
        let ServerKind::Stdio(fs) = &servers[0].kind else {
            panic!("{:?}", servers[0])
        };
        assert_eq!(fs.command_line(), "npx -y pkg /tmp");
        assert_eq!(fs.env, [("K".to_string(), "v".to_string())]);
        assert_eq!(fs.cwd.as_deref(), Some(std::path::Path::new("/w")));
        let ServerKind::Wrapped { inner, .. } = &servers[1].kind else {
            panic!("{:?}", servers[1])
        };
        assert_eq!(inner.as_ref().unwrap().command_line(), "uvx git");
        assert!(matches!(
            &servers[2].kind,
            ServerKind::Wrapped { inner: None, .. }
        ));
        assert!(matches!(&servers[3].kind, ServerKind::Remote { .. }));
    }

    #[test]
    fn a_malformed_file_is_reported_with_its_position() {
        let err = parse_servers("{\n  \"mcpServers\": {\"a\": }\n}", &file()).unwrap_err();
        assert!(err.starts_with("line 2, column "), "{err}");
        let err = read_servers(&ConfigFile::any_layout(PathBuf::from(
            "/nonexistent/x.json",
        )));
        assert_eq!(err, Ok(None));
    }
}
