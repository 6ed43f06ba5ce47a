//! Kernel-attributed filesystem monitoring: which process of which server wrote where, checked
//! against the server's scope and the always-sensitive set, and in strict mode stopped.
//!
//! Backends (probed at start by trying them, best first) all deliver the same [`event::FsEvent`]:
//! 1. `ebpf` (root): tracepoint programs from watchdog-ebpf, process trees followed in the kernel.
//! 2. `fanotify` (root): filesystem marks with FID reporting and a fork tracker.
//! 3. `inotify` (unprivileged): marks on the scope and the sensitive set; attribution comes from
//!    Landlock guaranteeing only the confined children could have written inside the scope.
//!
//! The monitor turns events into SCOPE-L4 alerts; the daemon (root) runs one monitor for every
//! proxy on the machine.

pub mod deny;
pub mod early;
pub mod ebpf;
pub mod event;
pub mod fanotify;
pub mod forks;
pub mod inotify;
pub mod judge;
pub mod monitor;
pub mod probe;

use self::event::{BackendKind, FsEvent};
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Where a watched tree may write: events inside `write` (and not sensitive) are expected and
/// need not cross from a backend to the monitor; everything else must.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchScope {
    /// Real paths of the write scope (config or defaults, plus the server's private temp dir).
    pub write: Vec<PathBuf>,
    /// The always-sensitive set (sandbox/sensitive.rs), plus `.git/config` and `.git/hooks/` by
    /// name wherever they are.
    pub sensitive: Vec<PathBuf>,
    /// Strict mode: a breach by this tree is denied where the backend can deny it, and the tree is
    /// killed where it cannot.
    pub strict: bool,
}

impl WatchScope {
    /// Beneath a sensitive location, or a repository's `.git/config` or `.git/hooks/` anywhere.
    pub fn is_sensitive(&self, path: &Path) -> bool {
        judge::sensitive_location(path, self).is_some()
    }

    /// Beneath a root of the write scope.
    pub fn in_write_scope(&self, path: &Path) -> bool {
        self.write.iter().any(|w| path.starts_with(w))
    }

    /// An operation on `path` the tree was allowed to make: backends may drop it early.
    pub fn expects(&self, path: &Path) -> bool {
        self.in_write_scope(path) && !self.is_sensitive(path)
    }
}

/// Where a backend delivers events. Bounded: a backend that cannot send counts the loss and says so.
pub type EventSender = mpsc::Sender<FsEvent>;

/// One filesystem monitoring backend, running for the whole life of the watchdog (or daemon).
///
/// Attribution must not miss a server's first instructions or a short-lived grandchild: backends
/// that follow trees (eBPF, fanotify) start following every child of a *spawner* process (the
/// watchdog itself, or a proxy registered with the daemon) at fork, before `watch` is called with
/// the child's pid; events that arrive first are attributed to that root pid all the same.
pub trait Backend: Send {
    fn kind(&self) -> BackendKind;

    /// How `status` and the log name it (e.g. "ebpf", "daemon at /run/… (ebpf)").
    fn describe(&self) -> String {
        self.kind().to_string()
    }

    /// Follows every process `spawner` forks from now on (and their descendants), each child as
    /// the root of its own tree.
    fn add_spawner(&mut self, spawner: u32) -> io::Result<()>;

    /// Declares the scope of the tree rooted at `root_pid` (a child of a spawner).
    fn watch(&mut self, root_pid: u32, scope: &WatchScope) -> io::Result<()>;

    /// Forgets a tree once its root has been reaped.
    fn unwatch(&mut self, root_pid: u32);

    /// Stops following new children of `spawner` (it went away; its pid may be reused).
    fn remove_spawner(&mut self, _spawner: u32) {}

    /// Gets ready, before any server runs, for everything the servers' scopes (all of them in
    /// `scope`) and the sensitive set cover (fanotify marks their filesystems, inotify watches the
    /// sensitive locations), so that a server's first writes are not missed.
    fn prepare(&mut self, _scope: &WatchScope) -> io::Result<()> {
        Ok(())
    }

    /// Strict mode: refuse sensitive opens by strict trees from now on (fanotify permission
    /// events). `Err` says why this backend cannot.
    fn enable_denial(&mut self) -> Result<(), String> {
        Err(format!("the {} backend cannot deny opens", self.kind()))
    }

    /// The watchdog's own strict mode: every tree it spawns is strict from its fork on (no window
    /// before `watch`), and `sensitive` is protected now, before any server runs.
    fn strict_everywhere(&mut self, _sensitive: &[PathBuf]) -> Result<(), String> {
        Err(format!("the {} backend cannot deny opens", self.kind()))
    }

    /// One spawner's strict mode (the daemon's, for a strict proxy): each tree `spawner` starts is
    /// strict from its fork, before `watch` declares it; its opens of `sensitive` are refused
    /// where this backend can deny, its writes there killed where it can kill at the syscall.
    fn strict_from_fork(&mut self, _spawner: u32, _sensitive: &[PathBuf]) -> Result<(), String> {
        Err(format!(
            "the {} backend cannot make trees strict from their fork",
            self.kind()
        ))
    }
}

/// Events in flight from a backend to the monitor, at most.
pub const EVENT_QUEUE: usize = 8192;

/// Every backend this build has, best first.
pub fn candidates() -> &'static [(probe::BackendChoice, probe::Starter)] {
    // A running daemon first: it already holds the kernel monitor for every proxy, so a root
    // proxy need not load its own.
    &[
        (probe::BackendChoice::Daemon, start_daemon_client),
        (probe::BackendChoice::Ebpf, start_ebpf),
        (probe::BackendChoice::Fanotify, start_fanotify),
        (probe::BackendChoice::Inotify, start_inotify),
    ]
}

fn start_ebpf(events: EventSender) -> Result<Box<dyn Backend>, String> {
    ebpf::EbpfBackend::start(events)
        .map(|b| Box::new(b) as _)
        .map_err(|e| e.0)
}

fn start_fanotify(events: EventSender) -> Result<Box<dyn Backend>, String> {
    fanotify::FanotifyBackend::start(events).map(|b| Box::new(b) as _)
}

fn start_inotify(events: EventSender) -> Result<Box<dyn Backend>, String> {
    inotify::InotifyBackend::start(events).map(|b| Box::new(b) as _)
}

fn start_daemon_client(events: EventSender) -> Result<Box<dyn Backend>, String> {
    let socket = crate::daemon::client::socket_path();
    crate::daemon::client::DaemonBackend::connect(&socket, events).map(|b| Box::new(b) as _)
}
