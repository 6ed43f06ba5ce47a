//! What every filesystem backend reports: one write-like operation by one process, attributed to
//! the server whose tree it belongs to. Backends fill what they can see; the monitor judges it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Which backend saw an event (and which one is active, for `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Ebpf,
    Fanotify,
    Inotify,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Ebpf => "ebpf",
            BackendKind::Fanotify => "fanotify",
            BackendKind::Inotify => "inotify",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A write-like operation. Legacy and `*at` syscall forms map to the same operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsOp {
    /// open/openat/openat2/creat with write access, O_CREAT or O_TRUNC; the file was modified or
    /// created (fanotify/inotify see the modification, not the open flags).
    OpenWrite,
    /// A file came into existence (inotify/fanotify CREATE; eBPF reports OpenWrite with O_CREAT).
    Create,
    Truncate,
    Unlink,
    Rmdir,
    Mkdir,
    /// `path` is the source, `path2` the destination.
    Rename,
    /// Hard link: `path` is the new name, `path2` the existing file.
    Link,
    /// `path` is the new link, `path2` its target text as given.
    Symlink,
    Mknod,
    Chmod,
    Chown,
    /// setxattr/removexattr, utimes: metadata changes Landlock cannot restrict.
    Attrib,
    /// An open the backend saw without knowing read from write (fanotify permission events).
    Open,
}

impl FsOp {
    pub fn as_str(self) -> &'static str {
        match self {
            FsOp::OpenWrite => "open-write",
            FsOp::Create => "create",
            FsOp::Truncate => "truncate",
            FsOp::Unlink => "unlink",
            FsOp::Rmdir => "rmdir",
            FsOp::Mkdir => "mkdir",
            FsOp::Rename => "rename",
            FsOp::Link => "link",
            FsOp::Symlink => "symlink",
            FsOp::Mknod => "mknod",
            FsOp::Chmod => "chmod",
            FsOp::Chown => "chown",
            FsOp::Attrib => "attrib",
            FsOp::Open => "open",
        }
    }
}

impl fmt::Display for FsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "errno")]
pub enum Outcome {
    /// It happened (the syscall succeeded, or a notification backend saw its effect).
    Allowed,
    /// The kernel refused it with this errno (e.g. EACCES from Landlock); nothing was written.
    Failed(i32),
    /// The watchdog refused it (fanotify permission event, BPF-LSM).
    Denied,
    /// The watchdog killed the offending tree (the operation may still have completed).
    Killed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Allowed => f.write_str("allowed"),
            Outcome::Failed(errno) => {
                write!(f, "failed ({})", nix::errno::Errno::from_raw(*errno).desc())
            }
            Outcome::Denied => f.write_str("denied"),
            Outcome::Killed => f.write_str("killed"),
        }
    }
}

/// One attributed filesystem operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsEvent {
    /// The watched tree's root pid (the server process the watchdog spawned); 0 when the backend
    /// cannot attribute (inotify: attribution is by scope).
    pub root_pid: u32,
    /// The acting process (tgid) and thread; 0 when unknown.
    pub pid: u32,
    pub tid: u32,
    /// Command name (task comm, ≤15 bytes) and executable, when known.
    pub comm: String,
    pub exe: Option<PathBuf>,
    pub op: FsOp,
    /// Absolute path as the backend resolved it; the monitor normalizes it (`..`, symlinks).
    pub path: PathBuf,
    pub path2: Option<PathBuf>,
    pub outcome: Outcome,
    pub backend: BackendKind,
}
