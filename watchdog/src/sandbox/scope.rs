//! Where a server may write (and, optionally, read): `scope.write` / `scope.read` from watchdog.toml,
//! or defaults taken from the server's command line, plus the few paths its runtime needs.
//!
//! Defaults when `scope.write` is absent: every argument naming an existing directory, the parent
//! directory of every argument naming an existing file (other than an interpreter's script, which is
//! code, not data), and the parent of every absolute path that does not exist yet but whose parent
//! does (an output file the server is told to create). `npx … server-filesystem /home/me/project`
//! thus gets `/home/me/project`. System directories are never a default.
//!
//! No root, configured or default, may contain or lie beneath a sensitive path (sensitive.rs):
//! a configured one is a config error, a default one is left out with a note, since the server
//! was never told it could write there.

use super::sensitive::{real_path, SensitiveSet};
use crate::supervisor::spawn::ServerCommand;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `scope` in a `[[server]]` table, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// Directories (or files) the server may create, change and delete things beneath.
    pub write: Option<Vec<String>>,
    /// When set, the only places it may read besides its runtime's and its write scope.
    pub read: Option<Vec<String>>,
}

/// A server's scope, resolved to real paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Write (and read) beneath these.
    pub write: Vec<PathBuf>,
    /// `None`: read everywhere. `Some`: read only beneath these (runtime paths included).
    pub read: Option<Vec<PathBuf>>,
    /// Defaults left out, for the operator (printed once when the server starts).
    pub notes: Vec<String>,
}

/// Character devices any program may write to harmlessly; nothing else under /dev is granted
/// (not /dev/tty: writing to it, or TIOCSTI on it, reaches the user's terminal).
pub const RUNTIME_WRITE_FILES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];

/// POSIX shared memory and semaphores (shm_open, sem_open: Python multiprocessing, Chromium) live
/// here; it is a per-boot tmpfs holding nothing that runs later.
pub const RUNTIME_WRITE_DIRS: &[&str] = &["/dev/shm"];

/// Read when `scope.read` is set: what dynamic linking, interpreters, DNS and TLS need.
pub const RUNTIME_READ: &[&str] = &[
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt", "/proc",
    "/sys", "/dev", "/run", "/nix", "/snap",
];

/// Never granted as a default: the system's own directories (beneath them, or themselves).
const SYSTEM_PREFIXES: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/proc",
    "/sys", "/dev", "/run", "/var", "/root", "/home", "/snap", "/nix",
];

/// Programs whose first positional argument is the script they run.
const INTERPRETERS: &[&str] = &[
    "node", "nodejs", "python", "python3", "deno", "bun", "sh", "bash", "zsh", "ruby", "perl",
    "php", "java",
];

/// The user's directories a scope is resolved against.
#[derive(Debug, Clone)]
pub struct UserDirs {
    pub home: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    pub data: Option<PathBuf>,
    /// The watchdog's working directory (a server's `cwd` is relative to it).
    pub cwd: PathBuf,
    pub sensitive: SensitiveSet,
}

impl UserDirs {
    pub fn from_env() -> UserDirs {
        UserDirs {
            home: dirs::home_dir(),
            cache: dirs::cache_dir(),
            data: dirs::data_dir(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            sensitive: SensitiveSet::from_env(),
        }
    }
}

/// Resolves the scope of one server; errors name the offending entry.
pub fn resolve(
    config: &ScopeConfig,
    cmd: &ServerCommand,
    user: &UserDirs,
) -> Result<Scope, String> {
    let cwd = match &cmd.cwd {
        Some(dir) => user.cwd.join(dir),
        None => user.cwd.clone(),
    };
    let mut scope = Scope::default();
    match &config.write {
        Some(entries) => {
            for entry in entries {
                let root = configured_root(entry, &cwd, user, "scope.write")?;
                push_unique(&mut scope.write, root);
            }
        }
        None => {
            for root in default_roots(cmd, &cwd, user.home.as_deref()) {
                match user.sensitive.conflict(&root) {
                    Some(s) => scope.notes.push(format!(
                        "not granting write beneath {} (from its arguments): it would expose {}; \
                         set scope.write to a narrower directory",
                        root.display(),
                        s.display()
                    )),
                    None => push_unique(&mut scope.write, root),
                }
            }
        }
    }
    for dir in launcher_caches(&cmd.program, user) {
        // Not conflict-checked by design: these are fixed, named runtime directories.
        push_unique(&mut scope.write, dir);
    }
    if let Some(entries) = &config.read {
        let mut read = Vec::new();
        for entry in entries {
            push_unique(&mut read, configured_root(entry, &cwd, user, "scope.read")?);
        }
        for p in RUNTIME_READ {
            push_unique(&mut read, PathBuf::from(p));
        }
        // The server's own code: its program's installation and any script or file argument.
        if let Some(prefix) = program_prefix(&cmd.program, &cwd) {
            push_unique(&mut read, prefix);
        }
        for root in default_roots_including_scripts(cmd, &cwd, user.home.as_deref()) {
            if user.sensitive.conflict(&root).is_none() {
                push_unique(&mut read, root);
            }
        }
        push_unique(&mut read, real_path(&cwd));
        scope.read = Some(read);
    }
    Ok(scope)
}

/// `~` → $HOME, relative → against the server's cwd, then checked against the sensitive set.
fn configured_root(entry: &str, cwd: &Path, user: &UserDirs, key: &str) -> Result<PathBuf, String> {
    let expanded = expand_tilde(entry, user.home.as_deref())
        .ok_or_else(|| format!("{key}: `{entry}` uses ~ but $HOME is not set"))?;
    let root = real_path(&cwd.join(expanded));
    if let Some(s) = user.sensitive.conflict(&root) {
        return Err(format!(
            "{key}: `{entry}` ({}) would expose {}, which no scope may open; name the directories \
             the server needs instead",
            root.display(),
            s.display()
        ));
    }
    Ok(root)
}

/// `~` and `~/…` expand to `home`; `None` when they are used and there is no home.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    if path == "~" {
        return home.map(Path::to_path_buf);
    }
    match path.strip_prefix("~/") {
        Some(rest) => home.map(|h| h.join(rest)),
        None => Some(PathBuf::from(path)),
    }
}

/// The write defaults taken from the arguments (scripts excluded).
fn default_roots(cmd: &ServerCommand, cwd: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    let script = script_index(cmd);
    arg_roots(cmd, cwd, home, |i| Some(i) != script)
}

/// For reading: every argument's directory, the script's included.
fn default_roots_including_scripts(
    cmd: &ServerCommand,
    cwd: &Path,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    arg_roots(cmd, cwd, home, |_| true)
}

fn arg_roots(
    cmd: &ServerCommand,
    cwd: &Path,
    home: Option<&Path>,
    take: impl Fn(usize) -> bool,
) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for (i, arg) in cmd.args.iter().enumerate() {
        if !take(i) {
            continue;
        }
        // `--out=/path` carries a path after `=`; a bare flag carries none.
        let value = match arg.strip_prefix('-') {
            Some(_) => match arg.split_once('=') {
                Some((_, v)) => v,
                None => continue,
            },
            None => arg.as_str(),
        };
        if value.is_empty() || value.contains("://") {
            continue;
        }
        let Some(expanded) = expand_tilde(value, home) else {
            continue;
        };
        let path = cwd.join(&expanded);
        let root = if path.is_dir() {
            path
        } else if path.is_file() {
            match path.parent() {
                Some(p) => p.to_path_buf(),
                None => continue,
            }
        } else if expanded.is_absolute() && path.parent().is_some_and(Path::is_dir) {
            path.parent().expect("checked").to_path_buf()
        } else {
            continue;
        };
        let root = real_path(&root);
        if !is_system(&root) {
            push_unique(&mut roots, root);
        }
    }
    roots
}

/// The argument an interpreter runs as its program (`node server.js`, `python -u app.py`).
fn script_index(cmd: &ServerCommand) -> Option<usize> {
    if !INTERPRETERS.contains(&base_name(&cmd.program)) {
        return None;
    }
    cmd.args.iter().position(|a| !a.starts_with('-'))
}

/// `/`, and the system's directories, are never defaults; `/home` and `/root` themselves are
/// listed so that only directories beneath them (checked against the sensitive set) qualify.
fn is_system(root: &Path) -> bool {
    if root.parent().is_none() {
        return true;
    }
    SYSTEM_PREFIXES.iter().any(|p| {
        let p = Path::new(p);
        match p {
            _ if p == Path::new("/home") || p == Path::new("/root") => root == p,
            _ if p == Path::new("/var") => root.starts_with(p) && !root.starts_with("/var/tmp"),
            _ => root.starts_with(p),
        }
    })
}

fn base_name(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// Where package launchers keep the packages they fetch and run; created when missing so that the
/// grant (which needs an existing inode) holds from the first run.
fn launcher_caches(program: &str, user: &UserDirs) -> Vec<PathBuf> {
    let home = user.home.as_deref();
    let dirs: Vec<PathBuf> = match base_name(program) {
        "npx" | "npm" => std::env::var_os("npm_config_cache")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(".npm")))
            .into_iter()
            .collect(),
        "uvx" | "uv" => [
            user.cache.as_ref().map(|c| c.join("uv")),
            user.data.as_ref().map(|d| d.join("uv")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        "bunx" => home
            .map(|h| h.join(".bun/install/cache"))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    dirs.into_iter()
        .filter(|d| std::fs::create_dir_all(d).is_ok())
        .map(|d| real_path(&d))
        .collect()
}

/// The installation a program runs from: `/opt/node/bin/node` → `/opt/node` (its `lib` beside
/// `bin`); a program outside a `bin` directory → its own directory.
fn program_prefix(program: &str, cwd: &Path) -> Option<PathBuf> {
    let path = if program.contains('/') {
        cwd.join(program)
    } else {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())?
    };
    let real = path.canonicalize().ok()?;
    let dir = real.parent()?;
    Some(match dir.file_name() {
        Some(name) if name == "bin" => dir.parent().unwrap_or(dir).to_path_buf(),
        _ => dir.to_path_buf(),
    })
}

fn push_unique(list: &mut Vec<PathBuf>, path: PathBuf) {
    if !list.contains(&path) {
        list.push(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        home: PathBuf,
        user: UserDirs,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap().join("home/me");
        std::fs::create_dir_all(home.join("project/.git/hooks")).unwrap();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join("project/notes.md"), "x").unwrap();
        let user = UserDirs {
            home: Some(home.clone()),
            cache: Some(home.join(".cache")),
            data: Some(home.join(".local/share")),
            cwd: home.join("project"),
            sensitive: SensitiveSet::new(
                Some(&home),
                Some(&home.join(".config")),
                Some(&home.join(".local/state")),
            ),
        };
        Fixture {
            _dir: dir,
            home,
            user,
        }
    }

    fn cmd(program: &str, args: &[&str]) -> ServerCommand {
        ServerCommand {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            cwd: None,
        }
    }

    fn config(write: Option<&[&str]>) -> ScopeConfig {
        ScopeConfig {
            write: write.map(|w| w.iter().map(|s| s.to_string()).collect()),
            read: None,
        }
    }

    #[test]
    fn directories_given_as_arguments_are_the_default() {
        let f = fixture();
        let project = f.home.join("project");
        let c = cmd(
            "/nonexistent/bin/server-filesystem",
            &["-y", project.to_str().unwrap(), "--flag", "plain-word"],
        );
        let s = resolve(&config(None), &c, &f.user).unwrap();
        assert_eq!(s.write, vec![project.clone()]);
        assert_eq!(s.read, None, "reads stay unrestricted without scope.read");
        // An existing file names its directory; `--out=` values and relative paths count too.
        let c = cmd(
            "srv",
            &[
                "notes.md",
                &format!("--out={}", f.home.join("out/x.log").display()),
            ],
        );
        std::fs::create_dir_all(f.home.join("out")).unwrap();
        let s = resolve(&config(None), &c, &f.user).unwrap();
        assert_eq!(s.write, vec![project, f.home.join("out")]);
    }

    #[test]
    fn an_interpreters_script_and_system_directories_are_not_defaults() {
        let f = fixture();
        let script = f.home.join("project/notes.md");
        let c = cmd(
            "node",
            &[
                script.to_str().unwrap(),
                "/usr/share",
                "/",
                "/etc/hosts",
                "/var/lib",
                "/var/tmp",
            ],
        );
        let s = resolve(&config(None), &c, &f.user).unwrap();
        assert_eq!(
            s.write,
            vec![PathBuf::from("/var/tmp").canonicalize().unwrap()]
        );
    }

    #[test]
    fn a_default_that_would_expose_a_sensitive_path_is_left_out_with_a_note() {
        let f = fixture();
        let c = cmd(
            "srv",
            &["~", f.home.join("project/.git/hooks").to_str().unwrap()],
        );
        let s = resolve(&config(None), &c, &f.user).unwrap();
        assert!(s.write.is_empty(), "{:?}", s.write);
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
        assert!(
            s.notes[0].contains(".ssh") || s.notes[0].contains(".aws"),
            "{}",
            s.notes[0]
        );
    }

    #[test]
    fn configured_roots_expand_tilde_and_replace_the_defaults() {
        let f = fixture();
        std::fs::create_dir_all(f.home.join("work")).unwrap();
        let c = cmd("srv", &[f.home.join("project").to_str().unwrap()]);
        let s = resolve(&config(Some(&["~/work", "~/not-yet"])), &c, &f.user).unwrap();
        assert_eq!(s.write, vec![f.home.join("work"), f.home.join("not-yet")]);
    }

    #[test]
    fn a_configured_root_containing_sensitive_paths_is_a_config_error() {
        let f = fixture();
        let c = cmd("srv", &[]);
        for bad in [
            "~",
            "~/.ssh",
            "~/.config",
            "/",
            "~/project/.git",
            "~/.local/state/mcp-watchdog/x",
        ] {
            let e = resolve(&config(Some(&[bad])), &c, &f.user).unwrap_err();
            assert!(
                e.contains("no scope may open") && e.contains(bad),
                "{bad}: {e}"
            );
        }
        let read = ScopeConfig {
            write: Some(vec![]),
            read: Some(vec!["~".into()]),
        };
        assert!(resolve(&read, &c, &f.user)
            .unwrap_err()
            .starts_with("scope.read"));
    }

    #[test]
    fn a_read_scope_adds_the_runtime_and_the_servers_own_code() {
        let f = fixture();
        let script = f.home.join("project/notes.md");
        let c = cmd("sh", &[script.to_str().unwrap()]);
        let read = ScopeConfig {
            write: Some(vec!["~/out".into()]),
            read: Some(vec!["~/docs".into()]),
        };
        let s = resolve(&read, &c, &f.user).unwrap();
        let r = s.read.unwrap();
        assert_eq!(r[0], f.home.join("docs"));
        assert!(r.contains(&PathBuf::from("/usr")) && r.contains(&PathBuf::from("/etc")));
        assert!(
            r.contains(&f.home.join("project")),
            "the script's directory: {r:?}"
        );
        assert!(!r.contains(&f.home), "{r:?}");
    }

    #[test]
    fn launchers_get_their_package_cache() {
        let f = fixture();
        let s = resolve(&config(Some(&[])), &cmd("npx", &["-y", "pkg"]), &f.user).unwrap();
        assert_eq!(s.write, vec![f.home.join(".npm")]);
        let s = resolve(&config(Some(&[])), &cmd("/usr/bin/uvx", &["pkg"]), &f.user).unwrap();
        assert_eq!(
            s.write,
            vec![f.home.join(".cache/uv"), f.home.join(".local/share/uv")]
        );
        let s = resolve(&config(Some(&[])), &cmd("node", &["x.js"]), &f.user).unwrap();
        assert!(s.write.is_empty());
    }

    #[test]
    fn tilde_expansion() {
        let h = Path::new("/h");
        assert_eq!(expand_tilde("~", Some(h)).unwrap(), h);
        assert_eq!(expand_tilde("~/a/b", Some(h)).unwrap(), h.join("a/b"));
        assert_eq!(
            expand_tilde("~user/a", Some(h)).unwrap(),
            PathBuf::from("~user/a")
        );
        assert_eq!(expand_tilde("/x", None).unwrap(), PathBuf::from("/x"));
        assert_eq!(expand_tilde("~/x", None), None);
    }
}
