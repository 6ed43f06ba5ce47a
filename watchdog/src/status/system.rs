//! What this machine and build offer the watchdog: Landlock, the kernel monitor, the daemon.

use serde::Serialize;
use std::path::Path;

/// Where the root daemon (not in this build yet) will listen.
pub const DAEMON_SOCKET: &str = "/run/mcp-watchdog.sock";

/// `LANDLOCK_CREATE_RULESET_VERSION`: asks landlock_create_ruleset for the ABI version.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Landlock {
    Available { abi: i64 },
    NotAvailable { reason: String },
}

/// Asks the kernel which Landlock ABI it supports (nothing is restricted by asking).
pub fn landlock() -> Landlock {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag, the call only returns
    // the ABI version (or an error); it creates no file descriptor and touches no memory of ours.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi >= 1 {
        return Landlock::Available { abi };
    }
    let error = std::io::Error::last_os_error();
    let reason = match error.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no Landlock support".to_owned(),
        Some(libc::EOPNOTSUPP) => "Landlock is disabled at boot (lsm= does not list it)".to_owned(),
        _ => error.to_string(),
    };
    Landlock::NotAvailable { reason }
}

impl std::fmt::Display for Landlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Landlock::Available { abi } => write!(f, "available, ABI {abi}"),
            Landlock::NotAvailable { reason } => write!(f, "not available ({reason})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Daemon {
    /// A daemon answered hello; it watches with this backend.
    Reachable {
        backend: String,
    },
    /// Something is there but did not answer as a daemon.
    NotAnswering {
        reason: String,
    },
    NotRunning,
}

/// Whether a daemon answers on `path` (a hello and its welcome; nothing is registered).
pub fn daemon(path: &Path) -> Daemon {
    let Ok(stream) = std::os::unix::net::UnixStream::connect(path) else {
        return Daemon::NotRunning;
    };
    let (events, _ignored) = tokio::sync::mpsc::channel(1);
    match crate::daemon::client::DaemonBackend::handshake(stream, path, events) {
        Ok(backend) => Daemon::Reachable {
            backend: crate::fsmon::Backend::describe(&backend),
        },
        Err(reason) => Daemon::NotAnswering { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landlock_answers_either_way() {
        match landlock() {
            Landlock::Available { abi } => assert!(abi >= 1),
            Landlock::NotAvailable { reason } => assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn a_listening_socket_is_told_from_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        assert_eq!(daemon(&path), Daemon::NotRunning);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // Accepts, reads the hello and answers nonsense: not a daemon.
        let mute = std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            std::io::BufReader::new(stream.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            stream.write_all(b"{}\n").unwrap();
            line
        });
        assert!(matches!(daemon(&path), Daemon::NotAnswering { .. }));
        assert!(mute.join().unwrap().contains("hello"));
    }
}
