//! Choosing the filesystem backend at start: by trying each in turn, never by assuming. The choice
//! and the reasons the better ones were passed over are logged and shown by `status`.

use super::{Backend, EventSender};
use serde::Deserialize;
use std::fmt;

/// `fs_backend` in watchdog.toml, `--fs-backend` on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The best that works here: a running daemon, eBPF, fanotify, inotify.
    #[default]
    Auto,
    Ebpf,
    Fanotify,
    /// A root `mcp-watchdog daemon` reached over its socket.
    Daemon,
    Inotify,
    /// No filesystem monitoring (Landlock still confines when the sandbox is on).
    Off,
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Ebpf => "ebpf",
            BackendChoice::Fanotify => "fanotify",
            BackendChoice::Daemon => "daemon",
            BackendChoice::Inotify => "inotify",
            BackendChoice::Off => "off",
        })
    }
}

/// A way to start one backend; `Err` says why it cannot run here.
pub type Starter = fn(EventSender) -> Result<Box<dyn Backend>, String>;

/// What probing found.
pub struct Probed {
    pub backend: Option<Box<dyn Backend>>,
    /// Backends tried before the chosen one, and why each was passed over.
    pub passed_over: Vec<(BackendChoice, String)>,
}

impl Probed {
    /// One line for the log and `status`.
    pub fn summary(&self) -> String {
        let mut s = match &self.backend {
            Some(b) => format!("filesystem monitor: {}", b.describe()),
            None => "filesystem monitor: none".to_owned(),
        };
        for (choice, why) in &self.passed_over {
            s.push_str(&format!("; {choice}: {why}"));
        }
        s
    }
}

/// Tries the candidates `choice` allows, in order of preference, and keeps the first that starts.
pub fn probe(
    choice: BackendChoice,
    candidates: &[(BackendChoice, Starter)],
    events: &EventSender,
) -> Probed {
    let mut passed_over = Vec::new();
    if choice == BackendChoice::Off {
        return Probed {
            backend: None,
            passed_over,
        };
    }
    for (which, start) in candidates {
        if choice != BackendChoice::Auto && choice != *which {
            continue;
        }
        match start(events.clone()) {
            Ok(backend) => {
                return Probed {
                    backend: Some(backend),
                    passed_over,
                }
            }
            Err(why) => passed_over.push((*which, why)),
        }
    }
    Probed {
        backend: None,
        passed_over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsmon::event::BackendKind;
    use crate::fsmon::WatchScope;

    struct Named(BackendKind);

    impl Backend for Named {
        fn kind(&self) -> BackendKind {
            self.0
        }
        fn add_spawner(&mut self, _: u32) -> std::io::Result<()> {
            Ok(())
        }
        fn watch(&mut self, _: u32, _: &WatchScope) -> std::io::Result<()> {
            Ok(())
        }
        fn unwatch(&mut self, _: u32) {}
    }

    fn refuses(_: EventSender) -> Result<Box<dyn Backend>, String> {
        Err("needs root".into())
    }

    fn inotify(_: EventSender) -> Result<Box<dyn Backend>, String> {
        Ok(Box::new(Named(BackendKind::Inotify)))
    }

    const CANDIDATES: &[(BackendChoice, Starter)] = &[
        (BackendChoice::Ebpf, refuses),
        (BackendChoice::Fanotify, refuses),
        (BackendChoice::Inotify, inotify),
    ];

    #[test]
    fn auto_takes_the_first_that_starts_and_says_why_the_others_did_not() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let p = probe(BackendChoice::Auto, CANDIDATES, &tx);
        assert_eq!(
            p.backend.as_ref().map(|b| b.kind()),
            Some(BackendKind::Inotify)
        );
        assert_eq!(
            p.summary(),
            "filesystem monitor: inotify; ebpf: needs root; fanotify: needs root"
        );
    }

    #[test]
    fn a_forced_backend_is_the_only_one_tried() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let p = probe(BackendChoice::Fanotify, CANDIDATES, &tx);
        assert!(p.backend.is_none());
        assert_eq!(
            p.passed_over,
            vec![(BackendChoice::Fanotify, "needs root".to_owned())]
        );
        assert!(probe(BackendChoice::Off, CANDIDATES, &tx).backend.is_none());
    }
}
