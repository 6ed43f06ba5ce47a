//! Settings from watchdog.toml and the command line.

use crate::cli::ProxyArgs;
use crate::jsonrpc::DEFAULT_MAX_FRAME;
use crate::policy::{Action, Mode, Policy, ToolFilter};
use crate::sandbox::scope::{self, ScopeConfig, UserDirs};
use crate::sandbox::SandboxPlan;
use crate::supervisor::spawn::ServerCommand;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Separator between a server's prefix and its tool or prompt name in gateway mode.
pub const NAME_SEPARATOR: &str = "__";

/// watchdog.toml as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub mode: Mode,
    pub max_frame_bytes: Option<ByteSize>,
    /// How long replies still in flight are awaited after the client closes its input.
    pub drain_timeout_ms: Option<u64>,
    /// How long a server's process tree gets between SIGTERM and SIGKILL.
    pub shutdown_grace_ms: Option<u64>,
    /// Where tool pins are kept (default: $XDG_STATE_HOME/mcp-watchdog/pins.json).
    pub pins_file: Option<PathBuf>,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub rules: BTreeMap<String, Action>,
    #[serde(default)]
    pub restart: RestartConfig,
    #[serde(default)]
    pub rate: crate::inspect::rate::RateLimits,
    #[serde(default)]
    pub flow: crate::analyze::flow::FlowConfig,
    #[serde(default)]
    pub drift: crate::analyze::drift::DriftConfig,
    #[serde(default, rename = "server")]
    pub servers: Vec<ServerConfig>,
    /// The optional LLM classifier (SEMANTIC); off unless `enabled = true`.
    #[serde(default)]
    pub semantic: crate::analyze::semantic::SemanticConfig,
    /// Landlock + seccomp confinement of every server (default on; a server's own setting wins).
    pub sandbox: Option<bool>,
    /// Strict mode: sensitive opens denied and servers that breach their scope killed (needs root
    /// or the daemon).
    #[serde(default)]
    pub strict: bool,
    /// Filesystem monitor backend: auto (default), ebpf, fanotify, inotify, daemon or off.
    pub fs_backend: Option<crate::fsmon::probe::BackendChoice>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default)]
    pub json: bool,
    #[serde(default)]
    pub quiet: bool,
    pub audit_log: Option<PathBuf>,
    pub repeat_window_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    /// Restarts allowed within `window_secs` before the server is marked failed.
    pub max_restarts: u32,
    pub window_secs: u64,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            max_restarts: 5,
            window_secs: 60,
            initial_backoff_ms: 200,
            max_backoff_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub name: String,
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// Namespace for tool and prompt names (`<prefix>__<name>`); "" for none. Defaults to the name
    /// when there are several servers.
    pub prefix: Option<String>,
    #[serde(default)]
    pub tools: ToolLists,
    #[serde(default)]
    pub oauth: OAuthConfig,
    /// Overrides the global `sandbox` for this server.
    pub sandbox: Option<bool>,
    /// Where the sandboxed server may write (`scope.write`) and read (`scope.read`).
    #[serde(default)]
    pub scope: ScopeConfig,
}

/// What a server's authorization flows and tokens are held to (OAUTH, TOKEN-REPLAY).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The server's authorization server (`https://github.com`): authorization URLs elsewhere are
    /// an issuer mismatch.
    pub issuer: Option<String>,
    /// When set, the only scopes the server may ask for.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    /// The server only reads: write scopes are excessive.
    #[serde(default)]
    pub read_only: bool,
    /// Hosts its redirects may go to besides loopback and the authorization server's own site.
    #[serde(default)]
    pub redirect_hosts: Vec<String>,
    /// The `aud` its JWTs carry: a JWT for another audience sent to it is a replay.
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLists {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A byte count written as a number or a string with a K/M/G suffix (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n as usize)),
            Raw::Text(t) => parse_byte_size(&t)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

pub fn parse_byte_size(text: &str) -> Result<usize> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let n: usize = digits
        .parse()
        .with_context(|| format!("`{text}` is not a byte size (e.g. 65536, 64K, 64M, 1G)"))?;
    let mult = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        other => bail!("unknown size unit `{other}` in `{text}` (use K, M or G)"),
    };
    let bytes = n
        .checked_mul(mult)
        .with_context(|| format!("`{text}` is too large"))?;
    if bytes < 1024 {
        bail!("a frame limit of {bytes} bytes is too small for MCP (minimum 1K)");
    }
    Ok(bytes)
}

/// One upstream server, resolved.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub prefix: String,
    pub command: ServerCommand,
    pub tools: ToolFilter,
    pub oauth: OAuthConfig,
    pub sandbox: SandboxPlan,
}

/// Everything the proxy needs, resolved from the file and the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub servers: Vec<Server>,
    pub policy: Policy,
    pub max_frame: usize,
    pub drain_timeout: Duration,
    pub shutdown_grace: Duration,
    pub restart: RestartConfig,
    pub alerts_json: bool,
    pub quiet: bool,
    pub audit_log: Option<PathBuf>,
    pub repeat_window: Duration,
    /// `None`: the default pins file.
    pub pins_file: Option<PathBuf>,
    pub rate: crate::inspect::rate::RateLimits,
    pub flow: crate::analyze::flow::FlowConfig,
    pub drift: crate::analyze::drift::DriftConfig,
    pub semantic: crate::analyze::semantic::SemanticConfig,
    pub strict: bool,
    pub fs_backend: crate::fsmon::probe::BackendChoice,
}

impl Settings {
    /// True when the client sees one server's names unchanged (wrap mode).
    pub fn is_wrap(&self) -> bool {
        self.servers.len() == 1
    }

    pub fn from_args(args: &ProxyArgs) -> Result<Settings> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        resolve(file, args)
    }
}

pub fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}

pub(crate) fn resolve(file: FileConfig, args: &ProxyArgs) -> Result<Settings> {
    let configured = file.servers;
    let servers: Vec<ServerConfig> = if args.server_command.is_empty() {
        if configured.is_empty() {
            bail!("no server to run: give one after `--` (mcp-watchdog -- CMD ARGS) or [[server]] entries in a config file");
        }
        configured
    } else {
        // Wrap mode: the command comes from the command line; a config may name it and give its lists.
        if configured.len() > 1 {
            bail!("a server command after `--` wraps one server, but the config defines {} [[server]] entries", configured.len());
        }
        let base = configured.into_iter().next();
        if let Some(b) = &base {
            if b.command.is_some() {
                bail!("server `{}` in the config has a command, and another was given after `--`; use one or the other", b.name);
            }
        }
        let mut cmd = args.server_command.iter().cloned();
        let program = cmd.next().expect("non-empty");
        let args_rest: Vec<String> = cmd.collect();
        let name = base
            .as_ref()
            .map(|b| b.name.clone())
            .unwrap_or_else(|| server_name_from_command(&program, &args_rest));
        vec![ServerConfig {
            name,
            command: Some(program),
            args: args_rest,
            env: base.as_ref().map(|b| b.env.clone()).unwrap_or_default(),
            cwd: base.as_ref().and_then(|b| b.cwd.clone()),
            prefix: base.as_ref().and_then(|b| b.prefix.clone()),
            oauth: base.as_ref().map(|b| b.oauth.clone()).unwrap_or_default(),
            sandbox: base.as_ref().and_then(|b| b.sandbox),
            scope: base.as_ref().map(|b| b.scope.clone()).unwrap_or_default(),
            tools: base.map(|b| b.tools).unwrap_or_default(),
        }]
    };
    let several = servers.len() > 1;
    let user = UserDirs::from_env();
    let mut seen = std::collections::HashSet::new();
    let mut resolved = Vec::with_capacity(servers.len());
    for s in servers {
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "server name `{}`: use letters, digits, `-` and `_` only",
                s.name
            );
        }
        if !seen.insert(s.name.clone()) {
            bail!("server name `{}` is used twice", s.name);
        }
        let Some(program) = s.command.filter(|c| !c.is_empty()) else {
            bail!("server `{}` has no command", s.name);
        };
        let tools = ToolFilter::new(&s.tools.allow, &s.tools.deny)
            .with_context(|| format!("server `{}`: bad tool pattern", s.name))?;
        let prefix = s.prefix.unwrap_or_else(|| {
            if several {
                s.name.clone()
            } else {
                String::new()
            }
        });
        let command = ServerCommand {
            program,
            args: s.args,
            env: s.env.into_iter().collect(),
            cwd: s.cwd,
        };
        let enabled = !args.no_sandbox && s.sandbox.or(file.sandbox).unwrap_or(true);
        // Resolved even without the sandbox: the filesystem monitor judges writes against it.
        let sandbox = SandboxPlan {
            enabled,
            scope: scope::resolve(&s.scope, &command, &user)
                .map_err(|e| anyhow::anyhow!("server `{}`: {e}", s.name))?,
        };
        resolved.push(Server {
            prefix,
            command,
            tools,
            oauth: s.oauth,
            sandbox,
            name: s.name,
        });
    }
    let mut prefixes = std::collections::HashSet::new();
    for s in &resolved {
        if !s.prefix.is_empty() && !prefixes.insert(s.prefix.clone()) {
            bail!("prefix `{}` is used by two servers", s.prefix);
        }
    }
    let mode = if args.monitor {
        Mode::Monitor
    } else {
        file.mode
    };
    let max_frame = match &args.max_frame_bytes {
        Some(t) => parse_byte_size(t).context("--max-frame-bytes")?,
        None => file
            .max_frame_bytes
            .map(|b| b.0)
            .unwrap_or(DEFAULT_MAX_FRAME),
    };
    for rule in file.rules.keys() {
        crate::policy::check_rule_name(rule).map_err(|e| anyhow::anyhow!("[rules]: {e}"))?;
    }
    let overrides: HashMap<String, Action> = file.rules.into_iter().collect();
    let r = &file.restart;
    if r.initial_backoff_ms == 0 || r.max_backoff_ms < r.initial_backoff_ms {
        bail!("[restart]: initial_backoff_ms must be > 0 and ≤ max_backoff_ms");
    }
    Ok(Settings {
        servers: resolved,
        policy: Policy::new(mode, overrides),
        max_frame,
        drain_timeout: Duration::from_millis(file.drain_timeout_ms.unwrap_or(5_000)),
        shutdown_grace: Duration::from_millis(file.shutdown_grace_ms.unwrap_or(2_000)),
        restart: file.restart,
        alerts_json: args.alerts_json || file.alerts.json,
        quiet: args.quiet || file.alerts.quiet,
        audit_log: args.audit_log.clone().or(file.alerts.audit_log),
        repeat_window: Duration::from_secs(file.alerts.repeat_window_secs.unwrap_or(10)),
        pins_file: args.pins.clone().or(file.pins_file),
        rate: file.rate,
        flow: file.flow,
        drift: file.drift,
        semantic: file.semantic,
        strict: args.strict || file.strict,
        fs_backend: args.fs_backend.or(file.fs_backend).unwrap_or_default(),
    })
}

/// A readable server name for alerts: the package a launcher runs, else the program's file name.
pub fn server_name_from_command(program: &str, args: &[String]) -> String {
    const LAUNCHERS: &[&str] = &[
        "npx", "uvx", "pipx", "bunx", "node", "python", "python3", "uv", "deno", "bun", "pnpm",
        "yarn", "sh", "bash",
    ];
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let prog = base(program);
    let picked = if LAUNCHERS.contains(&prog.as_str()) {
        args.iter()
            .filter(|a| {
                !a.starts_with('-') && !matches!(a.as_str(), "run" | "exec" | "dlx" | "tool")
            })
            .map(|a| {
                let no_version = match a.rfind('@') {
                    Some(i) if i > 0 => &a[..i],
                    _ => a.as_str(),
                };
                base(no_version)
            })
            .next()
            .unwrap_or(prog)
    } else {
        prog
    };
    let clean: String = picked
        .trim_end_matches(".js")
        .trim_end_matches(".py")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "server".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &[&str]) -> ProxyArgs {
        ProxyArgs {
            server_command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_byte_size("2048").unwrap(), 2048);
        assert_eq!(parse_byte_size("1 GiB").unwrap(), 1 << 30);
        assert!(parse_byte_size("12X").is_err());
        assert!(parse_byte_size("10").is_err());
    }

    #[test]
    fn names_come_from_what_the_launcher_runs() {
        let n = |p: &str, a: &[&str]| {
            server_name_from_command(p, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            n(
                "npx",
                &["-y", "@modelcontextprotocol/server-everything@2026.8.31"]
            ),
            "server-everything"
        );
        assert_eq!(
            n("uvx", &["mcp-server-git", "--repository", "."]),
            "mcp-server-git"
        );
        assert_eq!(n("/usr/local/bin/my-server", &[]), "my-server");
        assert_eq!(n("node", &["/opt/x/dist/index.js"]), "index");
    }

    #[test]
    fn wrap_mode_has_one_unprefixed_server() {
        let s = resolve(FileConfig::default(), &args(&["npx", "-y", "pkg"])).unwrap();
        assert!(s.is_wrap());
        assert_eq!(
            (s.servers[0].name.as_str(), s.servers[0].prefix.as_str()),
            ("pkg", "")
        );
        assert_eq!(s.max_frame, DEFAULT_MAX_FRAME);
    }

    #[test]
    fn gateway_servers_are_prefixed_by_name_and_validated() {
        let file: FileConfig = toml::from_str(
            r#"
            mode = "monitor"
            [rules]
            TOOL-POLICY = "alert"
            [[server]]
            name = "fs"
            command = "npx"
            args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
            tools.deny = ["write_*"]
            [[server]]
            name = "git"
            command = "uvx"
            prefix = ""
            "#,
        )
        .unwrap();
        let s = resolve(file, &ProxyArgs::default()).unwrap();
        assert_eq!(s.servers[0].prefix, "fs");
        assert_eq!(s.servers[1].prefix, "");
        assert!(!s.servers[0].tools.permits("write_file"));
        assert_eq!(s.policy.action(crate::policy::TOOL_POLICY), Action::Alert);
    }

    #[test]
    fn sandbox_is_on_by_default_and_a_servers_setting_wins() {
        let file = |text: &str| toml::from_str::<FileConfig>(text).unwrap();
        let servers = "[[server]]\nname='a'\ncommand='x'\n[[server]]\nname='b'\ncommand='y'\nsandbox = true\n";
        let s = resolve(file(servers), &ProxyArgs::default()).unwrap();
        assert!(s.servers[0].sandbox.enabled && s.servers[1].sandbox.enabled);
        let s = resolve(
            file(&format!("sandbox = false\n{servers}")),
            &ProxyArgs::default(),
        )
        .unwrap();
        assert!(!s.servers[0].sandbox.enabled && s.servers[1].sandbox.enabled);
        let no_sandbox = ProxyArgs {
            no_sandbox: true,
            ..Default::default()
        };
        let s = resolve(file(servers), &no_sandbox).unwrap();
        assert!(!s.servers[0].sandbox.enabled && !s.servers[1].sandbox.enabled);
        let e = resolve(
            file("[[server]]\nname='a'\ncommand='x'\nscope.write = ['/']"),
            &ProxyArgs::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("server `a`: scope.write: `/`"), "{e}");
        let typo = toml::from_str::<FileConfig>("[[server]]\nname='a'\nscope.wirte = []")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("wirte"), "{typo}");
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let err = |toml_text: &str, a: ProxyArgs| {
            let file: FileConfig = toml::from_str(toml_text).unwrap();
            resolve(file, &a).unwrap_err().to_string()
        };
        assert!(err("", ProxyArgs::default()).contains("no server to run"));
        assert!(err(
            "[[server]]\nname='a'\ncommand='x'\n[[server]]\nname='a'\ncommand='y'",
            ProxyArgs::default()
        )
        .contains("used twice"));
        assert!(
            err("[[server]]\nname='a b'\ncommand='x'", ProxyArgs::default()).contains("letters")
        );
        assert!(err("[[server]]\nname='a'", ProxyArgs::default()).contains("no command"));
        assert!(err("[[server]]\nname='a'\ncommand='x'", args(&["y"])).contains("one or the other"));
        let misspelt = err("[rules]\nRUGPULL = 'block'", args(&["x"]));
        assert!(
            misspelt.contains("[rules]: unknown rule `RUGPULL` (did you mean `RUG-PULL`?)"),
            "{misspelt}"
        );
        let unknown = toml::from_str::<FileConfig>("[[server]]\nname='a'\ncomand='x'")
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("comand") && unknown.contains("line 3"),
            "{unknown}"
        );
    }
}

#[cfg(test)]
mod example_config {
    use super::*;

    /// The documented example in configs/ must stay loadable.
    #[test]
    fn configs_watchdog_toml_loads_and_resolves() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/watchdog.toml");
        let file = load_file(&path).unwrap();
        let s = resolve(file, &ProxyArgs::default()).unwrap();
        assert_eq!(s.servers.len(), 2);
        assert_eq!(s.servers[0].prefix, "everything");
        assert!(!s.servers[0].tools.permits("get-env") && s.servers[0].tools.permits("echo"));
        assert!(
            s.servers[1].tools.permits("read_text_file")
                && !s.servers[1].tools.permits("write_file")
        );
        assert_eq!(s.max_frame, 64 << 20);
    }
}
