//! From a parsed command line to a running proxy (or a subcommand), and back to an exit status.

use crate::alert::{self, AlertSink, AlertSinkConfig, RaiseAlert, StderrStyle};
use crate::analyze::Analyzers;
use crate::cli::{AuditCommand, Cli, Command, PinsArgs, PinsCommand, ProxyArgs};
use crate::config::Settings;
use crate::fsmon::{
    self,
    event::BackendKind,
    monitor::FsMonitor,
    probe::{probe, BackendChoice},
};
use crate::jsonrpc::frame_stream;
use crate::proxy::session::{Session, SessionParts, UpstreamLink};
use crate::proxy::stdio;
use crate::supervisor::process_tree::ProcessTrees;
use crate::supervisor::spawn::become_subreaper;
use crate::supervisor::upstream::Upstream;
use crate::supervisor::Supervisor;
use actix::prelude::*;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit status for bad command lines and configs.
const USAGE_ERROR: u8 = 2;
/// `audit verify` could not read the log (1 means the chain is broken).
const UNVERIFIABLE: u8 = 3;

pub fn run(cli: Cli) -> ExitCode {
    init_tracing(cli.proxy.verbose);
    match cli.command {
        Some(Command::Demo(args)) => crate::demo::run(args),
        Some(Command::DemoServer) => crate::demo::server::run(),
        Some(Command::Daemon(args)) => crate::daemon::run(crate::daemon::DaemonOptions {
            socket: args
                .socket
                .unwrap_or_else(crate::daemon::client::socket_path),
            backend: args.fs_backend,
        }),
        Some(Command::ScanText(args)) => crate::scan_text::run(&args, &cli.proxy),
        Some(Command::Audit(AuditCommand::Verify { file })) => verify_audit(file, &cli.proxy),
        Some(Command::Pins(args)) => pins(args),
        Some(Command::Install(args)) => crate::clients::install::run(&args),
        Some(Command::Uninstall(args)) => crate::clients::uninstall::run(&args),
        Some(Command::Alerts(args)) => crate::alerts_cmd::run(&args),
        Some(Command::Completions { shell }) => crate::completions::run(shell),
        Some(Command::Scan(args)) => crate::scan::run(&args),
        Some(Command::Status(args)) => crate::status::run(&args),
        None => run_proxy(&cli.proxy),
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCP_WATCHDOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Diagnostics go to stderr only: stdout belongs to the JSON-RPC stream.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn verify_audit(file: Option<std::path::PathBuf>, args: &ProxyArgs) -> ExitCode {
    let configured = || -> Option<std::path::PathBuf> {
        let from_config = args
            .config
            .as_ref()
            .and_then(|p| crate::config::load_file(p).ok())
            .and_then(|c| c.alerts.audit_log);
        args.audit_log
            .clone()
            .or(from_config)
            .or_else(alert::default_audit_path)
    };
    let Some(path) = file.or_else(configured) else {
        eprintln!("mcp-watchdog: no audit log path (give one, or set $XDG_STATE_HOME or $HOME)");
        return ExitCode::from(USAGE_ERROR);
    };
    match alert::verify(&path) {
        Ok(report) => {
            println!("{}: {report}", path.display());
            ExitCode::SUCCESS
        }
        // A log that cannot be read says nothing about tampering: a mistyped path is not an
        // edited record, and scripts tell the two apart by the exit status.
        Err(e) if matches!(e.kind, alert::VerifyErrorKind::Io { .. }) => {
            eprintln!("mcp-watchdog: cannot verify the audit log: {e}");
            ExitCode::from(UNVERIFIABLE)
        }
        Err(e) => {
            println!("{}: TAMPERED: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// `mcp-watchdog pins …`: 0 when done, 1 when nothing matched or the file could not be used.
fn pins(args: PinsArgs) -> ExitCode {
    use crate::pins::{commands, Store};
    let from_config = match &args.config {
        Some(p) => match crate::config::load_file(p) {
            Ok(c) => c.pins_file,
            Err(e) => {
                eprintln!("mcp-watchdog: {e:#}");
                return ExitCode::from(USAGE_ERROR);
            }
        },
        None => None,
    };
    let Some(path) = args.pins.or(from_config).or_else(Store::default_path) else {
        eprintln!("mcp-watchdog: no pins file (give --pins, or set $XDG_STATE_HOME or $HOME)");
        return ExitCode::from(USAGE_ERROR);
    };
    let store = Store::new(path);
    let mut out = std::io::stdout().lock();
    let done = match &args.command {
        PinsCommand::List { server } => {
            commands::list(&store, server.as_deref(), &mut out).map(|()| true)
        }
        PinsCommand::Diff { server, item } => {
            commands::diff(&store, server, item.as_deref(), &mut out)
        }
        PinsCommand::Approve { server, item, .. } => {
            commands::approve(&store, server, item.as_deref(), &mut out)
        }
        PinsCommand::Reset { server } => commands::reset(&store, server, &mut out),
    };
    match done {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("mcp-watchdog: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_proxy(args: &ProxyArgs) -> ExitCode {
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mcp-watchdog: {e:#}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let system = System::new();
    if let Err(e) = system.block_on(async { start(settings) }) {
        eprintln!("mcp-watchdog: {e:#}");
        return ExitCode::FAILURE;
    }
    match system.run_with_code() {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("mcp-watchdog: {e}");
            ExitCode::FAILURE
        }
    }
}

fn alert_sink(settings: &Settings) -> AlertSink {
    let stderr = if settings.quiet {
        StderrStyle::Quiet
    } else if settings.alerts_json {
        StderrStyle::Json
    } else {
        StderrStyle::Human {
            colour: alert::colour_enabled_for_stderr(),
        }
    };
    let audit_path = settings
        .audit_log
        .clone()
        .or_else(alert::default_audit_path);
    if audit_path.is_none() {
        tracing::warn!("no audit log: neither --audit-log, $XDG_STATE_HOME nor $HOME is set");
    }
    let config = AlertSinkConfig {
        stderr,
        audit_path,
        repeat_window: settings.repeat_window,
    };
    match AlertSink::new(config) {
        Ok(sink) => sink,
        Err(e) => {
            // A proxy that refuses to start breaks the user's assistant; run, and say so loudly.
            eprintln!(
                "mcp-watchdog: WARNING: cannot open the audit log ({e}); alerts go to stderr only"
            );
            let stderr = if settings.quiet {
                StderrStyle::Human { colour: false }
            } else {
                match settings.alerts_json {
                    true => StderrStyle::Json,
                    false => StderrStyle::Human {
                        colour: alert::colour_enabled_for_stderr(),
                    },
                }
            };
            AlertSink::new(AlertSinkConfig {
                stderr,
                audit_path: None,
                repeat_window: settings.repeat_window,
            })
            .expect("no audit log to open")
        }
    }
}

/// Whether the policy leaves DRIFT on (it alerts only; `off` removes it and its literals).
fn drift_enabled(settings: &Settings) -> bool {
    settings.policy.action(crate::analyze::drift::DRIFT) != crate::policy::Action::Off
}

/// The analyzer actors these settings ask for, started (alerts only; inline guards are in the
/// pipeline), and the classifier when results are held for its verdict.
fn analyzers(
    settings: &Settings,
    alerts: &Addr<AlertSink>,
) -> (Analyzers, Option<Addr<crate::analyze::semantic::Semantic>>) {
    use crate::analyze::drift::Drift;
    let mut analyzers = Analyzers::default();
    if drift_enabled(settings) {
        // On its own thread: its parsing of requests and its baselines stay off the relay's
        // thread (its markers come from the pipeline's scan, its observations in batches).
        let drift = Drift::new(&settings.drift, alerts.clone());
        let thread = Arbiter::new();
        analyzers.add(
            Drift::start_in_arbiter(&thread.handle(), move |_| drift).recipient(),
            crate::analyze::drift::wants,
        );
    }
    if settings.semantic.enabled {
        if let Some(s) = crate::analyze::semantic::Semantic::start_for(&settings.semantic, alerts) {
            analyzers.add(s.clone().recipient(), crate::analyze::every_message);
            if settings.semantic.hold {
                return (analyzers, Some(s));
            }
        }
    }
    (analyzers, None)
}

/// Probes the filesystem backends and starts the monitor, following every child of this process
/// from fork. Strict mode without a backend that attributes writes to processes is refused: it
/// could not do what it promises.
fn fs_monitor(
    settings: &Settings,
    alerts: &Addr<AlertSink>,
) -> anyhow::Result<Option<Addr<FsMonitor>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(fsmon::EVENT_QUEUE);
    let mut probed = probe(settings.fs_backend, fsmon::candidates(), &tx);
    drop(tx);
    tracing::info!("{}", probed.summary());
    let attributes = probed
        .backend
        .as_ref()
        .is_some_and(|b| b.kind() != BackendKind::Inotify);
    if settings.strict && !attributes {
        anyhow::bail!(
            "strict mode needs a filesystem backend that names the writing process (eBPF or \
             fanotify as root, or a running `mcp-watchdog daemon`); {}",
            probed.summary()
        );
    }
    if settings.fs_backend == BackendChoice::Auto && !attributes {
        eprintln!(
            "mcp-watchdog: note: filesystem writes are not attributed to processes here (root or a \
             running `mcp-watchdog daemon` would); {}",
            probed.summary()
        );
    }
    let Some(backend) = probed.backend.as_mut() else {
        if !matches!(
            settings.fs_backend,
            BackendChoice::Auto | BackendChoice::Off
        ) {
            anyhow::bail!("--fs-backend {}: {}", settings.fs_backend, probed.summary());
        }
        return Ok(None);
    };
    backend.add_spawner(std::process::id())?;
    let sensitive = crate::sandbox::sensitive::SensitiveSet::from_env();
    let every_scope = fsmon::WatchScope {
        write: settings
            .servers
            .iter()
            .flat_map(|s| s.sandbox.scope.write.iter().cloned())
            .collect(),
        sensitive: sensitive.paths().to_vec(),
        strict: settings.strict,
    };
    if let Err(e) = backend.prepare(&every_scope) {
        tracing::warn!("filesystem monitor: {e}; a server's first writes may be missed");
    }
    if settings.strict {
        if let Err(e) = backend.strict_everywhere(sensitive.paths()) {
            eprintln!(
                "mcp-watchdog: WARNING: strict mode cannot deny sensitive opens here ({e}); \
                 breaches are still killed"
            );
        }
    }
    Ok(Some(
        FsMonitor::new(
            probed.backend,
            rx,
            alerts.clone().recipient(),
            sensitive.paths(),
        )
        .start(),
    ))
}

/// Starts every actor; runs inside the actix system.
fn start(settings: Settings) -> anyhow::Result<()> {
    if let Err(e) = become_subreaper() {
        tracing::warn!(
            "cannot become a child subreaper ({e}); orphaned server processes may escape tracking"
        );
    }
    let alerts = alert_sink(&settings).start();
    // Read from the command lines only, once: nothing is run or fetched to check them.
    for a in crate::analyze::supply_chain::check_settings(&settings) {
        alerts.do_send(RaiseAlert(a));
    }
    let fs_monitor = fs_monitor(&settings, &alerts)?;
    let (client_out, client_writer) = stdio::spawn_line_writer(stdio::stdout());
    let supervisor_ctx = Context::<Supervisor>::new();
    let mut session_ctx = Context::<Session>::new();
    let trees = ProcessTrees::new();
    let upstreams: Vec<Addr<Upstream>> = (0..settings.servers.len())
        .map(|i| {
            Upstream::new(
                i,
                &settings,
                session_ctx.address().recipient(),
                supervisor_ctx.address().recipient(),
                alerts.clone(),
                trees.clone(),
            )
            .with_fs_monitor(fs_monitor.clone())
            .start()
        })
        .collect();
    let links = settings
        .servers
        .iter()
        .zip(&upstreams)
        .map(|(s, addr)| UpstreamLink {
            name: s.name.as_str().into(),
            prefix: s.prefix.clone(),
            addr: addr.clone(),
        })
        .collect();
    let (analyzers, hold) = analyzers(&settings, &alerts);
    let session_addr = session_ctx.address();
    let supervisor_addr = supervisor_ctx.address();
    let session_alerts = alerts.clone();
    let max_frame = settings.max_frame;
    let build_settings = settings.clone();
    // Building the pipeline (automata, literal tables: ~2.4 ms alone) overlaps the servers' start. The session
    // reads the client only once it has the pipeline; what the servers send meanwhile waits in
    // its mailbox.
    actix::spawn(async move {
        let built = tokio::task::spawn_blocking(move || {
            let mut pipeline = crate::inspect::registry::pipeline(&build_settings);
            if drift_enabled(&build_settings) {
                // DRIFT's markers come from the pipeline's scan: a tool result is read once.
                pipeline.observe_literals(crate::analyze::drift::observed_literals());
            }
            pipeline
        })
        .await;
        let pipeline = match built {
            Ok(pipeline) => pipeline,
            Err(e) => {
                // Only a panic gets here: a bug, so EX_SOFTWARE; never run uninspected.
                eprintln!("mcp-watchdog: building the inspection pipeline failed: {e}");
                System::current().stop_with_code(70);
                return;
            }
        };
        let session = Session::new(SessionParts {
            upstreams: links,
            client_out,
            client_writer,
            pipeline: Arc::new(pipeline),
            alerts: session_alerts,
            analyzers,
            hold,
            supervisor: supervisor_addr.recipient(),
        });
        session_ctx.add_stream(frame_stream(stdio::stdin(), max_frame));
        session_ctx.run(session);
    });
    supervisor_ctx.run(Supervisor::new(
        upstreams,
        session_addr,
        alerts,
        settings.drain_timeout,
        settings.shutdown_grace,
        settings.is_wrap(),
    ));
    Ok(())
}
