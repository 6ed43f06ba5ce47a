//! The daemon's wire protocol: one JSON object per line over its unix socket. The caller's identity
//! is never taken from a message: the daemon reads it from the socket (SO_PEERCRED).

use crate::fsmon::event::FsEvent;
use crate::fsmon::WatchScope;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const PROTOCOL_VERSION: u32 = 1;

/// Proxy → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// First line: the daemon starts following every child the caller forks from now on.
    Hello {
        version: u32,
    },
    /// Attribute and judge the tree rooted at `root_pid`, a child of the caller.
    Watch {
        root_pid: u32,
        write: Vec<PathBuf>,
        sensitive: Vec<PathBuf>,
        strict: bool,
    },
    Unwatch {
        root_pid: u32,
    },
    /// Scopes and sensitive paths the caller's servers will have, sent before they start, so
    /// that the daemon sees their first writes.
    Prepare {
        write: Vec<PathBuf>,
        sensitive: Vec<PathBuf>,
    },
    /// Strict mode from the fork on: until `watch` declares it, every tree the caller starts is
    /// killed at its first touch of `sensitive` (no window before registration). Answered with
    /// `strict_from_fork`, before the caller starts any server.
    StrictFromFork {
        sensitive: Vec<PathBuf>,
    },
}

/// Daemon → proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `hello`: the caller's children are followed from now on.
    Welcome {
        backend: String,
    },
    Watching {
        root_pid: u32,
    },
    /// A request the daemon will not carry out, and why.
    Refused {
        root_pid: Option<u32>,
        reason: String,
    },
    /// An attributed operation by one of the caller's trees (breaches only, like every backend).
    Event {
        event: FsEvent,
    },
    /// Answer to `strict_from_fork`: armed, or why not.
    StrictFromFork {
        error: Option<String>,
    },
}

impl Request {
    pub fn watch(root_pid: u32, scope: &WatchScope) -> Request {
        Request::Watch {
            root_pid,
            write: scope.write.clone(),
            sensitive: scope.sensitive.clone(),
            strict: scope.strict,
        }
    }
}

/// One line of JSON, newline included.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).expect("protocol messages serialize");
    line.push(b'\n');
    line
}
