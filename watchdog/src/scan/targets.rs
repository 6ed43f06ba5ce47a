//! Which servers a scan starts, and under which policy: the [[server]] entries of a watchdog.toml,
//! the command after `--`, or the stdio servers of the clients' configs.

use crate::cli::{ProxyArgs, ScanArgs};
use crate::clients::servers::{read_servers, Launch, ServerKind};
use crate::clients::{ClientArgs, ClientChoice, Locations};
use crate::config::{self, server_name_from_command};
use crate::policy::{Policy, ToolFilter};
use crate::supervisor::spawn::ServerCommand;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// One server to start.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name the report uses: the configured name or the client entry's key.
    pub name: String,
    /// The name the proxy would give it, under which its pins are kept.
    pub pin_name: String,
    /// Where it is configured (file, and client); several when clients share one server.
    pub sources: Vec<String>,
    pub command: ServerCommand,
}

/// A configured server that is not started, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub source: String,
    pub reason: String,
}

/// Everything a scan works from.
#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
    /// Client configs that could not be read: reported, and the scan goes on without them.
    pub unreadable: Vec<String>,
    pub policy: Policy,
    pub filters: HashMap<String, ToolFilter>,
    pub pins_file: Option<PathBuf>,
}

/// Works out the plan; an error is a bad command line or config (exit status 2).
pub fn plan(args: &ScanArgs) -> Result<Plan> {
    if let Some(path) = &args.config {
        let file = config::load_file(path)?;
        let settings = config::resolve(file, &ProxyArgs::default())
            .with_context(|| format!("{}", path.display()))?;
        return Ok(from_settings(settings, &path.display().to_string(), args));
    }
    if !args.server_command.is_empty() {
        let proxy = ProxyArgs {
            server_command: args.server_command.clone(),
            ..Default::default()
        };
        let settings = config::resolve(Default::default(), &proxy)?;
        return Ok(from_settings(settings, "command line", args));
    }
    from_clients(args.client.unwrap_or_default(), args)
}

fn from_settings(settings: config::Settings, source: &str, args: &ScanArgs) -> Plan {
    let targets = settings
        .servers
        .iter()
        .map(|s| Target {
            name: s.name.clone(),
            pin_name: s.name.clone(),
            sources: vec![source.to_owned()],
            command: s.command.clone(),
        })
        .collect();
    let filters = settings
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.tools.clone()))
        .collect();
    Plan {
        targets,
        skipped: Vec::new(),
        unreadable: Vec::new(),
        policy: settings.policy,
        filters,
        pins_file: args.pins.clone().or(settings.pins_file),
    }
}

fn from_clients(choice: ClientChoice, args: &ScanArgs) -> Result<Plan> {
    let at = Locations::from_env()?;
    let files = ClientArgs {
        client: choice,
        ..Default::default()
    }
    .files(&at);
    let mut plan = Plan {
        targets: Vec::new(),
        skipped: Vec::new(),
        unreadable: Vec::new(),
        policy: Policy::default(),
        filters: HashMap::new(),
        pins_file: args.pins.clone(),
    };
    for file in files {
        let source = format!("{} {}", file.client_name(), file.path.display());
        let servers = match read_servers(&file) {
            Ok(Some(servers)) => servers,
            Ok(None) => continue,
            Err(e) => {
                plan.unreadable
                    .push(format!("{}: {e}", file.path.display()));
                continue;
            }
        };
        for server in servers {
            let skip = |reason: String| Skipped {
                name: server.name.clone(),
                source: source.clone(),
                reason,
            };
            let launch = match server.kind {
                ServerKind::Stdio(launch) => launch,
                ServerKind::Wrapped {
                    inner: Some(inner), ..
                } => inner,
                ServerKind::Wrapped {
                    inner: None,
                    watchdog,
                } => {
                    plan.skipped.push(skip(format!(
                        "runs the watchdog as a gateway ({}); scan it with --config",
                        watchdog.command_line()
                    )));
                    continue;
                }
                ServerKind::Remote { description } => {
                    plan.skipped.push(skip(format!(
                        "{description}: HTTP/SSE servers are not scanned yet"
                    )));
                    continue;
                }
                ServerKind::Other { reason } => {
                    plan.skipped.push(skip(reason));
                    continue;
                }
            };
            if let Some(reason) = needs_the_client(&launch) {
                plan.skipped.push(skip(reason));
                continue;
            }
            add(
                &mut plan.targets,
                server.name.clone(),
                source.clone(),
                launch,
            );
        }
    }
    Ok(plan)
}

/// A server the client configures with its own variables (`${workspaceFolder}`, `${input:key}`)
/// cannot be started faithfully by anyone else.
fn needs_the_client(launch: &Launch) -> Option<String> {
    let uses = |s: &str| s.contains("${");
    (uses(&launch.command) || launch.args.iter().any(|a| uses(a))).then(|| {
        "its command line uses the client's variables (${…}), which only the client substitutes"
            .to_owned()
    })
}

/// Adds a client's server; one configured in several clients is started once.
fn add(targets: &mut Vec<Target>, name: String, source: String, launch: Launch) {
    let command = ServerCommand {
        program: launch.command,
        args: launch.args,
        env: launch.env,
        cwd: launch.cwd,
    };
    if let Some(same) = targets.iter_mut().find(|t| t.command == command) {
        same.sources.push(source);
        return;
    }
    // `install` wraps with `mcp-watchdog -- CMD`: wrap mode names the server after its command.
    let pin_name = server_name_from_command(&command.program, &command.args);
    targets.push(Target {
        name,
        pin_name,
        sources: vec![source],
        command,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_variables_keep_a_server_from_being_started() {
        let launch = |args: &[&str]| Launch {
            command: "node".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            cwd: None,
        };
        assert!(needs_the_client(&launch(&["${workspaceFolder}/x.js"])).is_some());
        assert!(needs_the_client(&launch(&["/opt/x.js", "$HOME"])).is_none());
    }

    #[test]
    fn a_server_in_two_clients_is_started_once_and_named_as_wrap_mode_names_it() {
        let launch = Launch {
            command: "npx".into(),
            args: vec![
                "-y".into(),
                "@modelcontextprotocol/server-filesystem".into(),
            ],
            env: vec![],
            cwd: None,
        };
        let mut targets = Vec::new();
        add(
            &mut targets,
            "files".into(),
            "cursor a".into(),
            launch.clone(),
        );
        add(&mut targets, "fs".into(), "vscode b".into(), launch);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].sources, ["cursor a", "vscode b"]);
        assert_eq!(targets[0].pin_name, "server-filesystem");
    }
}
