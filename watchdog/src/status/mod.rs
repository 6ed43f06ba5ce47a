//! `mcp-watchdog status`: configured servers and whether they run through the watchdog, what
//! confines them, the pins and their state, the last alerts, and the daemon. Reads only.

pub mod recent_alerts;
pub mod system;

use crate::alert::{self, Alert};
use crate::cli::{ProxyArgs, StatusArgs};
use crate::clients::servers::{read_servers, ServerKind};
use crate::clients::{ClientArgs, Locations};
use crate::config;
use crate::pins::identity::ServerIdentity;
use crate::pins::snapshot::{self, Snapshot, StateCounts};
use crate::pins::Store;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status when some part could not be read.
const EXIT_PARTIAL: u8 = 1;
/// Exit status for a bad command line or config.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Serialize)]
pub struct Status {
    pub servers: Vec<ServerFile>,
    pub sandbox: Sandbox,
    pub pins: Pins,
    pub alerts: Alerts,
    pub daemon: Daemon,
}

/// The servers of one config file.
#[derive(Debug, Serialize)]
pub struct ServerFile {
    /// `watchdog.toml`, or the client's name.
    pub kind: String,
    pub path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub servers: Vec<ServerRow>,
}

#[derive(Debug, Serialize)]
pub struct ServerRow {
    pub name: String,
    /// `configured` (watchdog.toml), `wrapped`, `not wrapped`, `not covered` (HTTP/SSE),
    /// `left alone` (not understood).
    pub state: &'static str,
    /// The command line (for a wrapped entry, the server's own), URL or reason.
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Sandbox {
    pub landlock: system::Landlock,
    /// Whether this build confines the servers it starts.
    pub applied_to_servers: bool,
    /// Which filesystem backend a proxy started now would use, and why better ones would not run.
    pub kernel_monitor: String,
}

#[derive(Debug, Serialize)]
pub struct Pins {
    pub path: Option<PathBuf>,
    /// `missing`, `read`, `unusable`, or `no path` (neither $XDG_STATE_HOME nor $HOME).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_use_suspended: Option<String>,
    pub servers: Vec<PinnedServer>,
}

#[derive(Debug, Serialize)]
pub struct PinnedServer {
    pub name: String,
    pub id: String,
    #[serde(flatten)]
    pub counts: StateCounts,
}

#[derive(Debug, Serialize)]
pub struct Alerts {
    pub path: Option<PathBuf>,
    /// `missing` (no alert recorded yet), `read`, `unreadable`, or `no path`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Oldest first.
    pub recent: Vec<Alert>,
}

#[derive(Debug, Serialize)]
pub struct Daemon {
    pub socket: PathBuf,
    #[serde(flatten)]
    pub state: system::Daemon,
}

pub fn run(args: &StatusArgs) -> ExitCode {
    let file = match &args.config {
        Some(path) => match load(path) {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                eprintln!("mcp-watchdog status: {e:#}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => None,
    };
    let at = if file.is_none() {
        match Locations::from_env() {
            Ok(at) => Some(at),
            Err(e) => {
                eprintln!("mcp-watchdog status: {e:#}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    } else {
        None
    };
    let (servers, pins_path, audit_path) = match &file {
        Some((path, settings)) => (
            vec![configured(path, settings)],
            args.pins.clone().or(settings.pins_file.clone()),
            args.audit_log.clone().or(settings.audit_log.clone()),
        ),
        None => (
            client_servers(at.as_ref().expect("set without --config")),
            args.pins.clone(),
            args.audit_log.clone(),
        ),
    };
    let status = Status {
        servers,
        sandbox: Sandbox {
            landlock: system::landlock(),
            applied_to_servers: false,
            kernel_monitor: kernel_monitor(),
        },
        pins: pins(pins_path.or_else(Store::default_path)),
        alerts: alerts(audit_path.or_else(alert::default_audit_path), args.alerts),
        daemon: {
            let socket = crate::daemon::client::socket_path();
            Daemon {
                state: system::daemon(&socket),
                socket,
            }
        },
    };
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&status).expect("the status serializes");
        text.push('\n');
        text
    } else {
        render(&status)
    };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) is not worth a panic.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    let partial = status.servers.iter().any(|f| f.error.is_some())
        || status.pins.state == "unusable"
        || status.alerts.state == "unreadable";
    for f in status.servers.iter().filter(|f| f.error.is_some()) {
        eprintln!(
            "mcp-watchdog status: error: {}: {}",
            f.path.display(),
            f.error.as_deref().unwrap_or_default()
        );
    }
    ExitCode::from(if partial { EXIT_PARTIAL } else { 0 })
}

/// The config, resolved; errors name the file (and, for TOML syntax, line and column).
fn load(path: &Path) -> anyhow::Result<(PathBuf, config::Settings)> {
    use anyhow::Context;
    let file = config::load_file(path)?;
    let settings = config::resolve(file, &ProxyArgs::default())
        .with_context(|| format!("{}", path.display()))?;
    Ok((path.to_owned(), settings))
}

fn configured(path: &Path, settings: &config::Settings) -> ServerFile {
    ServerFile {
        kind: "watchdog.toml".into(),
        path: path.to_owned(),
        error: None,
        servers: settings
            .servers
            .iter()
            .map(|s| {
                let args: Vec<&str> = s.command.args.iter().map(String::as_str).collect();
                ServerRow {
                    name: s.name.clone(),
                    state: "configured",
                    detail: crate::clients::entry::command_line(&s.command.program, &args),
                }
            })
            .collect(),
    }
}

/// Every client config `install` would touch that exists, with its entries.
fn client_servers(at: &Locations) -> Vec<ServerFile> {
    let mut files = Vec::new();
    for file in ClientArgs::default().files(at) {
        let (servers, error) = match read_servers(&file) {
            Ok(None) => continue,
            Ok(Some(servers)) => (servers, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let servers = servers
            .into_iter()
            .map(|s| {
                let (state, detail) = match s.kind {
                    ServerKind::Stdio(l) => ("not wrapped", l.command_line()),
                    ServerKind::Wrapped { inner: Some(l), .. } => ("wrapped", l.command_line()),
                    ServerKind::Wrapped { watchdog, .. } => ("wrapped", watchdog.command_line()),
                    ServerKind::Remote { description } => ("not covered", description),
                    ServerKind::Other { reason } => ("left alone", reason),
                };
                ServerRow {
                    name: s.name,
                    state,
                    detail,
                }
            })
            .collect();
        files.push(ServerFile {
            kind: file.client_name().into(),
            path: file.path,
            error,
            servers,
        });
    }
    files
}

fn pins(path: Option<PathBuf>) -> Pins {
    let Some(path) = path else {
        return Pins {
            path: None,
            state: "no path",
            error: None,
            first_use_suspended: None,
            servers: Vec::new(),
        };
    };
    let snap = Snapshot::read(&path);
    let (state, error) = match &snap {
        Snapshot::Missing(_) => ("missing", None),
        Snapshot::Read(..) => ("read", None),
        Snapshot::Unusable(_, why) => ("unusable", Some(why.clone())),
    };
    let file = snap.file();
    Pins {
        path: Some(path),
        state,
        error,
        first_use_suspended: file.first_use_suspended.as_ref().map(|s| s.reason.clone()),
        servers: snapshot::counts(&file)
            .into_iter()
            .map(|(id, (name, counts))| PinnedServer {
                name,
                id: ServerIdentity::short_id(&id).to_owned(),
                counts,
            })
            .collect(),
    }
}

fn alerts(path: Option<PathBuf>, n: usize) -> Alerts {
    let Some(path) = path else {
        return Alerts {
            path: None,
            state: "no path",
            error: None,
            recent: Vec::new(),
        };
    };
    let (state, error, recent) = match recent_alerts::last_alerts(&path, n) {
        Ok(None) => ("missing", None, Vec::new()),
        Ok(Some(last)) => {
            if last.unreadable_lines > 0 {
                eprintln!(
                    "mcp-watchdog status: {}: {} line(s) are not audit records (see `mcp-watchdog audit verify`)",
                    path.display(),
                    last.unreadable_lines
                );
            }
            let recent = last.records.into_iter().map(|(_, a)| a).collect();
            ("read", None, recent)
        }
        Err(e) => ("unreadable", Some(e.to_string()), Vec::new()),
    };
    Alerts {
        path: Some(path),
        state,
        error,
        recent,
    }
}

fn render(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "servers:");
    if s.servers.is_empty() {
        let _ = writeln!(
            out,
            "  no client config found (see `mcp-watchdog install --dry-run`)"
        );
    }
    for f in &s.servers {
        let _ = writeln!(out, "  {} {}", f.kind, f.path.display());
        if let Some(e) = &f.error {
            let _ = writeln!(out, "    error: {e}");
        }
        if f.servers.is_empty() && f.error.is_none() {
            let _ = writeln!(out, "    no servers");
        }
        let width = f
            .servers
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        for r in &f.servers {
            let _ = writeln!(
                out,
                "    {:<11}  {:<width$}  {}",
                r.state,
                visible(&r.name),
                visible(&r.detail)
            );
        }
    }
    let _ = writeln!(out, "sandbox:");
    let _ = writeln!(out, "  Landlock: {}", s.sandbox.landlock);
    let _ = writeln!(
        out,
        "  every server is confined at spawn: Landlock write scope (where available) and a seccomp filter refusing io_uring and 32-bit system calls; `sandbox = false` turns it off per server"
    );
    let _ = writeln!(out, "  kernel monitor: {}", s.sandbox.kernel_monitor);
    let p = &s.pins;
    let _ = write!(out, "pins: ");
    match (&p.path, p.state) {
        (None, _) => {
            let _ = writeln!(
                out,
                "no pins file (neither $XDG_STATE_HOME nor $HOME is set)"
            );
        }
        (Some(path), "missing") => {
            let _ = writeln!(out, "{} (none yet)", path.display());
        }
        (Some(path), _) => {
            let _ = writeln!(out, "{}", path.display());
        }
    }
    if let Some(e) = &p.error {
        let _ = writeln!(out, "  unusable: {e}");
    }
    if let Some(why) = &p.first_use_suspended {
        let _ = writeln!(out, "  nothing is trusted on first use: {why}");
    }
    for server in &p.servers {
        let c = &server.counts;
        let _ = writeln!(
            out,
            "  {} ({}): {} approved, {} pending, {} changed, {} removed",
            visible(&server.name),
            server.id,
            c.approved,
            c.pending,
            c.changed,
            c.removed
        );
    }
    let a = &s.alerts;
    let _ = write!(out, "alerts: ");
    match (&a.path, a.state) {
        (None, _) => {
            let _ = writeln!(
                out,
                "no audit log (neither $XDG_STATE_HOME nor $HOME is set)"
            );
        }
        (Some(path), "missing") => {
            let _ = writeln!(out, "{} (no alert recorded yet)", path.display());
        }
        (Some(path), _) => {
            let _ = writeln!(out, "{}", path.display());
        }
    }
    if let Some(e) = &a.error {
        let _ = writeln!(out, "  unreadable: {e}");
    }
    for alert in &a.recent {
        let line = alert::human_line(alert, false, alert::DEFAULT_REPEAT_WINDOW);
        let line = line.strip_prefix("mcp-watchdog: ").unwrap_or(&line);
        let time = humantime::format_rfc3339_seconds(alert.time);
        let _ = writeln!(out, "  {time} {line}");
    }
    let daemon = match &s.daemon.state {
        system::Daemon::Reachable { backend } => format!("reachable, watching with {backend}"),
        system::Daemon::NotAnswering { reason } => format!("not answering ({reason})"),
        system::Daemon::NotRunning => {
            "not running (`sudo mcp-watchdog daemon`, or configs/mcp-watchdog-daemon.service)"
                .to_owned()
        }
    };
    let _ = writeln!(out, "daemon: {} {daemon}", s.daemon.socket.display());
    out
}

fn visible(text: &str) -> String {
    let mut out = String::new();
    alert::human::push_visible(&mut out, text);
    out
}

/// Probes the filesystem backends as a proxy would (each is started and dropped again).
fn kernel_monitor() -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return format!("cannot probe ({e})"),
    };
    runtime.block_on(async {
        let (events, _ignored) = tokio::sync::mpsc::channel(1);
        let probed = crate::fsmon::probe::probe(
            crate::fsmon::probe::BackendChoice::Auto,
            crate::fsmon::candidates(),
            &events,
        );
        probed
            .summary()
            .trim_start_matches("filesystem monitor: ")
            .to_owned()
    })
}
