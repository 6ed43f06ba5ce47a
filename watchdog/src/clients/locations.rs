//! Where the clients keep their configs: the home directory, the XDG config directory, and the
//! current directory (for project-scoped files).

use std::path::PathBuf;

/// Overrides the home directory for every client path, so that tests (and users trying things
/// out) never touch the real configs. When set, `$XDG_CONFIG_HOME` is ignored: `<home>/.config`.
pub const HOME_OVERRIDE_VAR: &str = "MCP_WATCHDOG_HOME";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config` (Electron apps such as Claude Desktop and VS Code use it).
    pub config_dir: PathBuf,
    /// Where project-scoped files (`.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`) are looked for.
    pub cwd: PathBuf,
}

impl Locations {
    /// Everything under one home directory (tests).
    pub fn under(home: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Locations {
        let home = home.into();
        Locations {
            config_dir: home.join(".config"),
            home,
            cwd: cwd.into(),
        }
    }

    pub fn from_env() -> anyhow::Result<Locations> {
        let cwd = std::env::current_dir()?;
        if let Some(home) = std::env::var_os(HOME_OVERRIDE_VAR).filter(|h| !h.is_empty()) {
            return Ok(Locations::under(home, cwd));
        }
        let home = dirs::home_dir()
            .ok_or_else(|| anyhow::anyhow!("cannot tell the home directory ($HOME is not set)"))?;
        let config_dir = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
        Ok(Locations {
            home,
            config_dir,
            cwd,
        })
    }
}
