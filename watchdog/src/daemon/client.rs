//! The proxy's side: a filesystem backend that is a connection to a root daemon. Hello registers
//! this process as a spawner before any server is started; events come back on a reader thread.

use super::protocol::{encode, Reply, Request, PROTOCOL_VERSION};
use crate::fsmon::event::BackendKind;
use crate::fsmon::{Backend, EventSender, WatchScope};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How long the daemon gets to answer hello; a hung daemon must not hang the proxy's start.
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the daemon listens unless `MCP_WATCHDOG_SOCKET` says otherwise.
pub fn socket_path() -> PathBuf {
    std::env::var_os("MCP_WATCHDOG_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::status::system::DAEMON_SOCKET))
}

pub struct DaemonBackend {
    socket: PathBuf,
    writer: UnixStream,
    kind: BackendKind,
    daemon_backend: String,
    /// Set when this side ends the connection, so the reader does not report a lost daemon.
    closing: Arc<AtomicBool>,
    /// The daemon's answers to `strict_from_fork`, from the reader thread.
    strict_answers: std_mpsc::Receiver<Option<String>>,
}

impl DaemonBackend {
    /// Connects, says hello and waits for the welcome; then relays events into `events`.
    pub fn connect(socket: &Path, events: EventSender) -> Result<DaemonBackend, String> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| format!("no daemon at {}: {e}", socket.display()))?;
        DaemonBackend::handshake(stream, socket, events)
    }

    /// Hello and welcome over an already connected `stream`.
    pub fn handshake(
        stream: UnixStream,
        socket: &Path,
        events: EventSender,
    ) -> Result<DaemonBackend, String> {
        let fail = |e: io::Error| format!("daemon at {}: {e}", socket.display());
        stream.set_read_timeout(Some(HELLO_TIMEOUT)).map_err(fail)?;
        stream
            .set_write_timeout(Some(HELLO_TIMEOUT))
            .map_err(fail)?;
        let mut writer = stream.try_clone().map_err(fail)?;
        writer
            .write_all(&encode(&Request::Hello {
                version: PROTOCOL_VERSION,
            }))
            .map_err(fail)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(fail)?;
        let daemon_backend = match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Welcome { backend }) => backend,
            Ok(Reply::Refused { reason, .. }) => {
                return Err(format!("daemon at {} refused: {reason}", socket.display()))
            }
            _ => return Err(format!("daemon at {}: unexpected answer", socket.display())),
        };
        let kind = match daemon_backend.split_whitespace().next() {
            Some("fanotify") => BackendKind::Fanotify,
            _ => BackendKind::Ebpf,
        };
        reader.get_ref().set_read_timeout(None).map_err(fail)?;
        let shown = socket.display().to_string();
        let closing = Arc::new(AtomicBool::new(false));
        let closing_seen = closing.clone();
        let (answer, strict_answers) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("daemon-events".into())
            .spawn(move || relay(reader, events, answer, shown, closing_seen))
            .map_err(fail)?;
        Ok(DaemonBackend {
            socket: socket.to_path_buf(),
            writer,
            kind,
            daemon_backend,
            closing,
            strict_answers,
        })
    }

    fn send(&mut self, request: &Request) -> io::Result<()> {
        self.writer.write_all(&encode(request))
    }
}

/// Reads the daemon's replies until it goes away: events to the monitor, refusals to stderr (a
/// tree the daemon will not watch is unmonitored, which the user must know).
fn relay(
    mut reader: BufReader<UnixStream>,
    events: EventSender,
    strict_answers: std_mpsc::Sender<Option<String>>,
    socket: String,
    closing: Arc<AtomicBool>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Event { event }) => {
                if events.blocking_send(event).is_err() {
                    return;
                }
            }
            Ok(Reply::Refused { root_pid, reason }) => {
                let what = root_pid.map_or_else(String::new, |p| format!(" pid {p}"));
                eprintln!("mcp-watchdog: WARNING: the daemon refused to watch{what}: {reason}");
            }
            Ok(Reply::StrictFromFork { error }) => {
                let _ = strict_answers.send(error);
            }
            Ok(Reply::Watching { .. } | Reply::Welcome { .. }) => {}
            Err(e) => tracing::warn!("daemon at {socket}: unreadable reply: {e}"),
        }
    }
    if !events.is_closed() && !closing.load(Ordering::Relaxed) {
        eprintln!(
            "mcp-watchdog: WARNING: lost the daemon at {socket}; filesystem writes are no longer \
             attributed"
        );
    }
}

impl Drop for DaemonBackend {
    /// Ends the connection for the reader thread too, so the daemon forgets this proxy now.
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }
}

impl Backend for DaemonBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn describe(&self) -> String {
        format!(
            "daemon at {} ({})",
            self.socket.display(),
            self.daemon_backend
        )
    }

    /// The daemon follows the connecting process itself (by its credentials, since hello).
    fn add_spawner(&mut self, spawner: u32) -> io::Result<()> {
        if spawner == std::process::id() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the daemon follows only the process connected to it",
            ))
        }
    }

    fn watch(&mut self, root_pid: u32, scope: &WatchScope) -> io::Result<()> {
        self.send(&Request::watch(root_pid, scope))
    }

    fn unwatch(&mut self, root_pid: u32) {
        let _ = self.send(&Request::Unwatch { root_pid });
    }

    fn prepare(&mut self, scope: &WatchScope) -> io::Result<()> {
        self.send(&Request::Prepare {
            write: scope.write.clone(),
            sensitive: scope.sensitive.clone(),
        })
    }

    /// The daemon denies sensitive opens for trees registered as strict, when its backend can.
    fn enable_denial(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The daemon makes every tree this proxy starts strict from its fork, before the proxy
    /// registers it (`watch`, milliseconds after the spawn): its opens of `sensitive` refused
    /// (fanotify), its first write there killed at the syscall (eBPF). Waits for the daemon to
    /// confirm, so that no server starts before.
    fn strict_everywhere(&mut self, sensitive: &[PathBuf]) -> Result<(), String> {
        let unarmed = |why: String| format!("trees are strict only once registered: {why}");
        self.send(&Request::StrictFromFork {
            sensitive: sensitive.to_vec(),
        })
        .map_err(|e| unarmed(e.to_string()))?;
        match self.strict_answers.recv_timeout(HELLO_TIMEOUT) {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(unarmed(why)),
            Err(_) => Err(unarmed("the daemon did not answer".into())),
        }
    }
}
