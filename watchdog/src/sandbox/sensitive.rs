//! The always-sensitive set: credentials, persistence hooks and MCP client configs that no server
//! scope may open for writing, whatever watchdog.toml says.
//!
//! Landlock only knows allow rules, so "no scope can open them" is enforced by refusing every scope
//! root that contains one of these paths or lies beneath one (see [`SensitiveSet::conflict`]).
//! `.git/config` and `.git/hooks/` can sit in any project, so they are a pattern rather than a list:
//! a scope root inside a `.git` directory is refused, but a project root that *contains* `.git` is
//! granted whole, because refusing it would refuse every repository. That gap is documented in
//! `sandbox/mod.rs`.

use std::path::{Component, Path, PathBuf};

/// Beneath $HOME: credentials and tokens.
const HOME_CREDENTIALS: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    ".docker/config.json",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
];

/// Beneath $HOME: code that runs later on the user's behalf (shell start-up, autostart, timers).
const HOME_PERSISTENCE: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".config/fish/config.fish",
    ".config/autostart",
    ".config/systemd/user",
];

/// Beneath $HOME: MCP client configs, where a server could add or rewrite servers (and undo the
/// watchdog's wrapping of itself).
const HOME_MCP_CLIENTS: &[&str] = &[
    ".config/Claude",
    ".claude.json",
    ".claude",
    ".cursor",
    ".codeium/windsurf",
    ".config/Code/User/mcp.json",
    ".config/Code/User/settings.json",
    ".continue",
];

/// System-wide crontabs.
const SYSTEM: &[&str] = &["/var/spool/cron", "/etc/crontab", "/etc/cron.d"];

/// A directory name whose `config` and `hooks` are sensitive wherever it is.
pub const GIT_DIR: &str = ".git";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensitiveSet {
    /// Absolute, with symbolic links resolved as far as the path exists.
    paths: Vec<PathBuf>,
}

impl SensitiveSet {
    /// The set for this user: `home` anchors the per-user entries; `config` and `state` are the
    /// XDG base directories holding the watchdog's own config and state (audit log, pins).
    pub fn new(home: Option<&Path>, config: Option<&Path>, state: Option<&Path>) -> SensitiveSet {
        let mut paths: Vec<PathBuf> = SYSTEM.iter().map(PathBuf::from).collect();
        if let Some(home) = home {
            paths.extend(
                HOME_CREDENTIALS
                    .iter()
                    .chain(HOME_PERSISTENCE)
                    .chain(HOME_MCP_CLIENTS)
                    .map(|p| home.join(p)),
            );
        }
        paths.extend(
            [config, state]
                .into_iter()
                .flatten()
                .map(|base| base.join("mcp-watchdog")),
        );
        let mut paths: Vec<PathBuf> = paths.iter().map(|p| real_path(p)).collect();
        paths.sort();
        paths.dedup();
        SensitiveSet { paths }
    }

    /// From $HOME, $XDG_CONFIG_HOME and $XDG_STATE_HOME (with their usual defaults).
    pub fn from_env() -> SensitiveSet {
        SensitiveSet::new(
            dirs::home_dir().as_deref(),
            dirs::config_dir().as_deref(),
            dirs::state_dir().as_deref(),
        )
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The sensitive path that granting `root` would expose: one beneath `root` (or `root`
    /// itself), or one `root` lies beneath. `root` must already be a real path ([`real_path`]).
    pub fn conflict(&self, root: &Path) -> Option<PathBuf> {
        if let Some(p) = self
            .paths
            .iter()
            .find(|p| p.starts_with(root) || root.starts_with(p))
        {
            return Some(p.clone());
        }
        // Inside a repository's .git: its config and hooks run code on the next git command.
        let mut prefix = PathBuf::new();
        for c in root.components() {
            prefix.push(c);
            if c == Component::Normal(GIT_DIR.as_ref()) {
                return Some(prefix);
            }
        }
        None
    }
}

/// `path` made absolute and free of `.`/`..`, with symbolic links resolved for the part that exists:
/// Landlock rules bind inodes, so comparisons must be made on the paths the kernel will see.
pub fn real_path(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = lexical(path);
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return lexical(path),
        }
    }
}

/// Removes `.` and resolves `..` textually (only used where the path does not exist).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(home: &Path) -> SensitiveSet {
        SensitiveSet::new(
            Some(home),
            Some(&home.join(".config")),
            Some(&home.join(".local/state")),
        )
    }

    #[test]
    fn the_set_holds_credentials_persistence_clients_and_the_watchdogs_own_files() {
        let home = Path::new("/nonexistent-home/me");
        let s = set(home);
        for p in [
            ".ssh",
            ".aws",
            ".gnupg",
            ".kube",
            ".docker/config.json",
            ".npmrc",
            ".pypirc",
            ".netrc",
            ".git-credentials",
            ".bashrc",
            ".bash_profile",
            ".profile",
            ".zshrc",
            ".zprofile",
            ".config/fish/config.fish",
            ".config/autostart",
            ".config/systemd/user",
            ".config/Claude",
            ".claude.json",
            ".claude",
            ".cursor",
            ".codeium/windsurf",
            ".config/Code/User/mcp.json",
            ".config/Code/User/settings.json",
            ".continue",
            ".config/mcp-watchdog",
            ".local/state/mcp-watchdog",
        ] {
            assert!(s.paths().contains(&home.join(p)), "{p} missing");
        }
        assert!(s.paths().contains(&PathBuf::from("/var/spool/cron")));
        // Not everything in $HOME: the rest of ~/.config and ~/.docker are ordinary.
        assert!(!s.paths().contains(&home.join(".config")));
        assert!(!s.paths().contains(&home.join(".docker")));
    }

    #[test]
    fn a_root_that_contains_or_lies_within_a_sensitive_path_conflicts() {
        let home = Path::new("/nonexistent-home/me");
        let s = set(home);
        assert_eq!(s.conflict(home).unwrap(), home.join(".aws"));
        assert!(s.conflict(Path::new("/")).is_some());
        assert!(s.conflict(&home.join(".ssh/keys")).is_some());
        assert!(s.conflict(&home.join(".config")).is_some());
        assert_eq!(
            s.conflict(&home.join(".docker")).unwrap(),
            home.join(".docker/config.json")
        );
        assert_eq!(s.conflict(&home.join("project")), None);
        assert_eq!(s.conflict(&home.join(".config/nvim")), None);
        // .git is a pattern: a project holding one is fine, a root inside one is not.
        assert_eq!(s.conflict(&home.join("project/sub")), None);
        assert_eq!(
            s.conflict(&home.join("project/.git/hooks")).unwrap(),
            home.join("project/.git")
        );
        assert!(s.conflict(&home.join("project/.git")).is_some());
    }

    #[test]
    fn real_paths_resolve_links_and_dots_as_far_as_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(real.join("target"), real.join("link")).unwrap();
        std::fs::create_dir(real.join("target")).unwrap();
        assert_eq!(
            real_path(&real.join("link/new/../x")),
            real.join("target/x")
        );
        assert_eq!(
            real_path(Path::new("/nonexistent/a/./b/../c")),
            PathBuf::from("/nonexistent/a/c")
        );
        // A sensitive path reached through a symlinked home is still caught.
        let s = SensitiveSet::new(Some(&real.join("link")), None, None);
        assert!(s.conflict(&real.join("target")).is_some());
    }
}
