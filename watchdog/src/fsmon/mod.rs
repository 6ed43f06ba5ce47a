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

pub mod ebpf;
pub mod event;

use self::event::{BackendKind, FsEvent};
use std::io;
use std::path::PathBuf;
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

    /// Follows every process `spawner` forks from now on (and their descendants), each child as
    /// the root of its own tree.
    fn add_spawner(&mut self, spawner: u32) -> io::Result<()>;

    /// Declares the scope of the tree rooted at `root_pid` (a child of a spawner).
    fn watch(&mut self, root_pid: u32, scope: &WatchScope) -> io::Result<()>;

    /// Forgets a tree once its root has been reaped.
    fn unwatch(&mut self, root_pid: u32);
}
