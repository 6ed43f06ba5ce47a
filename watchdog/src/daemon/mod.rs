//! `mcp-watchdog daemon`: a root service owning the kernel filesystem monitor for every proxy on
//! the machine. Unprivileged proxies connect over a unix socket (identified by the kernel's peer
//! credentials), register their servers' pids and scopes, and get their attributed events back;
//! strict mode is enforced here, where the privilege is.

pub mod client;
pub mod peer;
pub mod protocol;
pub mod server;

use crate::fsmon::probe::{probe, BackendChoice};
use std::path::PathBuf;
use std::process::ExitCode;

/// What `mcp-watchdog daemon` was asked.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub socket: PathBuf,
    pub backend: BackendChoice,
}

/// Runs the daemon until it is killed. Errors (not root, no backend, socket in use) are said
/// plainly and end it with status 1.
pub fn run(options: DaemonOptions) -> ExitCode {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "mcp-watchdog daemon: must run as root (it loads eBPF programs or fanotify marks)"
        );
        return ExitCode::FAILURE;
    }
    if matches!(
        options.backend,
        BackendChoice::Daemon | BackendChoice::Inotify | BackendChoice::Off
    ) {
        eprintln!(
            "mcp-watchdog daemon: --fs-backend {}: the daemon needs a backend that attributes \
             writes (auto, ebpf or fanotify)",
            options.backend
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-watchdog daemon: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::channel(crate::fsmon::EVENT_QUEUE);
        let candidates: Vec<_> = crate::fsmon::candidates()
            .iter()
            .filter(|(c, _)| matches!(c, BackendChoice::Ebpf | BackendChoice::Fanotify))
            .copied()
            .collect();
        let probed = probe(options.backend, &candidates, &tx);
        drop(tx);
        let summary = probed.summary();
        let Some(mut backend) = probed.backend else {
            eprintln!("mcp-watchdog daemon: no backend can run here; {summary}");
            return ExitCode::FAILURE;
        };
        // Only trees registered as strict are refused anything.
        if let Err(e) = backend.enable_denial() {
            eprintln!("mcp-watchdog daemon: sensitive opens cannot be denied here ({e}); strict breaches are killed");
        }
        let listener = match server::bind(&options.socket) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("mcp-watchdog daemon: {}: {e}", options.socket.display());
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "mcp-watchdog daemon: listening on {}; {summary}",
            options.socket.display()
        );
        let serving = server::serve(listener, server::Daemon::new(backend), rx);
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("mcp-watchdog daemon: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = serving => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = std::fs::remove_file(&options.socket);
        ExitCode::SUCCESS
    })
}
